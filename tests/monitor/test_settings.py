"""Monitor settings: validation, topic switches, client configs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from events.settings import KafkaSettings
from monitor.settings import MonitorSettings


def test_every_field_is_documented() -> None:
    undocumented = [n for n, f in MonitorSettings.model_fields.items() if not f.description]
    assert undocumented == []


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_CRITICAL_DEGRADATION", "0.4")
    monkeypatch.setenv("MONITOR_SENSOR_TOPIC", "")
    settings = MonitorSettings()
    assert settings.critical_degradation == 0.4
    assert settings.sensor_topic is None
    assert settings.input_topics == [
        "predictions",
        "actuals",
        "predictions.shadow",
        "readings.demand",
    ]


def test_critical_below_warning_is_refused() -> None:
    with pytest.raises(ValidationError, match="below warning_degradation"):
        MonitorSettings(warning_degradation=0.3, critical_degradation=0.2)


def test_liveness_must_outlast_a_wait_for_the_broker() -> None:
    with pytest.raises(ValidationError, match="must exceed delivery_timeout_ms"):
        MonitorSettings(liveness_timeout_s=60, delivery_timeout_ms=60_000)
    assert MonitorSettings().liveness_timeout_s > MonitorSettings().delivery_timeout_ms / 1000


def test_client_configs() -> None:
    settings = MonitorSettings(instance_id="m-0")
    kafka = KafkaSettings(bootstrap_servers="broker:9092")
    producer = settings.producer_config(kafka)
    assert producer["partitioner"] == "murmur2_random" and producer["enable.idempotence"]
    consumer = settings.consumer_config(kafka)
    assert consumer["enable.auto.commit"] is False
    assert consumer["partition.assignment.strategy"] == "range"
    assert consumer["enable.partition.eof"] is True  # the join's label clocks need the ends
    assert settings.label_topics == ["actuals", "readings.sensor", "readings.demand"]
    assert settings.reader_config(kafka, "status")["group.id"] != consumer["group.id"]
