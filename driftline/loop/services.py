"""Worker, monitor and trainer as ``driftline <service>`` subprocesses, as in production.

Each service gets its settings through its environment only, logs to ``<logs>/<name>.log``
and serves ``/readyz`` on a free 127.0.0.1 port; it is ready when ``/readyz`` answers 200.
It runs in its own session, so a stop reaches whatever it forked: SIGTERM first (the
service's graceful shutdown), SIGKILL for what is left after the grace period.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from broker.process import terminate

# A readiness probe of a local process answers in milliseconds.
HTTP_TIMEOUT_S: Final = 2.0
# /readyz is the signal; this only paces the probes.
PROBE_INTERVAL_S: Final = 0.1
# Lines of a service's log quoted when it fails.
TAIL_LINES: Final = 20


class ServiceError(RuntimeError):
    """A service exited or did not become ready; the message quotes its log."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the service binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_status(port: int, path: str) -> int:
    """Status of ``GET http://127.0.0.1:<port><path>``; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}{path}", timeout=HTTP_TIMEOUT_S
        ) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Service:
    """One ``driftline <name>`` process; ``env`` is its whole environment."""

    name: str
    env: dict[str, str]
    log: Path
    port: int
    grace_s: float
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Service:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        script = Path(sys.executable).with_name("driftline")
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [str(script), self.name],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def ready(self) -> bool:
        """Whether /readyz answers 200; ServiceError when the process has exited."""
        self.check()
        return http_status(self.port, "/readyz") == 200

    def check(self) -> None:
        """ServiceError when the process is not running (any more)."""
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise ServiceError(f"{self.name} is not running (exit code {code}):\n{tail(self.log)}")

    def stop(self) -> int | None:
        """SIGTERM, wait for the graceful stop, kill what is left; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            terminate(self.process.pid, self.grace_s, child=self.process)
        return self.process.poll()


def wait_ready(services: Sequence[Service], timeout_s: float) -> None:
    """Wait until every service answers /readyz (ServiceError on exit or timeout)."""
    deadline = time.monotonic() + timeout_s
    waiting = list(services)
    while waiting:
        waiting = [s for s in waiting if not s.ready()]
        if not waiting:
            return
        if time.monotonic() > deadline:
            details = "\n".join(f"{s.name} ({s.log}):\n{tail(s.log)}" for s in waiting)
            raise ServiceError(f"not ready within {timeout_s:.0f} s:\n{details}")
        time.sleep(PROBE_INTERVAL_S)


def stop_all(services: Sequence[Service]) -> dict[str, int | None]:
    """Stop in reverse start order; the exit code per service."""
    return {service.name: service.stop() for service in reversed(services)}


def service_env(base: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """``base`` without other settings of the services' prefixes, plus ``own``."""
    prefixes = ("WORKER_", "MONITOR_", "TRAINER_", "KAFKA_", "MODEL_STORE")
    kept = {k: v for k, v in base.items() if not k.startswith(prefixes)}
    return {**kept, **own}
