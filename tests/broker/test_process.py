"""Process-group start and stop, liveness and log tails (plain processes, no broker)."""

from __future__ import annotations

import os
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
