"""The monitor on a real broker: pairs out, drift to one request, restart without repeats."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from driftline.cli import main
from events import Actual, DemandReading, Message, SensorReading, codec_for, topics
from events.settings import KafkaSettings
from monitor import metrics
from monitor.evaluator import Evaluator, EvaluatorConfig
from monitor.join import Joiner, JoinPolicy
from monitor.service import MonitorService
from monitor.settings import MonitorSettings
from monitor.state import recover

# Generous bounds for a shared 2-core machine; a healthy run takes a few seconds.
TIMEOUT_S = 60.0
BASELINE = 2.0
PARTITIONS = 2  # entity topics: more than one, to exercise co-partitioning


def baselines(model: str, key: str | None, version: int) -> float | None:
    return BASELINE if version >= 1 else None


@pytest.fixture
def monitor_settings(unique_topic: Callable[..., str], tmp_path: Path) -> MonitorSettings:
    """Settings on topics of this test only, with small windows."""
    names = ("predictions", "shadow", "actuals", "sensor", "demand", "pairs")
    entity = {name: unique_topic(name, partitions=PARTITIONS) for name in names}
    model = {name: unique_topic(name) for name in ("health", "requests", "alerts")}
    return MonitorSettings(
        predictions_topic=entity["predictions"],
        # never the shared default: other tests write to predictions.shadow
        shadow_topic=entity["shadow"],
        actuals_topic=entity["actuals"],
        sensor_topic=entity["sensor"],
        demand_topic=entity["demand"],
        pairs_topic=entity["pairs"],
        health_topic=model["health"],
        requests_topic=model["requests"],
        alerts_topic=model["alerts"],
        group_id=f"monitor-{uuid.uuid4().hex[:8]}",
        lateness_s=600,
        count_window=100,
        min_pairs=50,
        evaluate_every_pairs=10,
        hysteresis_evaluations=3,
        recovery_horizon_s=3600,
        batch_max_wait_s=0.05,
        model_store=tmp_path / "store",
        instance_id="test",
    )


@contextmanager
def running(settings: MonitorSettings, kafka: KafkaSettings) -> Iterator[MonitorService]:
    """A monitor in a thread, yielded once ready; stopped (and its error raised) on exit."""
    service = MonitorService(settings, kafka, baselines)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            service.run()
        except BaseException as exc:  # re-raised in the test's thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name="monitor", daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT_S
    while not service.health.ready.wait(0.1):
        assert thread.is_alive(), f"the monitor died while starting: {failure}"
        assert time.monotonic() < deadline, "the monitor was not ready in time"
    try:
        yield service
    finally:
        service.stop()
        thread.join(TIMEOUT_S)
    assert not thread.is_alive()
    if failure:
        raise failure[0]


class Tail:
    """Every record of a topic from its beginning, decoded when a contract is given."""

    def __init__(self, kafka: KafkaSettings, topic: str, contract: str | None = None) -> None:
        self.codec = codec_for(contract) if contract else None
        self.records: list[Any] = []
        self.raw: list[Any] = []
        group = {"group.id": f"tail-{uuid.uuid4().hex}", "enable.auto.commit": False}
        self._consumer = Consumer(kafka.client_config() | group)
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, 0) for p in partitions])

    def until(self, count: int) -> list[Any]:
        """The records once there are at least ``count``."""
        deadline = time.monotonic() + TIMEOUT_S
        while len(self.raw) < count:
            assert time.monotonic() < deadline, f"only {len(self.raw)} of {count} record(s)"
            for message in self._consumer.consume(500, timeout=0.2):
                if message.error() is None:
                    self.raw.append(message)
                    if self.codec is not None:
                        self.records.append(self.codec.decode(message.value()))
        return self.records

    def more(self, wait_s: float = 1.0) -> list[Any]:
        """Records that arrive within ``wait_s`` (none expected: proves nothing more came)."""
        return [m for m in self._consumer.consume(10, timeout=wait_s) if m.error() is None]

    def close(self) -> None:
        self._consumer.close()


def produce(kafka: KafkaSettings, topic: str | None, messages: list[Message]) -> None:
    """Produce with the contract's codec and key, like every driftline client."""
    assert topic
    producer = Producer(kafka.producer_config())
    for message in messages:
        codec = codec_for(_contract_topic(message))
        producer.produce(topic, codec.encode(message), codec.key(message))
    assert producer.flush(30) == 0


