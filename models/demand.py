"""Demand family: one global CatBoost regressor over every product of the frame.

Features (``models.features.DemandSpec``, defaults chosen from the sampling step): the
product's recent level, quantity lags (including the same time one season back), rolling
means and spreads, price and promotion, calendar fields of the target time and a stable
product code (categorical; 0 for a product the model never saw, which CatBoost treats as
one more category). The spec is stored with the model; a per-product model is simply one
trained on a frame holding a single product (registry keys choose which).

Target and forecast
    The regression target is ``log1p(quantity at t + horizon) - level``: relative to the
    product's level, so errors are relative (what MAPE measures) and products of any size
    share one model. ``value`` = expm1(level + prediction), clipped at 0.
Interval
    Split conformal in the same log space: the ``coverage`` (default 90 %) band of the
    residuals on a calibration split (the latest ``calibration`` share of the training
    period, never used to grow trees); ``lower``/``upper`` = expm1(log forecast + quantile).
NaN
    CatBoost handles NaN features natively; a NaN ``product`` code counts as unknown. A row
    without any quantity in its window (NaN ``level``) has NaN value, lower and upper.
fine_tune
    Warm start (``init_model``) from the current trees at ``fine_tune_lr_factor`` times the
    learning rate; the latest ``fine_tune_validation`` share of the recent history picks the
    best iteration, recalibrates the interval and gives the reported metrics. New products
    get new codes; known codes never change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd
from catboost import CatBoostError, CatBoostRegressor, FeaturesData, Pool

from models.base import FitReport, FloatArray, ModelError, NotFittedError, Scores
from models.features import (
    UNKNOWN_PRODUCT,
    DemandSpec,
    FeatureRows,
    frame_rows,
    infer_step_seconds,
)
from models.frames import PRICE, PRODUCT, PROMO, QUANTITY, TS, holdout_mask
from models.metrics import coverage, regression_report
from models.tabular import (
    SpecModel,
    Stopwatch,
    params_dict,
    parse_params,
    require_frame,
    require_rows,
    time_window,
)

MODEL_FILE: Final = "model.cbm"
MIN_TRAIN_ROWS: Final = 30  # fewer rows than this cannot teach lags, calendar and promo effects
MIN_CALIBRATION_ROWS: Final = 10  # a 90 % band needs at least ten residuals to mean anything


@dataclass(frozen=True)
class DemandParams:
    """Hyper-parameters; lags/rolling/calendar None take the step's defaults."""

    horizon: int = 1
    lags: tuple[int, ...] | None = None
    rolling: tuple[int, ...] | None = None
    calendar: tuple[str, ...] | None = None
    iterations: int = 400  # on generated demand, 600 or 1000 trees at 0.05 fitted no better
    learning_rate: float = 0.05
    depth: int = 6
    l2_leaf_reg: float = 3.0  # CatBoost's default regularisation
    coverage: float = 0.9
    holdout: float = 0.2
    calibration: float = 0.15  # of the training period: ~55 residuals per product for a year
    fine_tune_iterations: int = 200
    fine_tune_lr_factor: float = 0.3  # gentle steps: adapt to recent data, keep what was learnt
    fine_tune_validation: float = 0.1
    early_stopping_rounds: int = 50  # fine-tune stops after 50 rounds without a better score
    thread_count: int = -1  # CatBoost: every core
    seed: int = 0

    def __post_init__(self) -> None:
        fractions = (self.calibration, self.fine_tune_validation)
        if not (0.0 < self.coverage < 1.0 and all(0.0 < f < 1.0 for f in fractions)):
            raise ValueError("coverage, calibration and fine_tune_validation must be in (0, 1)")
        if min(self.iterations, self.fine_tune_iterations, self.depth) < 1:
            raise ValueError("iterations, fine_tune_iterations and depth must be >= 1")


@dataclass(frozen=True)
class Supervised:
    """Feature rows with their log-space targets (rows without a target dropped)."""

    rows: FeatureRows
    matrix: FloatArray
    target: FloatArray  # log1p(quantity ahead) - level
    actual: FloatArray  # quantity ahead
    ts: pd.Series


