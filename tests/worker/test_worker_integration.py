"""The worker runtime on the real broker, with a passthrough pipeline.

Workers run as subprocesses (``.venv/bin/driftline worker`` with ``WORKER_*`` variables), as
in production. The pipeline is :class:`Passthrough` below (the subprocess imports this
module by name): one output per decodable reading whose value is the reading's
deterministic id, and the dead-letter record for anything else. Counting outputs by id
shows lost and duplicated readings exactly. Tests wait on readiness signals (``/readyz``,
output counts) with deadlines, never on fixed sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from worker_process import DEADLINE_S, Worker, free_port, http_get, wait_until, worker_env

from events import (
    ContractError,
    ModelUpdate,
    Prediction,
    SensorReading,
    codec_for,
    derive_id,
    read_dead_letter,
    topics,
)
from events.dlq import SourceRecord, dead_letter
from events.settings import KafkaSettings
from models.cache import ModelCache
from models.registry import Registry
from models.store import ModelStore
from worker.pipeline import ScoringPipeline
from worker.records import BatchResult, OutRecord
from worker.routes import StreamTopics
from worker.runner import build_runner
from worker.settings import WorkerSettings

HERE = Path(__file__).resolve().parent
PARTITIONS = 3
# A poison output is larger than its topic allows: the broker refuses it.
OVERSIZE_BYTES = 2_048
TOPIC_MAX_BYTES = "1024"
POISON = "poison"

Where = tuple[int, int]
Produced = Counter[tuple[str, bytes | None, bytes | None]]


# --- the pipeline the worker subprocesses run -----------------------------------------


class Passthrough:
    """One output per reading (value: its deterministic id); the DLQ for bad records.

    ``delay_s`` stands in for scoring cost per batch, so a test can act mid-stream. A
    reading of entity ``poison`` yields an output to the ``poison`` topic, which is too
    large for that topic: the broker refuses it.
    """

    def __init__(self, out: str, dlq: str, poison: str, delay_s: float = 0.0) -> None:
        self.out, self.dlq, self.poison, self.delay_s = out, dlq, poison, delay_s
        self.codec = codec_for("readings.sensor")

    def process(self, messages: Sequence[Any]) -> BatchResult:
        result = BatchResult()
        for message in messages:
            try:
                reading = self.codec.decode(message.value())
            except ContractError as exc:
                refused = dead_letter(SourceRecord.of(message), exc)
                result.records.append(
                    OutRecord(self.dlq, refused.key, refused.value, "dlq", refused.headers)
                )
                where = (message.topic(), exc.reason)
                result.dlq_reasons[where] = result.dlq_reasons.get(where, 0) + 1
                continue
            value = output_id(message.topic(), message.partition(), message.offset()).encode()
            if reading.entity_id == POISON:
                oversize = os.urandom(OVERSIZE_BYTES)  # incompressible: lz4 cannot shrink it
                result.records.append(OutRecord(self.poison, message.key(), oversize, "poison"))
                continue
            result.records.append(OutRecord(self.out, message.key(), value, "prediction"))
        if self.delay_s:
            time.sleep(self.delay_s)
        return result

    def warm(self, messages: Sequence[Any]) -> None:
        """Stateless: nothing to rebuild."""

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Stateless: nothing to drop."""

    def history_needed(self) -> int:
        return 0


def build_pipeline(settings: Any, cache: Any) -> Passthrough:
    """``WORKER_PIPELINE=test_worker_integration:build_pipeline`` (with this dir on PYTHONPATH)."""
    return Passthrough(
        os.environ["TEST_OUT"],
        os.environ["TEST_DLQ"],
        os.environ["TEST_POISON"],
        float(os.environ.get("TEST_DELAY_S", 0)),
    )


def output_id(topic: str, partition: int, offset: int) -> str:
    return derive_id(topic, partition, offset, "passthrough")


# --- helpers --------------------------------------------------------------------------


