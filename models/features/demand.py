"""Features of one product's demand for the quantity ``horizon`` readings ahead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from models.base import FloatArray
from models.features import stats
from models.features.spec import Entities, FeatureSpecError, check_names, spec_dict
from models.frames import PRICE, PRODUCT, PROMO, QUANTITY

DAY_SECONDS: Final = 86_400.0
MAX_HISTORY: Final = 400  # readings per product a default spec may need (worker memory bound)
UNKNOWN_PRODUCT: Final = 0  # code of a product the model never saw


@dataclass(frozen=True)
class DemandSpec:
    """Demand features: lags, rolling statistics, price/promo, target calendar, product code.

    * ``lags`` count back from the *target* reading: lag 1 with horizon 1 is the current
      quantity, lag 24 on hourly data the same hour yesterday; every lag is >= ``horizon``.
    * Quantities enter in log space relative to the product's recent level, so one global
      model serves products of any size: ``level`` = log1p(mean of the last ``level_window``
      quantities); ``lag{L}`` and ``mean{r}`` = log1p(value) - level; ``std{r}`` = spread /
      (mean + 1). Quantities are clipped at 0 (returns are not modelled).
    * ``price_rel`` = current price / mean price of the window, ``log_price`` = log1p(price);
      ``promo`` = current promo flag, ``promo_run`` = how many readings in a row (within the
      window) carried a promo up to now, a hint that a promotion is about to end. Present
      only when the spec says so.
    * Calendar fields (UTC) describe the target time: current ts + horizon * step.
    * ``product`` is a stable integer code: 1.. assigned in ``products`` at training time
      (existing codes never change), 0 for a product the model never saw.
    """

    kind: ClassVar[str] = "demand"
    step_seconds: float
    horizon: int = 1
    lags: tuple[int, ...] = (1, 2, 3)
    rolling: tuple[int, ...] = (7,)
    level_window: int = 7
    calendar: tuple[str, ...] = ("dow",)
    price: bool = False
    promo: bool = False
    products: dict[str, int] = field(default_factory=dict, hash=False)  # hashable spec
    entity: str = PRODUCT

    def __post_init__(self) -> None:
        check_names(self.calendar, stats.CALENDAR_FIELDS, "calendar fields")
        short = [lag for lag in self.lags if lag < self.horizon]
        sizes_ok = self.level_window >= 1 and all(r >= 1 for r in self.rolling)
        if self.horizon < 1 or not self.lags or short or self.step_seconds <= 0 or not sizes_ok:
            raise FeatureSpecError(
                f"demand spec: horizon ({self.horizon}) must be >= 1, lags {self.lags} "
                f"non-empty and >= horizon, step_seconds ({self.step_seconds}), rolling "
                f"{self.rolling} and level_window ({self.level_window}) positive"
            )
        if UNKNOWN_PRODUCT in self.products.values():
            raise FeatureSpecError("demand spec: product code 0 is reserved for unknown products")

    @classmethod
    def for_step(cls, step_seconds: float, horizon: int = 1, **kwargs: Any) -> DemandSpec:
        """Default lags, rolling windows and calendar for a series sampled every ``step``."""
        seasons: tuple[int, ...]
        rolling: tuple[int, ...]
        calendar: tuple[str, ...]
        if step_seconds < DAY_SECONDS:
            per_day = max(1, round(DAY_SECONDS / step_seconds))
            seasons, rolling, calendar = (per_day, 7 * per_day), (per_day,), ("hour", "dow")
        elif step_seconds < 7 * DAY_SECONDS:
            seasons, rolling, calendar = (7, 14, 28), (7, 28), ("dow", "dom", "month")
        else:  # weekly or coarser: a month and a year back
            seasons, rolling, calendar = (4, 52), (4, 13), ("month",)
        seasonal = {-(-horizon // s) * s for s in seasons}  # first multiple of s >= horizon
        near = {horizon, horizon + 1, horizon + 2}
        lags = sorted(near | {lag for lag in seasonal if lag - horizon < MAX_HISTORY})
        kept = tuple(r for r in rolling if r <= MAX_HISTORY) or (min(rolling[0], MAX_HISTORY),)
        return cls(
            step_seconds=float(step_seconds),
            horizon=horizon,
            lags=tuple(lags),
            rolling=kept,
            level_window=kept[0],
            calendar=calendar,
            **kwargs,
        )

    def with_products(self, product_ids: Sequence[str]) -> DemandSpec:
        """Copy that also codes ``product_ids``; codes already assigned never change."""
        codes = dict(self.products)
        for product in sorted(set(map(str, product_ids)) - set(codes)):
            codes[product] = len(codes) + 1
        return replace(self, products=codes)

    def product_codes(self, entities: Entities) -> FloatArray:
        """Codes of ``entities`` (UNKNOWN_PRODUCT for products the spec does not know)."""
        codes = self.products
        asked = np.asarray(entities, dtype=object)
        return np.fromiter(
            (codes.get(str(e), UNKNOWN_PRODUCT) for e in asked), np.float64, count=len(asked)
        )

    @property
    def inputs(self) -> tuple[str, ...]:
        return (QUANTITY,) + ((PRICE,) if self.price else ()) + ((PROMO,) if self.promo else ())

    @property
    def history_needed(self) -> int:
        return max(max(self.lags) - self.horizon + 1, *self.rolling, self.level_window)

    def names(self) -> list[str]:
        names = ["level", *(f"lag{lag}" for lag in self.lags)]
        names += [f"mean{r}" for r in self.rolling] + [f"std{r}" for r in self.rolling]
        names += ["price_rel", "log_price"] if self.price else []
        names += ["promo", "promo_run"] if self.promo else []
        return names + [f"cal_{c}" for c in self.calendar] + ["product"]

    def rows(self, windows: FloatArray, ts: stats.TimeArray, entities: Entities) -> FloatArray:
        x = stats.forward_fill(np.asarray(windows, dtype=np.float64))
        quantity = np.clip(x[:, :, :1], 0.0, None)
        level = np.log1p(stats.mean_std(quantity[:, -self.level_window :])[0][:, 0])
        last = x.shape[1] - 1
        lagged = [quantity[:, last - (lag - self.horizon), 0] for lag in self.lags]
        columns = [level] + [np.log1p(value) - level for value in lagged]
        rolled = [stats.mean_std(quantity[:, -r:]) for r in self.rolling]
        columns += [np.log1p(mean[:, 0]) - level for mean, _ in rolled]
        columns += [std[:, 0] / (mean[:, 0] + 1.0) for mean, std in rolled]
        if self.price:
            price_mean = stats.mean_std(x[:, :, 1:2])[0][:, 0]
            with np.errstate(invalid="ignore", divide="ignore"):
                columns.append(x[:, -1, 1] / price_mean)
            columns.append(np.log1p(np.clip(x[:, -1, 1], 0.0, None)))
        if self.promo:
            columns += [x[:, -1, -1], _trailing_run(x[:, :, -1] > 0.5)]
        ahead_ns = round(self.horizon * self.step_seconds * 1e9)
        stamps = np.asarray(ts, dtype="datetime64[ns]").astype(np.int64)
        target_ts = (stamps + ahead_ns).astype("datetime64[ns]")
        calendar = stats.calendar_block(target_ts, self.calendar)
        return np.column_stack([*columns, calendar, self.product_codes(entities)])

    def to_dict(self) -> dict[str, Any]:
        return spec_dict(self)


def _trailing_run(on: npt.NDArray[np.bool_]) -> FloatArray:
    """Length of the run of True values that ends at the last column, per row."""
    off_from_end = np.argmax(~on[:, ::-1], axis=1)  # steps back to the last False
    run: FloatArray = np.where(on.all(axis=1), on.shape[1], off_from_end).astype(np.float64)
    return run
