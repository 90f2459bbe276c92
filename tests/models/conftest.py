"""Small synthetic histories for the model family tests (canonical frame layouts).

Tests reach the builders through the session fixture ``model_data`` (the test modules are
imported in importlib mode, so they cannot import a helper module by name):
``model_data.machine_history(periods=200)``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

MACHINE_METRICS = ("power", "temperature", "vibration")
START = "2024-01-01"
OVERHEAT = 3  # readings of an overheat
PRECURSOR = 6  # readings of creeping vibration before an overheat


def machine_history(
    entities: int = 3, periods: int = 300, seed: int = 0, event_every: int = 40
) -> pd.DataFrame:
    """Hourly machines with labelled anomalies and a maintenance risk label.

    Each machine runs at its own level with a daily cycle and noise. Every ``event_every``
    readings (jittered) comes either a power spike (one reading) or an overheat (three
    readings of +15 degrees) announced by a vibration creep: risk 1-2 over the precursor,
    3 during the overheat, 0 otherwise (spikes are glitches: anomalous but risk 0).
    """
    rng = np.random.default_rng(seed)
    frames = [_machine(rng, f"machine-{i}", periods, event_every) for i in range(entities)]
    return pd.concat(frames, ignore_index=True)


def _machine(rng: np.random.Generator, name: str, periods: int, every: int) -> pd.DataFrame:
    hour = np.arange(periods) % 24
    load = 0.75 + 0.1 * np.cos(2 * np.pi * (hour - 14) / 24) + rng.normal(0, 0.02, periods)
    rated = rng.uniform(40, 100)
    power = 8 + rated * load + rng.normal(0, 1.0, periods)
    temperature = 25 + 0.2 * power + rng.normal(0, 0.4, periods)
    vibration = rng.uniform(1, 2) + 2 * load + rng.normal(0, 0.08, periods)
    anomaly = np.zeros(periods, dtype=np.int64)
    risk = np.zeros(periods, dtype=np.int64)
    for k, start in enumerate(range(every, periods - OVERHEAT, every)):
        at = start + int(rng.integers(-3, 4))
        if k % 2 == 0:  # spike
            power[at] += rated * rng.uniform(0.5, 0.8)
            anomaly[at] = 1
            continue
        ramp = np.linspace(0.1, 0.6, PRECURSOR)
        vibration[at - PRECURSOR : at] += ramp
        risk[at - PRECURSOR : at] = np.where(np.arange(PRECURSOR) < PRECURSOR // 2, 1, 2)
        temperature[at : at + OVERHEAT] += 15
        anomaly[at : at + OVERHEAT] = 1
        risk[at : at + OVERHEAT] = 3
    return pd.DataFrame(
        {
            "entity_id": name,
            "ts": pd.date_range(START, periods=periods, freq="h", tz="UTC"),
            "power": power,
            "temperature": temperature,
            "vibration": vibration,
            "is_anomaly": anomaly,
            "risk": risk,
        }
    )


def demand_history(products: int = 3, periods: int = 160, seed: int = 0) -> pd.DataFrame:
    """Daily demand per product: level x weekly cycle x promo lift, Poisson noise.

    Promotions last five days every four weeks, cut the price by 20 % and lift demand 40 %.
    """
    rng = np.random.default_rng(seed)
    day = np.arange(periods)
    frames = []
    for p in range(products):
        level = rng.uniform(80, 400)
        weekly = 1 + 0.2 * np.sin(2 * np.pi * (day + p) / 7)
        promo = ((day + 7 * p) % 28 < 5).astype(np.int64)
        mean = level * weekly * np.where(promo == 1, 1.4, 1.0)
        price = np.round(rng.uniform(2, 20) * np.where(promo == 1, 0.8, 1.0), 2)
        frames.append(
            pd.DataFrame(
                {
                    "product_id": f"product-{p}",
                    "ts": pd.date_range(START, periods=periods, freq="D", tz="UTC"),
                    "quantity": rng.poisson(mean).astype(np.float64),
                    "price": price,
                    "promo": promo,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def station_history(stations: int = 2, periods: int = 240, seed: int = 0) -> pd.DataFrame:
    """Hourly single-metric stations (``pm25``) with a daily cycle and 5 % missing readings."""
    rng = np.random.default_rng(seed)
    t = np.arange(periods)
    frames = []
    for s in range(stations):
        pm25 = 30 + 10 * np.sin(2 * np.pi * t / 24 + s) + rng.normal(0, 1.5, periods)
        pm25[rng.random(periods) < 0.05] = np.nan
        frames.append(
            pd.DataFrame(
                {
                    "entity_id": f"station-{s}",
                    "ts": pd.date_range(START, periods=periods, freq="h", tz="UTC"),
                    "pm25": pm25,
                    "pm10": 1.6 * np.nan_to_num(pm25, nan=30.0) + rng.normal(0, 1, periods),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="session")
def model_data() -> SimpleNamespace:
    """The builders above: ``machine_history``, ``demand_history``, ``station_history``."""
    return SimpleNamespace(
        machine_history=machine_history,
        demand_history=demand_history,
        station_history=station_history,
    )
