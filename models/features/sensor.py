"""Per-metric features of wide sensor readings (machines, air-quality stations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

import numpy as np

from models.base import FloatArray
from models.features import stats
from models.features.spec import Entities, FeatureSpecError, check_names, spec_dict
from models.frames import ENTITY

SENSOR_FEATURES: Final = ("value", "lag", "mean", "std", "z", "rz", "crz", "diff", "vol", "slope")
SCALE_FREE: Final = frozenset({"rz", "crz", "diff", "vol", "slope"})  # use the robust sigma
ROLLING: Final = frozenset({"mean", "std", "z", "vol"})  # use the rolling windows


@dataclass(frozen=True)
class SensorSpec:
    """Features per metric, chosen by ``features``:

    * ``value``: the current reading; ``lag``: the reading k readings back (``lags``);
    * ``mean``/``std``: over the last r readings including the current one (``rolling``);
    * ``z``: the current reading against the mean/std of the r readings before it;
    * ``rz``: against the median/MAD of the rest of the window (the entity's typical level;
      robust to short anomalies inside the window);
    * ``crz``: ``rz`` minus the median ``rz`` over all metrics of the reading: how far a metric
      strays from the way the whole entity moves (a busier machine raises power, production
      and vibration together; a jam or an overheat moves one metric alone);
    * ``diff``: the step change, ``vol{r}``: the std of the last r readings, ``slope``: the
      trend over the window per reading, all three in robust sigmas of the window.

    ``lags`` and ``rolling`` matter only when a feature uses them.
    ``value``/``lag``/``mean``/``std`` carry the metric's units; the others are scale-free, so
    one model serves machines that run at different levels. Scale-free values are clipped to
    +-50. ``calendar`` appends UTC fields of the reading's time (hour, dow, dom, month).
    """

    kind: ClassVar[str] = "sensor"
    metrics: tuple[str, ...]
    window: int = 48  # two days of hourly readings: long enough for a robust typical level
    lags: tuple[int, ...] = (1, 2, 3)
    rolling: tuple[int, ...] = (6, 24)  # a short reference and a day-long one at hourly steps
    features: tuple[str, ...] = ("z", "rz", "diff", "vol")
    calendar: tuple[str, ...] = ()
    entity: str = ENTITY

    def __post_init__(self) -> None:
        check_names(self.features, SENSOR_FEATURES, "sensor features")
        check_names(self.calendar, stats.CALENDAR_FIELDS, "calendar fields")
        if not self.metrics:
            raise FeatureSpecError("a sensor spec needs at least one metric")
        used = set(self.features)
        lags = self.lags if "lag" in used else ()
        rolling = self.rolling if used & ROLLING else ()
        outside = [n for n in (*lags, *rolling) if not 0 < n < self.window]
        if self.window < 3 or outside:
            raise FeatureSpecError(
                f"sensor spec: lags and rolling windows {outside} must lie in "
                f"[1, window - 1] and the window ({self.window}) must be at least 3"
            )

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.metrics

    @property
    def history_needed(self) -> int:
        return self.window

    def _suffixes(self) -> list[str]:
        per_kind = {
            "value": [""],
            "lag": [f"_lag{k}" for k in self.lags],
            "mean": [f"_mean{r}" for r in self.rolling],
            "std": [f"_std{r}" for r in self.rolling],
            "z": [f"_z{r}" for r in self.rolling],
            "rz": ["_rz"],
            "crz": ["_crz"],
            "diff": ["_diff"],
            "vol": [f"_vol{r}" for r in self.rolling],
            "slope": ["_slope"],
        }
        return [suffix for kind in self.features for suffix in per_kind[kind]]

    def names(self) -> list[str]:
        per_metric = [f"{m}{s}" for m in self.metrics for s in self._suffixes()]
        return per_metric + [f"cal_{c}" for c in self.calendar]

    def rows(self, windows: FloatArray, ts: stats.TimeArray, entities: Entities) -> FloatArray:
        x = stats.forward_fill(np.asarray(windows, dtype=np.float64))
        blocks = self._blocks(x)
        # [batch, metrics, features per metric] -> metric-major columns, as names() lists them
        per_metric = np.stack([blocks[s] for s in self._suffixes()], axis=2)
        matrix = per_metric.reshape(x.shape[0], -1)
        if self.calendar:
            matrix = np.hstack([matrix, stats.calendar_block(ts, self.calendar)])
        return matrix

    def _blocks(self, x: FloatArray) -> dict[str, FloatArray]:
        """``suffix -> [batch, metrics]`` for the features the spec asks for."""
        current, wanted = x[:, -1, :], set(self.features)
        blocks: dict[str, FloatArray] = {"": current}
        for k in self.lags if "lag" in wanted else ():
            blocks[f"_lag{k}"] = x[:, -1 - k, :]
        for r in self.rolling if wanted & ROLLING else ():
            blocks[f"_mean{r}"], blocks[f"_std{r}"] = stats.mean_std(x[:, -r:, :])
            if "z" in wanted:
                mean, std = stats.mean_std(x[:, -r - 1 : -1, :])
                blocks[f"_z{r}"] = stats.zscore(current - mean, stats.floored(std, mean))
        if wanted & SCALE_FREE:
            center, scale = stats.robust_scale(x[:, :-1, :])
            blocks["_rz"] = stats.zscore(current - center, scale)
            blocks["_crz"] = blocks["_rz"] - stats.nan_median(blocks["_rz"][:, :, np.newaxis])
            blocks["_diff"] = stats.zscore(current - x[:, -2, :], scale)
            for r in self.rolling if "vol" in wanted else ():
                blocks[f"_vol{r}"] = stats.zscore(blocks[f"_std{r}"], scale)
            if "slope" in wanted:
                blocks["_slope"] = stats.zscore(stats.slope(x), scale)
        return blocks

    def to_dict(self) -> dict[str, Any]:
        return spec_dict(self)
