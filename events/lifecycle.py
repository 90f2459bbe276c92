"""Model lifecycle contracts: health reports, retrain requests and registry updates.

All three topics are keyed by model name: low volume, and every message about one model
stays in order on one partition.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from events.checks import (
    check_identifier,
    check_metrics,
    check_model,
    check_timestamp,
)
from events.fields import (
    Count,
    Evidence,
    Finite,
    Fraction,
    Identifier,
    Metrics,
    ModelName,
    NonNegative,
    RegisteredVersion,
    Text,
    Timestamp,
    Version,
    WindowSeconds,
)
from events.messages import Message

HealthStatus = Literal["healthy", "warning", "critical", "unknown"]
RetrainAction = Literal["fine_tune", "full_retrain"]
UpdateAction = Literal["promoted", "rolled_back", "challenger"]


class ModelHealth(Message, tag=1, frozen=True, kw_only=True):
    """Rolling error of one model version over the ``window`` seconds ending at ``ts``.

    Topic ``model.health``, key ``model``. Errors are in the unit of the predicted metric;
    ``mape`` and ``degradation`` are fractions (0.12 = 12 %); ``degradation`` is
    ``mae / baseline_mae - 1``. A figure is ``null`` when it cannot be computed yet (no
    pairs, no baseline, all actuals zero for MAPE). ``label_coverage`` is the fraction of
    predictions in the window that have been matched with an actual.
    """

    model: ModelName
    key: Identifier | None = None
    version: Version
    ts: Timestamp
    window: WindowSeconds
    pairs: Count
    mae: NonNegative | None = None
    rmse: NonNegative | None = None
    mape: NonNegative | None = None
    bias: Finite | None = None
    baseline_mae: NonNegative | None = None
    degradation: Finite | None = None
    label_coverage: Fraction | None = None
    status: HealthStatus

    def __post_init__(self) -> None:
        check_identifier(self.key, "key")
        check_model(self.model)
        check_timestamp(self, "ts")


class RetrainRequest(Message, tag=1, frozen=True, kw_only=True):
    """Ask the trainer to fine-tune or fully retrain one model (key).

    Topic ``retrain.requests``, key ``model``. ``request_id`` is the idempotency key: the
    trainer acts at most once per id. ``evidence`` holds the figures behind the request
    (``{"degradation": 0.31, "mae": 4.2, "trigger": "drift"}``).
    """

    request_id: Identifier
    model: ModelName
    key: Identifier | None = None
    action: RetrainAction
    reason: Text
    requested_at: Timestamp
    evidence: Evidence = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_identifier(self.request_id, "request_id")
        check_identifier(self.key, "key")
        check_model(self.model)
        check_metrics(self.evidence, "$.evidence")
        check_timestamp(self, "requested_at")


class ModelUpdate(Message, tag=1, frozen=True, kw_only=True):
    """The registry changed which version serves: every worker instance hot-swaps on it.

    Topic ``model.updates``, key ``model``. ``promoted``: ``version`` is the new champion;
    ``rolled_back``: ``version`` is the champion again; ``challenger``: ``version`` now runs
    in shadow. ``metrics`` are the holdout figures that justified the change.
    """

    model: ModelName
    key: Identifier | None = None
    version: RegisteredVersion
    action: UpdateAction
    ts: Timestamp
    metrics: Metrics = msgspec.field(default_factory=dict)
    reason: Text | None = None

    def __post_init__(self) -> None:
        check_identifier(self.key, "key")
        check_model(self.model)
        check_metrics(self.metrics, "$.metrics")
        check_timestamp(self, "ts")
