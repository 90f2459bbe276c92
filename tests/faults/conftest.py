"""The fault suite's harness: worker processes on the real broker, readings, outputs, figures.

Test modules run in importlib mode and cannot import each other by name. What the worker
integration tests share with this suite (worker subprocesses, polling) is in
``tests/support/worker_process.py`` (on ``sys.path`` through pytest's ``pythonpath``); the
fault tests get it, and this suite's own helpers, through fixtures: ``fault_stream``
(topics of one test, readings produced to them, ``driftline worker`` subprocesses and
their outputs read back), ``air_readings`` and ``reference`` (the outputs an
uninterrupted in-process pipeline gives) and ``fault_report`` (records the figures, see
:mod:`driftline.faults_report`).

The readings are air-quality readings whose two metrics take turns being null, so the
real pipeline (fallbacks only: an empty model store) fills one gap per reading from the
entity's previous reading: one ``readings.imputed`` output per reading (except each
entity's first), whose bytes depend only on the entity's history. Counting those bytes
shows lost and repeated readings exactly, and a restarted worker whose state was not
rebuilt from history would fill differently.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from worker_process import (
    DEADLINE_S,
    Worker,
    free_port,
    http_get,
    memory_kib,
    metric,
    wait_until,
    worker_env,
)

from driftline import faults_report
from events import SensorReading, codec_for
from events.settings import KafkaSettings
from models.cache import ModelCache
from models.store import ModelStore
from worker.pipeline import ScoringPipeline
from worker.replay import Record
from worker.routes import StreamTopics

HERE = Path(__file__).resolve().parent
PARTITIONS = 3
# Readings of one entity are a minute apart, starting here (inside the contracts' range).
T0 = datetime(2025, 1, 1, tzinfo=UTC)
CACHE_BYTES = 64 * 1024 * 1024  # no model is loaded: the fallbacks need no cache

Raw = tuple[bytes | None, bytes | None]  # (key, value) as produced


def air_reading(entity: str, step: int) -> SensorReading:
    """Reading ``step`` of ``entity``: pm25 and no2 take turns being null."""
    odd = step % 2 == 1
    return SensorReading(
        entity_id=entity,
        kind="air",
        ts=T0 + timedelta(minutes=step),
        values={
            "pm25": None if odd else 10.0 + step % 7,
            "no2": 20.0 + step % 5 if odd else None,
        },
    )


def build_air_readings(count: int, entities: int = 50, prefix: str = "station") -> list[Raw]:
    """``count`` readings round-robin over ``entities`` stations, in time order per station."""
    codec = codec_for("readings.sensor")
    out: list[Raw] = []
    for i in range(count):
        entity = f"{prefix}-{i % entities}"
        out.append((entity.encode(), codec.encode(air_reading(entity, i // entities))))
    return out


def reference_outputs(readings: Sequence[Raw]) -> Counter[bytes]:
    """The imputed outputs of an uninterrupted in-process run over ``readings``."""
    store = ModelStore(Path("/nonexistent-driftline-store"))
    streams = StreamTopics(sensor=("in",), demand=(), predictions="p", alerts="a", imputed="i")
    pipeline = ScoringPipeline(store, ModelCache(store, CACHE_BYTES), streams=streams)
    records = [Record("in", 0, i, key, value) for i, (key, value) in enumerate(readings)]
    outputs: Counter[bytes] = Counter()
    for start in range(0, len(records), 1_000):  # batches of a typical consume
        for out in pipeline.process(records[start : start + 1_000]).records:
            if out.topic == "i" and out.value is not None:
                outputs[out.value] += 1
    return outputs


class Tail:
    """Every record of a topic from its beginning (read_committed), accumulated."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        config = {
            **kafka.client_config(),
            "group.id": f"tail-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
        self.consumer = Consumer(config)
        described = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, 0) for p in described])
        self.records: list[Any] = []

    def read(self) -> list[Any]:
        """What arrived so far; one bounded poll per call."""
        self.records += [m for m in self.consumer.consume(10_000, 0.2) if m.error() is None]
        return self.records

    def close(self) -> None:
        self.consumer.close()


