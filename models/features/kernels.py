"""Compiled (numba) loops behind the means, spreads and slopes of :mod:`models.features.stats`.

Each kernel reads a batch of windows ``[batch, W, k]`` (any memory layout) and writes one
value per window and column ``[batch, k]``, skipping NaN. One pass per window and column
replaces NumPy's half-dozen temporaries of the whole batch, which is what the worker pays
for on every reading.

The arithmetic is written out in the order NumPy's reductions along the window axis use
for two or more columns (sum from the first value on), so those results are the ones the
NumPy code gave; with one column (demand's quantities) NumPy summed pairwise and the
values may differ from its by about 1e-12 relative. Training and serving both call these,
so they agree bit for bit whatever the batch. Division by zero gives NaN or inf as NumPy does
(``error_model="numpy"``); callers mask those where a statistic has too few values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from models.base import FloatArray


@njit(nogil=True, cache=True, error_model="numpy")
def _mean_std(segment: Any, mean: Any, std: Any) -> None:  # pragma: no cover - compiled
    batch, length, columns = segment.shape
    for b in range(batch):
        for j in range(columns):
            count = 0
            total = 0.0
            for t in range(length):
                v = segment[b, t, j]
                if v == v:
                    total += v
                    count += 1
            m = total / count
            squares = 0.0
            for t in range(length):
                v = segment[b, t, j]
                if v == v:
                    squares += (v - m) * (v - m)
            mean[b, j] = m
            std[b, j] = np.sqrt(squares / count) if count >= 2 else np.nan


@njit(nogil=True, cache=True, error_model="numpy")
def _slope(segment: Any, out: Any) -> None:  # pragma: no cover - compiled
    batch, length, columns = segment.shape
    for b in range(batch):
        for j in range(columns):
            count = 0
            steps = 0
            total = 0.0
            for t in range(length):
                v = segment[b, t, j]
                if v == v:
                    count += 1
                    steps += t
                    total += v
            t_mean = steps / count
            x_mean = total / count
            cross = 0.0
            spread = 0.0
            for t in range(length):
                v = segment[b, t, j]
                if v == v:
                    dt = t - t_mean
                    cross += dt * (v - x_mean)
                    spread += dt * dt
            out[b, j] = cross / spread if count >= 2 else np.nan


def _out(segment: FloatArray) -> FloatArray:
    return np.empty((segment.shape[0], segment.shape[2]))


def mean_std(segment: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and population standard deviation along axis 1 (NaN skipped)."""
    mean, std = _out(segment), _out(segment)
    _mean_std(segment, mean, std)
    return mean, std


def slope(segment: FloatArray) -> FloatArray:
    """Least-squares slope per step along axis 1 over the values present."""
    out = _out(segment)
    _slope(segment, out)
    return out


def warm() -> None:
    """Compile the kernels (or read them from numba's cache) now, once per process: a
    worker calls this while it starts, not in its first batch."""
    window = np.zeros((2, 3, 2))  # two windows: a slice of one would still be contiguous
    # numba compiles once per memory layout: the features pass contiguous windows and
    # slices of them (``x[:, -r:, :]``)
    for laid_out in (window, window[:, 1:, :]):
        mean_std(laid_out)
        slope(laid_out)
