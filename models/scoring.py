"""Batch scoring of a history frame with a loaded model: backfill, validation, benchmarks.

Every reading gets the output the worker would have produced when it arrived: the model's
feature rows come from ``models.features.frame_rows`` (each row's window holds only that
entity's readings up to and including it), then ``predict_batch`` runs once per chunk of
rows. Chunking changes nothing but memory and progress reports.

Output columns by what the model produces:

* anomaly scores (``anomaly``, ``robust_zscore``): ``score``, ``flag``, ``severity``;
* risk (``maintenance``): ``risk_level``, ``expected_risk``, ``urgent``, ``recommendation``;
* forecasts (``demand``, ``sequence``, ``seasonal_naive``): ``target_ts`` (reading time +
  horizon steps), ``forecast``, ``lower``, ``upper``;
* ``sequence`` also: ``imputed``, ``imputed_lower``, ``imputed_upper`` on the readings whose
  target metric is missing, estimated from the past and the covariates read at that time
  (``SequenceModel.impute_rows``); empty elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import pandas as pd

from models.base import FloatArray, Model, ModelError, Scores
from models.features import DemandSpec, FeatureRows, infer_step_seconds
from models.frames import TS, FrameError
from models.tabular import SpecModel

CHUNK_ROWS: Final = 8192  # rows per predict_batch call: a progress tick, bounded memory
FLAG_THRESHOLD: Final = 0.5  # every anomaly-type score maps its threshold to 0.5

RowsDone = Callable[[int], None]


@dataclass(frozen=True)
class ScoredHistory:
    """``inputs``: the normalised history (sorted by entity and time, one row per reading);
    ``outputs``: the model's output columns, same index; ``entity``: the key column."""

    inputs: pd.DataFrame
    outputs: pd.DataFrame
    entity: str
    seconds: float

    def table(self) -> pd.DataFrame:
        """Entity, ts and the output columns: what ``driftline score`` writes."""
        return pd.concat([self.inputs[[self.entity, TS]], self.outputs], axis=1)

    @property
    def rows_per_second(self) -> float:
        return len(self.inputs) / self.seconds if self.seconds > 0 else float("inf")


def spec_model(model: Model) -> SpecModel:
    """``model`` as a family built on a feature spec (all families are)."""
    if not isinstance(model, SpecModel):
        raise ModelError(f"{model.family}: batch scoring needs a model built on a feature spec")
    return model


def feature_rows(model: Model, history: pd.DataFrame) -> FeatureRows:
    """The model's feature rows for every reading of ``history`` (ModelError if unusable)."""
    try:
        return spec_model(model).feature_rows(history)
    except FrameError as exc:
        raise ModelError(f"{model.family}: cannot build features: {exc}") from exc


