"""Maintenance family: a RandomForest classifier of risk levels 0-3 from machine metrics.

Features (``models.features.SensorSpec``): for every metric the current value, lags, rolling
means and spreads, and the scale-free deviations (z-scores, robust z against the entity's
window, cross-metric deviation, step change, volatility, slope over the window) — the
history that shows wear building up before a failure.

Labels
    The ``risk`` column (0-3) when present. Otherwise derived from ``is_anomaly`` looking
    forward ``horizon`` readings H: 3 while anomalous, 2 when the next anomaly of the entity
    is at most H readings ahead, 1 when at most 3H ahead, else 0.
Scores
    ``level``: the median of the predicted risk distribution (the level that minimises the
    expected absolute error); ``value``: the expected risk sum(p_k * k); ``flag`` (urgent):
    level 3, or P(risk >= 2) >= ``urgent_probability``. :func:`recommendation` gives the text
    for a level.
NaN
    A NaN feature is replaced by the feature's training median; outputs are always defined.
fine_tune
    Warm start: ``fine_tune_trees`` new trees are grown on the recent history and join the
    forest, when that history holds exactly the risk levels the forest knows; otherwise (a
    level appears or vanishes) the forest is refitted on the recent history.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from models.base import FitReport, FloatArray, IntArray, ModelError, NotFittedError, Scores
from models.features import (
    FeatureRows,
    FeatureSpec,
    SensorSpec,
    fill_missing,
    fill_values,
    frame_rows,
)
from models.features.sensor import SENSOR_FEATURES
from models.forest import ProbaScorer, ScoresProba
from models.frames import ENTITY, IS_ANOMALY, RISK, TS, holdout_mask
from models.metrics import mae, rmse
from models.tabular import (
    SpecModel,
    Stopwatch,
    numeric_metrics,
    params_dict,
    parse_params,
    require_frame,
    require_rows,
    time_window,
)

FOREST_FILE: Final = "forest.joblib"
LEVELS: Final = np.arange(4)  # risk levels 0..3
MIN_ROWS: Final = 50  # fewer readings cannot show both normal operation and a failure build-up
RECOMMENDATIONS: Final = (
    "No action: the machine operates normally.",
    "Watch: schedule an inspection at the next planned stop.",
    "Plan maintenance within the next shift; check the metrics that are drifting.",
    "Urgent: stop or derate the machine and inspect it now.",
)


def recommendation(level: int) -> str:
    """Operator guidance for a risk level 0-3."""
    if not 0 <= level < len(RECOMMENDATIONS):
        raise ValueError(f"risk level must be 0-3, got {level}")
    return RECOMMENDATIONS[level]


@dataclass(frozen=True)
class MaintenanceParams:
    """Hyper-parameters; ``metrics`` None means every numeric metric column of the frame."""

    metrics: tuple[str, ...] | None = None
    window: int = 48  # two days of hourly readings: the failure build-up fits inside
    lags: tuple[int, ...] = (1, 2, 3)
    rolling: tuple[int, ...] = (6, 24)
    features: tuple[str, ...] = SENSOR_FEATURES
    horizon: int = 12  # derived labels: half a day of hourly readings of warning
    n_estimators: int = 100  # 200 trees measured no better on the generator's machines
    max_depth: int | None = 16  # bounds the saved forest's size (it is cached per worker)
    min_samples_leaf: int = 5
    fine_tune_trees: int = 50
    urgent_probability: float = 0.8
    holdout: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.n_estimators < 1 or self.fine_tune_trees < 1:
            raise ValueError("horizon, n_estimators and fine_tune_trees must be >= 1")
        if not 0.0 < self.urgent_probability <= 1.0:
            raise ValueError(f"urgent_probability must be in (0, 1], got {self.urgent_probability}")


def derive_risk(frame: pd.DataFrame, horizon: int) -> IntArray:
    """Risk 0-3 from ``is_anomaly`` of a frame sorted by entity and time (see module doc)."""
    anomalous = frame[IS_ANOMALY].fillna(0).to_numpy(dtype=np.float64) > 0.5
    n = len(frame)
    index = np.arange(n)
    # index of the next anomalous row at or after each row (n when none), over the whole frame
    upcoming = np.where(anomalous, index, n)[::-1]
    following = np.minimum.accumulate(upcoming)[::-1]
    entity = frame[ENTITY].to_numpy()
    block_end = pd.Series(index).groupby(entity, sort=False).transform("max").to_numpy()
    distance = np.where(following <= block_end, following - index, np.iinfo(np.int64).max)
    risk = np.select([distance == 0, distance <= horizon, distance <= 3 * horizon], [3, 2, 1], 0)
    return risk.astype(np.int64)


class MaintenanceModel(SpecModel):
    """Risk level, expected risk and urgency per machine reading."""

    family: ClassVar[str] = "maintenance"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.config = parse_params(MaintenanceParams, self.params, self.family)
        self.params = params_dict(self.config)
        self._forest: RandomForestClassifier | None = None
        self._scorer: ScoresProba | None = None  # built from the forest on first use

    def fit(self, history: pd.DataFrame) -> FitReport:
        require_frame(history, (ENTITY, TS), self.family)
        cfg = self.config
        metrics = cfg.metrics or numeric_metrics(history)
        if not metrics:
            raise ModelError("maintenance: the frame has no numeric metric column to learn from")
        spec = SensorSpec(metrics, cfg.window, cfg.lags, cfg.rolling, cfg.features)
        clock = Stopwatch()
        rows, risk, train, holdout = self._prepare(spec, history)
        fill = fill_values(rows.matrix[train])
        forest = RandomForestClassifier(
            n_estimators=cfg.n_estimators,
            max_depth=cfg.max_depth,
            min_samples_leaf=cfg.min_samples_leaf,
            random_state=cfg.seed,
            n_jobs=1,
        )
        forest.fit(fill_missing(rows.matrix[train], fill), risk[train])
        self._forest, self._scorer = forest, None
        self._set_spec(spec)
        self.info.update(fill=fill.tolist(), fine_tunes=0, trained_by="fit")
        return self._report(rows, risk, train, holdout, clock)

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        forest = self._forest
        if forest is None:
            raise NotFittedError("maintenance: fine_tune needs a fitted model")
        clock = Stopwatch()
        rows, risk, train, holdout = self._prepare(self.spec, history)
        x = fill_missing(rows.matrix[train], np.asarray(self.info["fill"], dtype=np.float64))
        if set(np.unique(risk[train])) == set(forest.classes_.tolist()):
            forest.set_params(
                warm_start=True, n_estimators=forest.n_estimators + self.config.fine_tune_trees
            )
            forest.fit(x, risk[train])
            forest.set_params(warm_start=False)
            self.info["trained_by"] = "warm_start"
        else:
            forest.set_params(n_estimators=self.config.n_estimators).fit(x, risk[train])
            self.info["trained_by"] = "refit"
        self._scorer = None  # the forest grew or was refitted
        self.info["fine_tunes"] = int(self.info.get("fine_tunes", 0)) + 1
        return self._report(rows, risk, train, holdout, clock)

    def _prepare(
        self, spec: FeatureSpec, history: pd.DataFrame
    ) -> tuple[FeatureRows, IntArray, np.ndarray, np.ndarray]:
        """Feature rows, risk labels, and the train / holdout masks (split by time)."""
        rows = frame_rows(spec, history)
        frame = rows.frame
        if RISK in frame.columns and frame[RISK].notna().any():
            labels = frame[RISK].to_numpy(dtype=np.float64)
        elif IS_ANOMALY in frame.columns:
            labels = derive_risk(frame, self.config.horizon).astype(np.float64)
        else:
            raise ModelError(f"maintenance: the frame needs a {RISK} or {IS_ANOMALY} label column")
        known = np.isfinite(labels)
        risk = np.clip(np.nan_to_num(labels), 0, 3).astype(np.int64)
        holdout = holdout_mask(frame[TS], self.config.holdout) & known
        train = ~holdout & known & rows.warm(spec.history_needed // 2)
        require_rows(int(train.sum()), MIN_ROWS, self.family, "fit")
        return rows, risk, train, holdout

    def _report(
        self,
        rows: FeatureRows,
        risk: IntArray,
        train: np.ndarray,
        holdout: np.ndarray,
        clock: Stopwatch,
    ) -> FitReport:
        metrics: dict[str, float] = {}
        if holdout.any():
            scores = self.predict_batch(rows.matrix[holdout])
            truth = risk[holdout]
            level = np.asarray(scores.level)
            metrics = {
                "mae": mae(truth, level),
                "rmse": rmse(truth, level),
                "mae_expected": mae(truth, np.asarray(scores.value)),
                "accuracy": float(np.mean(truth == level)),
            }
        window = time_window(rows.frame[train])
        return FitReport(metrics, int(train.sum()), clock.seconds(), window)

    def probabilities(self, features: FloatArray) -> FloatArray:
        """``[rows, 4]`` probabilities of risk 0..3 (levels the forest never saw get 0)."""
        matrix = self._matrix(features)
        if self._forest is None:
            raise NotFittedError("maintenance: model is not fitted")
        if self._scorer is None:
            self._scorer = ProbaScorer(self._forest)
        proba = np.zeros((matrix.shape[0], LEVELS.size))
        if matrix.shape[0]:
            x = fill_missing(matrix, np.asarray(self.info["fill"], dtype=np.float64))
            proba[:, self._forest.classes_.astype(np.int64)] = self._scorer.predict_proba(x)
        return proba

    def score_with_library(self) -> None:
        """Score through scikit-learn's own ``predict_proba`` until the next fit.

        Same probabilities, one joblib task per tree: what a service that calls the library
        does (the stream benchmark's per-message baseline).
        """
        if self._forest is None:
            raise NotFittedError("maintenance: model is not fitted")
        self._scorer = self._forest

    def predict_batch(self, features: FloatArray) -> Scores:
        proba = self.probabilities(features)
        # weighted median: the first level whose cumulative probability reaches one half
        # (less a rounding allowance: tree votes like 0.2 + 0.3 may sum to 0.49999999)
        level = np.argmax(np.cumsum(proba, axis=1) >= 0.5 - 1e-9, axis=1).astype(np.int64)
        urgent = (level == 3) | (proba[:, 2:].sum(axis=1) >= self.config.urgent_probability)
        return Scores(value=proba @ LEVELS.astype(np.float64), level=level, flag=urgent)

    def save(self, directory: Path) -> list[str]:
        if self._forest is None:
            raise NotFittedError("maintenance: nothing to save, the model is not fitted")
        joblib.dump(self._forest, directory / FOREST_FILE, compress=3)
        return [FOREST_FILE]

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> MaintenanceModel:
        model = cls(metadata.get("params"))
        model._restore_spec(metadata)
        try:
            model._forest = joblib.load(directory / FOREST_FILE)
        except (OSError, ValueError, EOFError) as exc:
            raise ModelError(
                f"maintenance: cannot read {FOREST_FILE} in {directory}: {exc}"
            ) from exc
        model._scorer = ProbaScorer(model._forest)  # off the hot path, as anomaly's
        return model
