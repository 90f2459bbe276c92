"""``driftline worker`` subprocesses and the polling the tests that run them share.

On ``sys.path`` through pytest's ``pythonpath`` setting (pyproject.toml): the worker
integration tests and the fault suite import it by name. Deadlines only catch hangs on a
shared two-core machine; healthy waits take seconds, and every wait polls a readiness
signal (``/readyz``, a metric, an output count) rather than sleeping a fixed time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

DRIFTLINE: Final = Path(sys.executable).with_name("driftline")
SUPPORT: Final = Path(__file__).resolve().parent  # for a subprocess's PYTHONPATH
START_DEADLINE_S: Final = 60.0
DEADLINE_S: Final = 90.0
# How often a wait looks again: short against the seconds a healthy wait takes.
POLL_S: Final = 0.05
# The broker's smallest allowed session timeout: a SIGKILLed worker's partitions are
# handed out again after about this long.
SESSION_TIMEOUT_MS: Final = 6_000


def worker_env(
    bootstrap: str,
    name: str,
    *,
    inputs: Sequence[str],
    group: str,
    pipeline: str,
    pipeline_dir: Path,
    updates: str,
    alerts: str,
    store: Path,
    **extra: str,
) -> dict[str, str]:
    """The environment of a test's worker: this process's, without its ``WORKER_*`` and
    ``KAFKA_*`` variables, plus the worker's; ``pipeline`` (module:callable) is imported
    from ``pipeline_dir``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "KAFKA_"))}
    return {
        **base,
        # The pipeline's module and what it may import from here.
        "PYTHONPATH": os.pathsep.join(
            [str(pipeline_dir), str(SUPPORT), base.get("PYTHONPATH", "")]
        ),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WORKER_INPUT_TOPICS": json.dumps(list(inputs)),
        "WORKER_GROUP_ID": group,
        "WORKER_PIPELINE": pipeline,
        "WORKER_UPDATES_TOPIC": updates,
        "WORKER_ALERTS_TOPIC": alerts,
        "WORKER_MODEL_STORE": str(store),
        "WORKER_HTTP_PORT": str(free_port()),
        "WORKER_INSTANCE_ID": name,
        "WORKER_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        "WORKER_SHUTDOWN_TIMEOUT_S": "30",
        **extra,
    }


def free_port(count: int = 1) -> int:
    """A port p such that p .. p+count-1 are free on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count <= 65535 and all(_free(base + i) for i in range(1, count)):
            return base
    raise RuntimeError("no free port range")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """Status and body of a GET on 127.0.0.1; status 0 when nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""  # not listening (yet, or any more)


def metric(port: int, name: str, labels: str = "") -> float:
    """The value of one sample on ``/metrics`` (0 when absent)."""
    body = http_get(port, "/metrics")[1].decode()
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+-]+)"
    found = re.search(pattern, body)
    return float(found.group(1)) if found else 0.0


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> float:
    """Poll ``condition`` until true; the seconds it took."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < deadline_s, f"timed out waiting for {what}"
        time.sleep(POLL_S)
    return time.monotonic() - began


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)
    return {name: int(kib) for name, kib in found}


class Worker:
    """One ``driftline worker`` subprocess logging to a file."""

    def __init__(self, env: dict[str, str], log: Path, args: Sequence[str] = ()) -> None:
        self.port = int(env["WORKER_HTTP_PORT"])
        self.log = log
        self.started = time.monotonic()
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(DRIFTLINE), "worker", *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, port: int | None = None) -> float:
        """Until ``/readyz`` (on ``port``, else the worker's own) answers 200; seconds taken."""

        def ready() -> bool:
            assert self.alive(), f"worker exited:\n{self.log.read_text()[-4000:]}"
            return http_get(port or self.port, "/readyz")[0] == 200

        return wait_until(ready, "/readyz", START_DEADLINE_S)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(DEADLINE_S)
