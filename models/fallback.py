"""Fallbacks that serve before any model is trained: every Scores they return says so.

* :class:`SeasonalNaive` forecasts the value one season before the target time, with an
  interval from the spread of the seasonal differences inside the entity's window.
* :class:`RobustZScore` scores each reading by its largest robust z-score (median/MAD over
  the entity's window) among the metrics.

Both implement the Model interface and work straight from their parameters: ``fit`` only
checks the frame and records what it can infer (the season from the sampling step, the
metric names), so the worker uses a fallback exactly like a trained model. ``save`` writes
the spec as JSON; nothing is pickled.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd

from models.base import FitReport, FloatArray, ModelError, Scores, severity_of
from models.features import (
    SensorSpec,
    SeriesSpec,
    frame_rows,
    infer_step_seconds,
    spec_from_dict,
)
from models.features.demand import DAY_SECONDS
from models.frames import ENTITY, IS_ANOMALY, PRODUCT, QUANTITY, TS
from models.metrics import coverage, detection_report, regression_report
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

SPEC_FILE: Final = "spec.json"


def season_for_step(step_seconds: float) -> int:
    """Readings per season: a day for sub-daily data, a week for daily data, else 1."""
    if not math.isfinite(step_seconds) or step_seconds <= 0:
        raise ModelError(f"cannot infer a season from a sampling step of {step_seconds} s")
    if step_seconds < DAY_SECONDS:
        return max(1, round(DAY_SECONDS / step_seconds))
    return 7 if step_seconds < 7 * DAY_SECONDS else 1


class _SpecFileModel(SpecModel):
    """A fallback: ``fine_tune`` is ``fit``; the spec is its only state, saved as JSON."""

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        return self.fit(history)

    def save(self, directory: Path) -> list[str]:
        (directory / SPEC_FILE).write_text(json.dumps(self.spec.to_dict(), sort_keys=True))
        return [SPEC_FILE]

    @classmethod
    def _read_spec(cls, directory: Path) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((directory / SPEC_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{cls.family}: cannot read {SPEC_FILE} in {directory}") from exc
        return data


@dataclass(frozen=True)
class NaiveParams:
    """``season`` None: inferred from the sampling step at fit (24 until then)."""

    target: str = QUANTITY
    entity: str | None = None  # None: product_id for quantity, else entity_id
    season: int | None = None
    horizon: int = 1
    coverage: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must be in (0, 1), got {self.coverage}")


class SeasonalNaive(_SpecFileModel):
    """Forecast = the value one season before the target (the last value if that is
    missing); interval = value -+ z * MAD sigma of the window's seasonal differences."""

    family: ClassVar[str] = "seasonal_naive"
    DEFAULT_SEASON: ClassVar[int] = 24  # hourly data is the common case before any fit

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.config = parse_params(NaiveParams, self.params, self.family)
        self.params = params_dict(self.config)
        self._set_spec(self._series(self.config.season or self.DEFAULT_SEASON))

    def _series(self, season: int) -> SeriesSpec:
        cfg = self.config
        entity = cfg.entity or (PRODUCT if cfg.target == QUANTITY else ENTITY)
        return SeriesSpec(cfg.target, season, cfg.horizon, entity=entity)

    def fit(self, history: pd.DataFrame) -> FitReport:
        """Infer the season (unless set) and measure the naive forecast on the history."""
        clock = Stopwatch()
        entity = self.spec.entity
        require_frame(history, (entity, TS, self.config.target), self.family)
        require_rows(int(history[self.config.target].notna().sum()), 2, self.family, "fit")
        season = self.config.season or season_for_step(infer_step_seconds(history, entity))
        self._set_spec(self._series(season))
        rows = frame_rows(self.spec, history)
        ahead = rows.frame.groupby(entity, sort=False)[self.config.target].shift(
            -self.config.horizon
        )
        scores = self.predict_batch(rows.matrix)
        truth = ahead.to_numpy(dtype=np.float64)
        metrics = regression_report(truth, np.asarray(scores.value))
        metrics["coverage"] = coverage(truth, np.asarray(scores.lower), np.asarray(scores.upper))
        return FitReport(metrics, len(rows.frame), clock.seconds(), time_window(rows.frame))

    def predict_batch(self, features: FloatArray) -> Scores:
        matrix = self._matrix(features)
        seasonal, last, spread = matrix[:, 0], matrix[:, 1], matrix[:, 2]
        value = np.where(np.isfinite(seasonal), seasonal, last)
        half = NormalDist().inv_cdf(0.5 + self.config.coverage / 2.0) * spread
        return Scores(value=value, lower=value - half, upper=value + half, fallback=True)

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> SeasonalNaive:
        model = cls(metadata.get("params"))
        model._restore_spec(metadata)
        model._set_spec(spec_from_dict(cls._read_spec(directory)))
        return model


@dataclass(frozen=True)
class ZScoreParams:
    """``metrics`` None: every numeric metric column of the frame seen at fit."""

    metrics: tuple[str, ...] | None = None
    window: int = 48  # two days of hourly readings for each entity's typical level
    threshold: float = 3.5  # Iglewicz and Hoaglin's cut-off for modified z-scores

    def __post_init__(self) -> None:
        if self.threshold <= 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")


class RobustZScore(_SpecFileModel):
    """score = 1 - 2^(-|z| / threshold) for the largest |robust z| of a reading's metrics:
    0.5 at the threshold (flag), 0.75 at twice it; no evidence (too little history) is 0."""

    family: ClassVar[str] = "robust_zscore"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.config = parse_params(ZScoreParams, self.params, self.family)
        self.params = params_dict(self.config)
        if self.config.metrics:
            self._set_spec(self._sensor(self.config.metrics))

    def _sensor(self, metrics: tuple[str, ...]) -> SensorSpec:
        return SensorSpec(metrics, self.config.window, lags=(), rolling=(), features=("rz",))

    def fit(self, history: pd.DataFrame) -> FitReport:
        """Record the metrics; with ``is_anomaly`` labels, report how the scores detect."""
        clock = Stopwatch()
        require_frame(history, (ENTITY, TS), self.family)
        metrics = self.config.metrics or numeric_metrics(history)
        if not metrics:
            raise ModelError(f"{self.family}: the frame has no numeric metric column to score")
        require_rows(len(history), 3, self.family, "fit")  # a robust z needs two earlier readings
        self._set_spec(self._sensor(metrics))
        rows = frame_rows(self.spec, history)
        metrics_out: dict[str, float] = {}
        if IS_ANOMALY in rows.frame.columns:
            scores = self.predict_batch(rows.matrix)
            truth = rows.frame[IS_ANOMALY].to_numpy(dtype=np.float64)
            flagged, score = np.asarray(scores.flag), np.asarray(scores.score)
            metrics_out = detection_report(truth, flagged, score)
        return FitReport(metrics_out, len(rows.frame), clock.seconds(), time_window(rows.frame))

    def predict_batch(self, features: FloatArray) -> Scores:
        z = np.abs(self._matrix(features))
        largest = np.where(np.isnan(z), 0.0, z).max(axis=1, initial=0.0)
        score = 1.0 - np.exp2(-largest / self.config.threshold)
        return Scores(
            score=score,
            flag=largest > self.config.threshold,
            severity=severity_of(score),
            fallback=True,
        )

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> RobustZScore:
        model = cls(metadata.get("params"))
        model._restore_spec(metadata)
        model._set_spec(spec_from_dict(cls._read_spec(directory)))
        return model
