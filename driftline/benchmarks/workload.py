"""The generated input of the stream benchmark and the champions that score it.

One machine frame and one product frame are generated per run. Their earlier periods
train the champions (anomaly, maintenance, demand; the families' default parameters, as
``driftline train`` would fit them) into a model store; the later periods are the readings
the worker scores, encoded once, in time order, keyed by entity. Every phase reads the same
encoded readings from its own fresh topics, so each worker starts from empty state.

Both frames end at ``END``, a fixed date in the past: the figures do not depend on the day
the benchmark runs, and no reading is dated after the record that carries it (a worker
dead-letters those, see ``WORKER_MAX_FUTURE_S``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

import pandas as pd

from driftline.generator import generate_machines, generate_products
from driftline.publish import demand_messages, sensor_messages
from events import codec_for, topics
from models.frames import ENTITY, IS_ANOMALY, PRODUCT, RISK, TS

T = TypeVar("T")

# Share of the readings that are product demand; the rest are machine telemetry (hourly
# machines outnumber daily sales in any plant that runs both).
DEMAND_SHARE: Final = 0.2
END: Final = pd.Timestamp("2026-01-01", tz="UTC")  # the generated frames end before it
CHAMPIONS: Final = ("anomaly", "maintenance", "demand")

Encoded = list[tuple[bytes, bytes]]  # (key, value) in produce order


@dataclass(frozen=True)
class Sizes:
    """How much is generated: entities of each stream and the history the champions learn.

    The defaults train in about half a minute on two cores; tests pass tiny ones.
    """

    machines: int = 100
    products: int = 100
    train_machines: int = 20  # machines whose history trains anomaly and maintenance
    train_hours: int = 500  # three weeks of hourly history: every anomaly kind occurs
    train_days: int = 365  # a year of daily sales: weekly cycles and promotions
    seed: int = 0
    params: dict[str, dict[str, object]] = field(default_factory=dict)  # family -> overrides


@dataclass(frozen=True)
class Readings:
    """Encoded readings of both streams, each in time order."""

    sensor: Encoded
    demand: Encoded

    def __len__(self) -> int:
        return len(self.sensor) + len(self.demand)

    def head(self, count: int) -> Readings:
        """The first ``count`` readings, split between the streams as the whole is."""
        return self.part(0, count)

    def part(self, start: int, count: int) -> Readings:
        """``count`` readings from the ``start``-th on, split as the whole is."""
        share = len(self.demand) / max(len(self), 1)
        first, demand = round(start * share), round(count * share)
        sensor = self.sensor[start - first : start - first + count - demand]
        return Readings(sensor, self.demand[first : first + demand])


@dataclass(frozen=True)
class History:
    """The frames behind a workload: training periods and the streamed ones."""

    machines_train: pd.DataFrame
    products_train: pd.DataFrame
    machines: pd.DataFrame  # streamed, labels dropped
    products: pd.DataFrame  # streamed


def generate(readings: int, sizes: Sizes) -> History:
    """Frames holding at least ``readings`` streamed readings after the training periods."""
    demand = math.ceil(readings * DEMAND_SHARE)
    hours = math.ceil((readings - demand) / sizes.machines)
    days = math.ceil(demand / sizes.products)
    hourly, daily = sizes.train_hours + hours, sizes.train_days + days
    machines = generate_machines(
        sizes.machines, hourly, seed=sizes.seed, start=_start(hourly, pd.Timedelta(hours=1))
    )
    products = generate_products(
        sizes.products, daily, seed=sizes.seed, start=_start(daily, pd.Timedelta(days=1))
    )
    machine_cut = machines[TS].sort_values().unique()[sizes.train_hours]
    product_cut = products[TS].sort_values().unique()[sizes.train_days]
    trained = machines[ENTITY].isin(sorted(machines[ENTITY].unique())[: sizes.train_machines])
    return History(
        machines_train=machines[trained & (machines[TS] < machine_cut)],
        products_train=products[products[TS] < product_cut],
        machines=_in_time_order(machines[machines[TS] >= machine_cut], ENTITY).drop(
            columns=[IS_ANOMALY, RISK]
        ),
        products=_in_time_order(products[products[TS] >= product_cut], PRODUCT),
    )


def _start(periods: int, step: pd.Timedelta) -> str:
    """The first time of ``periods`` steps whose last one comes just before ``END``."""
    first: pd.Timestamp = END - periods * step
    return str(first.isoformat())


def encode(history: History) -> Readings:
    """The streamed frames as encoded readings, as producers publish them."""
    sensor_codec = codec_for(topics.READINGS_SENSOR)
    demand_codec = codec_for(topics.READINGS_DEMAND)
    sensor = [
        (sensor_codec.key(m), sensor_codec.encode(m))
        for m in sensor_messages(history.machines, "machine")
    ]
    demand = [
        (demand_codec.key(m), demand_codec.encode(m)) for m in demand_messages(history.products)
    ]
    return Readings(sensor, demand)


def train_champions(store: Path, history: History, sizes: Sizes) -> dict[str, float]:
    """Fit and register the champions into ``store``; seconds per family.

    Imported here: training pulls in scikit-learn and CatBoost, which the benchmark's
    command-line help and the worker processes it starts never need.
    """
    from models.registry import Registry
    from models.training import TrainRequest, train_model

    registry = Registry(store, actor="bench")
    frames = {
        "anomaly": history.machines_train,
        "maintenance": history.machines_train,
        "demand": history.products_train,
    }
    seconds: dict[str, float] = {}
    for family in CHAMPIONS:
        request = TrainRequest(
            family, params=dict(sizes.params.get(family, {})), plot=False, reason="benchmark"
        )
        result = train_model(registry, request, frames[family])
        seconds[family] = result.report.seconds
    return seconds


def _in_time_order(frame: pd.DataFrame, entity: str) -> pd.DataFrame:
    return frame.sort_values([TS, entity], kind="stable").reset_index(drop=True)


def spread(*streams: Sequence[T]) -> list[T]:
    """The items of ``streams`` in one order: each spread evenly over it, each in its own
    order (a tie goes to the earlier stream).

    >>> spread("abcd", "xy")
    ['a', 'x', 'b', 'c', 'y', 'd']
    """
    placed = sorted(
        (i / len(stream), n, i) for n, stream in enumerate(streams) for i in range(len(stream))
    )
    return [streams[n][i] for _, n, i in placed]
