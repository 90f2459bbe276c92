"""Builders of synthetic predictions, pairs and observations for the monitor's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from events import MonitorPair, Prediction
from events.outputs import PredictionKind
from monitor.actuals import Observation
from monitor.clock import micros

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """``T0`` plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


def prediction(
    n: int,
    *,
    entity: str = "m-1",
    minutes: float | None = None,
    value: float = 10.0,
    model: str = "seq",
    version: int = 1,
    key: str | None = None,
    metric: str | None = "temperature",
    kind: PredictionKind = "forecast",
    pid: str | None = None,
) -> Prediction:
    """Prediction number ``n`` for target ``at(minutes)`` (default: ``at(n)``)."""
    target = at(n if minutes is None else minutes)
    return Prediction(
        prediction_id=pid or f"{model}-{version}-{entity}-{n}",
        model=model,
        version=version,
        key=key,
        entity_id=entity,
        made_at=target - timedelta(minutes=5),
        target_ts=target,
        value=value,
        kind=kind,
        metric=metric,
        fallback=version == 0,
    )


def observation(
    minutes: float, value: float = 10.0, *, entity: str = "m-1", metric: str = "temperature"
) -> Observation:
    return Observation(entity, metric, micros(at(minutes)), value)


def pair(
    n: int,
    error: float,
    *,
    actual: float = 100.0,
    model: str = "demand",
    version: int = 1,
    key: str | None = "sku-1",
    minutes: float | None = None,
) -> MonitorPair:
    """Pair number ``n`` with the given error (predicted = actual + error)."""
    return MonitorPair(
        prediction_id=f"{model}-{key}-{version}-{n}",
        model=model,
        version=version,
        key=key,
        entity_id=key or "e-1",
        metric="quantity",
        target_ts=at(n if minutes is None else minutes),
        predicted=actual + error,
        actual=actual,
        error=error,
    )


@pytest.fixture(scope="session")
def build() -> SimpleNamespace:
    """The builders above, plus ``T0``."""
    return SimpleNamespace(T0=T0, at=at, prediction=prediction, observation=observation, pair=pair)
