"""The loop scenario's data: hourly product demand, a first champion's history, a drift.

The series is generated in one piece, so the stream continues the history the first
champion learnt from without a seam::

    |---- train_hours (first champion) ----|- before -|------ drift ------|-- after --|
                       |- history_hours --|           ^ onset
                       (published before the services start: warms the worker's windows)

* ``before``: readings streamed before the onset (the pre-drift error);
* ``drift``: readings streamed from the onset on, in one burst (a producer catching up):
  the monitor sees the error rise, and by the time a retrain replays the topic, its most
  recent window holds the new regime only;
* ``after``: readings streamed once the loop settled (a new champion announced, or the
  candidate rejected): what the serving version does from then on.

A level shift adds the same number of units to every hour, which flattens the relative
daily cycle the champion learnt per product: its error stays high until a model is
trained on the new regime (a level shift alone in a level-relative model heals itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import pandas as pd

from driftline.generator import generate_products, inject_drift
from models.frames import QUANTITY, TS

STEP: Final = pd.Timedelta(hours=1)
# A few shallow trees on one thread: the first champion and every retrain fit in about a
# second on a shared core, and the fit is deterministic.
QUICK_PARAMS: Final[dict[str, Any]] = {"iterations": 150, "depth": 4, "thread_count": 1}


@dataclass(frozen=True)
class LoopConfig:
    """Sizes of the scenario; ``drift=None`` streams the same readings without a drift."""

    products: int = 5
    # 40 days: the first champion's holdout (its baseline) is eight days of every weekday.
    train_hours: int = 40 * 24
    # The demand model's longest lag is a week of hours: the worker's windows need 168+.
    history_hours: int = 8 * 24
    before_hours: int = 48
    # A week: the retrain window (TRAINER_WINDOW_DAYS) then holds drifted readings only.
    drift_hours: int = 7 * 24
    after_hours: int = 72
    drift: str | None = "level"
    magnitude: float = 3.0  # in standard deviations of each product's pre-drift demand
    seed: int = 7
    params: dict[str, Any] = field(default_factory=lambda: dict(QUICK_PARAMS))

    def __post_init__(self) -> None:
        if min(self.products, self.before_hours, self.drift_hours, self.after_hours) < 1:
            raise ValueError("products and every streamed segment need at least one hour")
        if not 0 < self.history_hours <= self.train_hours:
            raise ValueError("history_hours must be positive and within train_hours")


@dataclass(frozen=True)
class LoopData:
    """The frames of one scenario run (canonical long demand layout)."""

    config: LoopConfig
    frame: pd.DataFrame  # everything, drifted from the onset when the config drifts
    stream_start: pd.Timestamp
    onset: pd.Timestamp
    after_start: pd.Timestamp

    def _between(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
        ts = self.frame[TS]
        mask = pd.Series(True, index=self.frame.index)
        if start is not None:
            mask &= ts >= start
        if end is not None:
            mask &= ts < end
        return self.frame[mask].reset_index(drop=True)

    @property
    def training(self) -> pd.DataFrame:
        """What the first champion learns from: everything before the stream."""
        return self._between(None, self.stream_start)

    @property
    def history(self) -> pd.DataFrame:
        """The end of the training period, published before the services start."""
        start = self.stream_start - self.config.history_hours * STEP
        return self._between(start, self.stream_start)

    @property
    def before(self) -> pd.DataFrame:
        return self._between(self.stream_start, self.onset)

    @property
    def drift(self) -> pd.DataFrame:
        return self._between(self.onset, self.after_start)

    @property
    def after(self) -> pd.DataFrame:
        return self._between(self.after_start, None)

    @property
    def onset_time(self) -> datetime:
        onset: datetime = self.onset.to_pydatetime()
        return onset


def build_data(config: LoopConfig) -> LoopData:
    """Generate the scenario's readings (deterministic for one config)."""
    periods = config.train_hours + config.before_hours + config.drift_hours + config.after_hours
    frame = generate_products(config.products, periods, "1h", seed=config.seed)
    start = frame[TS].min() + config.train_hours * STEP
    onset = start + config.before_hours * STEP
    if config.drift is not None:
        kind, magnitude = config.drift, config.magnitude
        frame = inject_drift(frame, QUANTITY, kind, onset, magnitude, seed=config.seed)
    after = onset + config.drift_hours * STEP
    return LoopData(config, frame, start, onset, after)
