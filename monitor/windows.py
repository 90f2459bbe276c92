"""Rolling error of one model version over a count window and a time window.

The count window is the last ``count`` pairs in arrival order; the time window is every
pair whose target time lies within ``window`` of the newest target time seen. Pairs are
kept in one numpy ring buffer, as long as either window needs them (and at most
``capacity``), and the figures are computed vectorized when asked for: evaluations are
every tens of pairs, so per-pair cost stays O(1).

Label coverage is over the time window: pairs / (pairs + expired predictions), both by
target time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.clock import seconds_to_micros

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class WindowStats:
    """Error figures of the pairs of one window; None when they cannot be computed."""

    pairs: int
    mae: float | None = None
    rmse: float | None = None
    mape: float | None = None
    bias: float | None = None
    first_us: int | None = None
    last_us: int | None = None

    @classmethod
    def of(cls, targets: IntArray, errors: FloatArray, actuals: FloatArray) -> WindowStats:
        """Figures of the given pairs. MAPE skips zero actuals (None if all are zero)."""
        if errors.size == 0:
            return cls(pairs=0)
        absolute = np.abs(errors)
        nonzero = actuals != 0
        mape = None
        if nonzero.any():
            mape = float(np.mean(absolute[nonzero] / np.abs(actuals[nonzero])))
        return cls(
            pairs=int(errors.size),
            mae=float(np.mean(absolute)),
            rmse=float(np.sqrt(np.mean(np.square(errors)))),
            mape=mape,
            bias=float(np.mean(errors)),
            first_us=int(targets.min()),
            last_us=int(targets.max()),
        )


class RollingErrors:
    """Pairs of one model version, in a ring buffer sized for both windows."""

    def __init__(self, count: int, window_s: float, capacity: int) -> None:
        self.count = count
        self.window_us = seconds_to_micros(window_s)
        self.capacity = max(capacity, count)
        self._targets: IntArray = np.zeros(self.capacity, dtype=np.int64)
        self._errors: FloatArray = np.zeros(self.capacity, dtype=np.float64)
        self._actuals: FloatArray = np.zeros(self.capacity, dtype=np.float64)
        self._head = 0  # index of the oldest pair
        self._size = 0
        self.latest_us: int | None = None  # newest target time seen
        self._expired: deque[int] = deque()  # target times of expired predictions

    def __len__(self) -> int:
        return self._size

    def add(self, target_us: int, error: float, actual: float) -> None:
        if self._size == self.capacity:  # full: the oldest pair makes room
            self._head = (self._head + 1) % self.capacity
            self._size -= 1
        slot = (self._head + self._size) % self.capacity
        self._targets[slot], self._errors[slot], self._actuals[slot] = target_us, error, actual
        self._size += 1
        if self.latest_us is None or target_us > self.latest_us:
            self.latest_us = target_us
        self._trim()

    def add_expired(self, target_us: int) -> None:
        self._expired.append(target_us)
        if self.latest_us is None or target_us > self.latest_us:
            self.latest_us = target_us
        self._trim()

    def count_stats(self) -> WindowStats:
        """Figures of the last ``count`` pairs."""
        index = self._indices(max(self._size - self.count, 0))
        return WindowStats.of(self._targets[index], self._errors[index], self._actuals[index])

    def time_stats(self) -> WindowStats:
        """Figures of the pairs whose target lies within the window of the newest target."""
        index = self._indices(0)
        index = index[self._targets[index] >= self._cutoff()]
        return WindowStats.of(self._targets[index], self._errors[index], self._actuals[index])

    def coverage(self) -> float | None:
        """Matched / (matched + expired) over the time window; None before any."""
        cutoff = self._cutoff()
        index = self._indices(0)
        matched = int(np.count_nonzero(self._targets[index] >= cutoff))
        targets = np.fromiter(self._expired, dtype=np.int64, count=len(self._expired))
        expired = int(np.count_nonzero(targets >= cutoff))
        total = matched + expired
        return matched / total if total else None

    def _indices(self, skip: int) -> IntArray:
        """Ring positions of the pairs from the ``skip``-th oldest to the newest."""
        return (self._head + np.arange(skip, self._size, dtype=np.int64)) % self.capacity

    def _cutoff(self) -> int:
        return (self.latest_us or 0) - self.window_us

    def _trim(self) -> None:
        """Drop pairs neither window needs, and expirations the time window left behind."""
        cutoff = self._cutoff()
        while self._size > self.count and self._targets[self._head] < cutoff:
            self._head = (self._head + 1) % self.capacity
            self._size -= 1
        expired = self._expired
        while expired and (expired[0] < cutoff or len(expired) > self.capacity):
            expired.popleft()