class Stream:
    """Topics of one test, readings produced to them, and the outputs read back."""

    def __init__(self, kafka: KafkaSettings, make_topic: Callable[..., str], tmp: Path) -> None:
        self.kafka = kafka
        self.tmp = tmp
        self.input = make_topic("readings", partitions=PARTITIONS)
        self.out = make_topic("out", partitions=PARTITIONS)
        # max.message.bytes bounds a whole record batch: only the poison output goes here.
        self.poison = make_topic("poison", config={"max.message.bytes": TOPIC_MAX_BYTES})
        self.dlq = make_topic("dlq", partitions=PARTITIONS)
        self.updates = make_topic("updates")
        self.alerts = make_topic("alerts")
        self.group = f"workers-{uuid.uuid4().hex[:8]}"
        self.valid: list[Where] = []
        self.refused: dict[Where, str] = {}
        self.workers: list[Worker] = []
        self._readers: dict[str, Consumer] = {}
        self._seen: dict[str, list[Any]] = {}

    def env(self, name: str, **extra: str) -> dict[str, str]:
        return worker_env(
            self.kafka.bootstrap_servers,
            name,
            inputs=[self.input],
            group=self.group,
            pipeline="test_worker_integration:build_pipeline",
            pipeline_dir=HERE,
            updates=self.updates,
            alerts=self.alerts,
            store=self.tmp / "store",
            TEST_OUT=self.out,
            TEST_DLQ=self.dlq,
            TEST_POISON=self.poison,
            **extra,
        )

    def start(self, name: str, args: Sequence[str] = (), **extra: str) -> Worker:
        worker = Worker(self.env(name, **extra), self.tmp / f"{name}.log", args)
        self.workers.append(worker)
        return worker

    def produce(
        self, count: int, entity: str = "machine", bad: Sequence[bytes | None] = ()
    ) -> None:
        """``count`` valid readings over 30 entities, then the ``bad`` values."""
        codec = codec_for("readings.sensor")
        start = datetime(2024, 5, 1, tzinfo=UTC)
        valid: list[Where] = []
        producer = Producer({**self.kafka.client_config(), "linger.ms": 5})

        def record(target: list[Where]) -> Callable[[Any, Any], None]:
            def on_delivery(error: Any, message: Any) -> None:
                assert error is None, error
                target.append((message.partition(), message.offset()))

            return on_delivery

        for i in range(count):
            key = f"{entity}-{i % 30}"
            reading = SensorReading(
                entity_id=key if entity != POISON else POISON,
                kind="machine",
                ts=start + timedelta(minutes=i),
                values={"temperature": 60.0 + i % 17, "vibration": None},
            )
            producer.produce(
                self.input, codec.encode(reading), key.encode(), on_delivery=record(valid)
            )
            if i % 1_000 == 0:
                producer.poll(0)
        refused: list[Where] = []
        for value in bad:
            producer.produce(self.input, value, b"bad", on_delivery=record(refused))
        assert producer.flush(DEADLINE_S) == 0
        self.valid.extend(valid)
        self.refused.update(dict.fromkeys(refused, ""))

    def expected_ids(self) -> set[str]:
        return {output_id(self.input, p, o) for p, o in self.valid}

    def read(self, topic: str) -> list[Any]:
        """Every record of ``topic`` so far (read_committed), accumulated across calls."""
        if topic not in self._readers:
            reader = Consumer(
                {
                    **self.kafka.client_config(),
                    "group.id": f"reader-{uuid.uuid4().hex}",
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                }
            )
            described = reader.list_topics(topic, timeout=10).topics[topic].partitions
            reader.assign([TopicPartition(topic, p, 0) for p in described])
            self._readers[topic], self._seen[topic] = reader, []
        # One poll per call: a reader that keeps up with a running worker must still return.
        batch = self._readers[topic].consume(10_000, 0.2)
        self._seen[topic].extend(m for m in batch if m.error() is None)
        return self._seen[topic]

    def produced(self, topics: Sequence[str]) -> Produced:
        """Every record of ``topics`` so far, counted by (topic, key, value)."""
        return Counter((t, m.key(), m.value()) for t in topics for m in self.read(t))

    def output_ids(self) -> Counter[str]:
        return Counter(m.value()[:32].decode() for m in self.read(self.out))

    def wait_outputs(self, at_least: int) -> Counter[str]:
        wait_until(lambda: len(self.output_ids()) >= at_least, f"{at_least} outputs")
        return self.output_ids()

    def committed(self) -> dict[int, int]:
        probe = Consumer({**self.kafka.client_config(), "group.id": self.group})
        try:
            asked = [TopicPartition(self.input, p) for p in range(PARTITIONS)]
            return {tp.partition: tp.offset for tp in probe.committed(asked, timeout=10)}
        finally:
            probe.close()

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
        for reader in self._readers.values():
            reader.close()


