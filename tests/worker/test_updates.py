"""Hot swaps driven by model.updates: unit tests with a fake cache, then the real broker.

On the broker: a promotion swaps the cached model, a rollback swaps it back, and a version
whose files were tampered with is refused - the old version keeps serving and a ``model``
alert is published.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions
from scale_model import ScaleModel

from events import Alert, ModelUpdate, codec_for, topics
from events.dlq import SourceRecord
from events.lifecycle import UpdateAction
from events.settings import KafkaSettings
from models.cache import ChallengerSync, ModelCache
from models.registry import Registry
from models.registry_errors import IntegrityError
from models.versions import LoadedModel
from worker import metrics
from worker import updates as updates_module
from worker.settings import WorkerSettings
from worker.updates import (
    MAX_RETRY_S,
    RETRY_S,
    AlertPublisher,
    ModelUpdates,
    Retries,
    model_alert,
    parse_model_key,
)

# Every broker round trip here is local; 30 s flags a broken broker, not a slow one.
DEADLINE_S = 30.0


def update(version: int, action: UpdateAction = "promoted", key: str | None = "p-1") -> ModelUpdate:
    return ModelUpdate(
        model="demand", key=key, version=version, action=action, ts=datetime.now(UTC)
    )


SOURCE = SourceRecord("model.updates", 0, 41, b"demand/p-1", b"{}")


class FakeCache:
    def __init__(self, error: Exception | None = None, cached: bool = True) -> None:
        self.error = error
        self.cached = cached
        self.champion = 1  # what swap(version=None) serves
        self.swaps: list[tuple[str, str | None, Any, bool]] = []
        self.synced: list[list[tuple[str, str | None]]] = []
        self.sync_failures: dict[tuple[str, str | None], Exception] = {}
        self.sync_changes: dict[tuple[str, str | None], int | None] = {}

    def swap(
        self,
        name: str,
        key: str | None = None,
        version: Any = None,
        warmup: Any = None,
        *,
        load_if_absent: bool = True,
    ) -> Any:
        self.swaps.append((name, key, version, load_if_absent))
        if self.error is not None:
            raise self.error
        if not self.cached:
            return None
        return _Loaded(self.champion if version is None else int(version))

    def peek(self, name: str, key: str | None = None) -> Any:
        return _Loaded(1)

    def get(self, name: str, key: str | None = None) -> Any:
        return _Loaded(1)

    def sync_challengers(self, keys: Any = ()) -> ChallengerSync:
        self.synced.append(list(keys))
        return ChallengerSync(changed=dict(self.sync_changes), failed=dict(self.sync_failures))

    def served(self) -> dict[tuple[str, str | None], int]:
        return {("demand", "p-1"): 1}

    def wait_for_loads(self) -> None:
        pass


class _Loaded:
    def __init__(self, version: int) -> None:
        self.version = version


def fake_updates(cache: FakeCache) -> tuple[ModelUpdates, list[Alert]]:
    alerts: list[Alert] = []
    return ModelUpdates("model.updates", cache, lambda: None, alerts.append, "w-0"), alerts


def test_a_promotion_swaps_cached_keys_only_and_asks_for_a_refresh() -> None:
    cache = FakeCache()
    updates, alerts = fake_updates(cache)
    cache.champion = 2
    assert updates.apply(update(2), SOURCE) == "swapped"
    assert cache.swaps == [("demand", "p-1", None, False)]  # the store's champion
    cache.champion = 3
    assert updates.apply(update(3), SOURCE) == "swapped"
    assert updates.refreshes() == [("demand", "p-1")]  # once, however many updates
    assert updates.refreshes() == []
    assert alerts == []
    assert metrics.MODEL_VERSION.labels("demand", "p-1")._value.get() == 3


def test_an_update_read_after_a_rollback_does_not_bring_its_version_back() -> None:
    # v2 was promoted, then rolled back to v1 before this instance read the promotion:
    # the store's alias already names v1 again, and v1 keeps serving.
    cache = FakeCache()
    updates, alerts = fake_updates(cache)
    assert updates.apply(update(2), SOURCE) == "swapped"
    assert metrics.MODEL_VERSION.labels("demand", "p-1")._value.get() == 1
    assert updates.apply(update(1, "rolled_back"), SOURCE) == "swapped"
    assert metrics.MODEL_VERSION.labels("demand", "p-1")._value.get() == 1
    assert [version for _, _, version, _ in cache.swaps] == [None, None]
    assert alerts == []


def test_a_champion_changed_without_an_update_is_served_at_the_next_alias_check() -> None:
    cache = FakeCache()
    updates, alerts = fake_updates(cache)
    updates.check_champions(time.monotonic())
    assert cache.swaps == []  # not positioned yet: the catch-up does it
    updates.positioned.set()
    updates.check_champions(time.monotonic())
    assert updates.refreshes() == []  # the store still names v1
    cache.champion = 2  # e.g. `driftline models promote --no-announce`
    updates.check_champions(time.monotonic())
    assert metrics.MODEL_VERSION.labels("demand", "p-1")._value.get() == 2
    assert updates.refreshes() == [("demand", "p-1")]
    swaps = len(cache.swaps)
    updates.retries.failed(("demand", "p-1"), time.monotonic())
    updates.check_champions(time.monotonic())
    assert len(cache.swaps) == swaps  # a key waiting for its retry keeps its schedule
    assert alerts == []


def test_a_key_that_is_not_cached_is_left_to_the_next_lazy_load() -> None:
    updates, _ = fake_updates(FakeCache(cached=False))
    assert updates.apply(update(2), SOURCE) == "not_cached"
    assert updates.refreshes() == [("demand", "p-1")]


def test_a_failed_load_keeps_the_old_version_and_alerts() -> None:
    cache = FakeCache(error=IntegrityError("demand[p-1] v2: model.json sha256 mismatch"))
    updates, alerts = fake_updates(cache)
    failed = metrics.MODEL_SWAPS.labels("demand", "failed")
    before = failed._value.get()
    assert updates.apply(update(2), SOURCE) == "failed"
    assert failed._value.get() == before + 1
    assert updates.refreshes() == []  # nothing changed for the pipeline
    [alert] = alerts
    assert (alert.type, alert.model, alert.key, alert.version) == ("model", "demand", "p-1", 2)
    assert alert.entity_id == "p-1"
    assert alert.message is not None and "v1 keeps serving" in alert.message
    assert "sha256 mismatch" in alert.message


def test_a_failed_swap_is_tried_again_against_the_champion_with_growing_delays() -> None:
    cache = FakeCache(error=OSError("store unreachable"))
    updates, alerts = fake_updates(cache)
    started = time.monotonic()
    assert updates.apply(update(2), SOURCE) == "failed"
    assert len(alerts) == 1
    updates.retry_swaps(started)  # not due yet
    assert len(cache.swaps) == 1

    failed = metrics.MODEL_SWAPS.labels("demand", "failed")
    before = failed._value.get()
    updates.retry_swaps(started + RETRY_S + 1)
    assert cache.swaps[-1] == ("demand", "p-1", None, False)  # the champion of now
    assert failed._value.get() == before + 1 and len(alerts) == 1  # counted, not alerted
    updates.retry_swaps(started + RETRY_S + 1 + RETRY_S)  # the delay doubled
    assert len(cache.swaps) == 2

    cache.error, cache.champion = None, 3  # the store is back; v3 was promoted meanwhile
    updates.retry_swaps(started + 10 * MAX_RETRY_S)
    assert cache.swaps[-1] == ("demand", "p-1", None, False)
    assert updates.refreshes() == [("demand", "p-1")]
    assert metrics.MODEL_VERSION.labels("demand", "p-1")._value.get() == 3
    assert updates.retries.keys() == []
    updates.retry_swaps(started + 100 * MAX_RETRY_S)
    assert len(cache.swaps) == 3  # nothing left to retry


def test_an_update_that_succeeds_clears_the_retry_of_its_key() -> None:
    cache = FakeCache(error=OSError("store unreachable"))
    updates, _ = fake_updates(cache)
    assert updates.apply(update(2), SOURCE) == "failed"
    cache.error = None
    assert updates.apply(update(3), SOURCE) == "swapped"
    assert updates.retries.keys() == []


def test_retry_delays_double_up_to_the_cap_and_start_over_for_a_new_cause() -> None:
    retries = Retries(first_s=5.0, max_s=12.0)
    key = ("demand", "p-1")
    assert [retries.failed(key, 0.0) for _ in range(4)] == [5.0, 10.0, 12.0, 12.0]
    assert retries.due(11.9) == [] and retries.due(12.0) == [key]
    assert retries.failed(key, 0.0, again=False) == 5.0
    retries.succeeded(key)
    assert retries.keys() == []


def test_a_challenger_that_failed_to_load_is_synced_again_at_a_later_check() -> None:
    cache = FakeCache()
    cache.sync_failures[("demand", "p-1")] = IntegrityError("broken")
    updates, _ = fake_updates(cache)
    assert updates.apply(update(4, "challenger"), SOURCE) == "failed"
    now = time.monotonic()
    assert updates.challenger_retries.due(now + RETRY_S) == [("demand", "p-1")]
    cache.sync_failures.clear()
    cache.sync_changes[("demand", "p-1")] = 4
    updates._next_alias_check = 0.0
    updates._housekeeping(consumer=None, now=now + RETRY_S)
    assert cache.synced[-1] == [("demand", "p-1")]
    assert updates.challenger_retries.keys() == []
    assert updates.refreshes() == [("demand", "p-1")]  # the pipeline notes its window


class ScriptedConsumer:
    """A consumer of one partition whose polls return the given messages, then stop."""

    def __init__(self, polls: list[Any], stop: threading.Event) -> None:
        self.polls = polls
        self.stop = stop
        self.closed = False

    def list_topics(self, topic: str, timeout: float) -> Any:
        partition = SimpleNamespace(id=0)
        described = SimpleNamespace(error=None, partitions={0: partition})
        return SimpleNamespace(topics={topic: described})

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, 0

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def poll(self, timeout: float) -> Any:
        if not self.polls:
            self.stop.set()
            return None
        return self.polls.pop(0)

    def close(self) -> None:
        self.closed = True


class ErrorMessage:
    def __init__(self, error: KafkaError) -> None:
        self._error = error

    def error(self) -> KafkaError:
        return self._error


def run_with_polls(polls: list[Any]) -> ModelUpdates:
    updates, _ = fake_updates(FakeCache())
    consumer = ScriptedConsumer(polls, updates._stop)
    updates._make_consumer = lambda: consumer
    updates._run()
    assert consumer.closed
    return updates


def test_polling_errors_are_counted_and_the_thread_goes_on() -> None:
    transport = KafkaError(KafkaError._TRANSPORT)
    errors = metrics.UPDATES_ERRORS.labels(transport.name())
    before = errors._value.get()
    updates = run_with_polls([ErrorMessage(transport), ErrorMessage(transport)])
    assert errors._value.get() == before + 2
    assert updates.error is None


def test_a_fatal_polling_error_stops_the_thread() -> None:
    fatal = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    updates = run_with_polls([ErrorMessage(fatal)])
    assert isinstance(updates.error, KafkaException)


def test_a_challenger_update_loads_the_challenger_and_swaps_no_champion() -> None:
    cache = FakeCache()
    updates, _ = fake_updates(cache)
    assert updates.apply(update(4, "challenger"), SOURCE) == "challenger"
    assert cache.swaps == [] and cache.synced == [[("demand", "p-1")]]
    assert updates.refreshes() == [("demand", "p-1")]
    # a promotion swaps the champion and reads the key's challenger alias again
    assert updates.apply(update(4), SOURCE) == "swapped"
    assert cache.synced[-1] == [("demand", "p-1")]


def test_a_challenger_that_cannot_be_loaded_counts_as_failed() -> None:
    cache = FakeCache()
    cache.sync_failures[("demand", "p-1")] = IntegrityError("broken")
    updates, _ = fake_updates(cache)
    assert updates.apply(update(4, "challenger"), SOURCE) == "failed"
    assert updates.refreshes() == []


def test_every_instance_derives_the_same_alert_id_for_one_update() -> None:
    error = IntegrityError("broken")
    first = model_alert(update(2), SOURCE, error, "host-a", "v1 keeps serving")
    second = model_alert(update(2), SOURCE, error, "host-b", "v1 keeps serving")
    assert first.alert_id == second.alert_id
    codec_for(topics.ALERTS).encode(first)  # a valid contract


def test_model_keys_parse_from_settings() -> None:
    assert parse_model_key("demand/p-1") == ("demand", "p-1")
    assert parse_model_key("anomaly") == ("anomaly", None)


# --- on the broker ----------------------------------------------------------------------


class ObservedUpdates(ModelUpdates):
    """Reports every applied update's outcome, so the test waits on a signal, not a sleep."""

    outcomes: queue.Queue[str]

    def apply(self, update: ModelUpdate, source: SourceRecord) -> str:
        outcome = super().apply(update, source)
        self.outcomes.put(outcome)
        return outcome