class DemandModel(SpecModel):
    """Global one-step-ahead (``horizon``) demand forecaster with conformal intervals."""

    family: ClassVar[str] = "demand"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.config = parse_params(DemandParams, self.params, self.family)
        self.params = params_dict(self.config)
        self._model: CatBoostRegressor | None = None

    # -- training ------------------------------------------------------------------------
    def fit(self, history: pd.DataFrame) -> FitReport:
        clock = Stopwatch()
        spec = self._spec_for(history)
        data = self._supervised(spec, history)
        holdout = holdout_mask(data.ts, self.config.holdout)
        calibrate = holdout_mask(data.ts.where(~holdout), self.config.calibration) & ~holdout
        train = ~holdout & ~calibrate
        require_rows(int(train.sum()), MIN_TRAIN_ROWS, self.family, "train")
        require_rows(int(calibrate.sum()), MIN_CALIBRATION_ROWS, self.family, "calibrate")
        self._set_spec(spec)
        self._model = self._train(self._pool(data, train), None, self.config.learning_rate)
        self._calibrate(data, calibrate)
        self.info.update(fine_tunes=0, trained_by="fit")
        metrics = self._evaluate(data, holdout)
        return FitReport(metrics, int(train.sum()), clock.seconds(), _window(data, train))

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        if self._model is None:
            raise NotFittedError("demand: fine_tune needs a fitted model")
        clock, cfg = Stopwatch(), self.config
        require_frame(history, (PRODUCT, TS, QUANTITY), self.family)
        spec = self._demand_spec.with_products(history[PRODUCT].astype(str).unique().tolist())
        data = self._supervised(spec, history)
        validate = holdout_mask(data.ts, cfg.fine_tune_validation)
        train = ~validate
        require_rows(int(train.sum()), MIN_TRAIN_ROWS, self.family, "fine-tune")
        require_rows(int(validate.sum()), MIN_CALIBRATION_ROWS, self.family, "validate")
        self._set_spec(spec)
        rate = cfg.learning_rate * cfg.fine_tune_lr_factor
        evaluation = self._pool(data, validate)
        self._model = self._train(self._pool(data, train), evaluation, rate, self._model)
        self._calibrate(data, validate)
        self.info.update(fine_tunes=int(self.info.get("fine_tunes", 0)) + 1)
        self.info["trained_by"] = "fine_tune"
        metrics = self._evaluate(data, validate)
        curve = {"validation_rmse": self._model.get_evals_result()["validation"]["RMSE"]}
        return FitReport(metrics, int(train.sum()), clock.seconds(), _window(data, train), curve)

    def _spec_for(self, history: pd.DataFrame) -> DemandSpec:
        require_frame(history, (PRODUCT, TS, QUANTITY), self.family)
        step = infer_step_seconds(history, PRODUCT)
        if not math.isfinite(step):
            raise ModelError("demand: too little data: no product has two readings to set a step")
        cfg = self.config
        spec = DemandSpec.for_step(
            step,
            cfg.horizon,
            price=PRICE in history.columns and bool(history[PRICE].notna().any()),
            promo=PROMO in history.columns and bool(history[PROMO].notna().any()),
        )
        if cfg.lags is not None:
            spec = replace(spec, lags=cfg.lags)
        if cfg.rolling is not None:
            spec = replace(spec, rolling=cfg.rolling, level_window=cfg.rolling[0])
        if cfg.calendar is not None:
            spec = replace(spec, calendar=cfg.calendar)
        return spec.with_products(history[PRODUCT].astype(str).unique().tolist())

    def _supervised(self, spec: DemandSpec, history: pd.DataFrame) -> Supervised:
        rows = frame_rows(spec, history)
        ahead = rows.frame.groupby(PRODUCT, sort=False)[QUANTITY].shift(-spec.horizon)
        actual = np.clip(ahead.to_numpy(dtype=np.float64), 0.0, None)
        level = rows.matrix[:, 0]
        keep = np.isfinite(actual) & np.isfinite(level)
        target = np.log1p(actual[keep]) - level[keep]
        ts = rows.frame.loc[keep, TS].reset_index(drop=True)
        return Supervised(rows, rows.matrix[keep], target, actual[keep], ts)

    def _pool(self, data: Supervised, mask: np.ndarray) -> Pool:
        return self._features(data.matrix[mask], data.target[mask])

    def _train(
        self,
        pool: Pool,
        evaluation: Pool | None,
        rate: float,
        init: CatBoostRegressor | None = None,
    ) -> CatBoostRegressor:
        cfg = self.config
        model = CatBoostRegressor(
            iterations=cfg.iterations if init is None else cfg.fine_tune_iterations,
            learning_rate=rate,
            depth=cfg.depth,
            l2_leaf_reg=cfg.l2_leaf_reg,
            loss_function="RMSE",
            random_seed=cfg.seed,
            thread_count=cfg.thread_count,
            allow_writing_files=False,  # no catboost_info/ directory in the working dir
            verbose=False,
        )
        try:
            model.fit(
                pool,
                eval_set=evaluation,
                init_model=init,
                use_best_model=evaluation is not None,
                early_stopping_rounds=cfg.early_stopping_rounds if evaluation is not None else None,
            )
        except CatBoostError as exc:
            raise ModelError(f"demand: CatBoost training failed: {exc}") from exc
        return model

    def _calibrate(self, data: Supervised, mask: np.ndarray) -> None:
        """Conformal band of log-space residuals on rows the trees did not learn from."""
        residual = data.target[mask] - self._raw(data.matrix[mask])
        alpha = 1.0 - self.config.coverage
        n = residual.size
        # finite-sample correction: the ceil((n + 1)(1 - alpha/2))/n empirical quantile
        upper_q = min(1.0, math.ceil((n + 1) * (1.0 - alpha / 2.0)) / n)
        lower_q = max(0.0, 1.0 - upper_q)
        band = np.quantile(residual, [lower_q, upper_q])
        self.info["band"] = [float(band[0]), float(band[1])]

    def _evaluate(self, data: Supervised, mask: np.ndarray) -> dict[str, float]:
        if not mask.any():
            return {}
        scores = self.predict_batch(data.matrix[mask])
        truth = data.actual[mask]
        metrics = regression_report(truth, np.asarray(scores.value))
        metrics["coverage"] = coverage(truth, np.asarray(scores.lower), np.asarray(scores.upper))
        return metrics

    # -- serving -------------------------------------------------------------------------
    @property
    def _demand_spec(self) -> DemandSpec:
        spec = self.spec
        if not isinstance(spec, DemandSpec):
            raise ModelError(f"demand: expected a demand feature spec, got {spec.kind}")
        return spec

    def _features(self, matrix: FloatArray, label: FloatArray | None = None) -> Pool:
        """CatBoost input: the numeric columns as float32 (what CatBoost keeps of them) and
        the product code, always the last column, as an integer category.

        ``FeaturesData`` skips the DataFrame a pool is otherwise built from: a third of the
        cost of a worker's small batch, for the same pool.
        """
        codes = np.nan_to_num(matrix[:, -1:], nan=float(UNKNOWN_PRODUCT)).astype(np.int64)
        data = FeaturesData(
            num_feature_data=np.ascontiguousarray(matrix[:, :-1], dtype=np.float32),
            cat_feature_data=codes.astype(str).astype(object),
            num_feature_names=self.feature_names[:-1],
            cat_feature_names=self.feature_names[-1:],
        )
        return Pool(data, label)

    def _raw(self, matrix: FloatArray) -> FloatArray:
        if self._model is None:
            raise NotFittedError("demand: model is not fitted")
        if matrix.shape[0] == 0:
            return np.empty(0)
        return np.asarray(self._model.predict(self._features(matrix)), dtype=np.float64)

    def predict_batch(self, features: FloatArray) -> Scores:
        matrix = self._matrix(features)
        forecast = matrix[:, 0] + self._raw(matrix)  # log1p space
        low, high = self.info["band"]
        value = np.clip(np.expm1(forecast), 0.0, None)
        lower = np.clip(np.expm1(forecast + low), 0.0, None)
        upper = np.clip(np.expm1(forecast + high), 0.0, None)
        return Scores(value=value, lower=np.minimum(lower, value), upper=np.maximum(upper, value))

    # -- persistence ---------------------------------------------------------------------
    def save(self, directory: Path) -> list[str]:
        if self._model is None:
            raise NotFittedError("demand: nothing to save, the model is not fitted")
        self._model.save_model(str(directory / MODEL_FILE), format="cbm")
        return [MODEL_FILE]

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> DemandModel:
        model = cls(metadata.get("params"))
        model._restore_spec(metadata)
        booster = CatBoostRegressor()
        try:
            booster.load_model(str(directory / MODEL_FILE), format="cbm")
        except (CatBoostError, OSError) as exc:
            raise ModelError(f"demand: cannot read {MODEL_FILE} in {directory}: {exc}") from exc
        model._model = booster
        return model


def _window(data: Supervised, mask: np.ndarray) -> tuple[str, str] | None:
    return time_window(pd.DataFrame({TS: data.ts[mask]}))
