"""The trainer service on the real broker: requests in, validated promotions out."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from driftline.publish import demand_messages
from events import ModelHealth, ModelUpdate, RetrainRequest, codec_for, topics
from events.settings import KafkaSettings
from models.base import Model
from models.registry import Registry
from trainer.service import TrainerService
from trainer.settings import TrainerSettings
from trainer.state import DecisionRecord

KEEP = {"retention.ms": "-1"}  # the generated readings are months old
NOW = datetime(2026, 9, 20, tzinfo=UTC)  # the service's clock: just after the readings
WAIT_S = 90.0  # a tiny CatBoost job takes about a second; the bound only catches a hang


@dataclass
class Setup:
    settings: TrainerSettings
    kafka: KafkaSettings
    registry: Registry


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling the service's state, not a fixed delay


def publish_request(
    setup: Setup, request_id: str, action: str = "full_retrain", model: str = "demand"
) -> None:
    request = RetrainRequest(
        request_id=request_id,
        model=model,
        action="full_retrain" if action == "full_retrain" else "fine_tune",
        reason="test",
        requested_at=NOW,
    )
    codec = codec_for(topics.RETRAIN_REQUESTS)
    producer = Producer(setup.kafka.producer_config())
    producer.produce(setup.settings.requests_topic, codec.encode(request), codec.key(request))
    assert producer.flush(30) == 0


def read_updates(setup: Setup) -> list[ModelUpdate]:
    """Every update on the updates topic so far (reads to the high watermark)."""
    topic = setup.settings.updates_topic
    consumer = Consumer({**setup.kafka.client_config(), "group.id": f"read-{uuid.uuid4().hex}"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes | None] = []
        while len(values) < high:
            message = consumer.poll(10)
            assert message is not None and message.error() is None
            values.append(message.value())
    finally:
        consumer.close()
    return [codec_for(topics.MODEL_UPDATES).decode(v) for v in values]


@pytest.fixture
def setup(
    kafka_settings: KafkaSettings,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    demand_history: pd.DataFrame,
    tiny_params: dict[str, Any],
) -> Setup:
    demand = unique_topic("readings.demand", partitions=2, config=KEEP)
    codec = codec_for(topics.READINGS_DEMAND)
    producer = Producer(kafka_settings.producer_config())
    for reading in demand_messages(demand_history):
        stamp = int(reading.ts.timestamp() * 1000)
        producer.produce(demand, codec.encode(reading), codec.key(reading), timestamp=stamp)
    assert producer.flush(30) == 0
    settings = TrainerSettings(
        model_store=tmp_path / "store",
        requests_topic=unique_topic("retrain.requests"),
        updates_topic=unique_topic("model.updates"),
        demand_topic=demand,
        group_id=f"trainer-{uuid.uuid4().hex[:8]}",
        check_interval_s=0,
        plot=False,
        poll_timeout_s=0.2,
        bootstrap_params={"demand": tiny_params},
    )
    return Setup(settings, kafka_settings, Registry(settings.model_store, actor="test"))


@pytest.fixture
def running(setup: Setup) -> Iterator[Callable[..., TrainerService]]:
    """``start(**settings_changes)``: a service running on a thread, stopped afterwards."""
    started: list[tuple[TrainerService, threading.Thread]] = []

    def start(serve_http: bool = False, **changes: Any) -> TrainerService:
        settings = setup.settings.model_copy(update=changes)
        service = TrainerService(settings, setup.kafka, clock=lambda: NOW, serve_http=serve_http)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        started.append((service, thread))
        return service

    yield start
    for service, thread in started:
        service.stop()
        thread.join(60)
        assert not thread.is_alive()


def decided(service: TrainerService, job_id: str) -> list[DecisionRecord]:
    return [d for d in service.state.decisions() if d.job_id == job_id]


def test_a_request_trains_validates_promotes_and_announces(
    setup: Setup,
    running: Callable[..., TrainerService],
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
) -> None:
    setup.registry.register(fit_demand(demand_history, shuffled=True), "demand")
    service = running()
    publish_request(setup, "req-1")
    wait_for(lambda: bool(decided(service, "req-1")), "the decision on req-1")
    [record] = decided(service, "req-1")
    assert (record.outcome, record.version, record.attempts) == ("promoted", 2, 1)
    assert setup.registry.aliases("demand").champion == 2
    [update] = read_updates(setup)
    assert (update.model, update.key, update.version, update.action) == (
        "demand",
        None,
        2,
        "promoted",
    )
    assert update.metrics["mae"] < update.metrics["champion_mae"]

    # the same request id again does nothing; a later request shows it was read past
    publish_request(setup, "req-1")
    publish_request(setup, "marker", model="unknown-model")
    wait_for(lambda: bool(decided(service, "marker")), "the marker request")
    assert len(decided(service, "req-1")) == 1
    assert [v.version for v in setup.registry.versions("demand")] == [1, 2]
    assert len(read_updates(setup)) == 1


def test_a_candidate_that_loses_is_rejected_and_nothing_is_announced(
    setup: Setup,
    running: Callable[..., TrainerService],
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
) -> None:
    setup.registry.register(fit_demand(demand_history), "demand")
    service = running(forecast_margin=0.99)
    publish_request(setup, "req-2", action="fine_tune")
    wait_for(lambda: bool(decided(service, "req-2")), "the decision on req-2")
    [record] = decided(service, "req-2")
    assert (record.outcome, record.version) == ("rejected", 2), record.reason
    assert record.reason.startswith("rejected: not better: candidate mae")
    assert setup.registry.aliases("demand").champion == 1
    reject = setup.registry.history("demand")[-1]
    assert (reject.action, reject.version) == ("reject", 2)
    assert read_updates(setup) == []


def test_a_scheduled_check_bootstraps_a_model_with_no_version(
    setup: Setup, running: Callable[..., TrainerService]
) -> None:
    service = running(check_interval_s=3600)
    wait_for(lambda: any(d.trigger == "bootstrap" for d in service.state.decisions()), "bootstrap")
    [record] = service.state.decisions()
    assert (record.model, record.outcome, record.version) == ("demand", "promoted", 1)
    assert setup.registry.aliases("demand").champion == 1
    assert [(u.version, u.action) for u in read_updates(setup)] == [(1, "promoted")]


def test_shadow_mode_promotes_a_challenger_that_wins_on_live_pairs(
    setup: Setup,
    running: Callable[..., TrainerService],
    unique_topic: Callable[..., str],
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
) -> None:
    setup.registry.register(fit_demand(demand_history, shuffled=True), "demand")
    health_topic = unique_topic("model.health")
    service = running(shadow=True, health_topic=health_topic, shadow_min_pairs=50)
    publish_request(setup, "req-3")
    wait_for(lambda: bool(decided(service, "req-3")), "the decision on req-3")
    assert decided(service, "req-3")[0].outcome == "challenger"
    aliases = setup.registry.aliases("demand")
    assert (aliases.champion, aliases.challenger) == (1, 2)

    codec = codec_for(topics.MODEL_HEALTH)
    producer = Producer(setup.kafka.producer_config())
    for version, mae in ((1, 10.0), (2, 8.0)):
        health = ModelHealth(
            model="demand",
            version=version,
            ts=NOW + timedelta(hours=1),
            window=3600,
            pairs=60,
            mae=mae,
            status="healthy",
        )
        producer.produce(health_topic, codec.encode(health), codec.key(health))
    assert producer.flush(30) == 0

    wait_for(lambda: bool(decided(service, "shadow:demand:v2")), "the shadow verdict")
    [verdict] = decided(service, "shadow:demand:v2")
    assert (verdict.outcome, verdict.metrics["mae"], verdict.metrics["champion_mae"]) == (
        "promoted",
        8.0,
        10.0,
    )
    assert setup.registry.aliases("demand").champion == 2
    assert [(u.version, u.action) for u in read_updates(setup)] == [
        (2, "challenger"),
        (2, "promoted"),
    ]


def test_metrics_and_health_are_served(
    setup: Setup, running: Callable[..., TrainerService]
) -> None:
    service = running(serve_http=True, http_port=0)
    assert service.server is not None
    base = f"http://127.0.0.1:{service.server.port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as answer:
                return bool(answer.status == 200)
        except urllib.error.HTTPError:
            return False  # 503 until the requests partition is assigned

    wait_for(ready, "readiness")
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as answer:
        assert json.loads(answer.read())["alive"] is True
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert "driftline_trainer_jobs_queued" in text
