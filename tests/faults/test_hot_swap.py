"""A maintenance model promoted while a worker scores 50,000 readings.

The real pipeline (``fault_pipeline``, paced so the stream lasts several seconds) scores
machine readings with tiny anomaly and maintenance models. Once a quarter of the risk
predictions are out, maintenance v2 (registered before the stream, not yet serving) is
promoted in the registry and announced on the worker's ``model.updates`` topic, as the
trainer does. The worker must pick it up mid-stream: one risk prediction per reading,
none lost or doubled; each output carries the version that scored it, its bytes equal to
an in-process run over the same records with that version pinned in the model cache;
per partition the version switches once, from v1 to v2, between batches.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pytest
import tiny_models
from confluent_kafka import Producer
from tiny_models import train

from driftline.generator import generate_machines
from events import ModelUpdate, Prediction, codec_for, derive_id, topics
from events.settings import KafkaSettings
from models.cache import ModelCache
from models.registry import Registry
from models.store import ModelStore
from worker.pipeline import ScoringPipeline
from worker.replay import Record, frame_records
from worker.routes import StreamTopics

pytestmark = [pytest.mark.fault, pytest.mark.integration]

MACHINES = 100
HOURS = 500
READINGS = MACHINES * HOURS  # one reading per machine and hour
# 100 batches of 500 with 50 ms more each: the stream lasts several seconds, so the
# promotion lands in its middle rather than after its end.
PACED = {"WORKER_BATCH_MAX_RECORDS": "500", "FAULT_BATCH_DELAY_S": "0.05"}
# Promote once a quarter of the risk predictions are out.
PROMOTE_AT = 1 / 4
MAINTENANCE = "maintenance"
ANOMALY = "anomaly"
CACHE_BYTES = 256 * 1024 * 1024  # every test model fits many times over
REFERENCE_BATCH = 1_000  # records per in-process batch (outputs do not depend on it)
SWAPPED: Final = ("driftline_worker_model_swaps_total", 'model="maintenance",outcome="swapped"')
RISK: Final = (MAINTENANCE, "risk")  # id extras of a risk prediction (worker.emit)
# Id extras of every output a machine reading may yield (worker.emit).
OUTPUT_KINDS: Final = (RISK, (MAINTENANCE, "alert"), (ANOMALY,))

Where = tuple[int, int]  # (partition, offset) of a reading on the input topic
Raw = tuple[bytes | None, bytes | None]


def labelled(seed: int) -> pd.DataFrame:
    """3 machines x 240 h of labelled history to fit a model on."""
    return generate_machines(entities=3, periods=240, seed=seed)


def machine_readings() -> list[Raw]:
    """``READINGS`` keyed, encoded readings in time order (labels dropped)."""
    frame = generate_machines(entities=MACHINES, periods=HOURS, seed=11)
    records = frame_records(frame.drop(columns=["is_anomaly", "risk"]), topics.READINGS_SENSOR)
    return [(r.key(), r.value()) for r in records]


def output_id(topic: str, value: bytes) -> str:
    """``prediction_id`` or ``alert_id`` of an output record."""
    message = codec_for(topic).decode(value)
    return message.prediction_id if isinstance(message, Prediction) else message.alert_id


class Reference:
    """In-process runs over the records the worker consumed, one per maintenance version."""

    def __init__(self, store: Path, streams: StreamTopics, records: Sequence[Record]) -> None:
        self.store, self.streams, self.records = store, streams, records

    def outputs(self, version: int) -> dict[str, dict[str, bytes]]:
        """Output topic -> id -> bytes of an uninterrupted run serving maintenance ``version``."""
        store = ModelStore(self.store)
        cache = ModelCache(store, CACHE_BYTES)
        # Pinned: the cache never polls the store, so this version serves the whole run.
        cache.swap(MAINTENANCE, None, version)
        pipeline = ScoringPipeline(store, cache, streams=self.streams)
        contracts = {
            self.streams.predictions: topics.PREDICTIONS,
            self.streams.alerts: topics.ALERTS,
        }
        found: dict[str, dict[str, bytes]] = {topic: {} for topic in contracts}
        for start in range(0, len(self.records), REFERENCE_BATCH):
            batch = self.records[start : start + REFERENCE_BATCH]
            for out in pipeline.process(batch).records:
                assert out.value is not None and out.topic in contracts, out
                found[out.topic][output_id(contracts[out.topic], out.value)] = out.value
        return found


def readings_of(topic: str, sent: Iterable[Where]) -> dict[str, Where]:
    """The reading behind each output id a reading may yield."""
    return {derive_id(topic, p, o, *kind): (p, o) for p, o in sent for kind in OUTPUT_KINDS}


def regressions(scored_by: Mapping[Where, int]) -> list[str]:
    """Partitions where, in offset order, a reading was scored by an older version."""
    by_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (partition, offset), version in scored_by.items():
        by_partition[partition].append((offset, version))
    found = []
    for partition, scored in sorted(by_partition.items()):
        scored.sort()
        for (_, before), (offset, after) in pairwise(scored):
            if after < before:
                found.append(f"partition {partition} @{offset}: v{before} -> v{after}")
                break
    return found


def announce(kafka: KafkaSettings, topic: str, version: int) -> None:
    """Publish the promotion of maintenance ``version`` as the trainer does."""
    update = ModelUpdate(
        model=MAINTENANCE, version=version, action="promoted", ts=datetime.now(UTC)
    )
    codec = codec_for(topics.MODEL_UPDATES)
    producer = Producer(kafka.producer_config())
    producer.produce(topic, codec.encode(update), codec.key(update))
    assert producer.flush(30) == 0, "the model update was not acknowledged"


class Distinct:
    """Distinct output ids on a tail so far, decoding each record once."""

    def __init__(self, tail: Any, contract: str) -> None:
        self.tail, self.contract = tail, contract
        self.ids: set[str] = set()
        self._read = 0

    def __len__(self) -> int:
        records = self.tail.read()
        self.ids.update(output_id(self.contract, m.value()) for m in records[self._read :])
        self._read = len(records)
        return len(self.ids)


@dataclass
class Promotion:
    """What the test saw around the promotion."""

    before: set[str]  # risk prediction ids out before the registry changed
    swap_s: float  # from the registry's promote to the worker's swap counter


def score_with_promotion(stream: Any, registry: Registry, version: int, faults: Any) -> Promotion:
    """Run the worker over the produced readings, promoting ``version`` a quarter in."""
    risk_ids = Distinct(stream.tail(stream.predictions), topics.PREDICTIONS)
    worker = stream.start(
        "hot-swap",
        WORKER_MODEL_STORE=str(registry.root),
        WORKER_PRELOAD_MODELS=json.dumps([ANOMALY, MAINTENANCE]),
        **PACED,
    )
    worker.wait_ready()  # the updates consumer is positioned: no update is skipped
    faults.wait_until(lambda: len(risk_ids) >= READINGS * PROMOTE_AT, "a quarter of the risks")
    before = set(risk_ids.ids)
    promoted = time.monotonic()
    registry.promote(MAINTENANCE, version, reason="hot swap under load")
    announce(stream.kafka, stream.updates, version)
    faults.wait_until(lambda: faults.metric(worker.port, *SWAPPED) == 1, "the swap")
    swap_s = time.monotonic() - promoted
    faults.wait_until(lambda: len(risk_ids) >= READINGS, "a risk prediction per reading")
    assert worker.stop(signal.SIGTERM) == 0  # flushes every output before it exits
    return Promotion(before, swap_s)


@dataclass
class Scored:
    """The worker's risk predictions and the reading behind each."""

    records: list[Any]  # as consumed from the predictions topic
    decoded: list[Prediction]
    readings: list[Where | None]  # None: an id no reading yields

    @classmethod
    def read(cls, tail: Any, behind: Mapping[str, Where]) -> Scored:
        records = list(tail.read())
        decoded = [codec_for(topics.PREDICTIONS).decode(m.value()) for m in records]
        return cls(records, decoded, [behind.get(p.prediction_id) for p in decoded])

    def versions(self) -> dict[Where, int]:
        """Reading -> the version its risk prediction states."""
        return {
            where: p.version
            for where, p in zip(self.readings, self.decoded, strict=True)
            if where is not None
        }

    def mismatches(self, pinned: Mapping[int, Mapping[str, bytes]]) -> list[tuple[Any, int]]:
        """(reading, version) of predictions unlike the reference of their stated version."""
        return [
            (where, p.version)
            for where, p, m in zip(self.readings, self.decoded, self.records, strict=True)
            if pinned[p.version].get(p.prediction_id) != m.value()
        ]

    def changed(self, version: int, other: Mapping[str, bytes]) -> int:
        """Predictions of ``version`` whose value the ``other`` reference differs from."""
        codec = codec_for(topics.PREDICTIONS)
        return sum(
            1
            for p in self.decoded
            if p.version == version
            and p.prediction_id in other
            and codec.decode(other[p.prediction_id]).value != p.value
        )