def _contract_topic(message: Message) -> str:
    return {
        "Prediction": topics.PREDICTIONS,
        "Actual": topics.ACTUALS,
        "SensorReading": topics.READINGS_SENSOR,
        "DemandReading": topics.READINGS_DEMAND,
    }[type(message).__name__]


def demand(build: SimpleNamespace, key: str, numbers: range, mae: float) -> list[Message]:
    """Forecasts of one product with absolute error ``mae`` (alternating sign)."""
    return [
        build.prediction(
            n, entity=key, model="demand", key=key, metric="quantity",
            value=100.0 + (mae if n % 2 else -mae),
        )
        for n in numbers
    ]  # fmt: skip


def labels(build: SimpleNamespace, key: str, numbers: range) -> list[Message]:
    return [Actual(entity_id=key, ts=build.at(n), metric="quantity", value=100.0) for n in numbers]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_predictions_and_actuals_become_pairs(
    kafka_settings: KafkaSettings, monitor_settings: MonitorSettings, build: SimpleNamespace
) -> None:
    s = monitor_settings
    dlq = f"{topics.DLQ_PREFIX}{s.actuals_topic}"
    admin = AdminClient(kafka_settings.client_config())
    admin.create_topics([NewTopic(dlq, 1, 1)])[dlq].result(30)
    pairs, letters = Tail(kafka_settings, s.pairs_topic, topics.MONITOR_PAIRS), None
    try:
        with running(s, kafka_settings) as service:
            forecasts: list[Message] = [
                build.prediction(n, entity=f"m-{n % 2}", value=20.0 + n) for n in range(4)
            ]
            forecasts += [
                build.prediction(9, entity="m-0", pid="never-labelled"),
                build.prediction(1, entity="p-1", model="demand", metric="quantity", value=7.0),
                build.prediction(2, entity="m-1", kind="risk", metric=None, value=2.0),
            ]
            produce(kafka_settings, s.predictions_topic, forecasts)
            # the readings carry the actuals of the sequence forecasts; the one at 30
            # moves m-0's clock past 9 + 10 minutes of lateness, so "never-labelled"
            # expires. It is sent once the pairs are in: the monitor reads the topics in
            # no fixed order, and read before the forecasts of m-0 it would also expire
            # them (their actuals are then beyond the 15 minutes of buffered actuals).
            readings = [
                SensorReading(entity_id=f"m-{n % 2}", kind="machine", ts=build.at(n),
                              values={"temperature": 20.0, "pressure": 1.0})
                for n in (*range(4), 30)
            ]  # fmt: skip
            produce(kafka_settings, s.sensor_topic, readings[:-1])
            produce(
                kafka_settings,
                s.demand_topic,
                [DemandReading(product_id="p-1", ts=build.at(1), quantity=5.0)],
            )
            produce(
                kafka_settings,
                s.actuals_topic,
                [Actual(entity_id="m-1", ts=build.at(2), metric="risk", value=3.0)],
            )
            bad = Producer(kafka_settings.producer_config())
            bad.produce(s.actuals_topic, b'{"schema":1,"entity_id":"m-1"}', b"m-1")
            assert bad.flush(30) == 0

            found = pairs.until(6)
            produce(kafka_settings, s.sensor_topic, readings[-1:])
            assert {p.prediction_id: p.error for p in found} == {
                "seq-1-m-0-0": 0.0, "seq-1-m-1-1": 1.0, "seq-1-m-0-2": 2.0,
                "seq-1-m-1-3": 3.0, "demand-1-p-1-1": 2.0, "seq-1-m-1-2": -1.0,
            }  # fmt: skip
            assert {p.key() for p in pairs.raw} == {b"m-0", b"m-1", b"p-1"}
            letters = Tail(kafka_settings, dlq)
            letters.until(1)
            [letter] = letters.raw
            assert dict(letter.headers())["dlq.error.reason"] == b"missing_field"
            counted = metrics.DLQ_RECORDS.labels(s.actuals_topic, "missing_field")
            assert counted._value.get() == 1
            wait_until(lambda: service.joiner.pending == 0, "the unlabelled prediction to expire")
        [seq] = [state for state in service.evaluator.states() if state.model == "seq"]
        assert (seq.pairs, seq.expired) == (5, 1)
        assert seq.windows.coverage() == pytest.approx(5 / 6)
    finally:
        pairs.close()
        if letters is not None:
            letters.close()
        admin.delete_topics([dlq])


