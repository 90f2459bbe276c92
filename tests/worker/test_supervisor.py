"""The ``--processes N`` supervisor with stand-in children (plain Python, no broker).

Each child writes ``<instance id> <port>`` to a file when it is up (the readiness signal the
tests wait for) and exits 0 on SIGTERM, or behaves as the test asks.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.commands.worker import StopOnSignal
from worker.supervisor import EXIT_CHILD_FAILED, Supervisor, child_specs

# Children start in well under a second; 20 s flags a hung one.
DEADLINE_S = 20.0

CHILD = """
import os, pathlib, signal, sys, time
mode = os.environ["CHILD_MODE"]
me = os.environ["WORKER_INSTANCE_ID"]
if mode == "ignore_term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
pathlib.Path(os.environ["OUT"], me).write_text(me + " " + os.environ["WORKER_HTTP_PORT"])
if mode == "fail" and me.endswith("-1"):
    sys.exit(7)
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def running() -> Iterator[list[Supervisor]]:
    started: list[Supervisor] = []
    yield started
    for supervisor in started:  # never leave a child behind
        for child in supervisor.children:
            if child.poll() is None:
                child.kill()
                child.wait()


def start(tmp_path: Path, mode: str, running: list[Supervisor], grace_s: float = 10) -> Supervisor:
    supervisor = Supervisor(
        [sys.executable, "-c", CHILD],
        child_specs(3, "host", 9400),
        {"CHILD_MODE": mode, "OUT": str(tmp_path)},
        grace_s=grace_s,
    )
    running.append(supervisor)
    supervisor.start()
    return supervisor


def wait_for_files(directory: Path, count: int) -> list[str]:
    deadline = time.monotonic() + DEADLINE_S
    while len(list(directory.iterdir())) < count:
        assert time.monotonic() < deadline, "children did not start"
        time.sleep(0.05)
    return sorted(path.read_text() for path in directory.iterdir())


def wait_in_thread(supervisor: Supervisor) -> list[int]:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(supervisor.wait()))
    thread.start()
    thread.join(DEADLINE_S)
    assert not thread.is_alive(), "supervisor did not return"
    return result


def test_child_specs_give_each_process_its_id_and_port() -> None:
    specs = child_specs(3, "host", 9400)
    assert [(s.instance_id, s.http_port) for s in specs] == [
        ("host-0", 9400),
        ("host-1", 9401),
        ("host-2", 9402),
    ]
    assert {s.http_port for s in child_specs(2, "h", 0)} == {0}  # any free port each
    with pytest.raises(ValueError):
        child_specs(0, "h", 0)
    with pytest.raises(ValueError):
        child_specs(3, "h", 65534)


def test_sigterm_is_forwarded_and_a_clean_stop_exits_zero(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    supervisor = start(tmp_path, "ok", running)
    assert wait_for_files(tmp_path, 3) == ["host-0 9400", "host-1 9401", "host-2 9402"]
    supervisor.stop(signal.SIGTERM)
    assert wait_in_thread(supervisor) == [0]
    assert [child.returncode for child in supervisor.children] == [0, 0, 0]


def test_a_failed_child_stops_the_others_and_fails_the_supervisor(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    supervisor = start(tmp_path, "fail", running)
    assert wait_in_thread(supervisor) == [EXIT_CHILD_FAILED]
    assert sorted(child.returncode for child in supervisor.children) == [0, 0, 7]


def test_a_child_that_ignores_the_stop_signal_is_killed_after_the_grace(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    supervisor = start(tmp_path, "ignore_term", running, grace_s=0.5)
    wait_for_files(tmp_path, 3)
    supervisor.stop()
    assert wait_in_thread(supervisor) == [EXIT_CHILD_FAILED]
    assert {child.returncode for child in supervisor.children} == {-signal.SIGKILL}


def test_a_stop_during_the_start_reaches_the_children_started_after_it(
    tmp_path: Path, running: list[Supervisor]
) -> None:
    supervisor = Supervisor(
        [sys.executable, "-c", CHILD],
        child_specs(3, "host", 9400),
        {"CHILD_MODE": "ok", "OUT": str(tmp_path)},
        grace_s=3 * DEADLINE_S,  # longer than the wait below: a SIGKILL would not come in time
    )
    running.append(supervisor)
    supervisor.stop(signal.SIGTERM)  # the signal arrived before any child was started
    supervisor.start()
    assert wait_in_thread(supervisor) in ([0], [EXIT_CHILD_FAILED])
    assert all(child.returncode in (0, -signal.SIGTERM) for child in supervisor.children)


def test_a_repeated_sigterm_is_ignored_and_a_second_ctrl_c_exits_at_once() -> None:
    stop, watchdogs, exits = threading.Event(), [], []
    on_signal = StopOnSignal(stop, lambda: watchdogs.append(1), lambda: exits.append(1))
    on_signal(signal.SIGTERM, None)
    assert stop.is_set() and watchdogs == [1]
    on_signal(signal.SIGTERM, None)  # systemd and the supervisor both signal
    assert (watchdogs, exits) == ([1], [])
    on_signal(signal.SIGINT, None)
    assert exits == [1]
