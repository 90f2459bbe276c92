"""Scores -> output records: alerts, predictions and imputed readings.

Ids are :func:`events.ids.derive_id` of the source reading's topic, partition and offset,
the registry model name and, where one reading yields several outputs of a model, what
tells them apart (``risk``/``alert``, the metric forecast; ``shadow`` for a challenger's
predictions in shadow mode). The version is *not* part of
an id: a replay after a hot swap (or after a first champion replaced a fallback) repeats
the id, so consumers that dedupe keep one event per reading and model.

Messages are built from decoded readings and checked numbers: ids, names, timestamps and
the contracts' cross-field rules are checked as each struct is built (``__post_init__``),
and every number is checked finite and within the contracts' bound here. Decoding each
encoded record again (``validate=True``) would only add its cost on the hot path, so
records are encoded with ``validate=False``. Ids of one model's outputs in one batch come
from one :class:`~events.ids.IdDeriver`, which encodes what they share once. A non-finite
model output is dropped and counted; a message the contracts refuse marks its reading
failed (the caller dead-letters it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from events import topics
from events.catalog import codec_for
from events.errors import EventError
from events.fields import MAX_MAGNITUDE, SEVERITIES
from events.ids import IdDeriver
from events.outputs import Alert, AlertType, Prediction, PredictionKind
from events.readings import ImputedReading, SensorReading
from models.base import SEVERITY_CUTS, FloatArray, Scores
from worker.intake import Readings
from worker.records import OutRecord
from worker.routes import StreamTopics
from worker.serving import Served

# Every anomaly output (trained or fallback) maps its threshold to score 0.5 (models.base).
ANOMALY_THRESHOLD: Final = SEVERITY_CUTS[0]
# A maintenance alert means "plan maintenance now": the model flags urgency only when the
# median risk level is at least 2 (level 3, or P(risk >= 2) above its urgency probability).
URGENT_LEVEL: Final = 2
RISK_METRIC: Final = "risk"
# Part of a challenger's prediction ids: a champion and its challenger scoring one reading
# publish different ids, so that consumers deduplicating on ids keep both.
SHADOW: Final = "shadow"
# Errors building one output: a contract check (ContractError is a ValueError, IdError an
# EventError) or a target time beyond what datetime can hold.
OUTPUT_ERRORS: Final = (EventError, ValueError, OverflowError)

Fills = Mapping[int, Mapping[str, tuple[float, int]]]
"""Row -> metric -> (filled value, version of the model that filled it; 0 = fallback)."""


@dataclass
class Outbox:
    """Records of one stream's batch, plus the rows whose outputs the contracts refused."""

    records: list[OutRecord]
    failed: dict[int, BaseException] = field(default_factory=dict)
    dropped: int = 0  # outputs skipped because the model gave a non-finite value

    def add(self, row: int, build: OutRecord | BaseException) -> None:
        if isinstance(build, BaseException):
            self.failed.setdefault(row, build)
        else:
            self.records.append(build)


@dataclass(frozen=True)
class Forecast:
    """How to label one model's forecasts: the metric, and the step that dates them."""

    metric: str
    step_seconds: float
    kind: PredictionKind = "forecast"


