"""How the service hands decoded records to the join and the evaluator (no broker)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from events import DemandReading, SensorReading
from events.settings import KafkaSettings
from monitor.clock import micros
from monitor.outbox import Outbox
from monitor.service import MonitorService
from monitor.settings import MonitorSettings


def service(tmp_path: Path) -> MonitorService:
    settings = MonitorSettings(model_store=tmp_path, actual_buffer_s=24 * 3600.0)
    return MonitorService(settings, KafkaSettings(), baselines=lambda m, k, v: 1.0)


def test_a_demand_actual_read_before_any_forecast_of_its_product_still_pairs(
    tmp_path: Path, build: SimpleNamespace
) -> None:
    monitor = service(tmp_path)
    target = build.at(60)
    # a worker catching up on a burst: the monitor reads the readings first
    reading = DemandReading(product_id="sku-1", ts=target, quantity=12.0)
    monitor._dispatch(reading, ("readings.demand", 0), 0)
    forecast = build.prediction(60, entity="sku-1", model="demand", metric="quantity", value=10.0)
    monitor._dispatch(forecast, ("predictions", 0), 0)
    [pair] = monitor.joiner.take().pairs
    assert (pair.entity_id, pair.actual, pair.error) == ("sku-1", 12.0, -2.0)


def test_a_sensor_reading_read_before_the_forecast_of_its_metric_still_pairs(
    tmp_path: Path, build: SimpleNamespace
) -> None:
    monitor = service(tmp_path)
    target = build.at(60)
    reading = SensorReading(
        entity_id="m-1", kind="machine", ts=target, values={"temperature": 21.5, "power": None}
    )
    monitor._dispatch(reading, ("readings.sensor", 0), 0)
    forecast = build.prediction(60, entity="m-1", metric="temperature", value=20.0)
    monitor._dispatch(forecast, ("predictions", 0), 0)
    [pair] = monitor.joiner.take().pairs
    assert (pair.entity_id, pair.metric, pair.actual) == ("m-1", "temperature", 21.5)
    assert monitor.joiner.buffered == 1  # temperature kept for later forecasts, null power not


def test_predictions_on_the_shadow_topic_mark_their_version_as_a_challenger(
    tmp_path: Path, build: SimpleNamespace
) -> None:
    monitor = service(tmp_path)
    shadow = build.prediction(1, entity="sku-1", model="demand", metric="quantity", version=2)
    monitor._dispatch(shadow, ("predictions.shadow", 0), 0)
    assert ("demand", None, 2) in monitor.evaluator._shadow
    promoted = build.prediction(2, entity="sku-1", model="demand", metric="quantity", version=2)
    monitor._dispatch(promoted, ("predictions", 0), 1)
    assert ("demand", None, 2) not in monitor.evaluator._shadow


def test_the_end_of_a_label_partition_reaches_the_join(
    tmp_path: Path, build: SimpleNamespace
) -> None:
    monitor = service(tmp_path)
    start, day = micros(build.at(0)), 24 * 3_600_000_000
    sensor, demand = ("readings.sensor", 0), ("readings.demand", 0)
    assigned = [TopicPartition(*sensor), TopicPartition(*demand), TopicPartition("predictions", 0)]
    monitor._on_assign(cast(Consumer, None), assigned)
    monitor._dispatch(build.prediction(0), ("predictions", 0), 0, start)
    reading = DemandReading(product_id="sku-1", ts=build.at(0), quantity=1.0)
    monitor._dispatch(reading, demand, 0, start + 2 * day)
    monitor.joiner.expire_idle()
    assert monitor.joiner.take().expired == []  # the sensor partition is not heard from yet
    end = SimpleNamespace(
        error=lambda: KafkaError(KafkaError._PARTITION_EOF),
        topic=lambda: sensor[0],
        partition=lambda: sensor[1],
    )
    assert monitor._feed(cast(Message, end), cast(Outbox, None)) is None
    monitor.joiner.expire_idle()
    assert [e.reason for e in monitor.joiner.take().expired] == ["idle"]


def test_predictions_without_a_label_partition_of_their_number_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = service(tmp_path)
    # three partitions of every input but the demand readings, which have two
    assigned = [
        TopicPartition(topic, partition)
        for topic in ("predictions", "actuals", "readings.sensor", "readings.demand")
        for partition in range(3 if topic != "readings.demand" else 2)
    ]
    with caplog.at_level(logging.WARNING, logger="monitor.service"):
        monitor._on_assign(cast(Consumer, None), assigned)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("label topic readings.demand has no partition 2 of the predictions")
    caplog.clear()
    monitor._on_assign(cast(Consumer, None), [TopicPartition("readings.demand", 2)])
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
