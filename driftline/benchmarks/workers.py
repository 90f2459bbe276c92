"""A ``driftline worker`` process per phase, configured as in production through ``WORKER_*``.

The process is the real command (``python -m driftline.commands.worker``) with a benchmark
pipeline factory, a fresh consumer group and the champions preloaded, logging to a file in
the run's directory. Its memory is read from ``/proc/<pid>/status``: ``VmHWM`` (the peak
resident set) and ``VmRSS`` (now).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final

from driftline.benchmarks.cluster import BenchError, PhaseTopics
from driftline.benchmarks.usage import Sample, scrape
from events.settings import KafkaSettings

# A worker loads its models and joins its group in a few seconds; 90 s flags a broken one.
READY_TIMEOUT_S: Final = 90.0
# A graceful stop finishes one batch and commits; past this the process is killed.
STOP_TIMEOUT_S: Final = 30.0
HTTP_TIMEOUT_S: Final = 5.0
KIB: Final = 1024
# What WorkerSpec.environment sets for each phase: extra settings may not change it.
WIRED_SETTINGS: Final = frozenset(
    {
        "WORKER_INPUT_TOPICS",
        "WORKER_GROUP_ID",
        "WORKER_PIPELINE",
        "WORKER_MODEL_STORE",
        "WORKER_UPDATES_TOPIC",
        "WORKER_ALERTS_TOPIC",
        "WORKER_PREDICTIONS_TOPIC",
        "WORKER_IMPUTED_TOPIC",
        "WORKER_SHADOW_TOPIC",
        "WORKER_PRELOAD_MODELS",
        "WORKER_HTTP_PORT",
        "WORKER_INSTANCE_ID",
        "WORKER_STREAMS",
    }
)


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process, in bytes."""

    peak_bytes: int  # VmHWM
    now_bytes: int  # VmRSS


def process_memory(pid: int) -> Memory:
    """``VmHWM`` and ``VmRSS`` of ``pid`` (Linux ``/proc``)."""
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                fields[name] = int(rest.split()[0]) * KIB  # reported in kB
    except (OSError, ValueError, IndexError) as exc:
        raise BenchError(f"cannot read the memory of process {pid}: {exc}") from exc
    if len(fields) != 2:
        raise BenchError(f"/proc/{pid}/status has no VmHWM/VmRSS (not Linux?)")
    return Memory(fields["VmHWM"], fields["VmRSS"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class WorkerSpec:
    """What one phase's worker runs: its pipeline, topics, group and model store."""

    name: str
    pipeline: str  # module:callable
    phase: PhaseTopics
    group: str
    store: Path
    updates_topic: str
    preload: Sequence[str] = ()
    settings: Mapping[str, str] = field(default_factory=dict)  # extra WORKER_* values

    def environment(self, kafka: KafkaSettings, port: int) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "KAFKA_"))}
        return {
            **inherited,
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "WORKER_INPUT_TOPICS": json.dumps(list(self.phase.inputs)),
            "WORKER_GROUP_ID": self.group,
            "WORKER_PIPELINE": self.pipeline,
            "WORKER_MODEL_STORE": str(self.store),
            "WORKER_UPDATES_TOPIC": self.updates_topic,
            "WORKER_ALERTS_TOPIC": self.phase.alerts,
            "WORKER_PRELOAD_MODELS": json.dumps(list(self.preload)),
            "WORKER_HTTP_PORT": str(port),
            "WORKER_INSTANCE_ID": self.name,
            **dict(self.settings),
            **self.phase.to_env(),
        }


class WorkerProcess:
    """One worker subprocess; a context manager that always stops it."""

    def __init__(self, spec: WorkerSpec, kafka: KafkaSettings, log: Path) -> None:
        self.spec = spec
        self.log = log
        self.port = free_port()
        env = spec.environment(kafka, self.port)
        command = [sys.executable, "-m", "driftline.commands.worker"]
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        """Raise BenchError (with the end of its log) if the worker exited."""
        code = self.process.poll()
        if code is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-20:]
            raise BenchError(
                f"worker {self.spec.name} exited with status {code}:\n" + "\n".join(tail)
            )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until ``/readyz`` answers 200: partitions assigned, models loaded."""
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"worker {self.spec.name} not ready within {timeout_s:.0f} s")
            time.sleep(0.1)  # polling /readyz: HTTP is the readiness signal a worker offers

    def memory(self) -> Memory:
        self.check_alive()
        return process_memory(self.pid)

    def sample(self) -> Sample:
        """CPU time and batch totals so far, from the worker's ``/metrics``."""
        self.check_alive()
        return scrape(self.port)

    def stop(self) -> None:
        """SIGTERM (finish the batch, commit, leave the group), then SIGKILL if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _ready(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False  # not listening yet, or 503 (HTTPError is a URLError)
