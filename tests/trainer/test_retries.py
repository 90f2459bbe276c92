"""Which failures wait for the broker or the store, and how long a retry waits."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

from models.registry_errors import ChampionChangedError, RegistryError
from trainer.errors import DataError, PublishError, ReplayUnavailableError
from trainer.retries import MAX_RETRY_DELAY_S, MIN_RETRY_DELAY_S, JobRetries, unavailable
from trainer.settings import TrainerSettings
from trainer.state import Job


def caused_by(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "waits"),
    [
        (PublishError("not acknowledged"), True),
        (ReplayUnavailableError("replay timed out"), True),
        (KafkaException(KafkaError(KafkaError._TRANSPORT)), True),
        (ChampionChangedError("v3 serves now"), True),
        (caused_by(RegistryError("cannot read"), OSError(errno.EIO, "I/O error")), True),
        (caused_by(RegistryError("cannot write"), OSError(errno.ENOSPC, "full")), True),
        (caused_by(RegistryError("cannot read"), OSError(errno.EACCES, "denied")), False),
        (caused_by(DataError("no such CSV"), FileNotFoundError(errno.ENOENT, "gone")), False),
        (DataError("unknown topic"), False),
        (ValueError("the fit diverged"), False),
    ],
)
def test_only_an_unreachable_broker_or_store_waits(error: BaseException, waits: bool) -> None:
    assert unavailable(error) is waits


def retries(tmp_path: Path, delay_s: float, stopped: threading.Event) -> JobRetries:
    settings = TrainerSettings(model_store=tmp_path / "store", retry_delay_s=delay_s)
    return JobRetries(settings, lambda job: None, stopped)


JOB = Job("r-1", "demand", None, "request", "full_retrain", "test")


def test_delays_double_within_bounds_even_from_zero(tmp_path: Path) -> None:
    zero = retries(tmp_path, 0.0, threading.Event())
    try:
        for attempts in (1, 2, 2_000):  # 2 ** 1999 would overflow a float
            zero.later(JOB, attempts)
        assert [t.interval for t in zero.timers] == [MIN_RETRY_DELAY_S] * 3
        slow = retries(tmp_path, 30.0, threading.Event())
        slow.later(JOB, 2_000)
        assert slow.timers[-1].interval == MAX_RETRY_DELAY_S
        slow.cancel()
    finally:
        zero.cancel()


def test_a_stop_leaves_an_unavailable_job_pending_instead_of_failing_it(tmp_path: Path) -> None:
    stopped = threading.Event()
    stopped.set()
    given_back: list[str] = []
    waiting = retries(tmp_path, 30.0, stopped)
    assert waiting.wait_if_unavailable(JOB, PublishError("broker away"), given_back.append)
    assert given_back == ["r-1"] and waiting.timers == []  # no retry: the next start resumes
    assert not waiting.wait_if_unavailable(JOB, ValueError("a bug"), given_back.append)