def test_a_quiet_entity_stops_pinning_the_committed_offset(
    kafka_settings: KafkaSettings, monitor_settings: MonitorSettings, build: SimpleNamespace
) -> None:
    s = monitor_settings.model_copy(update={"idle_expiry_s": 600.0})
    committed = Consumer(kafka_settings.client_config() | {"group.id": s.group_id})
    codec = codec_for(topics.READINGS_SENSOR)

    def offsets() -> dict[int, int]:
        asked = [TopicPartition(s.predictions_topic, p) for p in range(PARTITIONS)]
        return {tp.partition: tp.offset for tp in committed.committed(asked, timeout=10)}

    def busy_reading(n: int, later: timedelta) -> None:
        """A reading of the busy machine, its Kafka timestamp ``later`` than now."""
        reading = SensorReading(entity_id="busy", kind="machine", ts=build.at(n),
                                values={"temperature": 10.0})  # fmt: skip
        producer = Producer(kafka_settings.producer_config())
        stamp_ms = int((datetime.now(UTC) + later).timestamp() * 1000)
        # the partition number of the quiet machine's forecast: its label clock moves
        producer.produce(s.sensor_topic, codec.encode(reading), b"busy", partition=partition,
                         timestamp=stamp_ms)  # fmt: skip
        assert producer.flush(30) == 0

    pairs = Tail(kafka_settings, s.pairs_topic, topics.MONITOR_PAIRS)
    placed = Tail(kafka_settings, s.predictions_topic)
    try:
        with running(s, kafka_settings) as service:
            # The quiet machine sends no reading after its forecast; the busy one does.
            forecasts = [build.prediction(1, entity=e) for e in ("quiet", "busy")]
            produce(kafka_settings, s.predictions_topic, forecasts)
            placed.until(2)
            where = {m.key(): (m.partition(), m.offset()) for m in placed.raw}
            partition, offset = where[b"quiet"]
            end = sum(p == partition for p, _ in where.values())
            busy_reading(1, timedelta(0))
            pairs.until(1)
            wait_until(lambda: offsets()[partition] == offset, "a commit held at the quiet one")
            assert service.joiner.pending == 1
            busy_reading(2, timedelta(minutes=11))  # the label clock passes the bound
            wait_until(lambda: offsets()[partition] == end, "the commit past the quiet one")
            assert service.joiner.pending == 0
        [state] = service.evaluator.states()
        assert (state.pairs, state.expired) == (1, 1)
    finally:
        for tail in (pairs, placed):
            tail.close()
        committed.close()


