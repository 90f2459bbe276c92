"""Synthetic hourly air-quality readings with missing-value gaps.

Pollutants (µg/m³, ``co`` in mg/m³) per station and hour are driven by shared latent factors,
which is what makes them correlated:

* ``weather``: a slow dispersion factor (half-life 36 h, ±25 %) scaling every primary
  pollutant of a station at once (stagnant air raises all of them);
* ``traffic``: rush-hour peaks at 08:00 and 18:00, weaker at weekends; drives ``no2`` and
  ``co`` strongly, ``pm25``/``pm10`` partly;
* sunlight: ``o3`` peaks mid-afternoon and is titrated (lowered) by ``no2``;
* ``pm10`` is ``pm25`` times a station ratio plus coarse dust; ``so2`` follows industry
  (lower at weekends) and the weather.

Each value carries 3-5 % measurement noise. Gaps (NaN) come in two forms, each half of
``gap_rate``: single missed readings anywhere, and sensor dropouts of one pollutant at one
station lasting 3-12 hours while the other pollutants keep reporting.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from driftline.generator.series import (
    DEFAULT_START,
    FloatArray,
    GeneratorError,
    Grid,
    ar1,
    expand_spans,
    make_grid,
)
from models.frames import ENTITY

POLLUTANTS: Final = ("pm25", "pm10", "o3", "co", "no2", "so2")
GAP_RATE: Final = 0.02  # default share of missing values
_DROPOUT_HOURS: Final = (3, 12)  # shortest and longest single-pollutant dropout (inclusive)


def generate_air(
    entities: int = 3,
    periods: int = 720,
    freq: str = "1h",
    seed: int = 0,
    start: str = DEFAULT_START,
    gap_rate: float = GAP_RATE,
) -> pd.DataFrame:
    """Wide sensor frame ``entity_id, ts, pm25, pm10, o3, co, no2, so2`` with NaN gaps.

    ``gap_rate`` is the expected share of missing values (0 gives a complete frame).
    """
    if not 0.0 <= gap_rate <= 0.5:
        raise GeneratorError(f"gap_rate must be in [0, 0.5], got {gap_rate}")
    rng = np.random.default_rng(seed)
    grid = make_grid("station", entities, periods, freq, start)
    pollutants = _pollutants(rng, grid)
    values = np.stack([pollutants[name] for name in POLLUTANTS], axis=-1)
    values = np.round(values, 2)
    _punch_gaps(rng, grid, values, gap_rate)
    columns = {name: values[..., i] for i, name in enumerate(POLLUTANTS)}
    return grid.frame(ENTITY, columns)


def _pollutants(rng: np.random.Generator, grid: Grid) -> dict[str, FloatArray]:
    n_stations = grid.shape[0]
    station = rng.uniform(0.7, 1.3, (n_stations, 1))  # urban stations run higher
    weather = np.exp(ar1(rng, grid.shape, half_life=grid.steps(36.0), sd=0.25))
    hour, weekend = grid.hour, grid.dow >= 5
    rush = np.exp(-(((hour - 8.0) / 1.5) ** 2)) + 0.9 * np.exp(-(((hour - 18.0) / 2.0) ** 2))
    traffic = 0.3 + np.where(weekend, 0.5, 1.0) * rush
    sun = (0.5 + 0.5 * np.cos(2 * np.pi * (hour - 15.0) / 24.0)) ** 2

    def noisy(mean: FloatArray, relative_sd: float) -> FloatArray:
        return np.maximum(mean * (1.0 + rng.normal(0.0, relative_sd, grid.shape)), 0.0)

    no2 = noisy(40.0 * station * weather * traffic, 0.04)
    co = noisy(0.6 * station * weather * (0.5 + 0.5 * traffic), 0.04)
    secondary = np.exp(ar1(rng, grid.shape, half_life=grid.steps(72.0), sd=0.15))
    pm25_mean = 15.0 * station * weather * secondary * (0.7 + 0.3 * traffic)
    pm25 = noisy(pm25_mean, 0.03)
    ratio = rng.uniform(1.6, 2.0, (n_stations, 1))
    pm10 = noisy(pm25_mean * ratio + 5.0 * (0.8 + 0.4 * traffic), 0.04)
    regional = np.exp(ar1(rng, grid.shape, half_life=grid.steps(48.0), sd=0.15))
    o3 = noisy(np.maximum(75.0 * regional * (0.25 + 0.75 * sun) - 0.3 * no2, 1.0), 0.04)
    industry = np.where(weekend, 0.8, 1.0) * (1.0 + 0.2 * np.cos(2 * np.pi * (hour - 11.0) / 24.0))
    so2 = noisy(8.0 * station * weather * industry, 0.05)
    return {"pm25": pm25, "pm10": pm10, "o3": o3, "co": co, "no2": no2, "so2": so2}


def _punch_gaps(rng: np.random.Generator, grid: Grid, values: FloatArray, rate: float) -> None:
    """Set single readings and single-pollutant dropouts to NaN, each half of ``rate``."""
    n_stations, n_periods = grid.shape
    values[rng.random(values.shape) < rate / 2.0] = np.nan
    shortest, longest = (grid.steps(hours) for hours in _DROPOUT_HOURS)
    longest = min(longest, n_periods)
    shortest = min(shortest, longest)
    count = round(rate / 2.0 * values.size / ((shortest + longest) / 2.0))
    length = rng.integers(shortest, longest + 1, count)
    station = rng.integers(0, n_stations, count)
    pollutant = rng.integers(0, len(POLLUTANTS), count)
    start = rng.integers(0, n_periods - length + 1)
    span, offset = expand_spans(start, length)
    values[station[span], start[span] + offset, pollutant[span]] = np.nan
