"""Process-group start and stop, liveness and log tails (plain processes, no broker)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker.process import command_line, group_members, is_alive, spawn, tail, terminate


def test_terminate_stops_the_whole_process_group(tmp_path: Path) -> None:
    # The shell forks a child (sleep) into the same group: both must go.
    child = spawn(["sh", "-c", "sleep 60 & wait"], tmp_path / "out", cwd=tmp_path)

    assert terminate(child.pid, timeout_s=10.0, child=child) is True

    assert not is_alive(child.pid)
    assert group_members(child.pid) == []


def wait_for_line(path: Path, line: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in path.read_text().splitlines():
        assert time.monotonic() < deadline, f"{path} never said {line!r}"
        time.sleep(0.01)


def test_process_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    # An ignored signal stays ignored across exec, so neither sh nor sleep reacts to TERM.
    script = "trap '' TERM; echo ready; exec sleep 60"
    child = spawn(["sh", "-c", script], tmp_path / "out", cwd=tmp_path)
    wait_for_line(tmp_path / "out", "ready")

    assert terminate(child.pid, timeout_s=0.5, child=child) is False
    assert not is_alive(child.pid)


def test_group_members_lists_the_live_group(tmp_path: Path) -> None:
    child = spawn(["sh", "-c", "sleep 60 & echo ready; wait"], tmp_path / "out", cwd=tmp_path)
    wait_for_line(tmp_path / "out", "ready")

    members = group_members(child.pid)

    assert child.pid in members
    assert len(members) == 2  # sh and sleep
    terminate(child.pid, timeout_s=10.0, child=child)


def test_terminate_without_the_child_handle_waits_by_pid(tmp_path: Path) -> None:
    child = spawn(["sleep", "60"], tmp_path / "out", cwd=tmp_path)

    assert terminate(child.pid, timeout_s=10.0) is True
    child.wait(timeout=10)
    assert not is_alive(child.pid)


def test_terminate_of_a_gone_process_is_a_no_op(tmp_path: Path) -> None:
    child = spawn(["true"], tmp_path / "out", cwd=tmp_path)
    child.wait(timeout=10)
    assert terminate(child.pid, timeout_s=1.0, child=child) is True


def test_command_line_of_a_live_and_a_gone_process(tmp_path: Path) -> None:
    child = spawn(["true"], tmp_path / "out", cwd=tmp_path)
    child.wait(timeout=10)

    assert command_line(os.getpid())
    assert command_line(child.pid) == []


def test_process_groups_of_the_caller_are_never_signalled() -> None:
    for pid in (-1, 0, 1):
        assert not is_alive(pid)
        with pytest.raises(ValueError, match="refusing"):
            terminate(pid, timeout_s=0.0)


def test_spawn_sends_output_to_the_file(tmp_path: Path) -> None:
    child = spawn(["sh", "-c", "echo hello; echo oops >&2"], tmp_path / "out", cwd=tmp_path)
    child.wait(timeout=10)
    assert (tmp_path / "out").read_text().split() == ["hello", "oops"]


def test_tail_returns_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))

    assert tail(log, 3) == "line 97\nline 98\nline 99"
    assert "does not exist" in tail(tmp_path / "missing.log")


CALLER = """
import sys, time
from pathlib import Path
from broker.process import spawn
child = spawn(["sleep", "600"], Path(sys.argv[1]), Path(sys.argv[2]), tied=sys.argv[3] == "1")
print(child.pid, flush=True)
time.sleep(600)
"""


def _caller_then_kill(tmp_path: Path, tied: bool) -> int:
    """Start a caller that spawns ``sleep``, SIGKILL the caller; the sleep's pid."""
    caller = subprocess.Popen(
        [sys.executable, "-c", CALLER, str(tmp_path / "out"), str(tmp_path), "1" if tied else "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert caller.stdout is not None
    pid = int(caller.stdout.readline())
    caller.kill()
    caller.wait(timeout=10)
    return pid


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_a_tied_process_dies_with_its_caller_however_the_caller_dies(tmp_path: Path) -> None:
    pid = _caller_then_kill(tmp_path, tied=True)
    deadline = time.monotonic() + 10
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel delivers SIGTERM at once; this only bounds a hang
    assert not is_alive(pid)


def test_an_untied_process_outlives_its_caller(tmp_path: Path) -> None:
    pid = _caller_then_kill(tmp_path, tied=False)
    try:
        assert is_alive(pid)
    finally:
        os.kill(pid, signal.SIGKILL)
