"""Features of one target column for seasonal forecasts (the seasonal-naive fallback)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from models.base import FloatArray
from models.features import stats
from models.features.spec import Entities, FeatureSpecError, spec_dict
from models.frames import ENTITY


@dataclass(frozen=True)
class SeriesSpec:
    """``seasonal``: the value one season before the target (current + ``horizon``);
    ``last``: the current value; ``spread``: the MAD sigma of the seasonal differences
    ``x[t] - x[t - season]`` inside the window (``differences`` of them, default one season).
    """

    kind: ClassVar[str] = "series"
    target: str
    season: int
    horizon: int = 1
    differences: int = 0
    entity: str = ENTITY

    def __post_init__(self) -> None:
        if self.season < 1 or self.horizon < 1 or self.differences < 0:
            raise FeatureSpecError(
                f"series spec: season ({self.season}) and horizon ({self.horizon}) must be "
                f">= 1 and differences ({self.differences}) >= 0"
            )

    @property
    def back(self) -> int:
        """Readings between the current one and the seasonal value for the target."""
        return -(-self.horizon // self.season) * self.season - self.horizon

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.target,)

    @property
    def history_needed(self) -> int:
        # a spread needs at least two differences
        return max(self.back + 1, self.season + max(self.differences or self.season, 2))

    def names(self) -> list[str]:
        return ["seasonal", "last", "spread"]

    def rows(self, windows: FloatArray, ts: stats.TimeArray, entities: Entities) -> FloatArray:
        x = stats.forward_fill(np.asarray(windows, dtype=np.float64)[:, :, :1])
        last = x.shape[1] - 1
        diffs = x[:, self.season :] - x[:, : -self.season]
        _, spread = stats.median_mad(diffs)
        return np.column_stack([x[:, last - self.back, 0], x[:, last, 0], spread[:, 0]])

    def to_dict(self) -> dict[str, Any]:
        return spec_dict(self)
