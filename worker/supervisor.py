"""``--processes N``: N worker processes of one consumer group on one machine.

One Python process scores on one core (the GIL), so a machine with several cores runs
several workers. The supervisor starts N children, each with its own instance id
(``<instance_id>-<i>``, stable across restarts when ``WORKER_INSTANCE_ID`` is set, which
keeps exactly-once transactional ids stable) and its own HTTP port (``http_port + i``, or a
free one each when the port is 0). Kafka's group protocol shares the partitions among them.

Children run in their own session, so a terminal's Ctrl-C reaches only the supervisor, which
forwards SIGTERM/SIGINT to every child once; each child then finishes its batch, commits
and leaves the group. A child still running ``grace_s`` after that is killed.

A child that exits non-zero on its own (a delivery failure, a fatal Kafka error) makes the
supervisor stop the others and exit non-zero too: the whole group is restarted by whatever
runs the supervisor (systemd, Kubernetes, compose), rather than running degraded unnoticed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Final

from broker.process import tied_to_caller

log = logging.getLogger(__name__)

# How often exits are checked; children exit on their own time, this only bounds noticing.
WAIT_POLL_S: Final = 0.2
EXIT_CHILD_FAILED: Final = 1


@dataclass(frozen=True)
class ChildSpec:
    """Environment differences of child ``index``."""

    index: int
    instance_id: str
    http_port: int


def child_specs(processes: int, instance_id: str, http_port: int) -> list[ChildSpec]:
    """Instance id ``<instance_id>-<i>`` and port ``http_port + i`` (0 stays 0: any port)."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if http_port and http_port + processes - 1 > 65535:
        raise ValueError(f"ports {http_port}..{http_port + processes - 1} exceed 65535")
    return [
        ChildSpec(i, f"{instance_id}-{i}", http_port + i if http_port else 0)
        for i in range(processes)
    ]


class Supervisor:
    """Starts the children, forwards stop signals, waits, reports failure by exit status."""

    def __init__(
        self,
        command: Sequence[str],
        specs: Sequence[ChildSpec],
        env: Mapping[str, str],
        grace_s: float,
    ) -> None:
        self.command = list(command)
        self.specs = list(specs)
        self.env = dict(env)
        self.grace_s = grace_s
        self.children: list[subprocess.Popen[bytes]] = []
        self._stopping = False
        self._stop_signal: int = signal.SIGTERM
        self._stop_deadline: float | None = None

    def run(self) -> int:
        """Install signal handlers (main thread only), start and wait."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        self.start()
        return self.wait()

    def start(self) -> None:
        for spec in self.specs:
            env = {
                **self.env,
                "WORKER_INSTANCE_ID": spec.instance_id,
                "WORKER_HTTP_PORT": str(spec.http_port),
            }
            # Tied: a supervisor killed with SIGKILL leaves no worker behind in the group.
            command = tied_to_caller(self.command)
            child = subprocess.Popen(command, env=env, start_new_session=True)
            self.children.append(child)
            log.info("started worker %s (pid %d)", spec.instance_id, child.pid)
            if self._stopping:  # a signal arrived while the children were being started
                child.send_signal(self._stop_signal)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Forward ``signum`` to every running child, once; they stop gracefully."""
        if self._stopping:
            return
        self._stopping = True
        self._stop_signal = signum
        self._stop_deadline = time.monotonic() + self.grace_s
        self._signal_all(signum)

    def wait(self) -> int:
        """Block until every child exited; 0 if all exited 0, else EXIT_CHILD_FAILED."""
        failed = False
        while True:
            codes = [child.poll() for child in self.children]
            for spec, code in zip(self.specs, codes, strict=True):
                if code not in (None, 0) and not failed:
                    failed = True
                    log.error("worker %s exited with status %s", spec.instance_id, code)
                    self.stop()
            if all(code is not None for code in codes):
                return EXIT_CHILD_FAILED if any(codes) else 0
            if self._stop_deadline is not None and time.monotonic() > self._stop_deadline:
                self._signal_all(signal.SIGKILL)
                self._stop_deadline = None
                failed = True
                log.error(
                    "workers still running %.0f s after the stop signal: killed", self.grace_s
                )
            time.sleep(WAIT_POLL_S)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info(
            "received %s; stopping %d worker(s)", signal.Signals(signum).name, len(self.children)
        )
        self.stop(signum)

    def _signal_all(self, signum: int) -> None:
        for child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # exited since the poll
                    os.kill(child.pid, signum)