class FaultStream:
    """The topics of one test, readings produced to them, worker processes and outputs."""

    def __init__(self, kafka: KafkaSettings, make_topic: Callable[..., str], tmp: Path) -> None:
        self.kafka = kafka
        self.tmp = tmp
        self.input = make_topic("readings", partitions=PARTITIONS)
        self.imputed = make_topic("imputed", partitions=PARTITIONS)
        self.predictions = make_topic("predictions", partitions=PARTITIONS)
        self.alerts = make_topic("alerts", partitions=PARTITIONS)
        self.updates = make_topic("updates")
        # Dead letters go to dlq.<input>: a name the topic factory cannot make.
        self.dlq = f"dlq.{self.input}"
        self._admin = AdminClient(kafka.client_config())
        self._admin.create_topics([NewTopic(self.dlq, PARTITIONS, 1)])[self.dlq].result(30)
        self.group = f"fault-workers-{uuid.uuid4().hex[:8]}"
        self.sent: list[tuple[int, int]] = []  # (partition, offset) of every record produced
        self.workers: list[Worker] = []
        self._tails: dict[str, Tail] = {}

    def env(self, name: str, **extra: str) -> dict[str, str]:
        return worker_env(
            self.kafka.bootstrap_servers,
            name,
            inputs=[self.input],
            group=self.group,
            pipeline="fault_pipeline:build_pipeline",
            pipeline_dir=HERE,
            updates=self.updates,
            alerts=self.alerts,
            store=self.tmp / "store",
            FAULT_PREDICTIONS=self.predictions,
            FAULT_ALERTS=self.alerts,
            FAULT_IMPUTED=self.imputed,
            **extra,
        )

    def start(self, name: str, args: Sequence[str] = (), **extra: str) -> Worker:
        worker = Worker(self.env(name, **extra), self.tmp / f"{name}.log", args)
        self.workers.append(worker)
        return worker

    def produce(
        self,
        records: Sequence[Raw],
        headers: Sequence[list[tuple[str, bytes]] | None] | None = None,
        **config: Any,
    ) -> list[tuple[int, int]]:
        """Produce ``records`` in order (Java-compatible key partitioning); their offsets."""
        where: list[tuple[int, int] | None] = [None] * len(records)
        producer = Producer(self.kafka.producer_config(**{"linger.ms": 20, **config}))

        def delivered(index: int) -> Callable[[Any, Any], None]:
            def report(error: Any, message: Any) -> None:
                assert error is None, error
                where[index] = (message.partition(), message.offset())

            return report

        for index, (key, value) in enumerate(records):
            extra = {"headers": headers[index]} if headers and headers[index] else {}
            while True:
                try:
                    producer.produce(self.input, value, key, on_delivery=delivered(index), **extra)
                    break
                except BufferError:
                    producer.poll(0.1)
            if index % 1_000 == 0:
                producer.poll(0)
        assert producer.flush(DEADLINE_S) == 0
        done = [w for w in where if w is not None]
        assert len(done) == len(records)
        self.sent += done
        return done

    def tail(self, topic: str) -> Tail:
        if topic not in self._tails:
            self._tails[topic] = Tail(self.kafka, topic)
        return self._tails[topic]

    def outputs(self) -> Counter[bytes]:
        """Imputed outputs so far, counted by their bytes."""
        return Counter(m.value() for m in self.tail(self.imputed).read())

    def output_count(self) -> int:
        return len(self.tail(self.imputed).read())

    def wait_outputs(self, at_least: int, deadline_s: float = DEADLINE_S) -> Counter[bytes]:
        wait_until(lambda: self.output_count() >= at_least, f"{at_least} outputs", deadline_s)
        return self.outputs()

    def close(self) -> None:
        for worker in self.workers:
            if worker.alive():
                worker.process.kill()
                worker.process.wait()
        for tail in self._tails.values():
            tail.close()
        self._admin.delete_topics([self.dlq], request_timeout=30)


@pytest.fixture
def fault_stream(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], tmp_path: Path
) -> Iterator[FaultStream]:
    stream = FaultStream(kafka_settings, unique_topic, tmp_path)
    try:
        yield stream
    finally:
        stream.close()  # no worker process outlives its test


@pytest.fixture(scope="session")
def air_readings() -> Callable[..., list[Raw]]:
    """``air_readings(count, entities=50, prefix="station")``: keyed, encoded readings."""
    return build_air_readings


@pytest.fixture(scope="session")
def reference() -> Callable[[Sequence[Raw]], Counter[bytes]]:
    """``reference(readings)``: the outputs of an uninterrupted in-process run."""
    return reference_outputs


@pytest.fixture(scope="session")
def faults() -> Any:
    """Helpers the fault tests share (module functions and constants of this conftest)."""
    return SimpleNamespace(
        metric=metric,
        http_get=http_get,
        wait_until=wait_until,
        memory_kib=memory_kib,
        free_port=free_port,
        Worker=Worker,
        Tail=Tail,
        FaultStream=FaultStream,
        air_reading=air_reading,
        DEADLINE_S=DEADLINE_S,
        PARTITIONS=PARTITIONS,
        T0=T0,
    )


@pytest.fixture
def fault_report() -> Callable[..., faults_report.FaultRecord]:
    """``fault_report(fault, title, injected, checked, **figures)``: record and print."""

    def report(
        fault: str, title: str, injected: str, checked: str, **figures: Any
    ) -> faults_report.FaultRecord:
        section = figures.pop("section", "fault")
        entry = faults_report.record(fault, title, injected, checked, figures, section=section)
        print(f"{fault}: {json.dumps(entry.figures)}")
        return entry

    return report
