"""Decoding a consumed micro-batch into readings per stream; refusals go to the DLQ.

Each topic's records are decoded with the topic's codec (``Codec.decode_batch`` never
raises). A record is refused when it breaks its contract, when its Kafka key is not its
entity id, when it has no stored offset, or when its reading is stamped more than
``max_future_s`` after the record's Kafka timestamp (a device clock gone wrong; see
:class:`~worker.errors.FutureTimestampError`). The rest become :class:`Readings` in batch
order, with the coordinates every output id is derived from.

The time check reads only the record, never the wall clock: the same record is refused or
accepted whenever it is read, so a replay, or a warm-up reading history back, builds the
same state as the first pass did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar

import numpy as np

from events import topics
from events.catalog import codec_for
from events.codec import Codec
from events.dlq import KafkaMessage
from events.readings import DemandReading, SensorReading
from models.features.stats import TimeArray
from worker.deadletters import FUTURE_TIMESTAMP, KEY_MISMATCH, DeadLetters
from worker.errors import (
    FutureTimestampError,
    KeyMismatchError,
    NoOffsetError,
    UnknownStreamError,
)
from worker.limits import DEFAULT_MAX_FUTURE_S
from worker.routes import StreamTopics

R = TypeVar("R", SensorReading, DemandReading)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
# librdkafka's TIMESTAMP_NOT_AVAILABLE: the record carries no time to check against.
_NO_TIMESTAMP: Final = 0


def epoch_ns(ts: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    return (ts - _EPOCH) // _MICROSECOND * 1000


@dataclass
class Readings(Generic[R]):
    """Decoded readings of one stream in batch order, with the record each came from."""

    messages: list[R] = field(default_factory=list)
    sources: list[KafkaMessage] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    stamps_ns: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.messages)

    def append(
        self, message: R, source: KafkaMessage, entity: str, where: tuple[int, int], ns: int
    ) -> None:
        """Add a reading, ``where`` = (partition, offset), ``ns`` = ``epoch_ns(message.ts)``."""
        self.messages.append(message)
        self.sources.append(source)
        self.topics.append(source.topic() or "")
        self.partitions.append(where[0])
        self.offsets.append(where[1])
        self.entities.append(entity)
        self.stamps_ns.append(ns)

    def take(self, rows: Sequence[int]) -> Readings[R]:
        """The readings at positions ``rows``, in that order."""
        picked: Readings[R] = Readings()
        for name in (
            "messages",
            "sources",
            "topics",
            "partitions",
            "offsets",
            "entities",
            "stamps_ns",
        ):
            column: list[Any] = getattr(self, name)
            getattr(picked, name).extend(column[i] for i in rows)
        return picked

    def ts(self, row: int) -> datetime:
        """Time of the reading at ``row`` (UTC)."""
        return self.messages[row].ts

    def times(self, rows: Sequence[int] | np.ndarray | None = None) -> TimeArray:
        """UTC ``datetime64[ns]`` of the readings (of ``rows``), as feature specs take them."""
        stamps = np.asarray(self.stamps_ns, dtype=np.int64)
        chosen = stamps if rows is None else stamps[np.asarray(rows, dtype=np.int64)]
        return chosen.astype("datetime64[ns]")

    def entity_array(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        entities = np.asarray(self.entities, dtype=object)
        return entities if rows is None else entities[np.asarray(rows, dtype=np.int64)]


@dataclass
class Decoded:
    """A micro-batch split into the readings of each stream."""

    sensor: Readings[SensorReading] = field(default_factory=Readings)
    demand: Readings[DemandReading] = field(default_factory=Readings)


class Intake:
    """Decodes micro-batches of any mix of input topics.

    ``max_future_s``: how far after its record's Kafka timestamp a reading may be stamped
    (0 accepts any time: for simulated clocks that run ahead, such as the demo's).
    """

    def __init__(self, streams: StreamTopics, max_future_s: float = DEFAULT_MAX_FUTURE_S) -> None:
        if max_future_s < 0:
            raise ValueError(f"max_future_s must be >= 0, got {max_future_s}")
        self.streams = streams
        self.max_future_s = max_future_s
        self._ahead_ns = int(max_future_s * 1e9) if max_future_s > 0 else None
        self._sensor: Codec[SensorReading] = codec_for(topics.READINGS_SENSOR)
        self._demand: Codec[DemandReading] = codec_for(topics.READINGS_DEMAND)

    def read(self, messages: Sequence[KafkaMessage], dead: DeadLetters | None) -> Decoded:
        """Readings of every stream; refused records go to ``dead`` (dropped when None)."""
        decoded = Decoded()
        for topic, group in _by_topic(messages).items():
            stream = self.streams.stream_of(topic)
            if stream is None:
                error = UnknownStreamError(f"no stream of this pipeline reads topic {topic!r}")
                for message in group:
                    _refuse(dead, message, error)
            elif stream == "sensor":
                self._decode(self._sensor, group, decoded.sensor, dead)
            else:
                self._decode(self._demand, group, decoded.demand, dead)
        return decoded

    def _decode(
        self,
        codec: Codec[R],
        group: list[KafkaMessage],
        into: Readings[R],
        dead: DeadLetters | None,
    ) -> None:
        batch = codec.decode_batch([message.value() for message in group])
        for failure in batch.failures:
            _refuse(dead, group[failure.index], failure.error)
        key_field = codec.key_fields[0]
        for reading, index in zip(batch.messages, batch.indices, strict=True):
            source = group[index]
            entity: str = getattr(reading, key_field)
            if source.key() != entity.encode():
                error = KeyMismatchError(
                    f"record key {source.key()!r} is not the {key_field} {entity!r} of its value"
                )
                _refuse(dead, source, error, KEY_MISMATCH)
                continue
            partition, offset = source.partition(), source.offset()
            if partition is None or offset is None or partition < 0 or offset < 0:
                _refuse(dead, source, NoOffsetError("record has no stored partition/offset"))
                continue
            ns = epoch_ns(reading.ts)
            if self._ahead_ns is not None:
                kind, record_ms = source.timestamp()
                if kind != _NO_TIMESTAMP and ns > record_ms * 1_000_000 + self._ahead_ns:
                    _refuse(dead, source, self._future(reading.ts, record_ms), FUTURE_TIMESTAMP)
                    continue
            into.append(reading, source, entity, (partition, offset), ns)

    def _future(self, ts: datetime, record_ms: int) -> FutureTimestampError:
        record = _EPOCH + timedelta(milliseconds=record_ms)
        return FutureTimestampError(
            f"reading stamped {ts.isoformat()}, {(ts - record).total_seconds():.0f} s after "
            f"its record's Kafka timestamp {record.isoformat()} (at most {self.max_future_s:g} "
            "s allowed, WORKER_MAX_FUTURE_S)"
        )


def _by_topic(messages: Sequence[KafkaMessage]) -> dict[str, list[KafkaMessage]]:
    """Messages grouped by topic; topics in order of first appearance, batch order inside."""
    groups: dict[str, list[KafkaMessage]] = {}
    for message in messages:
        groups.setdefault(message.topic() or "", []).append(message)
    return groups


def _refuse(
    dead: DeadLetters | None, message: KafkaMessage, error: BaseException, reason: str | None = None
) -> None:
    if dead is not None:
        dead.refuse(message, error, reason)
