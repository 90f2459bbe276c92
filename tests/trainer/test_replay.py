"""Replaying a window of readings from Kafka by time gives the canonical frames back."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Consumer, Producer

from driftline.generator.air import generate_air
from driftline.generator.machines import generate_machines, split_labels
from driftline.publish import demand_messages, sensor_messages
from events import Actual, Message, codec_for
from events.settings import KafkaSettings
from models.frames import IS_ANOMALY, RISK, TS
from trainer.data import TrainingData
from trainer.replay import Window
from trainer.settings import TrainerSettings

KEEP = {"retention.ms": "-1"}  # the readings are months old: keep them from retention
START = datetime(2026, 6, 1, tzinfo=UTC)
END = datetime(2026, 8, 31, 23, 59, tzinfo=UTC)


def produce(settings: KafkaSettings, topic: str, messages: Iterable[Message], stamp: str) -> int:
    """Produce with the Kafka timestamp set to each message's own time field."""
    codec = codec_for(topic.split("-")[0])  # unique topics are "<topic name>-<random>"
    producer = Producer(settings.producer_config())
    count = 0
    for message in messages:
        when: datetime = getattr(message, stamp)
        producer.produce(
            topic, codec.encode(message), codec.key(message), timestamp=int(when.timestamp() * 1000)
        )
        count += 1
    assert producer.flush(30) == 0
    return count


def data_for(kafka: KafkaSettings, tmp_path: Path, **topics: str) -> TrainingData:
    settings = TrainerSettings.model_validate({"model_store": tmp_path, **topics})
    return TrainingData(settings, lambda: Consumer(settings.reader_config(kafka)))


def test_demand_window_replays_into_the_canonical_frame(
    kafka_settings: KafkaSettings,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    demand_history: pd.DataFrame,
) -> None:
    topic = unique_topic("readings.demand", partitions=3, config=KEEP)
    produce(kafka_settings, topic, demand_messages(demand_history), "ts")
    data = data_for(kafka_settings, tmp_path, demand_topic=topic)

    frame = data.frame("demand", Window(START, END))
    inside = demand_history[(demand_history[TS] >= START) & (demand_history[TS] <= END)]
    pd.testing.assert_frame_equal(frame, inside.reset_index(drop=True))
    assert len(frame) == 2 * 92  # June, July and August of two products

    product = data.frame("demand", Window(START, END), entity="product-001")
    expected = inside[inside["product_id"] == "product-001"].reset_index(drop=True)
    pd.testing.assert_frame_equal(product, expected)

    later = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC))
    assert data.frame("demand", later).empty


def test_the_event_clock_keeps_the_recent_readings_of_a_burst(
    kafka_settings: KafkaSettings,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    demand_history: pd.DataFrame,
) -> None:
    topic = unique_topic("readings.demand", partitions=3, config=KEEP)
    codec = codec_for("readings.demand")
    producer = Producer(kafka_settings.producer_config())
    for message in demand_messages(demand_history):  # all produced now: a backfill
        producer.produce(topic, codec.encode(message), codec.key(message))
    assert producer.flush(30) == 0
    now = datetime.now(UTC)
    week = Window(now - pd.Timedelta(days=7), now)
    by_record = data_for(kafka_settings, tmp_path, demand_topic=topic)
    assert len(by_record.frame("demand", week)) == len(demand_history)  # all of it
    by_event = data_for(kafka_settings, tmp_path, demand_topic=topic, window_clock="event")
    frame = by_event.frame("demand", week)
    newest = demand_history[TS].max()
    expected = demand_history[demand_history[TS] >= newest - pd.Timedelta(days=7)]
    pd.testing.assert_frame_equal(frame, expected.reset_index(drop=True))


def test_sensor_window_of_one_kind_with_labels(
    kafka_settings: KafkaSettings,
    unique_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    sensor = unique_topic("readings.sensor", partitions=2, config=KEEP)
    actuals = unique_topic("actuals", partitions=2, config=KEEP)
    machines = generate_machines(entities=2, periods=120, freq="1D", seed=4, start="2026-05-01")
    readings, labels = split_labels(machines)
    air = generate_air(entities=2, periods=120, freq="1D", seed=4, start="2026-05-01")
    produce(kafka_settings, sensor, sensor_messages(readings, "machine"), "ts")
    produce(kafka_settings, sensor, sensor_messages(air, "air"), "ts")
    produce(kafka_settings, actuals, _label_actuals(labels), "ts")
    data = data_for(kafka_settings, tmp_path, sensor_topic=sensor, labels_topic=actuals)

    window = Window(START, END)
    got = data.frame("sensor", window, kind="machine", labels=True)
    inside = machines[(machines[TS] >= START) & (machines[TS] <= END)].reset_index(drop=True)
    expected = inside.astype({IS_ANOMALY: np.float64, RISK: np.float64})
    pd.testing.assert_frame_equal(got, expected)
    stations = data.frame("sensor", window, kind="air")
    pd.testing.assert_frame_equal(
        stations, air[(air[TS] >= START) & (air[TS] <= END)].reset_index(drop=True)
    )


def _label_actuals(labels: pd.DataFrame) -> list[Actual]:
    return [
        Actual(
            entity_id=str(row.entity_id),
            ts=row.ts.to_pydatetime(),
            metric=metric,
            value=float(getattr(row, metric)),
        )
        for row in labels.itertuples()
        for metric in (IS_ANOMALY, RISK)
    ]


def test_an_unknown_topic_is_a_clear_error(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    from trainer.errors import DataError

    data = data_for(kafka_settings, tmp_path, demand_topic="no-such-topic-for-replay")
    with pytest.raises(DataError, match="cannot replay no-such-topic-for-replay"):
        data.frame("demand", Window(START, END))