@pytest.fixture
def stream(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], tmp_path: Path
) -> Iterator[Stream]:
    created = Stream(kafka_settings, unique_topic, tmp_path)
    try:
        yield created
    finally:
        created.close()  # no worker process outlives its test


# --- tests ----------------------------------------------------------------------------


def test_every_reading_gets_one_output_and_bad_records_go_to_the_dlq(stream: Stream) -> None:
    bad = [b"not json", b'{"schema":1,"entity_id":"m-1"}', None]
    stream.produce(300, bad=bad)
    worker = stream.start("clean-0")
    worker.wait_ready()
    outputs = stream.wait_outputs(300)
    wait_until(lambda: len(stream.read(stream.dlq)) >= len(bad), "dead letters")

    assert set(outputs) == stream.expected_ids()
    assert sum(outputs.values()) == 300  # no duplicates in a clean run
    letters = [read_dead_letter(m.key(), m.value(), m.headers()) for m in stream.read(stream.dlq)]
    assert sorted(d.reason for d in letters) == ["empty", "invalid_json", "missing_field"]
    assert {(d.source.partition, d.source.offset) for d in letters} == set(stream.refused)
    assert {d.source.topic for d in letters} == {stream.input}

    status, body = http_get(worker.port, "/healthz")
    assert status == 200 and json.loads(body)["alive"] is True
    status, body = http_get(worker.port, "/metrics")
    assert (
        f'driftline_worker_records_consumed_total{{topic="{stream.input}"}} 303.0' in body.decode()
    )
    assert worker.stop(signal.SIGTERM) == 0
    ends = {p: 0 for p in range(PARTITIONS)}
    for partition, offset in [*stream.valid, *stream.refused]:
        ends[partition] = max(ends[partition], offset + 1)
    assert stream.committed() == ends  # a graceful stop commits everything it acknowledged


def test_offsets_are_committed_only_for_acknowledged_outputs(stream: Stream) -> None:
    stream.produce(60)
    worker = stream.start("ack-0")
    stream.wait_outputs(60)
    stream.produce(1, entity=POISON)  # its output is refused by the broker
    poison_partition, poison_offset = stream.valid[-1]
    stream.produce(30)
    assert worker.process.wait(DEADLINE_S) == 1  # a delivery failure stops the worker loudly
    assert f"not acknowledged (1 to {stream.poison})" in worker.log.read_text()

    committed = stream.committed()
    assert committed[poison_partition] <= poison_offset
    acknowledged = set(stream.output_ids())
    for partition, offset in stream.valid:
        if offset < committed[partition]:
            assert output_id(stream.input, partition, offset) in acknowledged


def test_exactly_once_outputs_are_visible_to_read_committed_once(stream: Stream) -> None:
    stream.produce(300, bad=[b"{}"])
    worker = stream.start("eos-0", args=["--guarantee", "exactly_once"])
    outputs = stream.wait_outputs(300)
    assert set(outputs) == stream.expected_ids()
    assert max(outputs.values()) == 1
    assert worker.stop(signal.SIGTERM) == 0
    assert sum(stream.committed().values()) == 301


def test_sigterm_mid_stream_then_restart_loses_and_repeats_nothing(stream: Stream) -> None:
    slow = {"WORKER_BATCH_MAX_RECORDS": "20", "TEST_DELAY_S": "0.02"}
    stream.produce(1_500)
    first = stream.start("term-0", **slow)
    stream.wait_outputs(200)
    assert first.stop(signal.SIGTERM) == 0
    assert len(stream.output_ids()) < 1_500, "the worker finished before the stop"
    stream.start("term-0", **slow)
    outputs = stream.wait_outputs(1_500)
    assert set(outputs) == stream.expected_ids()
    assert max(outputs.values()) == 1  # the graceful stop committed its acknowledged batches