def test_drift_goes_critical_with_exactly_one_request(
    kafka_settings: KafkaSettings, monitor_settings: MonitorSettings, build: SimpleNamespace
) -> None:
    s = monitor_settings
    pairs = Tail(kafka_settings, s.pairs_topic, topics.MONITOR_PAIRS)
    try:
        with running(s, kafka_settings):
            produce(
                kafka_settings,
                s.predictions_topic,
                demand(build, "sku-drift", range(150), mae=BASELINE * 1.4)
                + demand(build, "sku-ok", range(150), mae=BASELINE),
            )
            produce(
                kafka_settings,
                s.actuals_topic,
                labels(build, "sku-drift", range(150)) + labels(build, "sku-ok", range(150)),
            )
            pairs.until(300)
        # stopped: every output of every batch was flushed before its offsets were committed
    finally:
        pairs.close()
    requests = Tail(kafka_settings, s.requests_topic, topics.RETRAIN_REQUESTS)
    health = Tail(kafka_settings, s.health_topic, topics.MODEL_HEALTH)
    alerts = Tail(kafka_settings, s.alerts_topic, topics.ALERTS)
    try:
        [request] = requests.until(1)
        drifted = [h for h in health.until(30) if h.key == "sku-drift"]
        [alert] = alerts.until(1)
        for tail in (requests, alerts):  # nothing else arrives
            assert tail.more() == []
    finally:
        for tail in (requests, health, alerts):
            tail.close()
    assert (request.key, request.action) == ("sku-drift", "full_retrain")
    assert request.evidence["degradation"] == pytest.approx(0.4)
    # critical once K=3 evaluations (every 10 pairs) held it after 50 pairs
    first_critical = next(h for h in drifted if h.status == "critical")
    assert first_critical.pairs <= s.min_pairs + 3 * s.evaluate_every_pairs
    assert request.evidence["pairs"] == first_critical.pairs
    assert alert.type == "drift" and alert.entity_id == "sku-drift"

    runner = CliRunner()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "MONITOR_HEALTH_TOPIC": s.health_topic}  # fmt: skip
    result = runner.invoke(main, ["monitor", "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    statuses = {row["key"]: (row["status"], row["pairs"]) for row in json.loads(result.output)}
    assert statuses == {"sku-drift": ("critical", 100), "sku-ok": ("healthy", 100)}
    table = runner.invoke(main, ["monitor", "status"], env=env | {"COLUMNS": "160"})
    assert table.exit_code == 0 and "critical" in table.output and "sku-ok" in table.output


def test_restart_recovers_state_and_asks_once(
    kafka_settings: KafkaSettings, monitor_settings: MonitorSettings, build: SimpleNamespace
) -> None:
    s = monitor_settings
    pairs = Tail(kafka_settings, s.pairs_topic, topics.MONITOR_PAIRS)
    requests = Tail(kafka_settings, s.requests_topic, topics.RETRAIN_REQUESTS)
    try:
        with running(s, kafka_settings) as first:
            # 100 labelled forecasts, and 20 more whose labels come after the restart
            produce(kafka_settings, s.predictions_topic, demand(build, "sku", range(120), 3.0))
            produce(kafka_settings, s.actuals_topic, labels(build, "sku", range(100)))
            pairs.until(100)
            [before] = requests.until(1)
            wait_until(lambda: first.joiner.pending == 20, "the unlabelled forecasts")
            [state] = first.evaluator.states()
            figures = (state.pairs, state.hysteresis.status, state.windows.count_stats())

        with running(s, kafka_settings) as second:
            assert second.recovery is not None and second.recovery.pairs == 100
            [state] = second.evaluator.states()
            assert (state.pairs, state.hysteresis.status, state.windows.count_stats()) == figures
            produce(kafka_settings, s.actuals_topic, labels(build, "sku", range(100, 120)))
            pairs.until(120)
            produce(kafka_settings, s.predictions_topic, demand(build, "sku", range(120, 160), 3.0))
            produce(kafka_settings, s.actuals_topic, labels(build, "sku", range(120, 160)))
            pairs.until(160)
            wait_until(lambda: second.evaluator.states()[0].pairs == 160, "the last pairs")
        assert pairs.more() == []
        assert len({p.prediction_id for p in pairs.records}) == len(pairs.records) == 160
        assert requests.more() == []
        assert before.action == "full_retrain" and len(requests.records) == 1
    finally:
        pairs.close()
        requests.close()


def test_a_restart_replays_a_drift_handled_hours_ago_without_asking_again(
    kafka_settings: KafkaSettings, monitor_settings: MonitorSettings, build: SimpleNamespace
) -> None:
    s = monitor_settings.model_copy(update={"recovery_horizon_s": 6 * 3600.0, "cooldown_s": 3600.0})
    written = datetime.now(UTC) - timedelta(hours=3)
    drifting = [build.pair(n, BASELINE * 1.4 * (1 if n % 2 else -1)) for n in range(150)]
    # What the monitor decided three hours ago, over those pairs
    then = Evaluator(EvaluatorConfig.from_settings(s), baselines)
    for pair in drifting:
        then.add_pair(pair, written)
    [request] = then.take().requests
    at_ms = int(written.timestamp() * 1000)
    produce_at(kafka_settings, s.pairs_topic, topics.MONITOR_PAIRS, drifting, at_ms)
    produce_at(kafka_settings, s.requests_topic, topics.RETRAIN_REQUESTS, [request], at_ms)

    restarted = Evaluator(EvaluatorConfig.from_settings(s), baselines)
    joiner = Joiner(JoinPolicy.from_settings(s))
    recovery = recover(s, kafka_settings, joiner, restarted, datetime.now(UTC))
    assert (recovery.pairs, recovery.requests) == (150, 1)
    replayed = restarted.take()
    assert replayed.requests == []  # judged at the time of the pairs: in its own cooldown
    assert replayed.evaluations[-1].status == "critical"


def produce_at(
    kafka: KafkaSettings, topic: str, contract: str, records: list[Any], at_ms: int
) -> None:
    """``records`` written at ``at_ms`` (their CreateTime), keyed as the contract says."""
    codec = codec_for(contract)
    producer = Producer(kafka.producer_config())
    for record in records:
        producer.produce(topic, codec.encode(record), codec.key(record), timestamp=at_ms)
    assert producer.flush(TIMEOUT_S) == 0
