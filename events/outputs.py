"""Output contracts of the scoring path: predictions, alerts and labelled pairs."""

from __future__ import annotations

import math
from typing import Literal

from events.checks import (
    check_identifier,
    check_metric,
    check_model,
    check_timestamp,
)
from events.errors import ContractError
from events.fields import (
    Finite,
    Identifier,
    MetricName,
    ModelName,
    Severity,
    Text,
    Timestamp,
    Version,
)
from events.messages import Message

PredictionKind = Literal["forecast", "risk", "imputation"]
AlertType = Literal["anomaly", "maintenance", "drift", "model"]

# MonitorPair.error must equal predicted - actual; this absorbs float rounding only.
_ERROR_TOLERANCE = 1e-9


class Prediction(Message, tag=1, frozen=True, kw_only=True):
    """One model output for one entity and target time.

    Topics ``predictions`` (champion) and ``predictions.shadow`` (challenger), key
    ``entity_id``. ``value``, ``lower`` and ``upper`` are in the unit of ``metric`` for
    forecasts and imputations; for ``risk`` they are the expected risk level (0-3).
    ``lower``/``upper`` bound the prediction interval when the model gives one.
    ``prediction_id`` is derived with :func:`events.ids.derive_id`, so a replay repeats it.
    """

    prediction_id: Identifier
    model: ModelName
    version: Version
    key: Identifier | None = None
    entity_id: Identifier
    made_at: Timestamp
    target_ts: Timestamp
    value: Finite
    lower: Finite | None = None
    upper: Finite | None = None
    kind: PredictionKind
    metric: MetricName | None = None
    fallback: bool = False

    def __post_init__(self) -> None:
        check_identifier(self.prediction_id, "prediction_id")
        check_identifier(self.entity_id, "entity_id")
        check_identifier(self.key, "key")
        check_model(self.model)
        check_metric(self.metric)
        check_timestamp(self, "made_at")
        check_timestamp(self, "target_ts")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ContractError(
                f"`$.lower` {self.lower} is above `$.upper` {self.upper}",
                "invalid_value",
                "$.lower",
            )


class Alert(Message, tag=1, frozen=True, kw_only=True):
    """Something that needs a person: an anomaly, a maintenance risk, drift, a model fault.

    Topic ``alerts``, key ``entity_id`` (for drift and model alerts: the model key, or the
    model name when the model is unkeyed). ``score`` crossed ``threshold`` (same unit).
    """

    alert_id: Identifier
    type: AlertType
    entity_id: Identifier
    ts: Timestamp
    score: Finite
    threshold: Finite
    severity: Severity
    model: ModelName
    version: Version
    key: Identifier | None = None
    message: Text | None = None
    recommendation: Text | None = None

    def __post_init__(self) -> None:
        check_identifier(self.alert_id, "alert_id")
        check_identifier(self.entity_id, "entity_id")
        check_identifier(self.key, "key")
        check_model(self.model)
        check_timestamp(self, "ts")


class MonitorPair(Message, tag=1, frozen=True, kw_only=True):
    """A prediction joined with the actual it predicted.

    Topic ``monitor.pairs``, key ``entity_id``. ``error = predicted - actual`` (positive
    means the model over-predicted), in the unit of ``metric``.
    """

    prediction_id: Identifier
    model: ModelName
    version: Version
    key: Identifier | None = None
    entity_id: Identifier
    metric: MetricName | None = None
    target_ts: Timestamp
    predicted: Finite
    actual: Finite
    error: Finite

    def __post_init__(self) -> None:
        check_identifier(self.prediction_id, "prediction_id")
        check_identifier(self.entity_id, "entity_id")
        check_identifier(self.key, "key")
        check_model(self.model)
        check_metric(self.metric)
        check_timestamp(self, "target_ts")
        expected = self.predicted - self.actual
        if not math.isclose(
            self.error, expected, rel_tol=_ERROR_TOLERANCE, abs_tol=_ERROR_TOLERANCE
        ):
            raise ContractError(
                f"`$.error` {self.error} is not predicted - actual ({expected})",
                "invalid_value",
                "$.error",
            )