@pytest.mark.fault
def test_exactly_once_survives_sigkill_without_duplicates(stream: Stream) -> None:
    slow = {"WORKER_BATCH_MAX_RECORDS": "20", "TEST_DELAY_S": "0.02"}
    stream.produce(1_200)
    first = stream.start("eos-kill", args=["--guarantee", "exactly_once"], **slow)
    stream.wait_outputs(200)
    first.stop(signal.SIGKILL)
    # The same instance id means the same transactional.id: the restart aborts the
    # transaction the killed process left open and fences it.
    stream.start("eos-kill", args=["--guarantee", "exactly_once"], **slow)
    outputs = stream.wait_outputs(1_200)
    assert set(outputs) == stream.expected_ids()
    assert max(outputs.values()) == 1


@pytest.mark.fault
def test_a_survivor_takes_over_the_partitions_of_a_killed_worker(
    stream: Stream, record_property: Callable[[str, object], None]
) -> None:
    slow = {"WORKER_BATCH_MAX_RECORDS": "20", "TEST_DELAY_S": "0.02"}
    doomed = stream.start("pair-0", **slow)
    doomed.wait_ready()
    survivor = stream.start("pair-1", **slow)
    survivor.wait_ready()  # owns at least one partition: the group is shared
    stream.produce(1_500)
    stream.wait_outputs(300)
    doomed.stop(signal.SIGKILL)
    outputs = stream.wait_outputs(1_500)
    assert set(outputs) == stream.expected_ids()  # no reading lost
    duplicates = sum(outputs.values()) - len(outputs)
    record_property("duplicates_after_sigkill", duplicates)
    print(f"duplicates after SIGKILL (at least once): {duplicates}")
    assert survivor.stop(signal.SIGTERM) == 0


def test_processes_share_the_group_and_stop_together(stream: Stream) -> None:
    base = free_port(count=2)
    stream.produce(300)
    supervisor = stream.start("multi", args=["--processes", "2"], WORKER_HTTP_PORT=str(base))
    supervisor.wait_ready(base)
    supervisor.wait_ready(base + 1)
    outputs = stream.wait_outputs(300)
    assert set(outputs) == stream.expected_ids()
    assert supervisor.stop(signal.SIGTERM) == 0
    assert http_get(base, "/healthz")[0] == 0 and http_get(base + 1, "/healthz")[0] == 0


# --- warm-up, in process --------------------------------------------------------------


class Recorder:
    """A pipeline that records warm and process calls (offsets per partition, in order)."""

    def __init__(self, expected: int) -> None:
        self.calls: list[tuple[str, list[Where]]] = []
        self.processed = 0
        self.expected = expected
        self.done = threading.Event()

    def process(self, messages: Sequence[Any]) -> BatchResult:
        self.calls.append(("process", [(m.partition(), m.offset()) for m in messages]))
        self.processed += len(messages)
        if self.processed >= self.expected:
            self.done.set()
        return BatchResult()

    def warm(self, messages: Sequence[Any]) -> None:
        self.calls.append(("warm", [(m.partition(), m.offset()) for m in messages]))

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        self.calls.append(("forget", []))

    def history_needed(self) -> int:
        return 1


def test_assignment_feeds_history_to_the_pipeline_before_the_first_batch(
    stream: Stream, tmp_path: Path
) -> None:
    stream.produce(90)
    ends = {p: 1 + max(o for q, o in stream.valid if q == p) for p in range(PARTITIONS)}
    unprocessed = 5  # per partition, after the committed offset
    committed = {p: end - unprocessed for p, end in ends.items()}
    committer = Consumer({**stream.kafka.client_config(), "group.id": stream.group})
    committer.commit(
        offsets=[TopicPartition(stream.input, p, o) for p, o in committed.items()],
        asynchronous=False,
    )
    committer.close()
    recorder = Recorder(expected=unprocessed * PARTITIONS)
    settings = WorkerSettings.model_validate(
        {
            "input_topics": [stream.input],
            "group_id": stream.group,
            "warmup_records": 10,
            "updates_topic": stream.updates,
            "alerts_topic": stream.alerts,
            "model_store": tmp_path / "store",
            "http_port": 0,
            "instance_id": "warm-0",
        }
    )
    runner = build_runner(settings, stream.kafka, factory=lambda s, c: recorder)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        assert recorder.done.wait(DEADLINE_S), "the unprocessed readings were not consumed"
    finally:
        runner.stop()
        thread.join(DEADLINE_S)
    assert not thread.is_alive()

    first_batch = next(i for i, (kind, _) in enumerate(recorder.calls) if kind == "process")
    warmed = [w for kind, batch in recorder.calls[:first_batch] if kind == "warm" for w in batch]
    assert all(kind != "warm" for kind, _ in recorder.calls[first_batch:])
    for p in range(PARTITIONS):
        assert sorted(o for q, o in warmed if q == p) == list(
            range(committed[p] - 10, committed[p])
        )
    processed = [w for kind, batch in recorder.calls if kind == "process" for w in batch]
    assert sorted(processed) == [
        (p, o) for p in range(PARTITIONS) for o in range(committed[p], ends[p])
    ]


