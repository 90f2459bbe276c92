"""Concept drift injected into a canonical frame from a chosen time onward.

``inject_drift(frame, column, kind, start, magnitude)`` returns a new frame in which
``column`` changes for every row at or after ``start`` (optionally only for some entities).
Magnitudes are in units of each entity's standard deviation of ``column`` before ``start``
(``sd``), so one magnitude means a comparable change for any metric:

* ``level``: a step change, ``+ magnitude * sd``.
* ``trend``: a ramp from 0 at ``start`` to ``+ magnitude * sd`` at the frame's last timestamp.
* ``seasonality``: the seasonal cycle (hour of day for sub-daily data, day of week for daily
  data, estimated per entity before ``start``) grows by ``magnitude`` times its amplitude:
  1 doubles it, -1 flattens it.
* ``variance``: Gaussian noise with standard deviation ``magnitude * sd`` is added (seeded).

Values stay non-negative when the column had no negative values, and stay whole numbers when
it held only whole numbers (counts such as demand quantities). NaN (missing) stays NaN.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np
import pandas as pd

from driftline.generator.series import BoolArray, FloatArray, GeneratorError
from models.frames import ENTITY, PRODUCT, TS

DRIFT_KINDS: Final = ("level", "trend", "seasonality", "variance")


def inject_drift(
    frame: pd.DataFrame,
    column: str,
    kind: str,
    start: str | pd.Timestamp,
    magnitude: float,
    entities: Iterable[str] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Copy of ``frame`` with ``kind`` drift of ``magnitude`` in ``column`` from ``start``."""
    entity_col = _entity_column(frame, column, kind)
    at = _utc(start)
    out = frame.copy()
    values = out[column].to_numpy(dtype=np.float64, na_value=np.nan)
    ids = out[entity_col]
    before = (out[TS] < at).to_numpy()
    if before.all() or not before.any():
        first, last = out[TS].min(), out[TS].max()
        raise GeneratorError(
            f"drift start {at.isoformat()} is outside the series ({first} .. {last}): "
            "the drift needs readings before it (its scale) and after it"
        )
    after = ~before
    if entities is not None:
        wanted = set(entities)
        unknown = wanted - set(ids.unique())
        if unknown:
            raise GeneratorError(f"unknown {entity_col}(s) for drift: {', '.join(sorted(unknown))}")
        after &= ids.isin(wanted).to_numpy()
    scale = _scale(values, ids, before)
    delta = _delta(kind, out, entity_col, values, before, scale, magnitude, at, seed)
    drifted = np.where(after, values + delta, values)
    out[column] = _keep_domain(drifted, values, out[column].dtype)
    return out


def _entity_column(frame: pd.DataFrame, column: str, kind: str) -> str:
    if kind not in DRIFT_KINDS:
        raise GeneratorError(f"unknown drift kind {kind!r}; choose one of {', '.join(DRIFT_KINDS)}")
    entity_col = ENTITY if ENTITY in frame.columns else PRODUCT
    for needed in (entity_col, TS, column):
        if needed not in frame.columns:
            raise GeneratorError(f"cannot drift: frame has no column {needed!r}")
    if column in (entity_col, TS) or not pd.api.types.is_numeric_dtype(frame[column]):
        raise GeneratorError(f"cannot drift column {column!r}: it is not a numeric metric")
    return entity_col


def _utc(start: str | pd.Timestamp) -> pd.Timestamp:
    try:
        at = pd.Timestamp(start)
    except ValueError as exc:
        raise GeneratorError(f"bad drift start {start!r}: {exc}") from exc
    return at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")


def _scale(values: FloatArray, ids: pd.Series, before: BoolArray) -> FloatArray:
    """Per-row standard deviation of the row's entity before the drift (all rows if none)."""
    series = pd.Series(values, index=ids.index)
    pre = series.where(before).groupby(ids).transform("std")
    whole = series.groupby(ids).transform("std")
    return np.asarray(pre.fillna(whole).fillna(0.0), dtype=np.float64)


def _delta(
    kind: str,
    frame: pd.DataFrame,
    entity_col: str,
    values: FloatArray,
    before: BoolArray,
    scale: FloatArray,
    magnitude: float,
    at: pd.Timestamp,
    seed: int,
) -> FloatArray:
    if kind == "level":
        return magnitude * scale
    if kind == "trend":
        span = float((frame[TS].max() - at).total_seconds())
        seconds = np.asarray((frame[TS] - at).dt.total_seconds(), dtype=np.float64)
        elapsed = seconds / max(span, 1.0)
        return magnitude * scale * np.clip(elapsed, 0.0, 1.0)
    if kind == "variance":
        if magnitude < 0:
            raise GeneratorError("variance drift adds noise: magnitude must be >= 0")
        return np.random.default_rng(seed).normal(0.0, 1.0, len(values)) * magnitude * scale
    return magnitude * _seasonal_profile(frame, entity_col, values, before)


def _seasonal_profile(
    frame: pd.DataFrame, entity_col: str, values: FloatArray, before: BoolArray
) -> FloatArray:
    """Per-row deviation of the row's season (hour or weekday) from its entity's mean."""
    ts = frame[TS]
    step = ts.drop_duplicates().sort_values().diff().median()
    daily_or_coarser = pd.isna(step) or step >= pd.Timedelta(days=1)
    phase = ts.dt.day_of_week if daily_or_coarser else ts.dt.hour
    reference = before if before.any() else np.ones_like(before)
    series = pd.Series(values, index=frame.index).where(reference)
    keys = [frame[entity_col], phase]
    seasonal = series.groupby(keys).transform("mean")
    mean = series.groupby(frame[entity_col]).transform("mean")
    return np.asarray((seasonal - mean).fillna(0.0), dtype=np.float64)


def _keep_domain(
    drifted: FloatArray, original: FloatArray, dtype: object
) -> np.ndarray[tuple[int], np.dtype[np.float64 | np.int64]]:
    """Clip at zero and round to whole numbers when the original column was like that."""
    present = original[~np.isnan(original)]
    if present.size and present.min() >= 0:
        drifted = np.maximum(drifted, 0.0)
    if present.size and np.all(present == np.round(present)):
        drifted = np.round(drifted)
    if pd.api.types.is_integer_dtype(dtype) and not np.isnan(drifted).any():
        return drifted.astype(np.int64)
    return drifted
