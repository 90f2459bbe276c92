"""Training examples of the sequence family: labels, time split, gap-filling examples.

Feature rows come from ``models.features.frame_rows`` (one row per reading, its window cut
inside its own entity). This module adds what only training needs: the target at t-0 ...
t+horizon for every row, a time-ordered split, and the rows whose present target is hidden
so the network learns to fill gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.base import FloatArray, ModelError
from models.features import FeatureRows
from models.frames import ENTITY, TS, holdout_mask, metric_columns, require_columns
from models.sequence_params import SequenceParams
from models.sequence_window import SequenceSpec
from models.tabular import require_rows

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Examples:
    """Feature rows and labels (rows x horizon+1: the target at t-0, t+1, ..., t+horizon)."""

    features: FloatArray
    labels: FloatArray

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def __getitem__(self, rows: BoolArray) -> Examples:
        return Examples(self.features[rows], self.labels[rows])


@dataclass(frozen=True)
class Prepared:
    """One training run's data: ``train``/``valid`` include gap-filling examples,
    ``holdout`` is the validation rows as read (for metrics and intervals) and ``trained``
    the frame rows of the training period (for the scaler and the FitReport)."""

    train: Examples
    valid: Examples
    holdout: Examples
    trained: pd.DataFrame


def prepare(rows: FeatureRows, spec: SequenceSpec, cfg: SequenceParams) -> Prepared:
    """Labels, time split and gap examples; ModelError when too little data is left."""
    targets = labels(rows.frame, spec.metrics[0], cfg.horizon)
    val = time_split(rows.frame, targets, cfg.val_fraction)
    examples = Examples(rows.matrix, targets)
    train = with_gap_examples(examples[~val], spec, cfg.hide_fraction, cfg.seed)
    valid = with_gap_examples(examples[val], spec, cfg.hide_fraction, cfg.seed + 1)
    require_rows(len(train), cfg.batch_size, "sequence", "train")
    require_rows(len(valid), 1, "sequence", "validate")
    return Prepared(train, valid, examples[val], rows.frame[~val])


def choose_metrics(
    history: pd.DataFrame, metric: str | None, covariates: tuple[str, ...] | None
) -> list[str]:
    """Target first, then covariates (default: every other numeric metric with a reading)."""
    numeric = [
        c
        for c in metric_columns(history)
        if pd.api.types.is_numeric_dtype(history[c]) and not pd.api.types.is_bool_dtype(history[c])
    ]
    target = metric or (numeric[0] if numeric else None)
    if target is None:
        raise ModelError("sequence: the history frame has no numeric metric column")
    require_columns(history, [target], "sensor")
    if covariates is not None:
        require_columns(history, list(covariates), "sensor")
        return [target, *(c for c in covariates if c != target)]
    return [target, *(c for c in numeric if c != target and history[c].notna().any())]


def labels(frame: pd.DataFrame, target: str, horizon: int) -> FloatArray:
    """Target k readings after each row of the same entity, k = 0..horizon (NaN past the end).

    ``frame`` is normalised (sorted by entity, then time), as ``frame_rows`` returns it.
    """
    by_entity = frame.groupby(ENTITY, sort=False)[target]
    columns = [by_entity.shift(-k) for k in range(horizon + 1)]
    return np.column_stack([c.to_numpy(dtype=np.float64) for c in columns])


def time_split(frame: pd.DataFrame, targets: FloatArray, val_fraction: float) -> BoolArray:
    """Validation rows (the most recent ``val_fraction`` by time); blanks leaking labels.

    A training row whose label k steps ahead is a validation reading has that label set to
    NaN in ``targets`` (in place), so no validation value is ever learnt from.
    """
    val = holdout_mask(frame[TS], val_fraction)
    ahead = pd.Series(val.astype(np.float64), index=frame.index).groupby(frame[ENTITY], sort=False)
    for k in range(1, targets.shape[1]):
        leaks = (ahead.shift(-k) == 1.0).to_numpy(dtype=np.bool_) & ~val
        targets[leaks, k] = np.nan
    return val


def with_gap_examples(data: Examples, spec: SequenceSpec, fraction: float, seed: int) -> Examples:
    """Hide the present target in a random ``fraction`` of rows to teach gap filling.

    A hidden row keeps its t-0 label (estimated from the past and the present covariates);
    every other row loses it, since echoing an observed reading teaches nothing. Rows left
    without any label are dropped.
    """
    rng = np.random.default_rng(seed)
    hide = np.isfinite(data.labels[:, 0]) & (rng.random(len(data)) < fraction)
    features = np.array(data.features, copy=True)
    features[hide] = spec.hide_present_target(data.features[hide])
    targets = np.array(data.labels, copy=True)
    targets[~hide, 0] = np.nan
    keep = np.isfinite(targets).any(axis=1)
    return Examples(features[keep], targets[keep])


def interval_half_width(actual: FloatArray, predicted: FloatArray, coverage: float) -> float:
    """Split-conformal half-width: the finite-sample ``coverage`` quantile of |residual|."""
    residuals = np.abs(predicted - actual)[np.isfinite(actual)]
    if residuals.size == 0:
        return math.nan
    level = min(1.0, math.ceil((residuals.size + 1) * coverage) / residuals.size)
    return float(np.quantile(residuals, level, method="higher"))