# --- with the real scoring pipeline ---------------------------------------------------


class Slowed:
    """Delays a pipeline's batches, standing in for heavier models, so tests act mid-stream."""

    def __init__(self, pipeline: Any, delay_s: float) -> None:
        self.pipeline, self.delay_s = pipeline, delay_s

    def process(self, messages: Sequence[Any]) -> BatchResult:
        result: BatchResult = self.pipeline.process(messages)
        time.sleep(self.delay_s)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)


def scoring_topics(inputs: Sequence[str]) -> StreamTopics:
    return StreamTopics(
        sensor=tuple(inputs),
        demand=(),
        predictions=os.environ["TEST_OUT"],
        alerts=os.environ["TEST_ALERTS"],
        imputed=os.environ["TEST_IMPUTED"],
    )


def build_scoring_pipeline(settings: Any, cache: Any) -> Any:
    """The real ScoringPipeline reading this test's sensor topic and writing its topics."""
    pipeline = ScoringPipeline(
        ModelStore(settings.model_store), cache, streams=scoring_topics(settings.input_topics)
    )
    delay = float(os.environ.get("TEST_DELAY_S", 0))
    return Slowed(pipeline, delay) if delay else pipeline


@pytest.fixture
def scoring(
    stream: Stream,
    unique_topic: Callable[..., str],
    store_dir: Path,
    worker_data: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Stream, dict[str, str], list[str], Produced]:
    """Machine readings on the stream's input, the worker environment of the real pipeline,
    its output topics and the outputs of an uninterrupted in-process run (the reference)."""
    outputs = [stream.out, stream.alerts, unique_topic("imputed", partitions=PARTITIONS)]
    # The worker checks at start that the dead-letter topic of its input exists.
    dead = f"dlq.{stream.input}"
    admin = AdminClient(stream.kafka.client_config())
    admin.create_topics([NewTopic(dead, PARTITIONS, 1)])[dead].result(DEADLINE_S)
    env = {
        "WORKER_PIPELINE": "test_worker_integration:build_scoring_pipeline",
        "WORKER_MODEL_STORE": str(store_dir),
        "TEST_ALERTS": outputs[1],
        "TEST_IMPUTED": outputs[2],
    }
    for name, value in {**env, "TEST_OUT": stream.out}.items():
        monkeypatch.setenv(name, value)  # scoring_topics() reads them in this process too
    producer = Producer(stream.kafka.client_config())
    for record in worker_data.sensor_records():
        producer.produce(stream.input, record.value(), record.key())
    assert producer.flush(DEADLINE_S) == 0
    # The reference scores the records as consumed: same topic, partitions and offsets.
    count = len(worker_data.sensor_records())
    wait_until(lambda: len(stream.read(stream.input)) == count, "the readings")
    consumed = list(stream.read(stream.input))
    store = ModelStore(store_dir)
    reference = ScoringPipeline(
        store, ModelCache(store, worker_data.CACHE_BYTES), streams=scoring_topics([stream.input])
    )
    result = worker_data.run(reference, consumed, batch=100)
    expected: Produced = Counter((r.topic, r.key, r.value) for r in result.records)
    return stream, env, outputs, expected


def test_the_scoring_pipeline_on_the_broker_gives_the_reference_outputs(
    scoring: tuple[Stream, dict[str, str], list[str], Produced],
) -> None:
    stream, env, outputs, expected = scoring
    total = sum(expected.values())
    worker = stream.start("score-0", **env)
    wait_until(lambda: sum(stream.produced(outputs).values()) >= total, f"{total} outputs")
    assert stream.produced(outputs) == expected  # every output, none twice
    assert worker.stop(signal.SIGTERM) == 0