def publish(kafka: KafkaSettings, topic: str, message: ModelUpdate) -> None:
    codec = codec_for(topics.MODEL_UPDATES)
    producer = Producer(kafka.client_config())
    producer.produce(topic, codec.encode(message), codec.key(message))
    assert producer.flush(DEADLINE_S) == 0


def read_alerts(kafka: KafkaSettings, topic: str, expected: int) -> list[Alert]:
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"alerts-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    alerts: list[Alert] = []
    try:
        deadline = datetime.now(UTC).timestamp() + DEADLINE_S
        while len(alerts) < expected and datetime.now(UTC).timestamp() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                alerts.append(codec_for(topics.ALERTS).decode(message.value()))
    finally:
        consumer.close()
    return alerts


@pytest.fixture
def scale_registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "store", loader=lambda family: ScaleModel, actor="test")


def test_updates_on_the_broker_swap_roll_back_and_refuse_a_tampered_version(
    kafka_settings: KafkaSettings, unique_topic: Any, scale_registry: Registry
) -> None:
    registry = scale_registry
    updates_topic = unique_topic("model-updates")
    alerts_topic = unique_topic("alerts")
    for scale in (1.0, 2.0, 3.0):
        registry.register(ScaleModel({"scale": scale}), "demand", "p-1")
    cache = ModelCache(registry, budget_bytes=10_000_000)
    assert cache.get("demand", "p-1").version == 1
    settings = WorkerSettings(instance_id=f"t-{uuid.uuid4().hex[:6]}")
    updates = ObservedUpdates(
        updates_topic,
        cache,
        lambda: Consumer(settings.reader_config(kafka_settings, "updates")),
        AlertPublisher(Producer(kafka_settings.client_config()), alerts_topic, DEADLINE_S),
        settings.instance_id,
    )
    updates.outcomes = queue.Queue()
    updates.start()
    try:
        assert updates.positioned.wait(DEADLINE_S)
        registry.promote("demand", 2, "p-1")
        publish(kafka_settings, updates_topic, update(2))
        assert updates.outcomes.get(timeout=DEADLINE_S) == "swapped"
        assert served(cache) == (2, 2.0)

        registry.promote("demand", 3, "p-1")
        tampered = registry.info("demand", "p-1", 3).path / "model.json"
        tampered.write_text(json.dumps({"scale": 300.0}))
        publish(kafka_settings, updates_topic, update(3))
        assert updates.outcomes.get(timeout=DEADLINE_S) == "failed"
        assert served(cache) == (2, 2.0)  # the old version keeps serving

        registry.promote("demand", 1, "p-1")  # what a rollback to v1 writes
        publish(kafka_settings, updates_topic, update(1, "rolled_back"))
        assert updates.outcomes.get(timeout=DEADLINE_S) == "swapped"
        assert served(cache) == (1, 1.0)
    finally:
        updates.stop()
    assert updates.error is None
    [alert] = read_alerts(kafka_settings, alerts_topic, expected=1)
    assert (alert.type, alert.model, alert.key, alert.version) == ("model", "demand", "p-1", 3)


