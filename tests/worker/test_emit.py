"""Scores -> records: which outputs, their fields, deterministic ids, refused outputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from events.catalog import codec_for
from events.errors import EventError
from events.fields import MAX_MAGNITUDE, SEVERITIES
from events.ids import derive_id
from events.outputs import Alert, Prediction
from events.readings import ImputedReading, SensorReading
from models.base import Scores
from models.families import create
from models.features import spec_from_metadata
from models.maintenance import recommendation
from worker.emit import Emitter, Forecast, Outbox
from worker.intake import Intake, Readings
from worker.replay import frame_records
from worker.routes import StreamTopics
from worker.serving import Served

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def readings(values: list[dict[str, float | None]], start: datetime = T0) -> Readings[Any]:
    frame = pd.DataFrame(values).assign(
        entity_id=[f"m-{i}" for i in range(len(values))],
        ts=[start + timedelta(hours=i) for i in range(len(values))],
    )
    return Intake(StreamTopics()).read(frame_records(frame, "readings.sensor"), None).sensor


def served(name: str, version: int, key: str | None = None, horizon: int = 1) -> Served:
    model = create("robust_zscore", {"metrics": ["x"]})
    return Served(name, key, version, model, spec_from_metadata(model.metadata()), None, horizon)


def decoded(out: Outbox, topic: str) -> list[Any]:
    codec = codec_for(topic)
    return [codec.decode(r.value) for r in out.records if r.topic == topic]


def test_anomaly_alerts_only_for_flagged_readings() -> None:
    batch = readings([{"x": 1.0}] * 3)
    scores = Scores(
        score=np.array([0.2, 0.8, 0.95]),
        flag=np.array([False, True, True]),
        severity=np.array([0, 2, 3]),
    )
    out = Outbox([])
    Emitter(StreamTopics()).anomalies(out, batch, [0, 1, 2], served("anomaly", 4), scores)
    alerts: list[Alert] = decoded(out, "alerts")
    assert [a.entity_id for a in alerts] == ["m-1", "m-2"]
    assert [a.severity for a in alerts] == ["high", "critical"]
    first = alerts[0]
    assert (first.type, first.version, first.threshold, first.score) == ("anomaly", 4, 0.5, 0.8)
    origin = (batch.topics[1], batch.partitions[1], batch.offsets[1])
    assert first.alert_id == derive_id(*origin, "anomaly")
    assert first.ts == batch.ts(1)
    assert [r.key for r in out.records] == [b"m-1", b"m-2"]
    assert {r.kind for r in out.records} == {"alert"}


def test_fallback_alerts_carry_version_0_and_say_so() -> None:
    batch = readings([{"x": 1.0}])
    scores = Scores(score=np.array([0.7]), flag=np.array([True]), severity=np.array([1]))
    out = Outbox([])
    Emitter(StreamTopics()).anomalies(out, batch, [0], served("anomaly", 0), scores)
    (alert,) = decoded(out, "alerts")
    assert alert.version == 0
    assert alert.message is not None and "fallback" in alert.message


def test_risk_predictions_for_all_and_maintenance_alerts_when_urgent() -> None:
    batch = readings([{"x": 1.0}] * 2)
    scores = Scores(value=np.array([0.3, 2.6]), level=np.array([0, 3]), flag=np.array([0, 1]))
    out = Outbox([])
    Emitter(StreamTopics()).risks(out, batch, [0, 1], served("maintenance", 2), scores)
    predictions: list[Prediction] = decoded(out, "predictions")
    assert [(p.kind, p.metric, p.value, p.target_ts) for p in predictions] == [
        ("risk", "risk", 0.3, batch.ts(0)),
        ("risk", "risk", 2.6, batch.ts(1)),
    ]
    (alert,) = decoded(out, "alerts")
    assert (alert.type, alert.score, alert.threshold, alert.severity) == (
        "maintenance",
        3.0,
        2.0,
        "critical",
    )
    assert alert.recommendation is not None and alert.recommendation.startswith("Urgent")
    assert alert.alert_id != predictions[1].prediction_id


def test_forecasts_are_dated_horizon_steps_ahead_with_their_interval() -> None:
    batch = readings([{"x": 1.0}] * 3)
    scores = Scores(
        value=np.array([10.0, 11.0, np.nan]),
        lower=np.array([9.0, np.nan, 1.0]),
        upper=np.array([12.0, np.inf, 2.0]),
    )
    out = Outbox([])
    model = served("sequence", 5, key="x", horizon=3)
    Emitter(StreamTopics()).forecasts(out, batch, [0, 1, 2], model, scores, Forecast("x", 600.0))
    predictions: list[Prediction] = decoded(out, "predictions")
    assert out.dropped == 1  # the NaN forecast
    assert [(p.value, p.lower, p.upper) for p in predictions] == [
        (10.0, 9.0, 12.0),
        (11.0, None, None),
    ]
    first = predictions[0]
    assert first.target_ts == batch.ts(0) + timedelta(seconds=1800)
    assert (first.key, first.metric, first.version, first.fallback) == ("x", "x", 5, False)
    origin = (batch.topics[0], batch.partitions[0], batch.offsets[0])
    assert first.prediction_id == derive_id(*origin, "sequence", "x")


def test_ids_do_not_depend_on_the_version() -> None:
    batch = readings([{"x": 1.0}])
    scores = Scores(value=np.array([1.0]))
    ids = []
    for version in (0, 1, 7):
        out = Outbox([])
        Emitter(StreamTopics()).forecasts(
            out, batch, [0], served("demand", version), scores, Forecast("quantity", 86_400.0)
        )
        ids.append(decoded(out, "predictions")[0].prediction_id)
    assert len(set(ids)) == 1


def test_an_output_the_contracts_refuse_marks_its_reading_failed() -> None:
    batch = readings([{"x": 1.0}, {"x": 2.0}], start=datetime(2099, 12, 31, 22, tzinfo=UTC))
    out = Outbox([])
    Emitter(StreamTopics()).forecasts(
        out,
        batch,
        [0, 1],
        served("demand", 1),
        Scores(value=np.array([1.0, 2.0])),
        Forecast("quantity", 86_400.0),
    )
    assert sorted(out.failed) == [0, 1]  # target times beyond the contracts' year 2100
    assert out.records == []


def test_imputed_readings_fill_gaps_in_reading_order_with_the_lowest_version() -> None:
    batch = readings([{"a": None, "b": 2.0, "c": None}, {"a": 1.0, "b": 2.0, "c": 3.0}])
    out = Outbox([])
    fills = {0: {"c": (30.0, 4), "a": (10.0, 0)}}
    Emitter(StreamTopics()).imputed(out, batch, fills, "sequence")
    (message,) = decoded(out, "readings.imputed")
    assert isinstance(message, ImputedReading)
    assert message.values == {"a": 10.0, "b": 2.0, "c": 30.0}
    assert message.imputed == ["a", "c"]
    assert (message.model, message.version, message.entity_id) == ("sequence", 0, "m-0")
    assert out.records[0].key == b"m-0"


@pytest.mark.parametrize("version", [3, 0])
def test_fallback_flag_follows_the_version(version: int) -> None:
    batch = readings([{"x": 1.0}])
    out = Outbox([])
    Emitter(StreamTopics()).forecasts(
        out,
        batch,
        [0],
        served("demand", version),
        Scores(value=np.array([4.0])),
        Forecast("quantity", 86_400.0),
    )
    (prediction,) = decoded(out, "predictions")
    assert prediction.fallback is (version == 0)


def test_sensor_reading_type_round_trips_through_replay() -> None:
    batch = readings([{"x": 1.5, "y": None}])
    assert isinstance(batch.messages[0], SensorReading)
    assert batch.messages[0].values == {"x": 1.5, "y": None}


# The reference below builds every output the straightforward way, one checked contract
# per row, and encodes it with the codec's round-trip validation. The emitter builds
# rows it knows the contracts accept without re-running their checks, so its records,
# refusals and drop counts must match the reference exactly, byte for byte.

OUTPUT_ERRORS = (EventError, ValueError, OverflowError)


def publishable(values: Any, size: int) -> list[float | None]:
    array = np.zeros(size) if values is None else np.asarray(values, dtype=np.float64)
    return [float(v) if np.isfinite(v) and abs(v) <= MAX_MAGNITUDE else None for v in array]


def origin_of(batch: Readings[Any], row: int) -> tuple[str, int, int]:
    return batch.topics[row], batch.partitions[row], batch.offsets[row]


class Reference:
    """Records, refusals (row -> message) and drops of the per-row construction."""

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.failed: dict[int, str] = {}
        self.dropped = 0

    def add(self, row: int, topic: str, build: Callable[[], Any]) -> None:
        try:
            self.values.append(codec_for(topic).encode(build()))
        except OUTPUT_ERRORS as exc:
            self.failed.setdefault(row, str(exc))

    def prediction(
        self, batch: Readings[Any], row: int, model: Served, point: tuple[Any, ...], **label: Any
    ) -> None:
        value, lower, upper, ahead, shadow = point
        extra = (label["metric"], "shadow") if shadow else (label["metric"],)
        self.add(
            row,
            "predictions",
            lambda: Prediction(
                prediction_id=derive_id(*origin_of(batch, row), model.name, *extra),
                model=model.name,
                version=model.version,
                key=model.key,
                entity_id=batch.entities[row],
                made_at=batch.ts(row),
                target_ts=batch.ts(row) + ahead,
                value=value,
                lower=lower,
                upper=upper,
                fallback=model.version == 0,
                **label,
            ),
        )

    def alert(
        self, batch: Readings[Any], row: int, model: Served, *extra: str, **what: Any
    ) -> None:
        self.add(
            row,
            "alerts",
            lambda: Alert(
                alert_id=derive_id(*origin_of(batch, row), model.name, *extra),
                entity_id=batch.entities[row],
                ts=batch.ts(row),
                model=model.name,
                version=model.version,
                key=model.key,
                **what,
            ),
        )


def reference_forecasts(
    batch: Readings[Any], model: Served, scores: Scores, forecast: Forecast, shadow: bool
) -> Reference:
    ref = Reference()
    size = len(batch)
    value, lower, upper = (publishable(a, size) for a in (scores.value, scores.lower, scores.upper))
    ahead = timedelta(seconds=model.horizon * forecast.step_seconds)
    for row in range(size):
        if value[row] is None:
            ref.dropped += 1
            continue
        point = (value[row], lower[row], upper[row], ahead, shadow)
        ref.prediction(batch, row, model, point, metric=forecast.metric, kind=forecast.kind)
    return ref


def reference_risks(batch: Readings[Any], model: Served, scores: Scores, shadow: bool) -> Reference:
    ref = Reference()
    value = publishable(scores.value, len(batch))
    level = np.clip(np.asarray(scores.level), 0, len(SEVERITIES) - 1).astype(int).tolist()
    for row in range(len(batch)):
        if value[row] is None:
            ref.dropped += 1
            continue
        point = (value[row], None, None, timedelta(0), shadow)
        ref.prediction(batch, row, model, point, metric="risk", kind="risk")
        if scores.flag is not None and scores.flag[row] and not shadow:
            ref.alert(
                batch,
                row,
                model,
                "alert",
                type="maintenance",
                score=float(level[row]),
                threshold=2.0,
                severity=SEVERITIES[level[row]],
                message=f"maintenance risk level {level[row]} ({SEVERITIES[level[row]]})",
                recommendation=recommendation(level[row]),
            )
    return ref


def reference_anomalies(batch: Readings[Any], model: Served, scores: Scores) -> Reference:
    ref = Reference()
    score = publishable(scores.score, len(batch))
    note = " (robust z-score fallback: no trained model serves)" if model.version == 0 else ""
    for row in np.flatnonzero(np.asarray(scores.flag)).tolist():
        if score[row] is None:
            ref.dropped += 1
            continue
        level = int(np.clip(np.asarray(scores.severity)[row], 0, len(SEVERITIES) - 1))
        ref.alert(
            batch,
            row,
            model,
            type="anomaly",
            score=score[row],
            threshold=0.5,
            severity=SEVERITIES[level],
            message=f"anomaly score {score[row]:.2f} above 0.50{note}",
        )
    return ref


def noisy(rng: np.random.Generator, size: int) -> Any:
    """Numbers of every magnitude, with NaN, infinities and values beyond the bound."""
    values = rng.normal(scale=1e3, size=size) * rng.choice([1e-6, 1.0, 1e6], size=size)
    values[rng.random(size) < 0.1] = np.nan
    values[rng.random(size) < 0.05] = np.inf
    values[rng.random(size) < 0.05] = 5e12
    return values


def mixed_batch() -> Readings[Any]:
    """Readings near the contracts' last year (late forecasts are refused), one bad entity."""
    batch = readings([{"x": 1.0}] * 40, start=datetime(2099, 12, 30, tzinfo=UTC))
    batch.entities[7] = " m-7"
    return batch