class Emitter:
    """Encodes the outputs of scored readings into records for the output topics."""

    def __init__(self, outputs: StreamTopics) -> None:
        self.outputs = outputs
        self._imputed = codec_for(topics.READINGS_IMPUTED)
        self.predictions_codec = codec_for(topics.PREDICTIONS)
        self.alerts_codec = codec_for(topics.ALERTS)

    def anomalies(
        self,
        out: Outbox,
        readings: Readings[SensorReading],
        rows: Sequence[int],
        served: Served,
        scores: Scores,
    ) -> None:
        """An ``anomaly`` alert for every flagged reading."""
        score, ok = _values(scores.score, len(rows))
        flagged = _array(scores.flag, len(rows)) > 0
        level = _levels(scores.severity, len(rows))
        note = " (robust z-score fallback: no trained model serves)" if served.fallback else ""
        alerts = _Alerts(self, served)
        for j in np.flatnonzero(flagged).tolist():
            if not ok[j]:
                out.dropped += 1
                continue
            text = f"anomaly score {score[j]:.2f} above {ANOMALY_THRESHOLD:.2f}{note}"
            alert = _Alert("anomaly", score[j], ANOMALY_THRESHOLD, level[j], text)
            out.add(rows[j], alerts.build(readings, rows[j], alert))

    def risks(
        self,
        out: Outbox,
        readings: Readings[SensorReading],
        rows: Sequence[int],
        served: Served,
        scores: Scores,
        *,
        shadow: bool = False,
    ) -> None:
        """A ``risk`` prediction per reading, and a ``maintenance`` alert when urgent
        (``shadow``: a challenger's predictions only, to the shadow topic; no alerts)."""
        value, ok = _values(scores.value, len(rows))
        urgent = (_array(scores.flag, len(rows)) > 0).tolist()
        level = _levels(scores.level, len(rows))
        predictions = _Predictions(self, served, RISK_METRIC, "risk", shadow)
        alerts = None if shadow else _Alerts(self, served, "alert")
        for j, row in enumerate(rows):
            if not ok[j]:
                out.dropped += 1
                continue
            out.add(row, predictions.build(readings, row, value[j]))
            if urgent[j] and alerts is not None:
                text = f"maintenance risk level {level[j]} ({SEVERITIES[level[j]]})"
                alert = _Alert("maintenance", level[j], URGENT_LEVEL, level[j], text)
                alert.recommendation = _recommendation(level[j])
                out.add(row, alerts.build(readings, row, alert))

    def forecasts(
        self,
        out: Outbox,
        readings: Readings[Any],
        rows: Sequence[int],
        served: Served,
        scores: Scores,
        forecast: Forecast,
        *,
        shadow: bool = False,
    ) -> None:
        """A ``forecast`` prediction of ``metric`` per reading, ``horizon`` steps ahead
        (``shadow``: a challenger's, to the shadow topic)."""
        value, ok = _values(scores.value, len(rows))
        lower, upper = _bounds(scores.lower, len(rows)), _bounds(scores.upper, len(rows))
        ahead = timedelta(seconds=served.horizon * forecast.step_seconds)
        predictions = _Predictions(self, served, forecast.metric, forecast.kind, shadow)
        for j, row in enumerate(rows):
            if not ok[j]:
                out.dropped += 1
                continue
            out.add(row, predictions.build(readings, row, value[j], lower[j], upper[j], ahead))

    def imputed(
        self, out: Outbox, readings: Readings[SensorReading], fills: Fills, model: str
    ) -> None:
        """An imputed reading per reading with filled gaps (listed in the reading's order).

        ``version`` is the lowest version among the models that filled the reading's gaps,
        so it is 0 whenever any gap was filled by the fallback and above 0 only when every
        filled value came from a trained model.
        """
        for row in sorted(fills):
            filled = fills[row]
            reading = readings.messages[row]
            values = dict(reading.values)
            values.update({metric: value for metric, (value, _) in filled.items()})
            try:
                message = ImputedReading(
                    entity_id=reading.entity_id,
                    kind=reading.kind,
                    ts=reading.ts,
                    values=values,
                    imputed=[metric for metric in reading.values if metric in filled],
                    model=model,
                    version=min(version for _, version in filled.values()),
                )
                data = self._imputed.encode(message, validate=False)
            except OUTPUT_ERRORS as exc:
                out.add(row, exc)
                continue
            key = readings.entities[row].encode()
            out.add(row, OutRecord(self.outputs.imputed, key, data, "imputed"))


