"""Windows of readings: the worker's per-entity ring buffer and the batch path over a frame.

Both paths hand the same ``[batch, W, inputs]`` windows to ``spec.rows``: a window is the last
``W = spec.history_needed`` readings of one entity, oldest first, NaN-padded at the front
while the entity has fewer readings. A reading whose ``(entity, ts)`` is not newer than the
entity's last one is ignored in both paths (first wins), so a replay changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from models.base import FeatureMismatchError, FloatArray
from models.features.spec import FeatureSpec
from models.features.stats import TimeArray
from models.frames import TS, normalise

Stamp: TypeAlias = np.datetime64 | pd.Timestamp | str | int

CHUNK_ROWS: Final = 4096  # windows per rows() call in frame_rows: bounds temporary copies


class EntityWindow:
    """Ring buffer of one entity's last ``length`` readings (``width`` inputs each).

    >>> w = EntityWindow(length=3, width=1)
    >>> w.push([1.0], np.datetime64("2024-01-01T00:00"))
    True
    >>> w.push([2.0], np.datetime64("2024-01-01T01:00"))
    True
    >>> w.push([9.0], np.datetime64("2024-01-01T01:00"))  # a replayed reading
    False
    >>> w.window()[:, 0].tolist()
    [nan, 1.0, 2.0]
    """

    __slots__ = ("_buffer", "_count", "_head", "_last_ns")

    def __init__(self, length: int, width: int) -> None:
        if length < 1 or width < 1:
            raise ValueError(f"EntityWindow needs length and width >= 1, got {length}x{width}")
        self._buffer = np.full((length, width), np.nan)
        self._head = 0  # next slot to write; the oldest reading once the buffer is full
        self._count = 0
        self._last_ns: int | None = None

    @classmethod
    def for_spec(cls, spec: FeatureSpec) -> EntityWindow:
        """A buffer sized for ``spec``'s windows."""
        return cls(spec.history_needed, len(spec.inputs))

    def push(self, values: FloatArray | list[float], ts: Stamp) -> bool:
        """Append one reading; False (and no change) when ``ts`` is not newer than the last.

        ``ts`` is anything ``pd.Timestamp`` accepts; naive times are taken as UTC. The worker
        passes integer nanoseconds, which need no conversion (it costs more than the push).
        """
        # nanoseconds since the epoch, UTC
        stamp = ts if type(ts) is int else int(pd.Timestamp(ts).value)
        if self._last_ns is not None and stamp <= self._last_ns:
            return False
        self._buffer[self._head] = values  # numpy converts a list or array row in place
        self._head = (self._head + 1) % self._buffer.shape[0]
        self._count = min(self._count + 1, self._buffer.shape[0])
        self._last_ns = stamp
        return True

    def window(self) -> FloatArray:
        """``[length, width]`` copy, oldest first; unfilled slots (a new entity) are NaN."""
        return np.concatenate((self._buffer[self._head :], self._buffer[: self._head]))

    @property
    def last_ns(self) -> int | None:
        """Nanoseconds since the epoch (UTC) of the newest reading held (None before the
        first); a push at or before it is refused."""
        return self._last_ns

    @property
    def last_ts(self) -> pd.Timestamp | None:
        """UTC time of the newest reading held (None before the first)."""
        return None if self._last_ns is None else pd.Timestamp(self._last_ns, unit="ns", tz="UTC")

    def __len__(self) -> int:
        return self._count


