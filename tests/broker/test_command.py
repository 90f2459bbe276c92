"""``driftline broker`` without a running broker (the full cycle is in test_local.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from broker import state
from broker.state import BrokerState
from driftline.commands.broker import broker


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_status_without_a_broker_says_not_running() -> None:
    result = CliRunner().invoke(broker, ["status"])

    assert result.exit_code == 1
    assert result.output.strip() == "not running"


def test_stop_of_a_dead_default_instance_cleans_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # Linux pids never exceed 2**22 (the largest pid_max), so this one is not running.
    dead = BrokerState(2**22 + 1, 19092, 19093, str(data_dir), "x", "4.4.0", temporary=True)
    dead.save()
    state.save_default(data_dir)

    result = CliRunner().invoke(broker, ["stop"])

    assert result.exit_code == 0
    assert "no broker is running" in result.output
    assert state.default_data_dir() is None
    assert not data_dir.exists()


def test_start_on_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = CliRunner().invoke(
            broker, ["start", "--port", str(port), "--data-dir", str(tmp_path / "d")]
        )

    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.output
