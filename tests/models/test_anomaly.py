"""Anomaly family: detection quality, calibrated scores, threshold and labels handling."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.anomaly import DEFAULT_CONTAMINATION, AnomalyModel
from models.base import FeatureMismatchError, FitReport, ModelError, severity_of
from models.features import frame_rows

PARAMS = {"n_estimators": 50, "window": 48}


@pytest.fixture(scope="module")
def history(model_data: Any) -> pd.DataFrame:
    frame: pd.DataFrame = model_data.machine_history(entities=3, periods=600)
    return frame


@pytest.fixture(scope="module")
def trained(history: pd.DataFrame) -> tuple[AnomalyModel, FitReport]:
    model = AnomalyModel(PARAMS)
    return model, model.fit(history)


def test_detects_labelled_anomalies_on_the_time_ordered_holdout(
    trained: tuple[AnomalyModel, FitReport],
) -> None:
    _, report = trained
    assert report.metrics["f1"] >= 0.75
    assert report.metrics["roc_auc"] >= 0.95
    assert report.window is not None and report.window[1] < "2024-01-21"  # the last 20 % held out


def test_scores_map_the_threshold_to_one_half(
    trained: tuple[AnomalyModel, FitReport], history: pd.DataFrame
) -> None:
    model, _ = trained
    scores = model.predict_batch(frame_rows(model.spec, history).matrix)
    score, flag = np.asarray(scores.score), np.asarray(scores.flag)
    assert ((score >= 0.0) & (score <= 1.0)).all()
    np.testing.assert_array_equal(flag, score > 0.5)
    np.testing.assert_array_equal(np.asarray(scores.severity), severity_of(score))
    assert flag.any() and (~flag).any()


def test_threshold_flags_the_contamination_share_of_training_rows(
    trained: tuple[AnomalyModel, FitReport], history: pd.DataFrame
) -> None:
    model, report = trained
    labels = history["is_anomaly"].to_numpy()
    assert report.window is not None
    train = history["ts"] <= pd.Timestamp(report.window[1])
    rate = float(labels[train.to_numpy()].mean())
    assert model.info["contamination"] == pytest.approx(rate, abs=0.01)
    rows = frame_rows(model.spec, history)
    warm = rows.warm(model.spec.history_needed // 2) & train.to_numpy()
    flagged = np.asarray(model.predict_batch(rows.matrix[warm]).flag).mean()
    assert flagged == pytest.approx(model.info["contamination"], abs=0.01)


def test_without_labels_the_default_contamination_applies_and_every_row_trains(
    history: pd.DataFrame,
) -> None:
    report = AnomalyModel(PARAMS).fit(history.drop(columns=["is_anomaly", "risk"]))
    assert report.metrics == {"contamination": DEFAULT_CONTAMINATION}
    assert report.rows > 0.9 * len(history)
    explicit = AnomalyModel({**PARAMS, "contamination": 0.1}).fit(history)
    assert explicit.metrics["contamination"] == 0.1


def test_metrics_default_to_numeric_columns_and_stay_fixed_on_fine_tune(
    history: pd.DataFrame,
) -> None:
    model = AnomalyModel(PARAMS)
    model.fit(history.assign(site="hall-1"))  # a text column is not a metric
    assert model.spec.inputs == ("power", "temperature", "vibration")
    model.fine_tune(history.assign(humidity=1.0))  # a new metric is not picked up
    assert model.spec.inputs == ("power", "temperature", "vibration")
    with pytest.raises(FeatureMismatchError, match="vibration"):
        model.fine_tune(history.drop(columns=["vibration"]))


@pytest.mark.parametrize(
    "params", [{"contamination": 0.7}, {"n_estimators": 0}, {"features": ["bogus"]}]
)
def test_bad_parameters_are_model_errors(params: dict[str, Any], history: pd.DataFrame) -> None:
    with pytest.raises(ModelError):
        AnomalyModel(params).fit(history)


def test_a_frame_without_metrics_is_a_model_error() -> None:
    frame = pd.DataFrame({"entity_id": ["a"] * 3, "ts": pd.date_range("2024", periods=3)})
    with pytest.raises(ModelError, match="no numeric metric"):
        AnomalyModel().fit(frame)