def assert_matches(out: Outbox, ref: Reference) -> None:
    assert [r.value for r in out.records] == ref.values
    assert {row: str(exc) for row, exc in out.failed.items()} == ref.failed
    assert out.dropped == ref.dropped


MODELS = [
    served("sequence", 5, key="x", horizon=3),
    served("sequence", 0, key="x"),
    served("bad name!", 2, key="x"),  # refused model name: every output is refused
    served("sequence", 4, key=" x"),  # refused key
]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("shadow", [False, True])
def test_forecasts_match_per_row_construction_byte_for_byte(model: Served, shadow: bool) -> None:
    rng = np.random.default_rng(model.version)
    batch, size = mixed_batch(), 40
    scores = Scores(value=noisy(rng, size), lower=noisy(rng, size), upper=noisy(rng, size))
    out = Outbox([])
    for forecast in (Forecast("x", 43_200.0), Forecast("bad metric", 60.0, "imputation")):
        expected = reference_forecasts(batch, model, scores, forecast, shadow)
        out = Outbox([])
        Emitter(StreamTopics()).forecasts(
            out, batch, list(range(size)), model, scores, forecast, shadow=shadow
        )
        assert_matches(out, expected)
    assert out.failed  # the refused metric name


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("shadow", [False, True])
def test_risks_and_alerts_match_per_row_construction_byte_for_byte(
    model: Served, shadow: bool
) -> None:
    rng = np.random.default_rng(3)
    batch, size = mixed_batch(), 40
    scores = Scores(
        value=noisy(rng, size),
        level=rng.integers(-1, 5, size).astype(float),
        flag=rng.random(size) < 0.5,
    )
    out = Outbox([])
    Emitter(StreamTopics()).risks(out, batch, list(range(size)), model, scores, shadow=shadow)
    assert_matches(out, reference_risks(batch, model, scores, shadow))
    anomalies = Scores(
        score=noisy(rng, size),
        flag=rng.random(size) < 0.5,
        severity=rng.integers(0, 4, size).astype(float),
    )
    out = Outbox([])
    Emitter(StreamTopics()).anomalies(out, batch, list(range(size)), model, anomalies)
    assert_matches(out, reference_anomalies(batch, model, anomalies))


def test_a_refused_model_name_refuses_every_output_of_the_batch() -> None:
    batch = readings([{"x": 1.0}] * 3)
    scores = Scores(value=np.array([0.5, np.nan, 2.5]), flag=np.array([0, 0, 1]))
    out = Outbox([])
    Emitter(StreamTopics()).risks(out, batch, [0, 1, 2], served("bad name!", 1), scores)
    assert out.records == []
    assert sorted(out.failed) == [0, 2]  # row 1 gave no number: dropped, not refused
    assert all("invalid model name" in str(e) for e in out.failed.values())
    assert out.dropped == 1


def test_a_forecast_beyond_what_datetime_holds_marks_its_reading_failed() -> None:
    batch = readings([{"x": 1.0}] * 2)
    model = served("sequence", 1, key="x", horizon=4_000)
    out = Outbox([])
    Emitter(StreamTopics()).forecasts(
        out, batch, [0, 1], model, Scores(value=np.ones(2)), Forecast("x", 1e8)
    )
    assert out.records == []
    assert {type(e) for e in out.failed.values()} == {OverflowError}
