"""Start, watch and stop the broker's JVM as its own process group.

The JVM is the leader of a new session, so a signal to its process group reaches it and
anything it may fork, and a Ctrl-C in the terminal that started it does not.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from broker.errors import BrokerStopError

# How often a stopping or starting broker is checked; short enough to add little latency.
POLL_INTERVAL_S = 0.05
# The kernel tears a SIGKILLed process down at once; 10 s only guards against a hang.
KILL_WAIT_S = 10.0


def spawn(
    command: Sequence[str], output: Path, cwd: Path, *, tied: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``command`` detached from the caller's session; stdout and stderr to ``output``.

    ``tied``: the process gets SIGTERM when the caller dies, however it dies (SIGKILL, a
    test run's time limit), so it cannot outlive it (see :func:`tied_to_caller`).
    """
    argv = tied_to_caller(command) if tied else list(command)
    with output.open("ab") as sink:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )


def tied_to_caller(command: Sequence[str]) -> list[str]:
    """``command`` run so that it gets SIGTERM when the calling thread's process dies.

    Linux ties a child to the *thread* that started it, so only a start from the main
    thread is tied; without util-linux's ``setpriv`` the command is returned as it is.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return list(command)
    return [setpriv, "--pdeathsig", "TERM", *command]  # setpriv execs: same pid, same argv


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    if pid <= 1:
        return False  # 0 and -1 address process groups; 1 is init: never a broker
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # Field 3 (after the parenthesised command name) is the state; Z is a zombie.
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no procfs (macOS): trust kill(0)
    return state != "Z"


def command_line(pid: int) -> list[str] | None:
    """The argv of ``pid`` from procfs ([] if it is gone), or None without procfs."""
    if not Path("/proc/self").exists():
        return None
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def terminate(pid: int, timeout_s: float, child: subprocess.Popen[bytes] | None = None) -> bool:
    """SIGTERM the process group of ``pid``; SIGKILL it if still alive after ``timeout_s``.

    Returns True if the process exited on SIGTERM, False if it had to be killed. Anything
    left in the group afterwards is killed too. Raises BrokerStopError if a process
    survives SIGKILL.
    """
    if pid <= 1:
        raise ValueError(f"refusing to signal process group {pid}")
    graceful = True
    if not _signal_group(pid, signal.SIGTERM):
        _reap(child, 0.0)
    elif not _wait_gone(pid, timeout_s, child):
        graceful = False
        _signal_group(pid, signal.SIGKILL)
        if not _wait_gone(pid, KILL_WAIT_S, child):
            raise BrokerStopError(f"process {pid} survived SIGKILL")
    _kill_stragglers(pid)
    return graceful


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``; [] where there is no procfs."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            # After the parenthesised command name: state, ppid, pgrp.
            state, _, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # exited while being read
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _kill_stragglers(pgid: int) -> None:
    """SIGKILL whatever the group leader left behind, and wait for it to go."""
    if not group_members(pgid):
        return
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT_S
    while group_members(pgid):
        if time.monotonic() >= deadline:
            raise BrokerStopError(f"processes of group {pgid} survived SIGKILL")
        time.sleep(POLL_INTERVAL_S)


def _signal_group(pid: int, signum: signal.Signals) -> bool:
    """Signal the process group led by ``pid``; False if it no longer exists."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int, timeout_s: float, child: subprocess.Popen[bytes] | None) -> bool:
    if child is not None:
        return _reap(child, timeout_s)
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True


def _reap(child: subprocess.Popen[bytes] | None, timeout_s: float) -> bool:
    if child is None:
        return True
    try:
        child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return True


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a text file, or a note that it is missing."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            # Read at most the last 64 KiB: enough for 30 lines of a Java stack trace.
            handle.seek(max(0, handle.tell() - 65536))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])
