"""The trainer service when the store or a job fails: it goes on, and retries later.

The service is built on the real broker but its loop is not run: the handlers are called
directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from events import ModelHealth, codec_for, topics
from events.samples import samples
from events.settings import KafkaSettings
from models.registry import Registry
from models.registry_errors import RegistryError
from trainer.errors import PublishError, ReplayUnavailableError
from trainer.service import TrainerService
from trainer.settings import TrainerSettings
from trainer.state import Job


def test_an_unreadable_store_skips_a_health_record(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    announcer: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = TrainerSettings(model_store=tmp_path / "store", shadow=True)
    service = TrainerService(settings, kafka_settings, announcer=announcer, serve_http=False)

    def unreadable(self: Registry, name: str, key: str | None = None) -> Any:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Registry, "aliases", unreadable)
    [health] = samples(ModelHealth, 1)
    try:
        service._health(codec_for(topics.MODEL_HEALTH).encode(health), produced_ms=0)
    finally:
        service.close()
    assert service.fatal is None and len(service.runner) == 0


def test_a_failed_job_runs_again_after_a_delay_not_at_once(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    announcer: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = TrainerSettings(model_store=tmp_path / "store", retry_delay_s=30.0, max_attempts=3)
    service = TrainerService(settings, kafka_settings, announcer=announcer, serve_http=False)
    runs: list[str] = []

    def failing(job: Job) -> Any:
        service.state.begin(job.job_id, "2026-01-01T00:00:00+00:00")
        runs.append(job.job_id)
        raise ValueError("the fit diverged")

    monkeypatch.setattr(service.retrainer, "run", failing)
    job = Job("r-1", "demand", None, "request", "full_retrain", "test")
    assert service.state.enqueue(job)
    try:
        service._run_job("r-1")
        assert runs == ["r-1"] and len(service.runner) == 0  # not resubmitted at once
        [retry] = service.retries.timers
        assert retry.interval == 30.0
        service._run_job("r-1")  # the second attempt fails too: the delay doubles
        assert service.retries.timers[-1].interval == 60.0
        service._run_job("r-1")  # the last attempt: the job is given up
        assert len(service.retries.timers) == 2
        [record] = service.state.decisions()
        assert (record.outcome, record.attempts) == ("failed", 3)
    finally:
        service.close()
    assert all(not timer.is_alive() for timer in service.retries.timers)


@pytest.mark.parametrize(
    "error",
    [
        PublishError("cannot announce demand v2: not acknowledged"),
        ReplayUnavailableError("replay of readings.demand did not reach the end"),
        RegistryError("cannot read aliases: [Errno 5] Input/output error"),
    ],
)
def test_a_job_waits_for_an_unreachable_broker_or_store_without_using_an_attempt(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    announcer: Any,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    settings = TrainerSettings(model_store=tmp_path / "store", retry_delay_s=30.0)
    service = TrainerService(settings, kafka_settings, announcer=announcer, serve_http=False)
    if isinstance(error, RegistryError):
        error.__cause__ = OSError(5, "Input/output error")

    def failing(job: Job) -> Any:
        service.state.begin(job.job_id, "2026-01-01T00:00:00+00:00")
        raise error

    monkeypatch.setattr(service.retrainer, "run", failing)
    assert service.state.enqueue(Job("r-1", "demand", None, "request", "full_retrain", "test"))
    try:
        for _ in range(4):  # twice max_attempts: none of them counts
            service._run_job("r-1")
        assert [t.interval for t in service.retries.timers] == [30.0, 60.0, 120.0, 240.0]
        [pending] = service.state.pending()
        assert pending.attempts == 0 and service.state.decisions() == []
        service.settings = settings.model_copy(update={"unavailable_wait_s": 0.0})
        service.retries.settings = service.settings  # the wait is over: failures count again
        service._run_job("r-1")
        service._run_job("r-1")
        [record] = service.state.decisions()
        assert (record.outcome, record.attempts) == ("failed", 2)
    finally:
        service.close()


def test_a_restart_with_interrupted_jobs_repairs_the_store_before_resuming_them(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    announcer: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A job killed inside a registry write may have left a champion without its history
    # line; resuming a promoted job only announces it again, so the restart repairs first.
    settings = TrainerSettings(model_store=tmp_path / "store")
    service = TrainerService(settings, kafka_settings, announcer=announcer, serve_http=False)
    calls: list[str] = []
    monkeypatch.setattr(service.registry, "gc", lambda: calls.append("gc") or [])
    monkeypatch.setattr(service, "_submit", lambda job: calls.append(job.job_id))
    try:
        service._recover()
        assert calls == []  # nothing interrupted: nothing to repair
        assert service.state.enqueue(Job("r-1", "demand", None, "request", "full_retrain", "t"))
        service._recover()
        assert calls == ["gc", "r-1"]

        def broken() -> list[Path]:
            raise RegistryError("cannot take the lock: [Errno 5] Input/output error")

        monkeypatch.setattr(service.registry, "gc", broken)
        calls.clear()
        service._recover()  # a store that cannot be repaired now still resumes the job
        assert calls == ["r-1"]
    finally:
        service.close()
