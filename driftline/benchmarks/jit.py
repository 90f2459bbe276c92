"""CPU time of a JVM's JIT compiler threads, read from ``/proc``.

A freshly started broker compiles the code paths of new traffic for its first seconds
or minutes of it, at up to a core on its ``C1``/``C2 CompilerThread`` threads; on a small
machine that CPU is taken from the worker beside it. The latency run reports the
compilers' share of a core while it measured, so a figure taken while the broker was
still compiling says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

COMPILER_PREFIXES: Final = ("C1 CompilerThre", "C2 CompilerThre")  # comm is cut at 15 chars
TICKS_PER_S: Final = os.sysconf("SC_CLK_TCK")


def compiler_seconds(pid: int, proc: Path = Path("/proc")) -> float | None:
    """CPU seconds the JIT compiler threads of ``pid`` have used; None if unreadable.

    >>> compiler_seconds(os.getpid()) == 0.0  # a Python process has no compiler threads
    True
    """
    total = 0
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            if not (task / "comm").read_text().startswith(COMPILER_PREFIXES):
                continue
            # the fields after the command (which may hold spaces), from field 3 on
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # a thread that ended meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS_PER_S
