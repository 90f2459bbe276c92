"""Deterministic ids: the same source record and model always give the same id.

Processing is at-least-once, so a record may be scored again after a crash or rebalance.
Ids derived from where the input sits in Kafka (topic, partition, offset) and from what
produced the output (model, plus any extras such as version or horizon) repeat exactly on
a replay, so consumers that dedupe on ``prediction_id`` or ``alert_id`` see one event.

:func:`derive_id` derives one id; :class:`IdDeriver` derives the ids of one model's
outputs for a whole batch of records, encoding what they share once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from events.errors import IdError

# 16 bytes = 32 hex characters: collisions need ~2**64 ids (birthday bound), far beyond
# any topic's lifetime volume, while keeping ids short in keys, logs and headers.
ID_BYTES: Final = 16
# Domain separation: ids of other blake2b users never coincide with these.
_PERSON: Final = b"driftline.id.v1"
# Bytes of each part's length prefix (big-endian): parts up to 4 GiB, far beyond any name.
_LENGTH_BYTES: Final = 4


def derive_id(topic: str, partition: int, offset: int, model: str, *extra: str | int) -> str:
    """A 32-character hex id for an output of ``model`` about one source record.

    ``extra`` distinguishes several outputs of one record and model (version, horizon
    step, metric). Each part is length-prefixed before hashing, so ``("ab", "c")`` and
    ``("a", "bc")`` differ. An int and its decimal string are the same part.

    >>> derive_id("readings.sensor", 3, 1042, "anomaly")
    'be4d147221c96d8821d63bb153d7f0c6'
    """
    _check_position(topic, partition, offset)
    # Fed part by part (as _encode lays them out): for one id this beats joining first.
    digest = hashlib.blake2b(digest_size=ID_BYTES, person=_PERSON)
    for part in (topic, partition, offset, model, *extra):
        encoded = str(part).encode()
        digest.update(len(encoded).to_bytes(_LENGTH_BYTES, "big"))
        digest.update(encoded)
    return digest.hexdigest()


class IdDeriver:
    """:func:`derive_id` of one model and extras, for the many records of a batch.

    The model and extras are encoded once, and each (topic, partition) once: an id then
    costs one copy of a hash state fed with its topic and partition plus one update with
    the offset, model and extras. The ids are exactly :func:`derive_id`'s.

    >>> ids = IdDeriver("anomaly")
    >>> ids.derive("readings.sensor", 3, 1042) == derive_id("readings.sensor", 3, 1042, "anomaly")
    True
    >>> ids.derive_all(["readings.sensor"] * 2, [3, 3], [1042, 1043])[0]
    'be4d147221c96d8821d63bb153d7f0c6'
    """

    def __init__(self, model: str, *extra: str | int) -> None:
        self._tail = _encode(model, *extra)
        # One hash state per (topic, partition): a batch holds a few input partitions.
        self._heads: dict[tuple[str, int], hashlib.blake2b] = {}

    def derive(self, topic: str, partition: int, offset: int) -> str:
        """``derive_id(topic, partition, offset, model, *extra)``; IdError if unstored."""
        head = self._heads.get((topic, partition))
        if head is None or offset < 0:
            _check_position(topic, partition, offset)
            head = hashlib.blake2b(_encode(topic, partition), digest_size=ID_BYTES, person=_PERSON)
            self._heads[topic, partition] = head
        text = str(offset).encode()
        digest = head.copy()
        digest.update(len(text).to_bytes(_LENGTH_BYTES, "big") + text + self._tail)
        return digest.hexdigest()

    def derive_all(
        self, topics: Sequence[str], partitions: Sequence[int], offsets: Sequence[int]
    ) -> list[str]:
        """The id of every record (``topics[i]``, ``partitions[i]``, ``offsets[i]``)."""
        derive = self.derive
        return [derive(*where) for where in zip(topics, partitions, offsets, strict=True)]


def _check_position(topic: str, partition: int, offset: int) -> None:
    if partition < 0 or offset < 0:
        raise IdError(
            f"cannot derive an id from {topic}[{partition}]@{offset}: partition and offset "
            "must be a stored record's (non-negative)"
        )


def _encode(*parts: str | int) -> bytes:
    """Each part's UTF-8 text after its length: no two part lists encode alike.

    The bytes :func:`derive_id` feeds part by part (tests/events pins that they agree).
    """
    chunks: list[bytes] = []
    for part in parts:
        text = str(part).encode()
        chunks += (len(text).to_bytes(_LENGTH_BYTES, "big"), text)
    return b"".join(chunks)
