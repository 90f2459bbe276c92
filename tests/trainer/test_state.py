"""The trainer's state file: persistence, idempotency, attempts."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.errors import StateError
from trainer.state import DecisionRecord, Job, TrainerState


def job(job_id: str = "r-1", model: str = "demand", key: str | None = None) -> Job:
    return Job(job_id, model, key, "request", "fine_tune", "drift", {"degradation": 0.2})


def decision(job_id: str = "r-1", outcome: str = "promoted") -> DecisionRecord:
    return DecisionRecord(
        job_id, "demand", None, "request", "fine_tune", outcome, "better", version=2
    )


def test_every_change_survives_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = TrainerState(path)
    assert state.enqueue(job("r-1"))
    assert state.enqueue(job("r-2", key="p-1"))
    state.begin("r-1", "2026-06-01T00:00:00+00:00")
    state.set_stage("r-1", "fit")
    state.finish(decision("r-2", "rejected"))
    state.set_model("demand", None, challenger=3)

    again = TrainerState.load(path)
    [pending] = again.pending()
    assert (pending.job_id, pending.attempts, pending.stage) == ("r-1", 1, "fit")
    assert pending.window_end == "2026-06-01T00:00:00+00:00"
    assert pending.evidence == {"degradation": 0.2}
    assert [(d.job_id, d.outcome, d.version) for d in again.decisions()] == [("r-2", "rejected", 2)]
    assert again.model_value("demand", None, "challenger") == 3
    assert again.seen("r-1") and again.seen("r-2") and not again.seen("r-3")


def test_a_job_id_is_accepted_once(tmp_path: Path) -> None:
    state = TrainerState(tmp_path / "state.json")
    assert state.enqueue(job("r-1"))
    assert not state.enqueue(job("r-1"))  # pending
    state.finish(decision("r-1"))
    assert not state.enqueue(job("r-1"))  # handled
    assert not TrainerState.load(tmp_path / "state.json").enqueue(job("r-1"))  # after restart
    assert state.pending() == []


def test_attempts_count_crashes_not_graceful_stops(tmp_path: Path) -> None:
    state = TrainerState(tmp_path / "state.json")
    state.enqueue(job())
    first = state.begin("r-1", "2026-06-01T00:00:00+00:00")
    state.release("r-1")  # graceful stop: not counted
    second = state.begin("r-1", "2026-07-01T00:00:00+00:00")
    assert (first.attempts, second.attempts) == (1, 1)
    third = state.begin("r-1", "2026-08-01T00:00:00+00:00")  # the previous run crashed
    assert third.attempts == 2
    assert third.window_end == "2026-06-01T00:00:00+00:00"  # the first attempt's window


def test_finishing_records_the_attempt_time(tmp_path: Path) -> None:
    state = TrainerState(tmp_path / "state.json")
    state.enqueue(job(key="p-1"))
    record = DecisionRecord("r-1", "demand", "p-1", "request", "fine_tune", "skipped", "too little")
    state.finish(record)
    assert state.model_value("demand", "p-1", "last_attempt") == record.ts
    assert not state.pending_for("demand", "p-1")


def test_handled_ids_and_decisions_are_bounded(tmp_path: Path) -> None:
    state = TrainerState(tmp_path / "state.json", processed_kept=3, decisions_kept=2)
    for n in range(5):
        state.enqueue(job(f"r-{n}"))
        state.finish(decision(f"r-{n}"))
    assert state.processed_count() == 3
    assert [d.job_id for d in state.decisions()] == ["r-3", "r-4"]
    assert state.seen("r-4") and not state.seen("r-0")  # the oldest ids are forgotten first


def test_a_corrupt_file_is_refused_not_reset(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(StateError, match="cannot read the trainer state"):
        TrainerState.load(path)
    path.write_text('{"format": 99}')
    with pytest.raises(StateError, match="unsupported state format 99"):
        TrainerState.load(path)


def test_a_missing_file_is_an_empty_state(tmp_path: Path) -> None:
    state = TrainerState.load(tmp_path / "deeper" / "state.json")
    assert state.pending() == [] and state.decisions() == [] and state.processed_count() == 0
    state.enqueue(job())
    assert (tmp_path / "deeper" / "state.json").is_file()
