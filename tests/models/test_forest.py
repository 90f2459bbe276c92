"""The forest scorers give exactly scikit-learn's numbers, and the families use them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest, RandomForestClassifier

from models.forest import IsolationScorer, ProbaScorer, average_path_length

ROWS, FEATURES = 600, 6


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(ROWS, FEATURES))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int) * 2  # levels 0-3
    return x, y


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"max_features": 0.5},  # every tree reads its own feature subset
        {"contamination": 0.05},
        {"max_samples": 2},  # tiny trees: leaves of one or two samples
    ],
)
def test_isolation_scores_equal_scikit_learn(
    data: tuple[np.ndarray, np.ndarray], params: dict[str, Any]
) -> None:
    x, _ = data
    forest = IsolationForest(n_estimators=25, random_state=0, **params).fit(x)
    rows = np.vstack([x[:50], x[:3] * 10])  # outliers too
    got = IsolationScorer(forest).decision_function(rows)
    np.testing.assert_array_equal(got, forest.decision_function(rows))


def test_class_probabilities_equal_scikit_learn_after_a_warm_start(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = data
    forest = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(x, y)
    forest.set_params(warm_start=True, n_estimators=15).fit(x, y)  # as fine_tune grows it
    got = ProbaScorer(forest).predict_proba(x[:80])
    np.testing.assert_array_equal(got, forest.predict_proba(x[:80]))


def test_scorers_accept_any_float_layout(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    strided = np.asfortranarray(x[::3])
    np.testing.assert_array_equal(
        ProbaScorer(forest).predict_proba(strided), forest.predict_proba(strided)
    )


def test_average_path_length_of_small_and_large_trees() -> None:
    got = average_path_length([0, 1, 2, 256])
    assert got[:3].tolist() == [0.0, 0.0, 1.0]
    # c(n) = 2 H(n - 1) - 2 (n - 1) / n with H(i) ~ ln(i) + Euler's gamma
    assert got[3] == pytest.approx(2 * (np.log(255) + np.euler_gamma) - 2 * 255 / 256)


def test_the_forest_families_score_as_their_scikit_learn_forests(model_data: Any) -> None:
    """Anomaly and maintenance score through the scorers, also after a warm-start fine-tune."""
    from models.anomaly import AnomalyModel
    from models.features import fill_missing
    from models.maintenance import MaintenanceModel

    frame = model_data.machine_history(entities=2, periods=300)
    anomaly = AnomalyModel({"n_estimators": 10, "window": 24, "rolling": [6]})
    anomaly.fit(frame)
    maintenance = MaintenanceModel(
        {"n_estimators": 5, "fine_tune_trees": 3, "window": 24, "rolling": [6]}
    )
    maintenance.fit(frame)
    maintenance.fine_tune(frame)  # same risk levels: the forest grows by 3 trees
    for model in (anomaly, maintenance):
        rows = model.feature_rows(frame).matrix
        x = fill_missing(rows, np.asarray(model.info["fill"], dtype=np.float64))
        forest = model._forest
        if model is anomaly:
            spread = 2.0 * float(model.info["spread"])
            expected = 0.5 * (1.0 + np.tanh(-forest.decision_function(np.abs(x)) / spread))
            np.testing.assert_array_equal(model.predict_batch(rows).score, expected)
        else:
            assert len(forest.estimators_) == 8
            proba = np.zeros((rows.shape[0], 4))
            proba[:, forest.classes_.astype(int)] = forest.predict_proba(x)
            np.testing.assert_array_equal(maintenance.probabilities(rows), proba)
        # the per-message baseline's mode: scikit-learn's own calls, the same scores
        ours = model.predict_batch(rows)
        model.score_with_library()
        assert model._scorer is forest
        for field in ("score", "level", "value"):
            if getattr(ours, field) is not None:
                np.testing.assert_array_equal(
                    getattr(model.predict_batch(rows), field), getattr(ours, field)
                )