def test_a_promotion_before_the_thread_is_positioned_is_caught_up(
    kafka_settings: KafkaSettings, unique_topic: Any, scale_registry: Registry
) -> None:
    registry = scale_registry
    for scale in (1.0, 2.0):
        registry.register(ScaleModel({"scale": scale}), "demand", "p-1")
    cache = ModelCache(registry, budget_bytes=10_000_000)
    assert cache.get("demand", "p-1").version == 1
    registry.promote("demand", 2, "p-1")  # announced before this instance read the topic
    settings = WorkerSettings(instance_id=f"t-{uuid.uuid4().hex[:6]}")
    updates = ModelUpdates(
        unique_topic("model-updates"),
        cache,
        lambda: Consumer(settings.reader_config(kafka_settings, "updates")),
        lambda alert: None,
        settings.instance_id,
    )
    updates.start()
    try:
        assert updates.positioned.wait(DEADLINE_S)
        assert served(cache) == (2, 2.0)
        assert updates.refreshes() == [("demand", "p-1")]
    finally:
        updates.stop()
    assert updates.error is None


def test_a_load_under_way_while_the_thread_positions_is_caught_up(
    kafka_settings: KafkaSettings, unique_topic: Any, scale_registry: Registry
) -> None:
    # The first batch loads v1; v2 is promoted (announced below the offsets this instance
    # will read) before that load is installed and after the topic's end was read.
    registry = scale_registry
    for scale in (1.0, 2.0):
        registry.register(ScaleModel({"scale": scale}), "demand", "p-1")
    warming, positioned_consumer = threading.Event(), threading.Event()

    def warm(loaded: LoadedModel) -> None:
        warming.set()
        if loaded.version == 1:
            assert positioned_consumer.wait(DEADLINE_S)

    cache = ModelCache(registry, budget_bytes=10_000_000, warmup=warm)
    settings = WorkerSettings(instance_id=f"t-{uuid.uuid4().hex[:6]}")

    class PositionedConsumer(Consumer):  # type: ignore[misc]
        def assign(self, partitions: list[Any]) -> None:
            super().assign(partitions)
            positioned_consumer.set()  # the watermarks are read: catching up comes next

    updates = ModelUpdates(
        unique_topic("model-updates"),
        cache,
        lambda: PositionedConsumer(settings.reader_config(kafka_settings, "updates")),
        lambda alert: None,
        settings.instance_id,
    )
    first_batch = threading.Thread(target=cache.get, args=("demand", "p-1"))
    first_batch.start()
    assert warming.wait(DEADLINE_S)
    registry.promote("demand", 2, "p-1")
    updates.start()
    try:
        assert updates.positioned.wait(DEADLINE_S)
        first_batch.join(DEADLINE_S)
        assert served(cache) == (2, 2.0)
        assert updates.refreshes() == [("demand", "p-1")]
    finally:
        updates.stop()
    assert updates.error is None


