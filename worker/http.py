"""A tiny threaded HTTP server: ``/metrics``, ``/healthz`` and ``/readyz``.

* ``/metrics`` - Prometheus text format of the process's default registry.
* ``/healthz`` - 200 while the consume loop is alive: it polled within
  ``liveness_timeout_s``. A wedged loop (a stuck model, a dead thread) turns it 503, so an
  orchestrator restarts the process.
* ``/readyz`` - 200 once the instance is useful: it owns partitions, none is warming, the
  model updates consumer is positioned and the preloaded models are loaded. 503 otherwise,
  with the reason in the JSON body.

The server binds 127.0.0.1 unless told otherwise: metrics and health are for the local
scraper and orchestrator, not for the network.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

# How often serve_forever checks for shutdown: bounds how long stopping the server takes.
SHUTDOWN_POLL_S: Final = 0.1
# Bound on joining the server thread at shutdown (a scrape in progress finishes first).
STOP_TIMEOUT_S: Final = 5.0


class Health:
    """Liveness and readiness facts, updated by the runtime and read by the HTTP server."""

    def __init__(self, liveness_timeout_s: float) -> None:
        self.liveness_timeout_s = liveness_timeout_s
        self._lock = threading.Lock()
        self._last_poll = time.monotonic()
        self._assigned = 0
        self._warming = False
        self._models_ready = False
        self._stopping = False

    def polled(self) -> None:
        self._last_poll = time.monotonic()  # a float store is atomic; no lock on the hot path

    def set_assigned(self, partitions: int) -> None:
        with self._lock:
            self._assigned = partitions

    def set_warming(self, warming: bool) -> None:
        with self._lock:
            self._warming = warming

    def set_models_ready(self, ready: bool) -> None:
        with self._lock:
            self._models_ready = ready

    def set_stopping(self) -> None:
        with self._lock:
            self._stopping = True

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        since = time.monotonic() - self._last_poll
        alive = since <= self.liveness_timeout_s
        return alive, {"alive": alive, "seconds_since_poll": round(since, 3)}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            reasons = []
            if self._stopping:
                reasons.append("stopping")
            if self._assigned == 0:
                reasons.append("no partitions assigned")
            if self._warming:
                reasons.append("warming up")
            if not self._models_ready:
                reasons.append("models not loaded")
            detail = {
                "ready": not reasons,
                "assigned_partitions": self._assigned,
                "warming": self._warming,
                "models_ready": self._models_ready,
                "reasons": reasons,
            }
        return not reasons, detail


class _Handler(BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            self._send_json(*self.server.health.liveness())
        elif path == "/readyz":
            self._send_json(*self.server.health.readiness())
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: a scrape every few seconds is not worth a log line."""

    def _send_json(self, ok: bool, detail: dict[str, Any]) -> None:
        body = json.dumps(detail).encode() + b"\n"
        self._send(200 if ok else 503, body, "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HealthServer(ThreadingHTTPServer):
    """Serves :class:`Health` and the metrics on a daemon thread."""

    daemon_threads = True

    def __init__(self, health: Health, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.health = health
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name="worker-http",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
        self.server_close()
