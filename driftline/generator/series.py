"""Building blocks the synthetic generators share.

Every generator works on an ``entities x periods`` grid of numpy arrays and flattens it into
a canonical frame at the end, entity-major, so the result is already sorted by (entity, ts).
Randomness always comes from one ``numpy.random.Generator`` created from the caller's seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.frames import TS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_START: Final = "2026-01-01T00:00:00Z"
# exp() overflows float64 near 709; 600 leaves headroom for the cumulative sums below.
_MAX_EXPONENT: Final = 600.0


class GeneratorError(ValueError):
    """Generator parameters that cannot produce a frame."""


@dataclass(frozen=True)
class Grid:
    """The entity ids and timestamps a generator fills, plus calendar phases per timestamp."""

    ids: list[str]
    times: pd.DatetimeIndex
    step: pd.Timedelta

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.ids), len(self.times)

    @property
    def step_hours(self) -> float:
        """Length of one period in hours (1.0 for hourly data, 24.0 for daily)."""
        return float(self.step.total_seconds() / 3600.0)

    @property
    def hour(self) -> FloatArray:
        """Fractional hour of day (0-24) of every timestamp."""
        return np.asarray(self.times.hour + self.times.minute / 60.0, dtype=np.float64)

    @property
    def dow(self) -> IntArray:
        """Day of week of every timestamp (Monday = 0)."""
        return np.asarray(self.times.day_of_week, dtype=np.int64)

    @property
    def elapsed_days(self) -> FloatArray:
        """Days since the first timestamp."""
        delta = (self.times - self.times[0]).total_seconds() / 86400.0
        return np.asarray(delta, dtype=np.float64)

    def steps(self, hours: float) -> int:
        """A duration in hours as a whole number of periods (at least one)."""
        return max(1, round(hours / self.step_hours))

    def frame(self, entity_col: str, columns: Mapping[str, npt.NDArray[Any]]) -> pd.DataFrame:
        """Flatten ``entities x periods`` arrays into a long frame sorted by entity, then ts."""
        n_entities, n_periods = self.shape
        data: dict[str, object] = {
            entity_col: np.repeat(np.asarray(self.ids, dtype=object), n_periods),
            TS: self.times.as_unit("ns").take(np.tile(np.arange(n_periods), n_entities)),
        }
        for name, values in columns.items():
            data[name] = values.reshape(-1)
        frame = pd.DataFrame(data)
        frame[entity_col] = frame[entity_col].astype(str)
        return frame


def make_grid(prefix: str, entities: int, periods: int, freq: str, start: str) -> Grid:
    """Validate the size parameters and build the grid ``prefix-000 ... x periods``."""
    if entities < 1 or periods < 1:
        raise GeneratorError(f"entities and periods must be >= 1, got {entities} and {periods}")
    try:
        times = pd.date_range(pd.Timestamp(start), periods=periods, freq=freq)
    except (ValueError, TypeError) as exc:
        raise GeneratorError(f"bad start {start!r} or freq {freq!r}: {exc}") from exc
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    step = (times[0] + pd.tseries.frequencies.to_offset(freq)) - times[0]
    if step <= pd.Timedelta(0):
        raise GeneratorError(f"freq {freq!r} must be a positive duration such as 1h or 1D")
    # zero-padded ids sort as strings in numeric order, keeping frames sorted by entity
    width = max(3, len(str(entities - 1)))
    return Grid([f"{prefix}-{i:0{width}d}" for i in range(entities)], times, step)


def recursive_filter(x: FloatArray, phi: float) -> FloatArray:
    """``y[t] = phi * y[t-1] + x[t]`` along the last axis (``y[-1] = 0``), without a time loop.

    Uses ``y[t] = phi**t * cumsum(x[s] / phi**s)``, evaluated in chunks short enough that
    ``phi**-s`` never overflows; only the chunk boundaries are visited in Python.
    """
    if not 0.0 < phi < 1.0:
        raise GeneratorError(f"filter coefficient must be in (0, 1), got {phi}")
    out = np.empty_like(x, dtype=np.float64)
    chunk = max(1, int(_MAX_EXPONENT / -np.log(phi)))
    state = np.zeros(x.shape[:-1], dtype=np.float64)
    for lo in range(0, x.shape[-1], chunk):
        segment = x[..., lo : lo + chunk]
        powers = phi ** np.arange(segment.shape[-1], dtype=np.float64)
        out[..., lo : lo + chunk] = powers * (
            np.cumsum(segment / powers, axis=-1) + phi * state[..., None]
        )
        state = out[..., lo + segment.shape[-1] - 1]
    return out


def ar1(
    rng: np.random.Generator, shape: tuple[int, int], half_life: float, sd: float
) -> FloatArray:
    """Stationary AR(1) noise per row: mean 0, standard deviation ``sd``, memory ``half_life``.

    ``half_life`` is in periods: after that many steps a deviation has decayed by half. The
    first value is drawn from the stationary distribution so there is no warm-up transient.
    """
    phi = 0.5 ** (1.0 / max(half_life, 1e-9))
    phi = min(phi, 1.0 - 1e-9)
    shocks = rng.normal(0.0, sd * np.sqrt(1.0 - phi**2), shape)
    shocks[:, 0] = rng.normal(0.0, sd, shape[0])
    return recursive_filter(shocks, phi)


def expand_spans(starts: IntArray, lengths: IntArray) -> tuple[IntArray, IntArray]:
    """Cells covered by spans ``[start, start + length)``: (span index, offset in the span)."""
    span = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    offset = np.arange(int(lengths.sum()), dtype=np.int64) - first
    return span, offset


def place_in_slots(
    rng: np.random.Generator, shape: tuple[int, int], count: int, slot: int, what: str
) -> tuple[IntArray, IntArray]:
    """Pick ``count`` distinct slots of ``slot`` periods on the grid: (entity, slot start).

    Events placed inside distinct slots never overlap, which keeps labels unambiguous.
    ``what`` names the parameter that asked for ``count`` events, for the error message.
    """
    n_entities, n_periods = shape
    per_entity = n_periods // slot
    if count > n_entities * per_entity:
        raise GeneratorError(
            f"{what} needs {count} events but only {n_entities * per_entity} fit in "
            f"{n_entities} x {n_periods} periods (one per {slot} periods); "
            "lower it or add periods"
        )
    chosen = np.sort(rng.choice(n_entities * per_entity, size=count, replace=False))
    return chosen // max(per_entity, 1), (chosen % max(per_entity, 1)) * slot
