"""How the service hands decoded records to the join and the evaluator (no broker)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from events import DemandReading, SensorReading
from events.settings import KafkaSettings
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