def test_a_partition_added_while_running_is_read_from_its_start(
    kafka_settings: KafkaSettings,
    unique_topic: Any,
    scale_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(updates_module, "PARTITION_CHECK_S", 0.2)
    registry = scale_registry
    for scale in (1.0, 2.0):
        registry.register(ScaleModel({"scale": scale}), "demand", "p-1")
    cache = ModelCache(registry, budget_bytes=10_000_000)
    assert cache.get("demand", "p-1").version == 1
    updates_topic = unique_topic("model-updates")  # one partition
    settings = WorkerSettings(instance_id=f"t-{uuid.uuid4().hex[:6]}")
    updates = ObservedUpdates(
        updates_topic,
        cache,
        lambda: Consumer(settings.reader_config(kafka_settings, "updates")),
        lambda alert: None,
        settings.instance_id,
    )
    updates.outcomes = queue.Queue()
    updates.start()
    try:
        assert updates.positioned.wait(DEADLINE_S)
        admin = AdminClient(kafka_settings.client_config())
        [done] = admin.create_partitions([NewPartitions(updates_topic, 2)]).values()
        done.result(DEADLINE_S)
        registry.promote("demand", 2, "p-1")
        codec = codec_for(topics.MODEL_UPDATES)
        producer = Producer(kafka_settings.client_config())
        producer.produce(updates_topic, codec.encode(update(2)), partition=1)
        assert producer.flush(DEADLINE_S) == 0
        assert updates.outcomes.get(timeout=DEADLINE_S) == "swapped"
        assert served(cache) == (2, 2.0)
    finally:
        updates.stop()
    assert updates.error is None


def served(cache: ModelCache) -> tuple[int, float]:
    loaded: LoadedModel | None = cache.peek("demand", "p-1")
    assert loaded is not None
    return loaded.version, float(loaded.model.params["scale"])
