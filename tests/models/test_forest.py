"""The forest scorers give exactly scikit-learn's numbers, and the families use them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
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
        {"max_samples": 1},  # single leaves: scikit-learn takes the normalised depth as 1
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


def test_missing_values_take_the_side_each_split_learned(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    """Trees fitted with NaN send missing values one way per split; the scorer follows."""
    x, y = data
    holes = x.copy()
    holes[::4, 0] = np.nan  # missing in training: the splits learn where NaN goes
    forest = RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0).fit(holes, y)
    rows = x[:120].copy()
    rows[::3, 0] = np.nan
    rows[1::5, 2] = np.nan  # never missing in training: NaN follows the fitted default
    np.testing.assert_array_equal(
        ProbaScorer(forest).predict_proba(rows), forest.predict_proba(rows)
    )


def test_rows_without_nan_score_alike_in_a_batch_with_and_without_nan(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    """A batch without NaN skips the missing-value rule; a batch with some NaN follows it:
    a full row gets the same numbers either way."""
    x, y = data
    scorer = ProbaScorer(RandomForestClassifier(n_estimators=8, random_state=0).fit(x, y))
    rows = np.vstack([x[:40], x[:40] * 5, [[np.inf] * FEATURES, [-np.inf] * FEATURES]])
    with_gaps = np.vstack([rows, np.full((1, FEATURES), np.nan)])
    alone, mixed = scorer.predict_proba(rows), scorer.predict_proba(with_gaps)
    np.testing.assert_array_equal(alone, mixed[: len(rows)])
    isolation = IsolationScorer(IsolationForest(n_estimators=10, random_state=0).fit(x))
    np.testing.assert_array_equal(
        isolation.decision_function(rows), isolation.decision_function(with_gaps)[: len(rows)]
    )


def test_trees_of_different_depths_and_empty_batches(data: tuple[np.ndarray, np.ndarray]) -> None:
    """A stump beside deep trees: every row stops at its own leaf; no rows, no scores."""
    x, y = data
    forest = RandomForestClassifier(n_estimators=6, random_state=0).fit(x, y)
    stump = RandomForestClassifier(n_estimators=2, max_depth=1, random_state=1).fit(x, y)
    forest.estimators_ += stump.estimators_
    np.testing.assert_array_equal(ProbaScorer(forest).predict_proba(x), forest.predict_proba(x))
    assert ProbaScorer(forest).predict_proba(x[:0]).shape == (0, 4)
    isolation = IsolationForest(n_estimators=5, random_state=0).fit(x)
    assert IsolationScorer(isolation).decision_function(x[:0]).shape == (0,)


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


def test_a_loaded_forest_is_laid_out_before_its_first_batch(
    model_data: Any, tmp_path: Path
) -> None:
    """Loading builds the node table (and compiles the walk): a worker loads off its hot path."""
    from models.anomaly import AnomalyModel
    from models.maintenance import MaintenanceModel

    frame = model_data.machine_history(entities=2, periods=200)
    for family in (
        AnomalyModel({"n_estimators": 5, "window": 24, "rolling": [6]}),
        MaintenanceModel({"n_estimators": 3, "window": 24, "rolling": [6]}),
    ):
        family.fit(frame)
        folder = tmp_path / type(family).__name__
        folder.mkdir()
        family.save(folder)
        loaded = type(family).load(folder, family.metadata())
        assert isinstance(loaded._scorer, IsolationScorer | ProbaScorer)


def test_warm_writes_the_compiled_loops_to_numba_s_cache(tmp_path: Path) -> None:
    """What the image build runs: later processes read the compiled code from the cache."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    code = "from models.jit import warm; warm()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert list(tmp_path.rglob("treewalk._walk-*.nbi")), "no index of the compiled walk"
    assert list(tmp_path.rglob("treewalk._walk-*.nbc")), "no compiled walk"
    assert list(tmp_path.rglob("kernels._slope-*.nbc")), "no compiled slope"
    assert list(tmp_path.rglob("kernels._mean_std-*.nbc")), "no compiled mean and spread"


def test_values_next_to_a_threshold_go_where_scikit_learn_sends_them(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    """Thresholds are float64 and inputs float32: the float32 values on either side of
    every threshold take scikit-learn's branch (the stored thresholds are rounded down)."""
    x, y = data
    forest = RandomForestClassifier(n_estimators=4, max_depth=6, random_state=0).fit(x, y)
    rows = []
    for estimator in forest.estimators_:
        tree = estimator.tree_
        for node in np.flatnonzero(tree.children_left >= 0):
            near = np.float32(tree.threshold[node])
            for value in (
                np.nextafter(near, np.float32(-np.inf)),
                near,
                np.nextafter(near, np.float32(np.inf)),
            ):
                row = x[node % len(x)].astype(np.float32)
                row[tree.feature[node]] = value
                rows.append(row)
    probe = np.asarray(rows, dtype=np.float32)
    np.testing.assert_array_equal(
        ProbaScorer(forest).predict_proba(probe), forest.predict_proba(probe)
    )
