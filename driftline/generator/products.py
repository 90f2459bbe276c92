"""Synthetic product demand with prices and promotions.

Each product has a mean demand per period between 100 and 500 units (log-uniform), shaped by

* a weekly cycle (amplitude 10-30 %, peak on a product-specific weekday);
* a daily cycle when the data is sub-daily (busiest early afternoon, half as busy at night);
* a linear trend of -15 % to +30 % a year and a slow ±3 % wander;
* promotions: episodes of 3-7 days (``promo = 1``) with a 10-30 % price discount, lifting
  demand by ``(1 - discount) ** -elasticity`` (elasticity 1.5-2.5, so +20 % to +140 %).

Quantities are counts drawn from a negative binomial around that mean (Poisson noise plus
3 % extra dispersion), so they are non-negative integers with realistic noise.
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
    IntArray,
    ar1,
    expand_spans,
    make_grid,
    place_in_slots,
)
from models.frames import PRICE, PRODUCT, PROMO, QUANTITY

PROMO_RATE: Final = 0.1  # default share of periods under promotion
_PROMO_DAYS: Final = (3, 7)  # shortest and longest promotion, in days (inclusive)
# gamma multiplier with 2 % coefficient of variation on top of Poisson noise: shape 1/0.02**2
_GAMMA_SHAPE: Final = 1.0 / 0.02**2


def generate_products(
    entities: int = 10,
    periods: int = 365,
    freq: str = "1D",
    seed: int = 0,
    start: str = DEFAULT_START,
    promo_rate: float = PROMO_RATE,
) -> pd.DataFrame:
    """Long demand frame ``product_id, ts, quantity, price, promo``.

    ``promo_rate`` is the expected share of periods under promotion (0 disables them).
    """
    if not 0.0 <= promo_rate <= 0.5:
        raise GeneratorError(f"promo_rate must be in [0, 0.5], got {promo_rate}")
    rng = np.random.default_rng(seed)
    grid = make_grid("product", entities, periods, freq, start)
    discount = _promotions(rng, grid, promo_rate)
    base_price = np.round(rng.uniform(2.0, 40.0, (entities, 1)), 2)
    elasticity = rng.uniform(1.5, 2.5, (entities, 1))
    mean = _baseline(rng, grid) * (1.0 - discount) ** -elasticity
    noisy_mean = mean * rng.gamma(_GAMMA_SHAPE, 1.0 / _GAMMA_SHAPE, grid.shape)
    quantity = rng.poisson(noisy_mean).astype(np.float64)
    return grid.frame(
        PRODUCT,
        {
            QUANTITY: quantity,
            PRICE: np.round(base_price * (1.0 - discount), 2),
            PROMO: (discount > 0).astype(np.int64),
        },
    )


def _baseline(rng: np.random.Generator, grid: Grid) -> FloatArray:
    """Expected demand per period before promotions and noise."""
    n_products = grid.shape[0]
    level = np.exp(rng.uniform(np.log(150.0), np.log(600.0), (n_products, 1)))
    amplitude = rng.uniform(0.1, 0.3, (n_products, 1))
    peak_day = rng.integers(0, 7, (n_products, 1))
    weekly = 1.0 + amplitude * np.cos(2 * np.pi * (grid.dow - peak_day) / 7.0)
    daily = np.ones(grid.shape[1])
    if grid.step_hours < 24.0:
        daily += 0.5 * np.cos(2 * np.pi * (grid.hour - 13.0) / 24.0)
    growth = rng.uniform(-0.15, 0.30, (n_products, 1))
    trend = 1.0 + growth * grid.elapsed_days / 365.0
    wander = np.exp(ar1(rng, grid.shape, half_life=grid.steps(7 * 24.0), sd=0.03))
    return np.asarray(level * weekly * daily * np.maximum(trend, 0.1) * wander)


def _promotions(rng: np.random.Generator, grid: Grid, rate: float) -> FloatArray:
    """Price discount (0 outside promotions) for every product and period."""
    discount = np.zeros(grid.shape, dtype=np.float64)
    shortest, longest = (grid.steps(24.0 * days) for days in _PROMO_DAYS)
    mean_length = (shortest + longest) / 2.0
    count = round(rate * grid.shape[0] * grid.shape[1] / mean_length)
    # at most one promotion per slot of two longest promotions: never overlapping, and up to
    # about a third of the periods can be under promotion
    slot = 2 * longest
    product, slot_start = place_in_slots(rng, grid.shape, count, slot, f"promo_rate {rate}")
    length: IntArray = rng.integers(shortest, longest + 1, count)
    start = slot_start + rng.integers(0, slot - length + 1)
    span, offset = expand_spans(start, length)
    depth = rng.uniform(0.1, 0.3, count)
    discount[product[span], start[span] + offset] = depth[span]
    return discount
