"""NaN-aware statistics over batches of windows ``[batch, W, k]`` (reduced along axis 1).

Every function works on the whole batch and every column at once. A statistic with too few
values is NaN: a mean of no values, a spread or slope of fewer than two.

These run on the worker's hot path for every reading. Means, spreads and slopes are
compiled loops (:mod:`models.features.kernels`), one pass per window instead of NumPy
temporaries of the whole batch. Medians stay with NumPy's partition, which selects faster
than a compiled quickselect on windows this short, on a contiguous copy of the windows
that the MAD then reuses; windows without NaN (the steady state) take shortcuts for what
only NaN affects (counts, forward filling), and the spread behind the MAD fallback is
computed only when some MAD is 0. Every path gives the same bits in
any memory layout, so features stay the same whichever batch a reading arrives in:
training and the worker agree exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from models.base import FloatArray

# the compiled statistics, exported from here beside the NumPy ones
from models.features.kernels import mean_std as mean_std
from models.features.kernels import slope as slope

TimeArray = npt.NDArray[np.datetime64]

Z_CLIP: Final = 50.0  # beyond 50 robust sigmas a deviation is extreme anyway; keeps trees sane
MAD_TO_SIGMA: Final = 1.4826  # MAD of a normal distribution times this equals its sigma
SCALE_FLOOR: Final = 1e-6  # relative floor of a spread, so a constant metric never divides by 0
CALENDAR_FIELDS: Final = ("hour", "dow", "dom", "month")


def forward_fill(windows: FloatArray) -> FloatArray:
    """``[batch, W, k]`` windows with NaN replaced by the last value seen in the window.

    Leading NaN (nothing seen yet in the window) stay NaN. Windows without NaN (a worker's
    steady state) come back as they are, not copied: callers only read the result.
    """
    missing = np.isnan(windows)
    if not missing.any():
        return windows
    steps = np.arange(windows.shape[1]).reshape(1, -1, 1)
    index = np.where(missing, 0, steps)
    np.maximum.accumulate(index, axis=1, out=index)
    return np.take_along_axis(windows, index, axis=1)


def valid_count(valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    """Values present along axis 1 of a ``~isnan`` mask (``[batch, k]``).

    A count is exact in any order, so a mask without a gap needs no reduction (a strided
    reduction along axis 1 costs about as much as a sort of the window).
    """
    if valid.shape[1] and valid.all():
        # laid out as the reduction's result would be: later arithmetic follows its order
        count = np.empty_like(valid[:, 0], dtype=np.intp)
        count.fill(valid.shape[1])
        return count
    return np.asarray(valid.sum(axis=1), dtype=np.intp)


def nan_median(segment: FloatArray) -> FloatArray:
    """Median along axis 1 ignoring NaN (NaN when a slice has no values).

    Without NaN (the steady state) a partial sort finds the middle values (see
    :func:`_middle`). Otherwise a sort puts NaN last, so the median of the n values of a
    slice sits at positions (n - 1) // 2 and n // 2. Both are several times faster than
    ``np.nanmedian`` on windows, and give its values.
    """
    if segment.shape[1] and not np.isnan(segment).any():
        return _middle(_by_window(segment))
    ordered = np.sort(segment, axis=1)
    count = np.expand_dims(valid_count(~np.isnan(segment)), 1)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=1)
    high = np.take_along_axis(ordered, count // 2 - (count == 0), axis=1)
    return np.where(count > 0, (low + high) / 2.0, np.nan)[:, 0]


def median_mad(segment: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Median and MAD-based sigma (1.4826 * median absolute deviation) along axis 1."""
    if segment.shape[1] and not np.isnan(segment).any():
        values = _by_window(segment)
        center = _middle(values)
        # the deviations overwrite the values: the median needs no particular order
        np.abs(np.subtract(values, center[..., np.newaxis], out=values), out=values)
        if not np.isnan(values).any():  # inf - inf is NaN: the NaN-aware median below
            return center, MAD_TO_SIGMA * _middle(values)
    else:
        center = nan_median(segment)
    mad = nan_median(np.abs(segment - np.expand_dims(center, 1)))
    return center, MAD_TO_SIGMA * mad


def _by_window(segment: FloatArray) -> FloatArray:
    """A contiguous copy with the window axis last, ``[batch, k, W]``: NumPy partitions
    a contiguous last axis in place, about twice as fast as a strided middle one. Always
    a copy (the caller's windows must keep their order), even when the view is contiguous."""
    return np.moveaxis(segment, 1, -1).copy(order="C")


def _middle(values: FloatArray) -> FloatArray:
    """Median along the last axis of NaN-free ``values``, which it reorders.

    One partition at the upper middle position; with an even count the lower middle is
    the largest value before it (the two-position partition costs twice as much).
    """
    length = values.shape[-1]
    low_at, high_at = (length - 1) // 2, length // 2
    values.partition(high_at, axis=-1)
    high = values[..., high_at]
    low = high if low_at == high_at else values[..., :high_at].max(axis=-1)
    result: FloatArray = (low + high) / 2.0
    return result


def robust_scale(segment: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Median and a robust sigma: the MAD sigma, or the standard deviation when MAD is 0
    (a metric that is mostly constant), floored so a constant metric never divides by 0."""
    center, sigma = median_mad(segment)
    if not (sigma > 0.0).all():  # a MAD of 0 (or NaN) somewhere: the spread is needed
        _, std = mean_std(segment)
        sigma = np.where(sigma > 0.0, sigma, std)
    return center, floored(sigma, center)


def floored(scale: FloatArray, center: FloatArray) -> FloatArray:
    """``scale`` raised to a tiny fraction of the level ``center`` (NaN stays NaN)."""
    return np.maximum(scale, SCALE_FLOOR * (np.abs(center) + 1.0))


def zscore(deviation: FloatArray, scale: FloatArray) -> FloatArray:
    """``deviation / scale`` clipped to +-Z_CLIP (NaN where either is NaN)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(deviation / scale, -Z_CLIP, Z_CLIP)


def calendar_block(ts: TimeArray, fields: Sequence[str]) -> FloatArray:
    """``[batch, fields]`` calendar values of UTC ``ts``: hour, dow (Monday=0), dom, month.

    Computed on ``datetime64`` units (a NaT gives NaN), as pandas' accessors would, without
    building an index: the worker pays this on every batch.
    """
    stamps = np.asarray(ts, dtype="datetime64[ns]")
    days = stamps.astype("datetime64[D]")  # numpy floors, also before 1970
    months = stamps.astype("datetime64[M]")
    missing = np.isnat(stamps)
    columns = []
    for name in fields:
        if name == "hour":
            part = (stamps - days).astype("timedelta64[h]").astype(np.int64)
        elif name == "dow":
            part = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        elif name == "dom":
            part = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
        elif name == "month":
            part = months.astype(np.int64) % 12 + 1
        else:
            raise ValueError(f"unknown calendar field {name!r}")
        columns.append(np.where(missing, np.nan, part.astype(np.float64)))
    return np.column_stack(columns) if columns else np.empty((len(stamps), 0))