def reading_vector(spec: FeatureSpec, values: Mapping[str, float | None]) -> FloatArray:
    """One reading's inputs in ``spec.inputs`` order; absent or None values become NaN."""
    return np.array(
        [np.nan if values.get(name) is None else values[name] for name in spec.inputs],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class FeatureRows:
    """Feature rows of a history frame: ``frame`` row i (normalised: sorted by entity and
    time, duplicates dropped) is the reading whose window gave ``matrix`` row i, and
    ``depth[i]`` counts the entity's readings up to and including it (1 for the first)."""

    frame: pd.DataFrame
    matrix: FloatArray
    depth: npt.NDArray[np.int64]

    def warm(self, minimum: int) -> npt.NDArray[np.bool_]:
        """Rows whose window held at least ``minimum`` readings (training skips the rest)."""
        return np.asarray(self.depth >= minimum, dtype=np.bool_)


def utc_naive(ts: pd.Series) -> TimeArray:
    """``datetime64[ns]`` UTC values of a timestamp column (any resolution, tz-aware or not)."""
    stamps = pd.to_datetime(ts, utc=True).dt.tz_localize(None)
    values: TimeArray = stamps.to_numpy(dtype="datetime64[ns]")
    return values


def frame_rows(spec: FeatureSpec, history: pd.DataFrame) -> FeatureRows:
    """Feature rows for every reading of ``history`` (not modified), as the worker would
    compute them reading by reading."""
    missing = [c for c in (spec.entity, TS, *spec.inputs) if c not in history.columns]
    if missing:
        raise FeatureMismatchError(
            f"history frame lacks column(s) {', '.join(missing)} that the features need "
            f"({spec.kind} spec over {', '.join(spec.inputs)})"
        )
    frame = normalise(history, spec.entity)
    frame = frame.drop_duplicates([spec.entity, TS], keep="first").reset_index(drop=True)
    try:
        values = frame[list(spec.inputs)].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FeatureMismatchError(f"input columns {spec.inputs} must be numeric: {exc}") from exc
    entities = frame[spec.entity].to_numpy(dtype=object)
    matrix = _windowed(spec, values, utc_naive(frame[TS]), entities)
    depth = frame.groupby(spec.entity, sort=False).cumcount().to_numpy(dtype=np.int64) + 1
    return FeatureRows(frame, matrix, depth)


def _windowed(
    spec: FeatureSpec, values: FloatArray, ts: TimeArray, entities: np.ndarray
) -> FloatArray:
    """Pad every entity block with W-1 NaN rows in front, then slide a W-window over it."""
    width, rows = spec.history_needed, values.shape[0]
    out = np.empty((rows, len(spec.names())))
    if rows == 0:
        return out
    block = np.cumsum(np.r_[True, entities[1:] != entities[:-1]]) - 1
    position = np.arange(rows) + (block + 1) * (width - 1)  # row i's slot in the padded array
    padded = np.full((int(position[-1]) + 1, values.shape[1]), np.nan)
    padded[position] = values
    # [windows, inputs, W]: window k covers padded rows k .. k + W - 1
    view = sliding_window_view(padded, width, axis=0)
    for start in range(0, rows, CHUNK_ROWS):
        part = slice(start, start + CHUNK_ROWS)
        windows = view[position[part] - (width - 1)].transpose(0, 2, 1)
        out[part] = spec.rows(windows, ts[part], entities[part])
    return out


def fill_values(matrix: FloatArray) -> FloatArray:
    """Per-column median ignoring NaN (0.0 for a column with no values): imputation values."""
    finite = np.where(np.isfinite(matrix), matrix, np.nan)
    present = ~np.isnan(finite).all(axis=0)
    medians = np.zeros(matrix.shape[1])
    if present.any():
        medians[present] = np.nanmedian(finite[:, present], axis=0)
    return medians


def fill_missing(matrix: FloatArray, values: FloatArray) -> FloatArray:
    """Copy of ``matrix`` with NaN/inf in column j replaced by ``values[j]``."""
    return np.where(np.isfinite(matrix), matrix, values[np.newaxis, :])


def infer_step_seconds(history: pd.DataFrame, entity: str) -> float:
    """Median spacing in seconds of consecutive readings within entities (NaN if none)."""
    stamps = pd.to_datetime(history[TS], utc=True)
    order = pd.DataFrame({"e": history[entity].astype(str), "t": stamps}).sort_values(["e", "t"])
    gaps = order.groupby("e", sort=False)["t"].diff().dt.total_seconds()
    gaps = gaps[gaps > 0]
    return float(gaps.median()) if not gaps.empty else float("nan")
