"""History frames as consumed records: backfills, benchmarks and tests run the pipeline
over a canonical frame (``models.frames``) exactly as over a topic, with no broker.

>>> import pandas as pd
>>> frame = pd.DataFrame({"product_id": ["p-1", "p-1"], "quantity": [3.0, 4.0],
...                       "ts": pd.to_datetime(["2024-05-01", "2024-05-02"], utc=True)})
>>> records = frame_records(frame, "readings.demand")
>>> [(r.topic(), r.partition(), r.offset(), r.key()) for r in records]
[('readings.demand', 0, 0, b'p-1'), ('readings.demand', 0, 1, b'p-1')]
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from events import topics
from events.catalog import codec_for
from events.messages import Message
from events.readings import DemandReading, SensorKind, SensorReading
from models.frames import ENTITY, PRICE, PRODUCT, PROMO, QUANTITY, TS, metric_columns

# librdkafka's timestamp types: none stored, and the producer set the record's time.
NOT_AVAILABLE: Final = 0
CREATE_TIME: Final = 1


@dataclass(frozen=True)
class Record:
    """A consumed record: the accessors of ``confluent_kafka.Message`` the pipeline reads."""

    source_topic: str
    source_partition: int
    source_offset: int
    source_key: bytes | None
    source_value: bytes | None
    source_headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None  # None: the record carries no timestamp

    def topic(self) -> str:
        return self.source_topic

    def partition(self) -> int:
        return self.source_partition

    def offset(self) -> int:
        return self.source_offset

    def key(self) -> bytes | None:
        return self.source_key

    def value(self) -> bytes | None:
        return self.source_value

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return list(self.source_headers) or None

    def timestamp(self) -> tuple[int, int]:
        if self.timestamp_ms is None:
            return NOT_AVAILABLE, -1  # what confluent_kafka.Message returns then
        return CREATE_TIME, self.timestamp_ms


def partition_of(entity: str, partitions: int) -> int:
    """A stable partition for ``entity`` (crc32; not Kafka's murmur2, but as stable)."""
    return zlib.crc32(entity.encode()) % partitions


def frame_records(
    frame: pd.DataFrame,
    topic: str,
    *,
    partitions: int = 1,
    kind: SensorKind = "machine",
    first_offset: int = 0,
) -> list[Record]:
    """One record per frame row, in time order, keyed by entity, offsets per partition.

    Demand frames (``product_id``, ``quantity``) become DemandReadings, wide sensor frames
    SensorReadings of ``kind`` (NaN values become null). Every message is validated as
    it is encoded, so a frame that breaks the contracts raises a ContractError.
    """
    demand = PRODUCT in frame.columns and QUANTITY in frame.columns
    entity = PRODUCT if demand else ENTITY
    ordered = frame.assign(**{TS: pd.to_datetime(frame[TS], utc=True)})
    ordered = ordered.sort_values([TS, entity], kind="stable")
    codec = codec_for(topics.READINGS_DEMAND if demand else topics.READINGS_SENSOR)
    metrics = [] if demand else metric_columns(frame)
    next_offset = [first_offset] * partitions
    records = []
    for row in ordered.to_dict("records"):
        message = _demand(row) if demand else _sensor(row, metrics, kind)
        key = str(row[entity])
        partition = partition_of(key, partitions)
        stamp = pd.Timestamp(row[TS])
        records.append(
            Record(
                topic,
                partition,
                next_offset[partition],
                key.encode(),
                codec.encode(message),
                timestamp_ms=int(stamp.value // 1_000_000),
            )
        )
        next_offset[partition] += 1
    return records


def _sensor(row: dict[str, Any], metrics: list[str], kind: SensorKind) -> Message:
    values = {m: None if _missing(row[m]) else float(row[m]) for m in metrics}
    return SensorReading(
        entity_id=str(row[ENTITY]),
        kind=kind,
        ts=pd.Timestamp(row[TS]).to_pydatetime(),
        values=values,
    )


def _demand(row: dict[str, Any]) -> Message:
    price: Any = row.get(PRICE)
    return DemandReading(
        product_id=str(row[PRODUCT]),
        ts=pd.Timestamp(row[TS]).to_pydatetime(),
        quantity=float(row[QUANTITY]),
        price=None if _missing(price) else float(price),
        promo=bool(row.get(PROMO) or False),
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
