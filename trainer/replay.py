"""Read one topic's records of a time window back from Kafka.

A replay assigns every partition itself (no group, nothing committed):

1. ``offsets_for_times(start)`` gives, per partition, the first offset whose timestamp is at
   or after the window's start (-1 when there is none: the partition has nothing to give);
2. the high watermark read *before* reading bounds the replay: records produced while it
   runs belong to the next replay, so a replay always ends;
3. records are kept when their Kafka timestamp lies in ``[start, end]``; with CreateTime
   timestamps a producer may write slightly out of order, so offsets alone do not bound it.

The window is by Kafka timestamp (the time a record was produced, or the reading's own time
when the producer set it), which is what ``offsets_for_times`` can look up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from trainer.errors import DataError, ReplayUnavailableError

# Metadata, offset and watermark requests; a local broker answers in milliseconds.
REQUEST_TIMEOUT_S: Final = 10.0
# Records per consume() call and the longest wait of one call.
BATCH_RECORDS: Final = 5_000
POLL_S: Final = 0.5

ConsumerFactory = Callable[[], Any]


@dataclass(frozen=True)
class Window:
    """A time window ``[start, end]`` (timezone-aware)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def read_window(
    make_consumer: ConsumerFactory,
    topic: str,
    window: Window,
    timeout_s: float,
    keys: Collection[bytes] | None = None,
) -> list[bytes]:
    """Values of ``topic``'s records in ``window`` (only those keyed by ``keys`` if given)."""
    consumer = make_consumer()
    try:
        bounds = _bounds(consumer, topic, window.start_ms)
        if not bounds:
            return []
        consumer.assign([TopicPartition(topic, p, begin) for p, (begin, _) in bounds.items()])
        return _drain(consumer, topic, bounds, window, timeout_s, keys)
    except KafkaException as exc:
        raise ReplayUnavailableError(f"cannot replay {topic}: {exc}") from exc
    finally:
        consumer.close()


def _bounds(consumer: Any, topic: str, start_ms: int) -> dict[int, tuple[int, int]]:
    """partition -> (first offset at/after ``start_ms``, high watermark) with records left."""
    metadata = consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        reason = "unknown topic" if described is None else str(described.error or "no partitions")
        raise DataError(f"cannot replay {topic}: {reason}")
    asked = [TopicPartition(topic, p, start_ms) for p in sorted(described.partitions)]
    found = consumer.offsets_for_times(asked, timeout=REQUEST_TIMEOUT_S)
    bounds: dict[int, tuple[int, int]] = {}
    for tp in found:
        if tp.error is not None:
            raise ReplayUnavailableError(
                f"cannot look up {topic}[{tp.partition}] by time: {tp.error}"
            )
        _, high = consumer.get_watermark_offsets(
            TopicPartition(topic, tp.partition), timeout=REQUEST_TIMEOUT_S, cached=False
        )
        begin = tp.offset if tp.offset >= 0 else high  # -1: no record at or after start
        if begin < high:
            bounds[tp.partition] = (begin, high)
    return bounds


def _drain(
    consumer: Any,
    topic: str,
    bounds: dict[int, tuple[int, int]],
    window: Window,
    timeout_s: float,
    keys: Collection[bytes] | None,
) -> list[bytes]:
    values: list[bytes] = []
    remaining = set(bounds)
    deadline = time.monotonic() + timeout_s
    while remaining:
        if time.monotonic() > deadline:
            raise ReplayUnavailableError(
                f"replay of {topic} did not reach the end of partition(s) {sorted(remaining)} "
                f"within {timeout_s:g} s"
            )
        for message in consumer.consume(num_messages=BATCH_RECORDS, timeout=POLL_S):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(message.partition())
                    continue
                raise ReplayUnavailableError(f"replay of {topic} failed: {error}")
            partition, offset = message.partition(), message.offset()
            high = bounds[partition][1]
            if offset >= high - 1:
                remaining.discard(partition)
            if offset >= high:
                continue
            stamp = message.timestamp()[1]
            if window.start_ms <= stamp <= window.end_ms and (
                keys is None or message.key() in keys
            ):
                values.append(message.value())
    return values