def score_history(
    model: Model,
    history: pd.DataFrame,
    chunk_rows: int = CHUNK_ROWS,
    on_rows: RowsDone | None = None,
) -> ScoredHistory:
    """Score every reading of ``history``; ``on_rows(n)`` is told after each chunk of n rows."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    started = time.perf_counter()
    rows = feature_rows(model, history)
    scores = predict_chunks(model.predict_batch, rows.matrix, chunk_rows, on_rows)
    outputs = _columns(model, rows, scores, history)
    outputs.index = rows.frame.index
    entity = spec_model(model).spec.entity
    return ScoredHistory(rows.frame, outputs, entity, time.perf_counter() - started)


def predict_chunks(
    predict: Callable[[FloatArray], Scores],
    matrix: FloatArray,
    chunk_rows: int = CHUNK_ROWS,
    on_rows: RowsDone | None = None,
) -> Scores:
    """``predict`` over row chunks of ``matrix``, joined into one Scores."""
    parts = []
    for start in range(0, max(matrix.shape[0], 1), chunk_rows):
        part = predict(matrix[start : start + chunk_rows])
        parts.append(part)
        if on_rows is not None:
            on_rows(len(part))
    return _concat(parts)


def _concat(parts: list[Scores]) -> Scores:
    joined: dict[str, Any] = {"fallback": any(p.fallback for p in parts)}
    for field in fields(Scores):
        arrays = [getattr(p, field.name) for p in parts]
        if field.name != "fallback" and all(a is not None for a in arrays):
            joined[field.name] = np.concatenate(arrays)
    return Scores(**joined)


def _columns(
    model: Model, rows: FeatureRows, scores: Scores, history: pd.DataFrame
) -> pd.DataFrame:
    if scores.level is not None and scores.value is not None and scores.flag is not None:
        return _risk_columns(scores)
    if scores.score is not None and scores.flag is not None and scores.severity is not None:
        return pd.DataFrame(
            {"score": scores.score, "flag": scores.flag, "severity": scores.severity}
        )
    if scores.value is not None:
        out = pd.DataFrame({"target_ts": target_times(model, rows.frame, history)})
        out["forecast"], out["lower"], out["upper"] = scores.value, scores.lower, scores.upper
        return pd.concat([out, _imputations(model, rows)], axis=1)
    raise ModelError(f"{model.family}: predict_batch returned no output that can be written")


def _risk_columns(scores: Scores) -> pd.DataFrame:
    from models.maintenance import RECOMMENDATIONS

    level = np.asarray(scores.level, dtype=np.int64)
    return pd.DataFrame(
        {
            "risk_level": level,
            "expected_risk": scores.value,
            "urgent": scores.flag,
            "recommendation": np.asarray(RECOMMENDATIONS, dtype=object)[np.clip(level, 0, 3)],
        }
    )


def _imputations(model: Model, rows: FeatureRows) -> pd.DataFrame:
    """Gap estimates of a sequence model's target where the reading is missing."""
    from models.sequence import SequenceModel

    if not isinstance(model, SequenceModel):
        return pd.DataFrame(index=range(len(rows.frame)))
    missing = rows.frame[model.metrics[0]].isna().to_numpy()
    columns = {name: np.full(len(rows.frame), np.nan) for name in ("imputed", "lower", "upper")}
    if missing.any():
        filled = predict_chunks(model.impute_rows, rows.matrix[missing])
        columns["imputed"][missing] = np.asarray(filled.value)
        columns["lower"][missing] = np.asarray(filled.lower)
        columns["upper"][missing] = np.asarray(filled.upper)
    return pd.DataFrame(
        {
            "imputed": columns["imputed"],
            "imputed_lower": columns["lower"],
            "imputed_upper": columns["upper"],
        }
    )


def step_seconds(model: Model, history: pd.DataFrame) -> float:
    """Sampling step the model was trained on (inferred from ``history`` if it kept none)."""
    spec = spec_model(model).spec
    if isinstance(spec, DemandSpec):
        return spec.step_seconds
    saved = model.info.get("step_seconds")
    if isinstance(saved, int | float) and np.isfinite(saved):
        return float(saved)
    return infer_step_seconds(history, spec.entity)


def horizon(model: Model) -> int:
    """Steps ahead that ``value`` forecasts (1 unless the model's params say otherwise)."""
    return int(model.params.get("horizon") or 1)


def target_times(model: Model, frame: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """Time each forecast is for: the reading's ts plus ``horizon`` sampling steps."""
    step = step_seconds(model, history)
    if not np.isfinite(step):
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    ahead = pd.Timedelta(seconds=horizon(model) * step).round("s")
    return (frame[TS] + ahead).reset_index(drop=True)


def actual_ahead(frame: pd.DataFrame, entity: str, column: str, steps: int) -> FloatArray:
    """``column`` ``steps`` readings later within each entity (NaN past an entity's end):
    the actual a forecast made at each row is measured against."""
    ahead = frame.groupby(entity, sort=False)[column].shift(-steps)
    values: FloatArray = ahead.to_numpy(dtype=np.float64)
    return values
