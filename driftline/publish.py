"""Turn canonical history frames into reading messages and publish them to Kafka.

Used by the demo, ``driftline replay``/``produce`` and the benchmarks. Messages keep the
frame's order, which is per-entity time order, so each entity's readings reach its
partition in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import KafkaException, Producer

from events import DemandReading, Message, SensorReading, codec_for
from events.readings import SensorKind
from models.frames import ENTITY, PRICE, PRODUCT, PROMO, QUANTITY, TS, metric_columns

# librdkafka's local queue is bounded; when it is full, serve delivery reports for this
# long before trying again (backpressure instead of dropping).
QUEUE_FULL_WAIT_S = 0.05


class PublishError(Exception):
    """Records could not be delivered to the broker."""


def _timestamps(frame: pd.DataFrame) -> list[datetime]:
    return list(pd.to_datetime(frame[TS], utc=True).dt.to_pydatetime())


def sensor_messages(frame: pd.DataFrame, kind: SensorKind) -> Iterator[SensorReading]:
    """One SensorReading per row of a wide sensor frame; NaN becomes a missing value."""
    metrics = metric_columns(frame)
    values = frame[metrics].to_numpy(dtype=np.float64)
    present = ~np.isnan(values)
    rows = values.tolist()
    for entity, ts, row, mask in zip(
        frame[ENTITY].astype(str), _timestamps(frame), rows, present.tolist(), strict=True
    ):
        yield SensorReading(
            entity_id=entity,
            kind=kind,
            ts=ts,
            values={m: (v if ok else None) for m, v, ok in zip(metrics, row, mask, strict=True)},
        )


def demand_messages(frame: pd.DataFrame) -> Iterator[DemandReading]:
    """One DemandReading per row of a long demand frame."""
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
        yield DemandReading(
            product_id=product,
            ts=ts,
            quantity=quantity,
            price=None if price is None or price != price else float(price),
            promo=promo,
        )


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
    failures: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    started = time.monotonic()
    count = 0
    for message in messages:
        if rate:
            ahead = count / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)  # pacing to the requested rate, not waiting on a state
        produce_waiting(producer, topic, codec.encode(message), codec.key(message), delivered)
        count += 1
        if progress and count % 1000 == 0:
            progress(1000)
    if progress:
        progress(count % 1000)
    remaining = producer.flush(60)
    if remaining or failures:
        raise PublishError(
            f"{topic}: {remaining} record(s) undelivered, {len(failures)} failed"
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
