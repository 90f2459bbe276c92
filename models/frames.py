"""Canonical history frames: the one in-memory layout training, scoring and state share.

* sensor (wide): ``entity_id, ts, <metric>...``; NaN = missing reading.
* demand (long): ``product_id, ts, quantity`` and optional ``price``, ``promo``.
* labels: ``entity_id, ts, is_anomaly`` (0/1); for maintenance also ``risk`` (0-3).

``ts`` is a timezone-aware UTC ``datetime64[ns, UTC]``; frames are sorted by entity, then
time. The CSV readers in ``models.csvio`` produce these frames; the worker and the trainer
build them from Kafka records.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

ENTITY: Final = "entity_id"
PRODUCT: Final = "product_id"
TS: Final = "ts"
QUANTITY: Final = "quantity"
PRICE: Final = "price"
PROMO: Final = "promo"
IS_ANOMALY: Final = "is_anomaly"
RISK: Final = "risk"

SENSOR_KEYS: Final = (ENTITY, TS)
DEMAND_KEYS: Final = (PRODUCT, TS, QUANTITY)


class FrameError(ValueError):
    """A history frame does not have the canonical layout."""


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """Metric columns of a wide sensor frame (everything but keys and labels)."""
    reserved = {ENTITY, TS, IS_ANOMALY, RISK}
    return [c for c in frame.columns if c not in reserved]


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    """Raise FrameError naming every missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FrameError(
            f"{what} frame is missing column(s) {', '.join(missing)}; "
            f"has {', '.join(map(str, frame.columns))}"
        )


def normalise(frame: pd.DataFrame, entity: str) -> pd.DataFrame:
    """Copy with ``ts`` as UTC datetimes, sorted by (entity, ts), index reset."""
    out = frame.copy()
    out[TS] = pd.to_datetime(out[TS], utc=True).dt.as_unit("ns")
    out[entity] = out[entity].astype(str)
    return out.sort_values([entity, TS], kind="stable").reset_index(drop=True)


def holdout_mask(ts: pd.Series, fraction: float) -> npt.NDArray[np.bool_]:
    """True for rows in the most recent ``fraction`` of a frame, split by time (not by row).

    The cutoff is the ``1 - fraction`` quantile of ``ts`` over all entities, so every entity's
    holdout covers the same calendar period and no row of the past lands after the cut.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    stamps = pd.to_datetime(ts, utc=True)
    if fraction == 0.0 or stamps.empty:
        return np.zeros(len(stamps), dtype=np.bool_)
    cutoff = stamps.quantile(1.0 - fraction)
    return np.asarray(stamps > cutoff, dtype=np.bool_)
