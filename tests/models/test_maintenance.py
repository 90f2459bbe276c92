"""Maintenance family: risk labels, risk quality, level/urgency rules, warm-start fine-tune."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.base import FitReport, FloatArray, ModelError
from models.maintenance import RECOMMENDATIONS, MaintenanceModel, derive_risk, recommendation

PARAMS = {"n_estimators": 30, "window": 24, "rolling": [6, 12], "fine_tune_trees": 5}


@pytest.fixture(scope="module")
def history(model_data: Any) -> pd.DataFrame:
    frame: pd.DataFrame = model_data.machine_history(entities=3, periods=600)
    return frame


@pytest.fixture(scope="module")
def trained(history: pd.DataFrame) -> tuple[MaintenanceModel, FitReport]:
    model = MaintenanceModel(PARAMS)
    return model, model.fit(history)


def test_risk_is_derived_from_upcoming_anomalies_per_entity() -> None:
    frame = pd.DataFrame(
        {
            "entity_id": ["a"] * 9 + ["b"] * 3,
            "is_anomaly": [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
        }
    )
    risk = derive_risk(frame, horizon=2)
    # a: 7 steps before -> 0, 3..6 steps -> 1, 1..2 steps -> 2, now -> 3, after -> 0;
    # b has its own anomaly and never sees a's
    assert risk.tolist() == [0, 1, 1, 1, 1, 2, 2, 3, 0, 2, 2, 3]


def test_risk_quality_on_the_holdout(
    trained: tuple[MaintenanceModel, FitReport], history: pd.DataFrame
) -> None:
    _, report = trained
    assert report.window is not None
    held_out = history["risk"][history["ts"] > pd.Timestamp(report.window[1])]
    assert report.metrics["mae"] <= 0.5
    assert report.metrics["mae"] < float(held_out.mean())  # beats "always 0"
    assert 0.0 <= report.metrics["accuracy"] <= 1.0


def test_labels_come_from_is_anomaly_without_a_risk_column(history: pd.DataFrame) -> None:
    report = MaintenanceModel({**PARAMS, "horizon": 3}).fit(history.drop(columns=["risk"]))
    assert report.metrics["mae"] <= 0.5
    with pytest.raises(ModelError, match="risk or is_anomaly"):
        MaintenanceModel(PARAMS).fit(history.drop(columns=["risk", "is_anomaly"]))


class FixedProbabilities(MaintenanceModel):
    """Scores from given class probabilities, to check the level and urgency rules."""

    given = np.empty((0, 4))

    def probabilities(self, features: FloatArray) -> FloatArray:
        return self.given


def test_level_is_the_median_risk_and_urgency_follows_the_rules() -> None:
    model = FixedProbabilities({"urgent_probability": 0.8})
    model.given = np.array(
        [
            [0.6, 0.2, 0.1, 0.1],  # median 0
            [0.3, 0.1, 0.3, 0.3],  # median 2 (cumulative 0.4 then 0.7)
            [0.1, 0.0, 0.45, 0.45],  # median 2, P(>=2) = 0.9: urgent
            [0.0, 0.0, 0.4, 0.6],  # median 3: urgent
        ]
    )
    scores = model.predict_batch(np.zeros((4, 0)))
    assert np.asarray(scores.level).tolist() == [0, 2, 2, 3]
    assert np.asarray(scores.flag).tolist() == [False, False, True, True]
    np.testing.assert_allclose(np.asarray(scores.value), [0.7, 1.6, 2.25, 2.6])


def test_every_level_has_its_own_recommendation() -> None:
    texts = [recommendation(level) for level in range(4)]
    assert texts == list(RECOMMENDATIONS) and len(set(texts)) == 4 and all(texts)
    with pytest.raises(ValueError):
        recommendation(4)


def test_fine_tune_adds_trees_when_the_levels_match(
    trained: tuple[MaintenanceModel, FitReport], history: pd.DataFrame
) -> None:
    model = MaintenanceModel(PARAMS)
    model.fit(history)
    model.fine_tune(history[history["ts"] >= "2024-01-10"])
    assert model.info["trained_by"] == "warm_start" and model.info["fine_tunes"] == 1
    assert model._forest is not None and len(model._forest.estimators_) == 35


def test_fine_tune_refits_when_a_level_is_missing(history: pd.DataFrame) -> None:
    model = MaintenanceModel(PARAMS)
    model.fit(history)
    calm = history.assign(risk=np.minimum(history["risk"], 2))
    model.fine_tune(calm)
    assert model.info["trained_by"] == "refit"
    assert model._forest is not None and len(model._forest.estimators_) == 30
    assert (
        np.asarray(model.probabilities(np.zeros((1, len(model.feature_names)))))[:, 3] == 0
    ).all()
