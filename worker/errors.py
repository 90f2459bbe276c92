"""Errors of the ``worker`` package, under one root: :class:`WorkerError`."""

from __future__ import annotations


class WorkerError(Exception):
    """Root of every error raised by the stream worker."""


class KeyMismatchError(WorkerError):
    """A reading's Kafka key is not its entity id.

    Every entity topic is keyed by the entity so that one entity lands on one partition
    (co-partitioning); a record keyed otherwise may sit on a partition whose worker holds
    none of the entity's state, so it is refused rather than scored from a partial window.
    """


class UnknownStreamError(WorkerError):
    """A consumed record comes from a topic that no stream of the pipeline reads."""


class NoOffsetError(WorkerError):
    """A consumed record has no stored partition or offset to derive output ids from."""


class FutureTimestampError(WorkerError):
    """A reading is stamped further after its record's Kafka timestamp than allowed.

    State only moves forward: once an entity's window holds a reading from the future,
    every genuine reading before that time is refused as stale. A clock that is wrong by a
    year would silence the entity for a year, so such a reading is refused instead.
    """