def test_a_reading_stamped_days_after_its_record_is_refused_and_its_entity_scores_on(
    stream: Stream, store_dir: Path, worker_data: Any
) -> None:
    """The check reads the timestamp the broker stored with the record (CreateTime)."""
    codec = codec_for(topics.READINGS_SENSOR)
    now = datetime.now(UTC)
    readings = [
        SensorReading(entity_id="m-clock", kind="machine", ts=now + ahead,
                      values={"temperature": 20.0, "vibration": 1.0})
        for ahead in (timedelta(days=2), timedelta(minutes=-1))
    ]  # fmt: skip
    producer = Producer(stream.kafka.client_config())
    for reading in readings:
        producer.produce(stream.input, codec.encode(reading), codec.key(reading))
    assert producer.flush(DEADLINE_S) == 0
    wait_until(lambda: len(stream.read(stream.input)) == 2, "the readings")
    store = ModelStore(store_dir)
    pipeline = ScoringPipeline(
        store,
        ModelCache(store, worker_data.CACHE_BYTES),
        streams=StreamTopics(sensor=(stream.input,), demand=()),
    )
    result = pipeline.process(stream.read(stream.input))
    assert result.dlq_reasons == {(stream.input, "future_timestamp"): 1}
    assert result.stale == {}  # the reading after it, a minute old, is not refused as stale
    assert {r.kind for r in result.records} == {"dlq", "prediction"}


def test_restart_warmed_on_assignment_gives_the_outputs_of_an_uninterrupted_run(
    scoring: tuple[Stream, dict[str, str], list[str], Produced],
) -> None:
    stream, env, outputs, expected = scoring
    total = sum(expected.values())
    slow = {**env, "WORKER_BATCH_MAX_RECORDS": "10", "TEST_DELAY_S": "0.05"}
    first = stream.start("score-1", **slow)
    wait_until(lambda: sum(stream.produced(outputs).values()) >= total // 4, "some outputs")
    assert first.stop(signal.SIGTERM) == 0
    assert sum(stream.produced(outputs).values()) < total, "finished before the stop"
    stream.start("score-1", **slow)
    wait_until(lambda: sum(stream.produced(outputs).values()) >= total, f"{total} outputs")
    # Identical bytes: the restarted worker's windows were rebuilt from the history read
    # back on assignment; nothing was lost or repeated across the stop.
    assert stream.produced(outputs) == expected


def test_a_promotion_on_model_updates_switches_the_served_version(
    scoring: tuple[Stream, dict[str, str], list[str], Produced],
    registry: Registry,
    worker_data: Any,
) -> None:
    stream, env, outputs, expected = scoring
    worker = stream.start("swap-0", **env)
    wait_until(lambda: sum(stream.produced(outputs).values()) >= sum(expected.values()), "outputs")
    version = worker_data.train(
        registry, "maintenance", worker_data.MAINTENANCE, worker_data.history(seed=5)
    )
    registry.promote("maintenance", version)
    update = ModelUpdate(
        model="maintenance", version=version, action="promoted", ts=datetime.now(UTC)
    )
    codec = codec_for("model.updates")
    producer = Producer(stream.kafka.client_config())
    producer.produce(stream.updates, codec.encode(update), codec.key(update))
    assert producer.flush(DEADLINE_S) == 0
    swapped = 'driftline_worker_model_swaps_total{model="maintenance",outcome="swapped"} 1.0'
    wait_until(lambda: swapped in http_get(worker.port, "/metrics")[1].decode(), "the swap")

    seen = len(stream.read(stream.out))
    later = worker_data.machines(periods=120)
    newer = later[later["ts"] > worker_data.machines()["ts"].max()]
    for record in worker_data.sensor_records(newer):
        producer.produce(stream.input, record.value(), record.key())
    assert producer.flush(DEADLINE_S) == 0
    predictions_codec = codec_for("predictions")

    def risk_versions() -> Counter[int]:
        """Versions of the maintenance model in the risk predictions of the new readings."""
        fresh = stream.read(stream.out)[seen:]
        decoded: list[Prediction] = [predictions_codec.decode(m.value()) for m in fresh]
        return Counter(p.version for p in decoded if p.model == "maintenance")

    wait_until(lambda: sum(risk_versions().values()) >= len(newer), "risk of the new readings")
    assert set(risk_versions()) == {version}
    assert worker.stop(signal.SIGTERM) == 0
