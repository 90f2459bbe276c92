"""Errors of the trainer service, all under one root: :class:`TrainerError`."""

from __future__ import annotations


class TrainerError(Exception):
    """Root of every error the trainer raises."""


class DataError(TrainerError):
    """Training data could not be read (replay from Kafka, imported CSV)."""


class UnavailableError(TrainerError):
    """The broker or the model store cannot be reached now: the job waits and runs again
    without using up an attempt (``TRAINER_UNAVAILABLE_WAIT_S`` bounds the wait)."""


class ReplayUnavailableError(DataError, UnavailableError):
    """The broker did not answer the replay of a training window in time."""


class TooLittleDataError(DataError):
    """The window holds fewer samples than the configured minimum."""

    def __init__(self, what: str, count: int, minimum: int) -> None:
        super().__init__(f"too little data: {what} has {count} row(s) (n < {minimum})")
        self.count = count
        self.minimum = minimum


class TargetError(TrainerError):
    """The trainer cannot tell what a model key trains on (no champion, no bootstrap family)."""


class InfraCheckError(TrainerError):
    """A registered candidate failed to load (checksums) or to predict finite outputs."""


class PublishError(UnavailableError):
    """A model update could not be delivered to Kafka."""


class StateError(TrainerError):
    """The trainer's state file cannot be read or written."""
