"""CPU time the whole host has spent, read from ``/proc/stat``.

A throughput phase reports it beside the worker's own CPU: with the host's cores busy,
the broker and the worker compete for them; with cores idle while the worker runs at
about one core, the worker's main thread is what bounds the phase.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from driftline.benchmarks.jit import TICKS_PER_S

# /proc/stat's "cpu" line: user nice system idle iowait irq softirq steal guest guest_nice;
# guest time is counted in user time already, idle and iowait are not busy
_BUSY: Final = (0, 1, 2, 5, 6, 7)


def busy_seconds(proc: Path = Path("/proc")) -> float | None:
    """CPU seconds every core of the host has been busy since boot; None if unreadable.

    >>> busy = busy_seconds()
    >>> busy is None or busy > 0
    True
    """
    try:
        with (proc / "stat").open() as stat:
            first = stat.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    try:
        return sum(int(first[1 + i]) for i in _BUSY) / TICKS_PER_S
    except (IndexError, ValueError):
        return None


def cores_between(before: float | None, after: float | None, seconds: float) -> float | None:
    """Cores the host kept busy on average between two :func:`busy_seconds` readings.

    >>> cores_between(10.0, 13.0, 2.0)
    1.5
    >>> cores_between(None, 13.0, 2.0) is None
    True
    """
    if before is None or after is None or seconds <= 0:
        return None
    return (after - before) / seconds
