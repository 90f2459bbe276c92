"""Fallbacks: seasonal naive forecast and robust z-score anomaly, usable before any fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.base import NotFittedError
from models.fallback import RobustZScore, SeasonalNaive, season_for_step
from models.features import frame_rows


def test_seasonal_naive_serves_from_its_parameters_alone() -> None:
    model = SeasonalNaive({"season": 7})
    # features: seasonal value, last value, spread of seasonal differences
    scores = model.predict_batch(np.array([[10.0, 12.0, 2.0], [np.nan, 12.0, np.nan]]))
    value, lower, upper = (np.asarray(a) for a in (scores.value, scores.lower, scores.upper))
    assert scores.fallback is True
    assert value.tolist() == [10.0, 12.0]  # the last value when the seasonal one is missing
    half = 1.6448536269514722 * 2.0  # 90 % normal quantile times the spread
    np.testing.assert_allclose([lower[0], upper[0]], [10.0 - half, 10.0 + half])
    assert np.isnan(lower[1]) and np.isnan(upper[1])


@pytest.mark.parametrize(
    ("step", "season"), [(3600.0, 24), (1800.0, 48), (86400.0, 7), (7 * 86400.0, 1)]
)
def test_season_follows_the_sampling_step(step: float, season: int) -> None:
    assert season_for_step(step) == season


def test_seasonal_naive_fit_infers_the_season_and_measures_itself(model_data: Any) -> None:
    history = model_data.demand_history(periods=60)
    model = SeasonalNaive()
    assert model.spec.entity == "product_id" and model.spec.history_needed == 48
    report = model.fit(history)
    assert model.spec.history_needed == 14  # daily data: a weekly season, one week of spread
    assert 0.0 < report.metrics["mape"] < 50.0 and report.rows == len(history)
    rows = frame_rows(model.spec, history)
    quantity = history["quantity"].to_numpy()
    # one row per reading; row t forecasts t + 1 with the value 7 readings before that
    np.testing.assert_array_equal(rows.matrix[10, 0], quantity[10 + 1 - 7])


def test_seasonal_naive_on_a_sensor_metric_keys_by_entity(model_data: Any) -> None:
    model = SeasonalNaive({"target": "pm25"})
    model.fit(model_data.station_history(periods=96))
    assert model.spec.entity == "entity_id" and model.spec.inputs == ("pm25",)


def test_robust_zscore_scores_the_largest_deviation(model_data: Any) -> None:
    model = RobustZScore({"metrics": ["a", "b"], "threshold": 3.5})
    scores = model.predict_batch(np.array([[0.0, 3.5], [-7.0, 1.0], [np.nan, np.nan]]))
    np.testing.assert_allclose(np.asarray(scores.score), [0.5, 0.75, 0.0])
    assert np.asarray(scores.flag).tolist() == [False, True, False]
    assert np.asarray(scores.severity).tolist() == [0, 1, 0]
    assert scores.fallback is True


def test_robust_zscore_fit_records_metrics_and_detects_spikes(model_data: Any) -> None:
    with pytest.raises(NotFittedError):
        RobustZScore().predict_batch(np.zeros((1, 1)))
    model = RobustZScore({"window": 24})
    report = model.fit(model_data.machine_history(periods=300))
    assert model.spec.inputs == ("power", "temperature", "vibration")
    assert report.metrics["roc_auc"] >= 0.95 and report.metrics["recall"] >= 0.8


def test_fallbacks_save_only_their_spec_as_json(tmp_path: Path) -> None:
    model = RobustZScore({"metrics": ["a"]})
    assert model.save(tmp_path) == ["spec.json"]
    saved = json.loads((tmp_path / "spec.json").read_text())
    assert saved["kind"] == "sensor" and saved["metrics"] == ["a"]
    loaded = RobustZScore.load(tmp_path, json.loads(json.dumps(model.metadata())))
    assert loaded.feature_names == ["a_rz"]


def test_fine_tune_is_fit(model_data: Any) -> None:
    history: pd.DataFrame = model_data.demand_history(periods=30)
    model = SeasonalNaive()
    assert model.fine_tune(history).rows == len(history)
    assert model.spec.history_needed == 14
