"""Anomaly family: scikit-learn IsolationForest over scale-free per-metric window features.

Features (``models.features.SensorSpec``, default ``rz`` and ``crz``): for every metric, the
robust z-score of the current reading against the median/MAD of the entity's window (its
typical level), and how far that z-score strays from the median z-score of the reading's
other metrics (a busier machine moves power, production and vibration together; a jam or an
overheat moves one alone). Being relative to each entity, one forest serves machines that
run at different levels. The forest sees magnitudes (|feature|): a deviation counts in
either direction. On the project's generated machines this pair beat rolling z-scores, step
changes and spreads, which also fire on the readings right after an anomaly.

Scores
    ``score`` in [0, 1] = sigmoid(a / s) where a = -IsolationForest.decision_function (> 0
    beyond the threshold) and s = the spread (std) of a over the training rows. The
    threshold maps to exactly 0.5; ``flag`` = score > 0.5; ``severity`` via
    ``models.base.severity_of`` (score > 0.5 / 0.75 / 0.9 -> 1 / 2 / 3).
Threshold
    IsolationForest's ``contamination``: the share of training rows flagged. Default: the
    labelled anomaly rate of the training rows when ``is_anomaly`` is present (fitting stays
    unsupervised), else 1%.
Labels
    With ``is_anomaly``, the forest is fitted on the earlier part of the history and
    precision, recall, F1 and ROC AUC are reported on the most recent ``holdout`` share
    (split by time). Without labels every row trains. Either way the first ``window // 2``
    readings of each entity do not train: their thin windows give noisy statistics.
NaN
    A NaN feature (too little history, a metric never reported in the window) is replaced by
    that feature's training median, i.e. "no evidence of a deviation"; outputs are finite.
fine_tune
    Refits on the given (recent) history with the same metrics and parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from models.base import FitReport, FloatArray, ModelError, NotFittedError, Scores, severity_of
from models.features import FeatureSpec, SensorSpec, fill_missing, fill_values, frame_rows
from models.forest import Decides, IsolationScorer
from models.frames import ENTITY, IS_ANOMALY, TS, holdout_mask
from models.metrics import detection_report
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
MIN_ROWS: Final = 50  # fewer readings cannot describe "normal" for a forest of 256-row samples
DEFAULT_CONTAMINATION: Final = 0.01  # without labels: flag the rarest 1% of training rows
RATE_BOUNDS: Final = (0.001, 0.5)  # IsolationForest accepts contamination in (0, 0.5]


@dataclass(frozen=True)
class AnomalyParams:
    """Hyper-parameters; ``metrics`` None means every numeric metric column of the frame."""

    metrics: tuple[str, ...] | None = None
    window: int = 72  # three days of hourly readings: a stable typical level per entity
    rolling: tuple[int, ...] = (6, 24)
    features: tuple[str, ...] = ("rz", "crz")
    n_estimators: int = 200
    max_samples: int = 256  # the IsolationForest paper's sub-sample size
    contamination: float | None = None
    holdout: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.contamination is not None and not 0.0 < self.contamination <= 0.5:
            raise ValueError(f"contamination must be in (0, 0.5], got {self.contamination}")
        if self.n_estimators < 1 or self.max_samples < 2:
            raise ValueError("n_estimators must be >= 1 and max_samples >= 2")


class AnomalyModel(SpecModel):
    """IsolationForest anomaly scores for machine (or station) sensor readings."""

    family: ClassVar[str] = "anomaly"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.config = parse_params(AnomalyParams, self.params, self.family)
        self.params = params_dict(self.config)
        self._forest: IsolationForest | None = None
        self._scorer: Decides | None = None  # built from the forest on first use

    def fit(self, history: pd.DataFrame) -> FitReport:
        require_frame(history, (ENTITY, TS), self.family)
        metrics = self.config.metrics or numeric_metrics(history)
        if not metrics:
            raise ModelError("anomaly: the frame has no numeric metric column to learn from")
        cfg = self.config
        spec = SensorSpec(metrics, cfg.window, rolling=cfg.rolling, features=cfg.features)
        return self._train(spec, history)

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        """Refit on recent history with the current metrics (anomaly forests do not grow)."""
        if self._forest is None:
            raise NotFittedError("anomaly: fine_tune needs a fitted model")
        return self._train(self.spec, history)

    def _train(self, spec: FeatureSpec, history: pd.DataFrame) -> FitReport:
        clock, cfg = Stopwatch(), self.config
        rows = frame_rows(spec, history)
        frame, matrix = rows.frame, rows.matrix
        labelled = IS_ANOMALY in frame.columns and bool(frame[IS_ANOMALY].notna().any())
        holdout = holdout_mask(frame[TS], cfg.holdout) if labelled else np.zeros(len(frame), bool)
        # the first readings of an entity have a thin window whose statistics are noisy
        train = ~holdout & rows.warm(spec.history_needed // 2)
        require_rows(int(train.sum()), MIN_ROWS, self.family, "fit")
        contamination = self._contamination(frame[train] if labelled else None)
        fill = fill_values(matrix[train])
        x = _magnitudes(matrix[train], fill)
        forest = IsolationForest(
            n_estimators=cfg.n_estimators,
            max_samples=min(cfg.max_samples, x.shape[0]),
            contamination=contamination,
            random_state=cfg.seed,
            n_jobs=1,
        ).fit(x)
        spread = float(np.std(-forest.decision_function(x)))
        self._forest, self._scorer = forest, None
        self._set_spec(spec)
        # a forest that scores every row alike has no spread; keep the division defined
        spread = max(spread, 1e-12)
        self.info.update(fill=fill.tolist(), spread=spread, contamination=contamination)
        metrics: dict[str, float] = {"contamination": contamination}
        if holdout.any():
            scores = self.predict_batch(matrix[holdout])
            truth = frame.loc[holdout, IS_ANOMALY].to_numpy(dtype=np.float64)
            flagged, score = np.asarray(scores.flag), np.asarray(scores.score)
            metrics |= detection_report(truth, flagged, score)
        return FitReport(metrics, int(train.sum()), clock.seconds(), time_window(frame[train]))

    def _contamination(self, labelled: pd.DataFrame | None) -> float:
        """The parameter, else the labelled rate of the training rows, else the default."""
        rate = self.config.contamination
        if rate is None and labelled is not None:
            labels = labelled[IS_ANOMALY].to_numpy(dtype=np.float64)
            labels = labels[np.isfinite(labels)]
            rate = float(np.mean(labels > 0.5)) if labels.size else None
        return float(np.clip(rate or DEFAULT_CONTAMINATION, *RATE_BOUNDS))

    def predict_batch(self, features: FloatArray) -> Scores:
        matrix = self._matrix(features)
        if self._forest is None:
            raise NotFittedError("anomaly: model is not fitted")
        if self._scorer is None:
            self._scorer = IsolationScorer(self._forest)
        x = _magnitudes(matrix, np.asarray(self.info["fill"], dtype=np.float64))
        beyond = -self._scorer.decision_function(x) if x.shape[0] else np.empty(0)
        # the logistic function written with tanh, which cannot overflow
        score = 0.5 * (1.0 + np.tanh(beyond / (2.0 * float(self.info["spread"]))))
        return Scores(score=score, flag=score > 0.5, severity=severity_of(score))

    def score_with_library(self) -> None:
        """Score through scikit-learn's own ``decision_function`` until the next fit.

        Same scores, one joblib task per tree: what a service that calls the library does
        (the stream benchmark's per-message baseline).
        """
        if self._forest is None:
            raise NotFittedError("anomaly: model is not fitted")
        self._scorer = self._forest

    def save(self, directory: Path) -> list[str]:
        if self._forest is None:
            raise NotFittedError("anomaly: nothing to save, the model is not fitted")
        joblib.dump(self._forest, directory / FOREST_FILE, compress=3)
        return [FOREST_FILE]

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> AnomalyModel:
        model = cls(metadata.get("params"))
        model._restore_spec(metadata)
        try:
            model._forest = joblib.load(directory / FOREST_FILE)
        except (OSError, ValueError, EOFError) as exc:
            raise ModelError(f"anomaly: cannot read {FOREST_FILE} in {directory}: {exc}") from exc
        # laid out (and the walk compiled, once per process) by whoever loads, not by the
        # first batch: a worker loads and swaps models off its hot path
        model._scorer = IsolationScorer(model._forest)
        return model


def _magnitudes(matrix: FloatArray, fill: FloatArray) -> FloatArray:
    """What the forest sees: |feature| with NaN filled (a deviation counts either way)."""
    return np.abs(fill_missing(matrix, fill))
