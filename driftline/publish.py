"""Turn canonical history frames into reading messages and publish them to Kafka.

Used by the demo, ``driftline replay``/``produce`` and the benchmarks. Messages keep the
frame's order, which is per-entity time order, so each entity's readings reach its
partition in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import KafkaException, Producer

from events import ContractError, DemandReading, Message, SensorReading, codec_for
from events.readings import SensorKind
from events.topics import READINGS_DEMAND
from models.frames import ENTITY, PRICE, PRODUCT, PROMO, QUANTITY, TS, metric_columns

# librdkafka's local queue is bounded; when it is full, serve delivery reports for this
# long before trying again (backpressure instead of dropping).
QUEUE_FULL_WAIT_S = 0.05
# How long the records still queued may take to be acknowledged at the end.
FLUSH_TIMEOUT_S = 60.0


class PublishError(Exception):
    """Records could not be delivered to the broker."""


@dataclass(frozen=True)
class Refused:
    """A row the topic's contract refuses: whose reading, when, and why."""

    entity: str
    ts: str
    reason: str

    def __str__(self) -> str:
        return f"{self.entity} at {self.ts}: {self.reason}"


@dataclass
class Checked:
    """A frame's readings encoded for a topic, and the rows its contract refuses."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value)
    refused: list[Refused] = field(default_factory=list)


def _timestamps(frame: pd.DataFrame) -> list[datetime]:
    return list(pd.to_datetime(frame[TS], utc=True).dt.to_pydatetime())


def sensor_messages(frame: pd.DataFrame, kind: SensorKind) -> Iterator[SensorReading]:
    """One SensorReading per row of a wide sensor frame; NaN becomes a missing value."""
    return (SensorReading(**fields) for fields in _sensor_fields(frame, kind))


def demand_messages(frame: pd.DataFrame) -> Iterator[DemandReading]:
    """One DemandReading per row of a long demand frame."""
    return (DemandReading(**fields) for fields in _demand_fields(frame))


def _sensor_fields(frame: pd.DataFrame, kind: SensorKind) -> Iterator[dict[str, Any]]:
    metrics = metric_columns(frame)
    values = frame[metrics].to_numpy(dtype=np.float64)
    present = ~np.isnan(values)
    rows = values.tolist()
    for entity, ts, row, mask in zip(
        frame[ENTITY].astype(str), _timestamps(frame), rows, present.tolist(), strict=True
    ):
        yield {
            "entity_id": entity,
            "kind": kind,
            "ts": ts,
            "values": {m: (v if ok else None) for m, v, ok in zip(metrics, row, mask, strict=True)},
        }


def _demand_fields(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    prices = frame[PRICE].tolist() if PRICE in frame else [None] * len(frame)
    promos = frame[PROMO].astype(bool).tolist() if PROMO in frame else [False] * len(frame)
    for product, ts, quantity, price, promo in zip(
        frame[PRODUCT].astype(str),
        _timestamps(frame),
        frame[QUANTITY].astype(float).tolist(),
        prices,
        promos,
        strict=True,
    ):
        yield {
            "product_id": product,
            "ts": ts,
            "quantity": quantity,
            "price": None if price is None or price != price else float(price),
            "promo": promo,
        }


def encode_checked(frame: pd.DataFrame, contract: str, kind: SensorKind = "machine") -> Checked:
    """Every row of a canonical frame (already in publishing order) as a record of
    ``contract``, or refused with the contract's reason: a backfill checks everything
    before it publishes anything, so bad input never leaves half a file on the topic.
    """
    codec = codec_for(contract)
    checked = Checked()
    if contract == READINGS_DEMAND:
        build: Callable[..., Message] = DemandReading
        rows = _demand_fields(frame)
    else:
        build, rows = SensorReading, _sensor_fields(frame, kind)
    for fields in rows:
        try:
            message = build(**fields)
            checked.records.append((codec.key(message), codec.encode(message)))
        except ContractError as exc:
            entity = fields.get("product_id") or fields.get("entity_id")
            when = fields["ts"].strftime("%Y-%m-%dT%H:%M:%SZ")
            checked.refused.append(Refused(str(entity), when, str(exc)))
    return checked


def publish(
    producer: Producer,
    topic: str,
    messages: Iterable[Message],
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    contract: str | None = None,
) -> int:
    """Produce ``messages`` to ``topic`` (at ``rate`` per second if given); flush; count.

    ``contract`` names the standard topic whose codec encodes the messages when ``topic``
    is another name (a test's or a tenant's topic). Raises PublishError if any record is not
    acknowledged.
    """
    codec = codec_for(contract or topic)
    records = ((codec.key(m), codec.encode(m)) for m in messages)
    return publish_records(producer, topic, records, rate=rate, progress=progress)


def publish_records(
    producer: Producer,
    topic: str,
    records: Iterable[tuple[bytes, bytes]],
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Produce encoded ``(key, value)`` records as :func:`publish` does; count them.

    Whatever happens, what was produced is flushed before returning or raising, and a
    PublishError says how many records the broker acknowledged.
    """
    failures: list[str] = []
    acknowledged = 0

    def delivered(error: object, _message: object) -> None:
        nonlocal acknowledged
        if error is None:
            acknowledged += 1
        else:
            failures.append(str(error))

    started = time.monotonic()
    count = 0
    try:
        for key, value in records:
            if rate:
                ahead = count / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)  # pacing to the requested rate, not waiting on a state
            produce_waiting(producer, topic, value, key, delivered)
            count += 1
            if progress and count % 1000 == 0:
                progress(1000)
    finally:
        remaining = producer.flush(FLUSH_TIMEOUT_S)
    if progress:
        progress(count % 1000)
    if remaining or failures:
        raise PublishError(
            f"{topic}: {acknowledged} of {count} record(s) acknowledged, {remaining} "
            f"undelivered, {len(failures)} failed"
            + (f" (first: {failures[0]})" if failures else "")
        )
    return count


def produce_waiting(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    on_delivery: Callable[[Any, Any], None],
    **options: Any,
) -> None:
    """Produce one record; while librdkafka's queue is full, serve delivery reports and try
    again (backpressure, nothing dropped). ``options`` go to ``produce`` (``timestamp``,
    ``headers``). A record the client refuses raises PublishError."""
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=on_delivery, **options)
            return
        except BufferError:
            producer.poll(QUEUE_FULL_WAIT_S)
        except KafkaException as exc:
            raise PublishError(f"cannot produce to {topic}: {exc}") from exc