def expected_alerts(
    pinned: Mapping[int, Mapping[str, bytes]],
    versions: Mapping[Where, int],
    behind: Mapping[str, Where],
) -> Counter[tuple[str, bytes]]:
    """Every reading's alerts as the reference of the version that scored it gives them."""
    return Counter(
        (alert_id, value)
        for version, outputs in pinned.items()
        for alert_id, value in outputs.items()
        if versions.get(behind[alert_id]) == version
    )


def test_a_promotion_mid_stream_is_picked_up_with_no_reading_lost(
    fault_stream: Any, tmp_path: Path, fault_report: Callable[..., Any], faults: Any
) -> None:
    stream = fault_stream
    registry = Registry(tmp_path / "models", actor="tests")
    # Tiny models; both maintenance versions need the same window: the swap needs no re-warm.
    train(registry, ANOMALY, tiny_models.ANOMALY, labelled(seed=3))
    v1 = train(registry, MAINTENANCE, tiny_models.MAINTENANCE, labelled(seed=3))  # champion
    v2 = train(registry, MAINTENANCE, tiny_models.MAINTENANCE, labelled(seed=5))  # registered
    assert registry.champion(MAINTENANCE) == v1 and v2 > v1
    readings = machine_readings()
    sent = stream.produce(readings)

    promotion = score_with_promotion(stream, registry, v2, faults)

    behind = readings_of(stream.input, sent)
    scored = Scored.read(stream.tail(stream.predictions), behind)
    risks = Counter(p.prediction_id for p in scored.decoded)
    expected_risks = {derive_id(stream.input, p, o, *RISK) for p, o in sent}
    versions = scored.versions()
    counts = Counter(versions.values())
    found = {
        "readings_sent": READINGS,
        "outputs": sum(risks.values()),
        "lost": len(expected_risks - set(risks)),
        "duplicates": sum(risks.values()) - len(risks),
        "v1_outputs": counts[v1],
        "v2_outputs": counts[v2],
        "outputs_before_promotion": len(promotion.before),
        "swap_s": round(promotion.swap_s, 2),
    }
    fault_report(
        "worker-hot-swap",
        "Model promoted mid-stream (hot swap under load)",
        f"maintenance v{v2} promoted and announced on model.updates after "
        f"{len(promotion.before):,} of {READINGS:,} risk predictions",
        "one risk prediction per reading; each states the version that scored it and has "
        "the bytes of a run with that version pinned; per partition v1 then v2, never back",
        **found,
    )
    assert set(risks) == expected_risks, f"{found['lost']} readings lost"
    assert found["duplicates"] == 0, "readings scored twice"
    assert set(counts) <= {v1, v2}, f"unexpected versions {sorted(counts)}"
    assert {versions[behind[i]] for i in promotion.before} == {v1}, "v2 before its promotion"
    assert counts[v2] > 0, (
        f"no reading was scored by v{v2}: the stream ended before the swap landed "
        f"(promoted after {len(promotion.before):,} outputs); slow the stream down"
    )
    assert not regressions(versions), f"the version went back: {regressions(versions)}"

    # Each output has the bytes of the reference run of the version that scored its reading.
    streams = StreamTopics(
        sensor=(stream.input,),
        demand=(),
        predictions=stream.predictions,
        alerts=stream.alerts,
        imputed=stream.imputed,
    )
    records = [
        Record(stream.input, partition, offset, key, value)
        for (partition, offset), (key, value) in zip(sent, readings, strict=True)
    ]
    reference = Reference(registry.root, streams, records)
    runs = {v1: reference.outputs(v1), v2: reference.outputs(v2)}
    mismatched = scored.mismatches({v: run[stream.predictions] for v, run in runs.items()})
    assert not mismatched, (
        f"{len(mismatched)} risk predictions unlike the reference of their version "
        f"(first (reading, version): {mismatched[:5]})"
    )
    assert scored.changed(v2, runs[v1][stream.predictions]) > 0, (
        "v1 and v2 give the same risks: the check cannot tell the versions apart"
    )
    alerts = stream.tail(stream.alerts)
    wanted = expected_alerts({v: run[stream.alerts] for v, run in runs.items()}, versions, behind)
    faults.wait_until(lambda: len(alerts.read()) >= wanted.total(), f"{wanted.total()} alerts")
    actual = Counter((output_id(topics.ALERTS, m.value()), m.value()) for m in alerts.read())
    assert actual == wanted, (
        f"alerts: {(wanted - actual).total()} missing or unlike the reference, "
        f"{(actual - wanted).total()} unexpected"
    )
