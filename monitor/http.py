"""``/metrics``, ``/healthz`` and ``/readyz`` of the monitor.

The server is the worker's (:class:`worker.http.HealthServer`, bound to 127.0.0.1 by
default); only readiness differs. The monitor is ready once its state is rebuilt from its
topics and the group has given it partitions; live while it rebuilds that state (bounded by
its own timeout), then while its loop keeps polling.
"""

from __future__ import annotations

import threading
from typing import Any

from worker.http import Health, HealthServer

__all__ = ["HealthServer", "MonitorHealth"]


class MonitorHealth(Health):
    """Liveness (from :class:`Health`) and the monitor's own readiness facts."""

    def __init__(self, liveness_timeout_s: float) -> None:
        super().__init__(liveness_timeout_s)
        self._facts_lock = threading.Lock()
        self._recovered = False
        self._partitions = 0
        self._closing = False
        self.ready = threading.Event()  # set while ready: tests and embedders wait on it

    def set_recovered(self) -> None:
        with self._facts_lock:
            self._recovered = True
        self.polled()  # the loop's polls count from here
        self._update()

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """Live while the start-up replay runs (it polls no group, and may take longer than
        the liveness timeout; ``MONITOR_RECOVERY_TIMEOUT_S`` bounds it and fails the start),
        then while the loop keeps polling."""
        with self._facts_lock:
            recovered = self._recovered
        if recovered:
            return super().liveness()
        return True, {"alive": True, "rebuilding_state": True}

    def set_partitions(self, count: int) -> None:
        with self._facts_lock:
            self._partitions = count
        self._update()

    def set_closing(self) -> None:
        with self._facts_lock:
            self._closing = True
        self._update()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        with self._facts_lock:
            reasons = []
            if self._closing:
                reasons.append("stopping")
            if not self._recovered:
                reasons.append("rebuilding state from topics")
            if self._partitions == 0:
                reasons.append("no partitions assigned")
            detail = {
                "ready": not reasons,
                "recovered": self._recovered,
                "assigned_partitions": self._partitions,
                "reasons": reasons,
            }
        return not reasons, detail

    def _update(self) -> None:
        ready, _ = self.readiness()
        if ready:
            self.ready.set()
        else:
            self.ready.clear()
