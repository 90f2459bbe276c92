"""Canonical frames from reading messages, model selection, imported CSV windows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.generator.air import generate_air
from driftline.generator.machines import generate_machines, split_labels
from driftline.publish import demand_messages, sensor_messages
from events import Actual
from models.csvio import write_demand_csv
from models.frames import ENTITY, IS_ANOMALY, RISK, TS
from trainer.data import (
    TrainingData,
    attach_labels,
    demand_frame,
    for_model,
    labels_frame,
    sample_count,
    sensor_frame,
)
from trainer.replay import Window
from trainer.settings import TrainerSettings


def test_demand_readings_become_the_canonical_frame(demand_history: pd.DataFrame) -> None:
    messages = list(demand_messages(demand_history))
    shuffled = [messages[i] for i in np.random.default_rng(0).permutation(len(messages))]
    replayed = demand_frame(shuffled + messages[:5])  # out of order, with duplicates
    pd.testing.assert_frame_equal(replayed, demand_history)


def test_demand_without_prices_has_no_price_column(demand_history: pd.DataFrame) -> None:
    frame = demand_frame(list(demand_messages(demand_history.drop(columns="price"))))
    assert list(frame.columns) == ["product_id", "ts", "quantity", "promo"]


def test_sensor_readings_of_one_kind_become_the_canonical_frame() -> None:
    air = generate_air(entities=2, periods=48, seed=1)
    machines, _ = split_labels(generate_machines(entities=2, periods=48, seed=1))
    mixed = [*sensor_messages(machines, "machine"), *sensor_messages(air, "air")]
    pd.testing.assert_frame_equal(sensor_frame(mixed, "air"), air)
    pd.testing.assert_frame_equal(sensor_frame(mixed, "machine"), machines)
    assert air.isna().any().any()  # the gaps came back as NaN


def test_labels_join_the_sensor_frame() -> None:
    full = generate_machines(entities=2, periods=120, seed=2, anomaly_rate=0.05)
    readings, labels = split_labels(full)
    actuals = [
        Actual(
            entity_id=row.entity_id,
            ts=row.ts.to_pydatetime(),
            metric=metric,
            value=float(getattr(row, metric)),
        )
        for row in labels.itertuples()
        for metric in (IS_ANOMALY, RISK)
    ]
    joined = attach_labels(
        sensor_frame(list(sensor_messages(readings, "machine"))), labels_frame(actuals)
    )
    expected = full.astype({IS_ANOMALY: np.float64, RISK: np.float64})
    pd.testing.assert_frame_equal(joined, expected)
    assert attach_labels(readings, labels_frame([])) is readings


def test_for_model_selects_a_product_or_the_metrics_of_a_key(demand_history: pd.DataFrame) -> None:
    one = for_model(demand_history, "demand", "product-001")
    assert set(one["product_id"]) == {"product-001"} and len(one) == 200
    assert len(for_model(demand_history, "demand", None)) == 400

    air = generate_air(entities=2, periods=24, seed=3)
    air.loc[air.index[:10], "o3"] = np.nan
    keyed = for_model(air, "sequence", "o3")
    assert list(keyed.columns[:3]) == [ENTITY, TS, "o3"]
    assert sample_count(keyed, "sequence", "o3") == int(air["o3"].notna().sum())
    chosen = for_model(air, "anomaly", None, inputs=("pm25", "extra"))
    assert list(chosen.columns) == [ENTITY, TS, "pm25", "extra"]
    assert chosen["extra"].isna().all()


def test_an_imported_csv_keeps_its_last_window(
    tmp_path: Path, demand_history: pd.DataFrame
) -> None:
    path = tmp_path / "demand.csv"
    write_demand_csv(demand_history, path)
    settings = TrainerSettings(model_store=tmp_path, demand_csv=path)
    data = TrainingData(settings, make_consumer=lambda: pytest.fail("no Kafka for a CSV"))
    # the file ends 2026-09-16; a window ending later keeps its length and ends at the file's end
    window = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC))
    frame = data.frame("demand", window, entity="product-000")
    assert frame[TS].min() == pd.Timestamp("2026-08-17", tz="UTC")
    assert frame[TS].max() == pd.Timestamp("2026-09-16", tz="UTC")
    assert set(frame["product_id"]) == {"product-000"} and len(frame) == 31
