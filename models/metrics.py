"""Error and detection metrics on numpy arrays (no scikit-learn import, usable by any service).

Regression: :func:`mae`, :func:`rmse`, :func:`r2`, :func:`mape` (percent, zero actuals
skipped). Detection: :func:`precision_recall_f1` and :func:`roc_auc` (rank formula, ties
averaged). Every function ignores pairs where either side is NaN and returns NaN when nothing
is left to measure, so a caller never divides by zero on an empty holdout.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.ArrayLike


def _pairs(actual: Array, predicted: Array) -> tuple[npt.NDArray[np.float64], ...]:
    a = np.asarray(actual, dtype=np.float64).ravel()
    p = np.asarray(predicted, dtype=np.float64).ravel()
    if a.shape != p.shape:
        raise ValueError(f"actual and predicted differ in length: {a.shape[0]} vs {p.shape[0]}")
    keep = np.isfinite(a) & np.isfinite(p)
    return a[keep], p[keep]


def mae(actual: Array, predicted: Array) -> float:
    """Mean absolute error."""
    a, p = _pairs(actual, predicted)
    return float(np.mean(np.abs(a - p))) if a.size else float("nan")


def rmse(actual: Array, predicted: Array) -> float:
    """Root mean squared error."""
    a, p = _pairs(actual, predicted)
    return float(np.sqrt(np.mean((a - p) ** 2))) if a.size else float("nan")


def r2(actual: Array, predicted: Array) -> float:
    """Coefficient of determination; NaN when the actuals are constant."""
    a, p = _pairs(actual, predicted)
    total = float(np.sum((a - a.mean()) ** 2)) if a.size else 0.0
    if total == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((a - p) ** 2)) / total


def mape(actual: Array, predicted: Array) -> float:
    """Mean absolute percentage error in percent (7.5 means 7.5 %); zero actuals are skipped."""
    a, p = _pairs(actual, predicted)
    keep = a != 0.0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs((a[keep] - p[keep]) / a[keep])) * 100.0)


def coverage(actual: Array, lower: Array, upper: Array) -> float:
    """Share of actuals inside [lower, upper] (rows with any NaN skipped)."""
    a = np.asarray(actual, dtype=np.float64).ravel()
    lo = np.asarray(lower, dtype=np.float64).ravel()
    hi = np.asarray(upper, dtype=np.float64).ravel()
    keep = np.isfinite(a) & np.isfinite(lo) & np.isfinite(hi)
    if not keep.any():
        return float("nan")
    return float(np.mean((a[keep] >= lo[keep]) & (a[keep] <= hi[keep])))


def precision_recall_f1(actual: Array, flagged: Array) -> tuple[float, float, float]:
    """Precision, recall and F1 of binary flags against binary labels (NaN when undefined)."""
    a, p = _pairs(actual, flagged)
    truth, guess = a > 0.5, p > 0.5
    hits = float(np.sum(truth & guess))
    precision = hits / float(guess.sum()) if guess.any() else float("nan")
    recall = hits / float(truth.sum()) if truth.any() else float("nan")
    # 2TP / (2TP + FP + FN): defined whenever anything was flagged or labelled
    denominator = float(guess.sum() + truth.sum())
    f1 = 2.0 * hits / denominator if denominator else float("nan")
    return precision, recall, f1


def _average_ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """1-based ranks with ties sharing the mean of their positions."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # first index of every run of equal values, then each run's mean 1-based position
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], ordered.size]
    run_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def roc_auc(actual: Array, score: Array) -> float:
    """Area under the ROC curve (Mann-Whitney U); NaN unless both classes are present."""
    a, s = _pairs(actual, score)
    positive = a > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def regression_report(actual: Array, predicted: Array) -> dict[str, float]:
    """MAE, RMSE, R2 and MAPE in one dict (keys ``mae``, ``rmse``, ``r2``, ``mape``)."""
    return {
        "mae": mae(actual, predicted),
        "rmse": rmse(actual, predicted),
        "r2": r2(actual, predicted),
        "mape": mape(actual, predicted),
    }


def detection_report(actual: Array, flagged: Array, score: Array) -> dict[str, float]:
    """Precision, recall, F1 and ROC AUC in one dict."""
    precision, recall, f1 = precision_recall_f1(actual, flagged)
    return {"precision": precision, "recall": recall, "f1": f1, "roc_auc": roc_auc(actual, score)}
