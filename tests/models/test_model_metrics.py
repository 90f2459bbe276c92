"""models.metrics against scikit-learn's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from models.metrics import (
    coverage,
    detection_report,
    mae,
    mape,
    precision_recall_f1,
    r2,
    regression_report,
    rmse,
    roc_auc,
)


@pytest.fixture
def regression() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    actual = rng.uniform(1, 100, 200)
    return actual, actual + rng.normal(0, 5, 200)


def test_regression_metrics_match_scikit_learn(regression: tuple[np.ndarray, np.ndarray]) -> None:
    actual, predicted = regression
    assert mae(actual, predicted) == pytest.approx(sk.mean_absolute_error(actual, predicted))
    assert rmse(actual, predicted) == pytest.approx(
        np.sqrt(sk.mean_squared_error(actual, predicted))
    )
    assert r2(actual, predicted) == pytest.approx(sk.r2_score(actual, predicted))
    expected = 100 * sk.mean_absolute_percentage_error(actual, predicted)
    assert mape(actual, predicted) == pytest.approx(expected)
    assert set(regression_report(actual, predicted)) == {"mae", "rmse", "r2", "mape"}


def test_nan_pairs_and_zero_actuals_are_left_out() -> None:
    assert mae([1.0, np.nan, 3.0], [2.0, 5.0, np.nan]) == 1.0
    assert mape([0.0, 10.0], [5.0, 11.0]) == pytest.approx(10.0)
    assert np.isnan(mape([0.0], [1.0])) and np.isnan(mae([], []))
    assert np.isnan(r2([2.0, 2.0], [1.0, 3.0]))
    with pytest.raises(ValueError, match="length"):
        mae([1.0, 2.0], [1.0])


def test_detection_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random(300) < 0.2).astype(float)
    score = np.round(truth * 0.3 + rng.random(300), 1)  # rounded: many ties
    flag = score > 0.8
    precision, recall, f1 = precision_recall_f1(truth, flag)
    assert precision == pytest.approx(sk.precision_score(truth, flag))
    assert recall == pytest.approx(sk.recall_score(truth, flag))
    assert f1 == pytest.approx(sk.f1_score(truth, flag))
    assert roc_auc(truth, score) == pytest.approx(sk.roc_auc_score(truth, score))
    assert detection_report(truth, flag, score)["f1"] == pytest.approx(f1)


def test_undefined_detection_metrics_are_nan_or_zero() -> None:
    assert np.isnan(roc_auc([0, 0], [0.1, 0.2]))
    precision, recall, f1 = precision_recall_f1([1, 0], [0, 0])
    assert np.isnan(precision) and recall == 0.0 and f1 == 0.0
    assert np.isnan(precision_recall_f1([0, 0], [0, 0])[2])


def test_coverage_counts_actuals_inside_the_interval() -> None:
    assert coverage(
        [1.0, 5.0, 9.0, 2.0], [0.0, 0.0, 0.0, np.nan], [2.0, 4.0, 10.0, 3.0]
    ) == pytest.approx(2 / 3)
