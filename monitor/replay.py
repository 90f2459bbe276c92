"""Read a topic from a point in time (or its beginning) up to its end at the time of asking.

The monitor rebuilds its state at start from its own output topics, and ``driftline
monitor status`` reads ``model.health`` from the beginning. Both use a consumer outside the
group (``assign()`` only, nothing committed) that stops at the high watermarks taken when
it started, so a topic that keeps growing is still read to a definite end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from monitor.errors import RecoveryError

# One consume() waits at most this long; the deadline is checked between calls.
POLL_S: Final = 0.5
# Records handed over at a time: bounds the memory of a long replay.
CHUNK: Final = 5_000
# Broker round trips (metadata, watermarks, offsets for times).
REQUEST_TIMEOUT_S: Final = 10.0


def read_topic(
    config: dict[str, Any], topic: str, since_ms: int | None, timeout_s: float
) -> Iterator[list[Message]]:
    """Batches of the records of ``topic`` written at or after ``since_ms`` (epoch ms).

    ``since_ms=None`` reads from the beginning. A topic that does not exist reads as
    empty. Raises :class:`RecoveryError` when the broker cannot be reached or the end is
    not reached within ``timeout_s``.
    """
    consumer = Consumer(config)
    try:
        remaining = _plan(consumer, topic, since_ms)
        if not remaining:
            return
        consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in remaining.items()])
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise RecoveryError(
                    f"reading {topic} did not reach its end within {timeout_s:.0f} s "
                    f"({len(remaining)} partition(s) unfinished)"
                )
            batch = _consume(consumer, topic, remaining)
            if batch:
                yield batch
    except KafkaException as exc:
        raise RecoveryError(f"cannot read {topic}: {exc}") from exc
    finally:
        consumer.close()


def _plan(consumer: Consumer, topic: str, since_ms: int | None) -> dict[int, tuple[int, int]]:
    """Partition -> (start offset, end offset) of every partition with records to read."""
    metadata = consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        return {}
    ends = {}
    for partition in described.partitions:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=REQUEST_TIMEOUT_S
        )
        if high > low:
            ends[partition] = (low, high)
    if since_ms is not None and ends:
        asked = [TopicPartition(topic, p, since_ms) for p in ends]
        found = consumer.offsets_for_times(asked, timeout=REQUEST_TIMEOUT_S)
        # An offset of -1: no record at or after since_ms, nothing to read there.
        starts = {tp.partition: tp.offset for tp in found}
        ends = {
            p: (max(starts[p], low), high)
            for p, (low, high) in ends.items()
            if 0 <= starts.get(p, -1) < high
        }
    return ends


def _consume(
    consumer: Consumer, topic: str, remaining: dict[int, tuple[int, int]]
) -> list[Message]:
    batch = []
    for message in consumer.consume(CHUNK, timeout=POLL_S):
        error = message.error()
        partition, offset = message.partition(), message.offset()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                remaining.pop(partition or 0, None)  # markers can hide the last offset
                continue
            raise RecoveryError(f"reading {topic}[{partition}]: {error}")
        if partition not in remaining or offset is None:
            continue
        _, end = remaining[partition]
        if offset < end:
            batch.append(message)
        if offset + 1 >= end:
            remaining.pop(partition)
    return batch
