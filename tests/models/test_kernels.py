"""The compiled window statistics: their definitions, NaN rules and batch independence."""

from __future__ import annotations

import numpy as np
import pytest

from models.features.kernels import mean_std, slope


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    """``[batch, W, k]`` with gaps: scattered NaN, an empty window, a single value."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(60, 24, 3)) * 5 + 100
    x[rng.random(x.shape) < 0.15] = np.nan
    x[0, :, 0] = np.nan  # no values
    x[1, :-1, 1] = np.nan  # one value
    return x


def test_mean_and_std_are_numpy_s_nan_aware_ones(windows: np.ndarray) -> None:
    mean, std = mean_std(windows)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        np.testing.assert_allclose(mean, np.nanmean(windows, axis=1), rtol=1e-12)
    count = (~np.isnan(windows)).sum(axis=1)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.where(count >= 2, np.nanstd(windows, axis=1), np.nan)
    np.testing.assert_allclose(std, expected, rtol=1e-12)
    assert np.isnan(mean[0, 0]) and np.isnan(std[1, 1]) and not np.isnan(mean[1, 1])


def test_slope_is_the_least_squares_fit_of_the_values_present(windows: np.ndarray) -> None:
    got = slope(windows)
    steps = np.arange(windows.shape[1])
    for b in range(windows.shape[0]):
        for j in range(windows.shape[2]):
            present = ~np.isnan(windows[b, :, j])
            if present.sum() < 2:
                assert np.isnan(got[b, j])
            else:
                fitted = np.polyfit(steps[present], windows[b, present, j], 1)[0]
                assert got[b, j] == pytest.approx(fitted, rel=1e-9, abs=1e-12)


def test_a_window_s_statistics_do_not_depend_on_its_batch_or_layout(
    windows: np.ndarray,
) -> None:
    """Training computes features in one large batch, the worker in small ones."""
    batch = (*mean_std(windows), slope(windows))
    fortran = np.asfortranarray(windows)
    for stat, laid_out in zip(batch, (*mean_std(fortran), slope(fortran)), strict=True):
        np.testing.assert_array_equal(stat, laid_out)
    for b in (0, 1, 7, 59):
        alone = windows[b : b + 1].copy()
        for stat, single in zip(batch, (*mean_std(alone), slope(alone)), strict=True):
            np.testing.assert_array_equal(stat[b : b + 1], single)


def test_warming_compiles_every_layout_the_features_pass() -> None:
    """After ``jit.warm`` a worker's first batch compiles nothing (numba compiles once per
    argument layout: whole windows and slices of them)."""
    code = """
import json
import numpy as np
from models import jit
from models.features import kernels
from models.features.sensor import SENSOR_FEATURES, SensorSpec
jit.warm()
compiled = lambda: [len(f.signatures) for f in (kernels._mean_std, kernels._slope)]
before = compiled()
x = np.random.default_rng(0).normal(size=(4, 48, 3))
ts = np.full(4, np.datetime64("2025-01-01T00:00", "ns"))
SensorSpec(("a", "b", "c"), 48, features=SENSOR_FEATURES).rows(x, ts, ["m"] * 4)
print(json.dumps([before, compiled()]))
"""
    import json
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    before, after = json.loads(run.stdout.strip().splitlines()[-1])
    assert after == before, f"the first batch compiled {after} signatures, warm-up {before}"
