"""Rolling windows: figures against a numpy reference, count and time windows, coverage."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.clock import MICROS_PER_SECOND
from monitor.windows import RollingErrors, WindowStats

MINUTE_US = 60 * MICROS_PER_SECOND


def fill(windows: RollingErrors, errors: np.ndarray, actuals: np.ndarray) -> None:
    for i, (error, actual) in enumerate(zip(errors, actuals, strict=True)):
        windows.add(i * MINUTE_US, float(error), float(actual))


def test_figures_match_numpy() -> None:
    rng = np.random.default_rng(7)
    errors, actuals = rng.normal(0.5, 2.0, 300), rng.uniform(1, 50, 300)
    windows = RollingErrors(count=100, window_s=3600, capacity=1000)
    fill(windows, errors, actuals)
    stats = windows.count_stats()
    last_e, last_a = errors[-100:], actuals[-100:]
    assert stats.pairs == 100
    assert stats.mae == pytest.approx(np.mean(np.abs(last_e)))
    assert stats.rmse == pytest.approx(np.sqrt(np.mean(last_e**2)))
    assert stats.mape == pytest.approx(np.mean(np.abs(last_e) / last_a))
    assert stats.bias == pytest.approx(np.mean(last_e))
    assert (stats.first_us, stats.last_us) == (200 * MINUTE_US, 299 * MINUTE_US)


def test_time_window_holds_the_last_hour_of_target_time() -> None:
    windows = RollingErrors(count=10, window_s=3600, capacity=1000)
    fill(windows, np.ones(200), np.ones(200))
    stats = windows.time_stats()
    assert stats.pairs == 61  # targets 139..199 minutes: within 60 min of the newest
    assert stats.first_us == 139 * MINUTE_US
    assert len(windows) == 61  # older pairs were needed by neither window


def test_count_window_keeps_pairs_older_than_the_time_window() -> None:
    windows = RollingErrors(count=50, window_s=60, capacity=1000)
    fill(windows, np.arange(100.0), np.ones(100))
    assert windows.count_stats().pairs == 50
    assert windows.time_stats().pairs == 2
    assert windows.count_stats().mae == pytest.approx(np.mean(np.arange(50.0, 100.0)))


def test_capacity_bounds_memory() -> None:
    windows = RollingErrors(count=5, window_s=10**6, capacity=20)
    fill(windows, np.arange(100.0), np.ones(100))
    assert len(windows) == 20
    assert windows.time_stats().first_us == 80 * MINUTE_US


def test_mape_skips_zero_actuals_and_is_none_when_all_are_zero() -> None:
    stats = WindowStats.of(np.arange(3), np.array([1.0, 2.0, 3.0]), np.array([0.0, 4.0, 0.0]))
    assert stats.mape == pytest.approx(0.5)
    zero = WindowStats.of(np.arange(2), np.array([1.0, 1.0]), np.zeros(2))
    assert zero.mape is None and zero.mae == 1.0


def test_empty_window_has_no_figures() -> None:
    windows = RollingErrors(count=5, window_s=60, capacity=10)
    assert windows.count_stats() == WindowStats(pairs=0)
    assert windows.coverage() is None


def test_coverage_counts_expired_predictions_of_the_time_window() -> None:
    windows = RollingErrors(count=100, window_s=600, capacity=1000)
    fill(windows, np.ones(20), np.ones(20))  # targets 0..19 minutes
    for minute in (5, 15, 16):
        windows.add_expired(minute * MINUTE_US)
    # time window: targets 9..19 -> 11 pairs, 2 expired
    assert windows.coverage() == pytest.approx(11 / 13)
