"""Deterministic ids: the same source record and model always give the same id.

Processing is at-least-once, so a record may be scored again after a crash or rebalance.
Ids derived from where the input sits in Kafka (topic, partition, offset) and from what
produced the output (model, plus any extras such as version or horizon) repeat exactly on
a replay, so consumers that dedupe on ``prediction_id`` or ``alert_id`` see one event.
"""

from __future__ import annotations

import hashlib
from typing import Final

from events.errors import IdError

# 16 bytes = 32 hex characters: collisions need ~2**64 ids (birthday bound), far beyond
# any topic's lifetime volume, while keeping ids short in keys, logs and headers.
ID_BYTES: Final = 16
# Domain separation: ids of other blake2b users never coincide with these.
_PERSON: Final = b"driftline.id.v1"


def derive_id(topic: str, partition: int, offset: int, model: str, *extra: str | int) -> str:
    """A 32-character hex id for an output of ``model`` about one source record.

    ``extra`` distinguishes several outputs of one record and model (version, horizon
    step, metric). Each part is length-prefixed before hashing, so ``("ab", "c")`` and
    ``("a", "bc")`` differ. An int and its decimal string are the same part.

    >>> derive_id("readings.sensor", 3, 1042, "anomaly")
    'be4d147221c96d8821d63bb153d7f0c6'
    """
    if partition < 0 or offset < 0:
        raise IdError(
            f"cannot derive an id from {topic}[{partition}]@{offset}: partition and offset "
            "must be a stored record's (non-negative)"
        )
    digest = hashlib.blake2b(digest_size=ID_BYTES, person=_PERSON)
    for part in (topic, partition, offset, model, *extra):
        encoded = str(part).encode()
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    return digest.hexdigest()
