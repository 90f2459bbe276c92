"""The detached broker's state file and the default-instance pointer (no broker)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker import state
from broker.errors import BrokerError
from broker.state import BrokerState


def make_state(data_dir: Path, pid: int) -> BrokerState:
    return BrokerState(
        pid=pid,
        port=19092,
        controller_port=19093,
        data_dir=str(data_dir),
        properties_file=str(data_dir / "server.properties"),
        kafka_version="4.4.0",
    )


def test_state_round_trips(tmp_path: Path) -> None:
    saved = make_state(tmp_path, pid=1234)
    saved.save()

    assert BrokerState.load(tmp_path) == saved
    assert saved.bootstrap_servers == "127.0.0.1:19092"


def test_missing_state_is_none_and_corrupt_state_an_error(tmp_path: Path) -> None:
    assert BrokerState.load(tmp_path) is None
    (tmp_path / state.STATE_FILE).write_text("{not json")
    with pytest.raises(BrokerError, match="cannot read"):
        BrokerState.load(tmp_path)


def test_a_reused_pid_is_not_taken_for_the_broker(tmp_path: Path) -> None:
    # This test process is alive, but its command line does not name the properties file.
    assert not make_state(tmp_path, pid=os.getpid()).is_running()


def test_default_pointer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))
    assert state.default_data_dir() is None

    state.save_default(tmp_path / "data")
    assert state.default_data_dir() == tmp_path / "data"

    state.clear_default()
    assert state.default_data_dir() is None
