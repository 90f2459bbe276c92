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
