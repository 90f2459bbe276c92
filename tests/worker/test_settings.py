"""Worker settings refuse combinations that cannot work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from worker.settings import WorkerSettings


def test_liveness_must_outlast_a_wait_for_the_broker() -> None:
    # A batch waits up to delivery_timeout_ms for its acknowledgements while the broker is
    # away; a liveness probe shorter than that restarts a worker that is only waiting.
    with pytest.raises(ValidationError, match="must exceed delivery_timeout_ms"):
        WorkerSettings(liveness_timeout_s=60, delivery_timeout_ms=120_000)
    defaults = WorkerSettings()
    assert defaults.liveness_timeout_s > defaults.delivery_timeout_ms / 1000


def test_the_flush_margin_counts_too() -> None:
    with pytest.raises(ValidationError, match="must exceed delivery_timeout_ms"):
        WorkerSettings(liveness_timeout_s=123, delivery_timeout_ms=120_000)  # flush: 125 s


def test_the_alias_check_keeps_its_former_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_CHALLENGER_CHECK_S", "3")
    assert WorkerSettings().alias_check_s == 3.0
    monkeypatch.setenv("WORKER_ALIAS_CHECK_S", "4")
    assert WorkerSettings().alias_check_s == 4.0  # the current name wins
    assert WorkerSettings(alias_check_s=7).alias_check_s == 7.0


def test_the_bound_on_future_readings_is_never_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WorkerSettings().max_future_s == 3600.0
    monkeypatch.setenv("WORKER_MAX_FUTURE_S", "0")
    assert WorkerSettings().max_future_s == 0.0  # the check is off
    with pytest.raises(ValidationError, match="max_future_s"):
        WorkerSettings(max_future_s=-1)