class _Predictions:
    """The predictions of one model for one batch of readings: ids derived with what the
    batch shares encoded once; every message checked by the contract as it is built."""

    def __init__(
        self, emitter: Emitter, served: Served, metric: str, kind: PredictionKind, shadow: bool
    ) -> None:
        self.ids = IdDeriver(served.name, *((metric, SHADOW) if shadow else (metric,)))
        self.served, self.metric, self.prediction_kind = served, metric, kind
        self.encode = emitter.predictions_codec.encode
        outputs = emitter.outputs
        self.topic = outputs.shadow if shadow else outputs.predictions
        self.kind = "shadow_prediction" if shadow else "prediction"

    def build(
        self,
        readings: Readings[Any],
        row: int,
        value: float,
        lower: float | None = None,
        upper: float | None = None,
        ahead: timedelta | None = None,
    ) -> OutRecord | BaseException:
        """The record of one prediction (``ahead`` of the reading; None: at its time)."""
        served, entity = self.served, readings.entities[row]
        try:
            made_at = readings.messages[row].ts
            message = Prediction(
                prediction_id=self.ids.derive(*_origin(readings, row)),
                model=served.name,
                version=served.version,
                key=served.key,
                entity_id=entity,
                made_at=made_at,
                target_ts=made_at if ahead is None else made_at + ahead,
                value=value,
                lower=lower,
                upper=upper,
                kind=self.prediction_kind,
                metric=self.metric,
                fallback=served.fallback,
            )
            data = self.encode(message, validate=False)
        except OUTPUT_ERRORS as exc:
            return exc
        return OutRecord(self.topic, entity.encode(), data, self.kind)


class _Alerts:
    """The alerts of one model for one batch of readings (ids as :class:`_Predictions`)."""

    def __init__(self, emitter: Emitter, served: Served, *extra: str) -> None:
        self.ids = IdDeriver(served.name, *extra)
        self.served = served
        self.encode = emitter.alerts_codec.encode
        self.topic = emitter.outputs.alerts

    def build(self, readings: Readings[Any], row: int, alert: _Alert) -> OutRecord | BaseException:
        """The record of one alert about the reading at ``row``."""
        served, entity = self.served, readings.entities[row]
        try:
            message = Alert(
                alert_id=self.ids.derive(*_origin(readings, row)),
                type=alert.type,
                entity_id=entity,
                ts=readings.messages[row].ts,
                score=float(alert.score),
                threshold=float(alert.threshold),
                severity=SEVERITIES[alert.level],
                model=served.name,
                version=served.version,
                key=served.key,
                message=alert.message,
                recommendation=alert.recommendation,
            )
            data = self.encode(message, validate=False)
        except OUTPUT_ERRORS as exc:
            return exc
        return OutRecord(self.topic, entity.encode(), data, "alert")


@dataclass
class _Alert:
    type: AlertType
    score: float
    threshold: float
    level: int
    message: str
    recommendation: str | None = None


def _origin(readings: Readings[Any], row: int) -> tuple[str, int, int]:
    return readings.topics[row], readings.partitions[row], readings.offsets[row]


def _array(values: npt.NDArray[np.generic] | None, size: int) -> FloatArray:
    if values is None:
        return np.zeros(size)
    return np.asarray(values, dtype=np.float64)


def _values(values: FloatArray | None, size: int) -> tuple[list[float], list[bool]]:
    """Python floats of a score array and whether each is a finite, publishable number."""
    array = _array(values, size)
    ok = np.isfinite(array) & (np.abs(array) <= MAX_MAGNITUDE)
    return array.tolist(), ok.tolist()


def _bounds(values: FloatArray | None, size: int) -> list[float | None]:
    """Interval bounds as Python floats; None where absent or not publishable."""
    if values is None:
        return [None] * size
    floats, ok = _values(values, size)
    return [v if good else None for v, good in zip(floats, ok, strict=True)]


def _levels(values: npt.NDArray[np.generic] | None, size: int) -> list[int]:
    """Levels 0-3 (severity or risk) as Python ints, clipped to the severity vocabulary."""
    top = len(SEVERITIES) - 1
    levels = np.clip(np.nan_to_num(_array(values, size)), 0, top).astype(np.int64)
    return [int(level) for level in levels.tolist()]


@functools.cache
def _recommendation(level: int) -> str:
    """The maintenance family's text for a risk level (a few levels: cached).

    Imported here, not at module level: ``models.maintenance`` imports scikit-learn, which
    only a worker that serves a maintenance champion (and so has it loaded) may import.
    """
    from models.maintenance import recommendation

    return recommendation(level)
