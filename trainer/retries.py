"""When a failed job runs again, and which failures do not count against it.

A job that failed runs again after ``retry_delay_s``, doubled per attempt, until
``max_attempts`` runs are used. A failure because the broker or the model store cannot be
reached says nothing about the job, though: its attempt is given back and it waits, with
the same growing delays (at most ``MAX_RETRY_DELAY_S`` apart), for up to
``unavailable_wait_s`` since it first failed so; after that it fails as any job does. A
stop cancels every wait; the job stays pending for the next start.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from confluent_kafka import KafkaException

from models.registry_errors import ChampionChangedError
from trainer import metrics
from trainer.errors import DataError, UnavailableError
from trainer.settings import TrainerSettings
from trainer.state import Job

log = logging.getLogger(__name__)

# A job waiting for the broker or the store is tried at least this often.
MAX_RETRY_DELAY_S: Final = 600.0
# What an unreachable broker or store raises (anywhere in an exception's causes); a
# champion an operator moved meanwhile asks for another validation, not a failed attempt.
UNAVAILABLE: Final = (UnavailableError, KafkaException, ChampionChangedError)
# The store's OSErrors that pass (a disk or a network file system away, or full): a missing
# file or a permission refused does not get better by waiting.
TRANSIENT_ERRNOS: Final = frozenset(
    {
        errno.EIO,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.ESTALE,
        errno.ETIMEDOUT,
        errno.EAGAIN,
        errno.EBUSY,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
    }
)
# A retry is never sooner than this after a failure, whatever TRAINER_RETRY_DELAY_S says.
MIN_RETRY_DELAY_S: Final = 1.0
# Doubling stops here: 2**10 times the first delay is far beyond MAX_RETRY_DELAY_S anyway.
MAX_DOUBLINGS: Final = 10


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc``, or what caused it, is the broker or the store being unreachable.

    Training data that cannot be read for another reason (a missing CSV, a topic that does
    not exist) is a failure of the job: the chain is not followed past a DataError.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, UNAVAILABLE):
            return True
        if isinstance(seen, OSError):
            return seen.errno in TRANSIENT_ERRNOS
        if isinstance(seen, DataError):
            return False
        seen = seen.__cause__
    return False


class JobRetries:
    """Timers of the jobs that run again later, and the waits of the unavailable ones."""

    def __init__(
        self, settings: TrainerSettings, submit: Callable[[Job], None], stopped: threading.Event
    ) -> None:
        self.settings = settings
        self._submit = submit
        self._stopped = stopped
        self.timers: list[threading.Timer] = []
        self._unavailable_since: dict[str, float] = {}
        self._waits: dict[str, int] = {}

    def wait_if_unavailable(
        self, job: Job, exc: Exception, give_back: Callable[[str], None]
    ) -> bool:
        """Whether the job waits for its broker or store (``give_back`` its attempt)."""
        if not unavailable(exc):
            return False
        if self._stopped.is_set():  # the job stays pending for the next start
            give_back(job.job_id)
            return True
        now = time.monotonic()
        first = self._unavailable_since.setdefault(job.job_id, now)
        if now - first >= self.settings.unavailable_wait_s:
            return False
        give_back(job.job_id)
        self._waits[job.job_id] = waits = self._waits.get(job.job_id, 0) + 1
        metrics.JOB_WAITS.labels(job.model).inc()
        log.warning(
            "job %s for %s waits for the broker or the store: %s", job.job_id, job.label, exc
        )
        self.later(job, waits)
        return True

    def later(self, job: Job, attempts: int) -> None:
        """Run ``job`` again after a delay that doubles per attempt: a store or a broker
        away for a few seconds would fail an immediate retry too, and use up the job."""
        doublings = min(max(0, attempts - 1), MAX_DOUBLINGS)
        delay = min(
            max(self.settings.retry_delay_s * 2.0**doublings, MIN_RETRY_DELAY_S), MAX_RETRY_DELAY_S
        )
        log.info("job %s for %s runs again in %.0f s", job.job_id, job.label, delay)

        def resubmit() -> None:
            if not self._stopped.is_set():
                self._submit(job)

        timer = threading.Timer(delay, resubmit)
        timer.daemon = True  # a stop leaves the job pending: the next start resumes it
        self.timers = [waiting for waiting in self.timers if waiting.is_alive()] + [timer]
        timer.start()

    def forget(self, job_id: str) -> None:
        """The job is finished: nothing of it is kept."""
        self._unavailable_since.pop(job_id, None)
        self._waits.pop(job_id, None)

    def cancel(self) -> None:
        for timer in self.timers:
            timer.cancel()
