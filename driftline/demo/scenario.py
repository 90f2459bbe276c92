"""The demo's world: machines, air-quality stations and products, history then a live stream.

Every series is hourly and generated in one piece, so the live stream continues the history
the champions learn from without a seam. Simulated time runs ``tick_rate`` hours per wall
second: one *tick* is one simulated hour, in which every machine, station and product
reports once. The history ends at the hour the demo starts; the stream goes on from there.

* machines carry labelled anomalies (``is_anomaly``, ``risk``): the labels are kept here to
  judge the alerts, never published with the readings;
* stations report with gaps (missing pollutants) that the worker fills;
* product demand drifts at ``onset``: the daily cycle grows by ``drift_magnitude`` times its
  amplitude (an evening rush that was not there before). The demand model's calendar
  features learnt the old shape, so its error stays high until it is retrained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import pandas as pd

from driftline.generator import generate_air, generate_machines, generate_products, inject_drift
from models.frames import ENTITY, IS_ANOMALY, PRODUCT, RISK, TS

STEP: Final = timedelta(hours=1)
DEMAND_METRIC: Final = "quantity"
SEQUENCE_METRIC: Final = "pm25"  # the one air-quality metric the sequence model forecasts


@dataclass(frozen=True)
class ScenarioConfig:
    """Sizes and pace of the demo world (the defaults suit a two-core machine)."""

    machines: int = 8
    stations: int = 3
    products: int = 10
    # Three weeks of hourly history: the demand model's weekly lag (168 h) plus its holdout.
    history_hours: int = 21 * 24
    tick_rate: float = 4.0  # simulated hours per wall second
    drift_kind: str = "seasonality"
    drift_magnitude: float = 1.5  # the daily cycle becomes 2.5 times as deep
    drift_at: float = 0.3  # onset, as a share of the streaming time
    anomaly_rate: float = 0.04  # share of machine readings inside an anomaly event
    gap_rate: float = 0.03  # share of missing air-quality values
    seed: int = 7

    def __post_init__(self) -> None:
        if min(self.machines, self.stations, self.products) < 1:
            raise ValueError("the demo needs at least one machine, station and product")
        if self.tick_rate <= 0 or not 0.0 < self.drift_at < 1.0:
            raise ValueError("tick_rate must be positive and drift_at in (0, 1)")
        # The demand model's longest lag is one week of hours; it needs more history than that.
        if self.history_hours < 8 * 24:
            raise ValueError("history_hours must cover at least eight days")


@dataclass(frozen=True)
class Scenario:
    """History frames (to train and publish) and the frames of the stream to come."""

    config: ScenarioConfig
    start: datetime  # simulated time of the first streamed tick
    machines: pd.DataFrame  # with is_anomaly and risk
    air: pd.DataFrame
    products: pd.DataFrame  # before any drift
    ticks: int  # streamed ticks generated
    onset_tick: int | None = None
    drifted: pd.DataFrame | None = field(default=None, repr=False)

    def history(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame[TS] < pd.Timestamp(self.start)].reset_index(drop=True)

    def tick_time(self, tick: int) -> datetime:
        return self.start + tick * STEP

    @property
    def onset(self) -> datetime | None:
        return None if self.onset_tick is None else self.tick_time(self.onset_tick)

    @property
    def demand(self) -> pd.DataFrame:
        """Product demand as streamed: drifted once :meth:`with_onset` chose the onset."""
        return self.products if self.drifted is None else self.drifted

    def with_onset(self, streaming_seconds: float) -> Scenario:
        """The scenario with the demand drift starting ``drift_at`` into the streaming time."""
        cfg = self.config
        tick = max(1, min(self.ticks - 1, round(streaming_seconds * cfg.drift_at * cfg.tick_rate)))
        at = pd.Timestamp(self.tick_time(tick))
        drifted = inject_drift(
            self.products, DEMAND_METRIC, cfg.drift_kind, at, cfg.drift_magnitude, seed=cfg.seed
        )
        return Scenario(
            cfg, self.start, self.machines, self.air, self.products, self.ticks, tick, drifted
        )

    def labelled_events(self) -> pd.DataFrame:
        """Anomaly events of the streamed machine readings: entity, first and last ts."""
        stream = self.machines[self.machines[TS] >= pd.Timestamp(self.start)]
        return anomaly_events(stream)


def anomaly_events(machines: pd.DataFrame) -> pd.DataFrame:
    """One row per run of consecutive anomalous readings: ``entity_id, start, end``."""
    frame = machines.sort_values([ENTITY, TS])[[ENTITY, TS, IS_ANOMALY]]
    flagged = frame[IS_ANOMALY].to_numpy() > 0
    entity_changed = frame[ENTITY].ne(frame[ENTITY].shift()).to_numpy()
    previous = pd.Series(flagged).shift(fill_value=False).to_numpy()
    starts = flagged & (~previous | entity_changed)
    event = pd.Series(starts.cumsum(), index=frame.index)
    runs = frame[flagged].assign(event=event[flagged])
    grouped = runs.groupby("event")
    return pd.DataFrame(
        {
            ENTITY: grouped[ENTITY].first().to_numpy(),
            "start": grouped[TS].min().to_numpy(),
            "end": grouped[TS].max().to_numpy(),
        }
    )


def build_scenario(
    config: ScenarioConfig, max_stream_seconds: float, now: datetime | None = None
) -> Scenario:
    """History ending at the current hour and ticks enough for ``max_stream_seconds``."""
    start = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    ticks = math.ceil(max_stream_seconds * config.tick_rate) + 1
    periods = config.history_hours + ticks
    origin = (start - config.history_hours * STEP).isoformat()
    machines = generate_machines(
        config.machines,
        periods,
        seed=config.seed,
        start=origin,
        anomaly_rate=config.anomaly_rate,
    )
    air = generate_air(config.stations, periods, seed=config.seed, start=origin)
    products = generate_products(config.products, periods, "1h", seed=config.seed, start=origin)
    return Scenario(config, start, machines, air, products, ticks)


def sensor_columns(frame: pd.DataFrame) -> list[str]:
    """Columns published on readings.sensor (the labels stay behind)."""
    return [c for c in frame.columns if c not in (IS_ANOMALY, RISK)]


__all__ = [
    "DEMAND_METRIC",
    "PRODUCT",
    "SEQUENCE_METRIC",
    "Scenario",
    "ScenarioConfig",
    "anomaly_events",
    "build_scenario",
    "sensor_columns",
]
