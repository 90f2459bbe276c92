"""Realistic sample messages of every contract, for the codec benchmark, docs and tests.

``sample(type, rng, i, full=True)`` fills every optional field; ``full=False`` leaves the
optional ones at their defaults. Values vary with ``rng`` and ``i`` so that encoded sizes
and float widths look like real traffic.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from events.fields import SEVERITIES
from events.ids import derive_id
from events.lifecycle import ModelHealth, ModelUpdate, RetrainRequest
from events.messages import Message
from events.outputs import Alert, MonitorPair, Prediction
from events.readings import Actual, DemandReading, ImputedReading, SensorReading

T = TypeVar("T", bound=Message)

# A machine feed: ten metrics, the width of the synthetic machine sensors.
MACHINE_METRICS: Final = (
    "temperature",
    "vibration",
    "pressure",
    "rpm",
    "current",
    "voltage",
    "torque",
    "humidity",
    "flow",
    "noise",
)
_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)
# One sample per minute keeps timestamps distinct and inside the accepted range.
_STEP: Final = timedelta(minutes=1)

Builder = Callable[[random.Random, int, bool], Any]


def _ts(i: int) -> datetime:
    return _EPOCH + i * _STEP


def _values(rng: random.Random, full: bool) -> dict[str, float | None]:
    values: dict[str, float | None] = {m: round(rng.gauss(50, 15), 4) for m in MACHINE_METRICS}
    if full:
        values["vibration"] = None  # a gap, as real feeds have
    return values


def _sensor(rng: random.Random, i: int, full: bool) -> SensorReading:
    return SensorReading(
        entity_id=f"machine-{i % 500:04d}", kind="machine", ts=_ts(i), values=_values(rng, full)
    )


def _demand(rng: random.Random, i: int, full: bool) -> DemandReading:
    quantity = float(rng.randint(0, 400))
    if not full:
        return DemandReading(product_id=f"SKU-{i % 300:05d}", ts=_ts(i), quantity=quantity)
    return DemandReading(
        product_id=f"SKU-{i % 300:05d}",
        ts=_ts(i),
        quantity=quantity,
        price=round(rng.uniform(0.5, 40), 2),
        promo=rng.random() < 0.1,  # about one day in ten is a promotion
    )


def _actual(rng: random.Random, i: int, full: bool) -> Actual:
    return Actual(
        entity_id=f"machine-{i % 500:04d}",
        ts=_ts(i),
        metric="temperature",
        value=round(rng.gauss(50, 15), 4),
    )


def _prediction(rng: random.Random, i: int, full: bool) -> Prediction:
    value = rng.gauss(50, 15)
    common: dict[str, Any] = {
        "prediction_id": derive_id("readings.sensor", i % 12, i, "sequence"),
        "model": "sequence",
        "version": 3,
        "entity_id": f"machine-{i % 500:04d}",
        "made_at": _ts(i),
        "target_ts": _ts(i + 60),
        "value": value,
        "kind": "forecast",
    }
    if not full:
        return Prediction(**common)
    spread = abs(rng.gauss(5, 1))
    return Prediction(
        **common,
        key="temperature",
        lower=value - spread,
        upper=value + spread,
        metric="temperature",
        fallback=False,
    )


def _alert(rng: random.Random, i: int, full: bool) -> Alert:
    score = rng.uniform(0.8, 1.0)
    common: dict[str, Any] = {
        "alert_id": derive_id("readings.sensor", i % 12, i, "anomaly"),
        "type": "anomaly",
        "entity_id": f"machine-{i % 500:04d}",
        "ts": _ts(i),
        "score": score,
        "threshold": 0.8,
        "severity": SEVERITIES[min(3, int((score - 0.8) * 20))],
        "model": "anomaly",
        "version": 7,
    }
    if not full:
        return Alert(**common)
    return Alert(
        **common,
        key="line-2",
        message=f"anomaly score {score:.3f} above 0.8 on temperature, vibration",
        recommendation="inspect the spindle bearing within 24 hours",
    )


def _imputed(rng: random.Random, i: int, full: bool) -> ImputedReading:
    values = _values(rng, False)
    return ImputedReading(
        entity_id=f"station-{i % 40:03d}",
        kind="air",
        ts=_ts(i),
        values=values,
        imputed=["vibration", "flow"] if full else [],
        model="sequence",
        version=3,
    )


def _pair(rng: random.Random, i: int, full: bool) -> MonitorPair:
    predicted, actual = rng.gauss(50, 15), rng.gauss(50, 15)
    return MonitorPair(
        prediction_id=derive_id("readings.sensor", i % 12, i, "sequence"),
        model="sequence",
        version=3,
        key="temperature" if full else None,
        entity_id=f"machine-{i % 500:04d}",
        metric="temperature" if full else None,
        target_ts=_ts(i),
        predicted=predicted,
        actual=actual,
        error=predicted - actual,
    )


def _health(rng: random.Random, i: int, full: bool) -> ModelHealth:
    common: dict[str, Any] = {
        "model": "demand",
        "version": 12,
        "ts": _ts(i),
        "window": 86_400.0,
        "pairs": 0 if not full else rng.randint(100, 5000),
        "status": "unknown" if not full else "warning",
    }
    if not full:
        return ModelHealth(**common)
    mae = rng.uniform(1, 5)
    return ModelHealth(
        **common,
        key=f"SKU-{i % 300:05d}",
        mae=mae,
        rmse=mae * 1.3,
        mape=rng.uniform(0.05, 0.3),
        bias=rng.gauss(0, 0.5),
        baseline_mae=mae / 1.2,
        degradation=0.2,
        label_coverage=rng.uniform(0.8, 1.0),
    )


def _retrain(rng: random.Random, i: int, full: bool) -> RetrainRequest:
    return RetrainRequest(
        request_id=derive_id("model.health", 0, i, "demand"),
        model="demand",
        key=f"SKU-{i % 300:05d}" if full else None,
        action="fine_tune",
        reason="MAE degraded 20% over the baseline",
        requested_at=_ts(i),
        evidence={"degradation": 0.2, "mae": rng.uniform(1, 5), "trigger": "drift"} if full else {},
    )


def _update(rng: random.Random, i: int, full: bool) -> ModelUpdate:
    return ModelUpdate(
        model="demand",
        key=f"SKU-{i % 300:05d}" if full else None,
        version=13,
        action="promoted",
        ts=_ts(i),
        metrics={"mae": rng.uniform(1, 5), "rmse": rng.uniform(1, 7)} if full else {},
        reason="beat the champion on the holdout" if full else None,
    )


BUILDERS: Final[dict[type[Message], Builder]] = {
    SensorReading: _sensor,
    DemandReading: _demand,
    Actual: _actual,
    Prediction: _prediction,
    Alert: _alert,
    ImputedReading: _imputed,
    MonitorPair: _pair,
    ModelHealth: _health,
    RetrainRequest: _retrain,
    ModelUpdate: _update,
}


def sample(message_type: type[T], rng: random.Random, i: int = 0, *, full: bool = True) -> T:
    """One message of ``message_type``; ``full`` fills every optional field."""
    message: T = BUILDERS[message_type](rng, i, full)
    return message


def samples(message_type: type[T], count: int, *, seed: int = 0) -> list[T]:
    """``count`` varied messages of ``message_type`` (all optional fields filled)."""
    rng = random.Random(seed)
    return [sample(message_type, rng, i) for i in range(count)]
