"""Input contracts: what producers publish (readings, labels) and the worker's imputations."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from events.checks import (
    check_identifier,
    check_metric,
    check_metrics,
    check_model,
    check_timestamp,
)
from events.errors import ContractError
from events.fields import (
    MAX_METRICS,
    Finite,
    Identifier,
    MetricName,
    ModelName,
    NonNegative,
    Timestamp,
    Values,
    Version,
)
from events.messages import Message

SensorKind = Literal["machine", "air"]


class SensorReading(Message, tag=1, frozen=True, kw_only=True):
    """One timestamped set of metric values from a machine or an air-quality station.

    Topic ``readings.sensor``, key ``entity_id``. ``values`` maps metric name to value in
    the metric's own unit (``null`` = the sensor reported nothing).
    """

    entity_id: Identifier
    kind: SensorKind
    ts: Timestamp
    values: Values

    def __post_init__(self) -> None:
        check_identifier(self.entity_id, "entity_id")
        check_metrics(self.values, "$.values")
        check_timestamp(self, "ts")


class DemandReading(Message, tag=1, frozen=True, kw_only=True):
    """Units of one product sold in one period (e.g. one day) ending at ``ts``.

    Topic ``readings.demand``, key ``product_id``. ``quantity`` in units (fractional for
    goods sold by weight), ``price`` per unit in the shop's currency.
    """

    product_id: Identifier
    ts: Timestamp
    quantity: NonNegative
    price: NonNegative | None = None
    promo: bool = False

    def __post_init__(self) -> None:
        check_identifier(self.product_id, "product_id")
        check_timestamp(self, "ts")


class Actual(Message, tag=1, frozen=True, kw_only=True):
    """An observed value (a label) that arrives after the prediction it scores.

    Topic ``actuals``, key ``entity_id``. For demand, ``entity_id`` is the product id and
    ``metric`` is ``quantity``; for anomaly labels ``metric`` is ``is_anomaly`` (0/1).
    """

    entity_id: Identifier
    ts: Timestamp
    metric: MetricName
    value: Finite

    def __post_init__(self) -> None:
        check_identifier(self.entity_id, "entity_id")
        check_metric(self.metric)
        check_timestamp(self, "ts")


Imputed = Annotated[list[MetricName], msgspec.Meta(max_length=MAX_METRICS)]


class ImputedReading(SensorReading, tag=1, frozen=True, kw_only=True):
    """A sensor reading whose gaps the ``model``/``version`` filled.

    Topic ``readings.imputed``, key ``entity_id``. ``imputed`` names the metrics whose
    value was filled; each must be present and non-null in ``values``.
    """

    imputed: Imputed
    model: ModelName
    version: Version

    def __post_init__(self) -> None:
        super().__post_init__()
        check_model(self.model)
        if len(set(self.imputed)) != len(self.imputed):
            raise ContractError("`$.imputed` lists a metric twice", "invalid_value", "$.imputed")
        unfilled = [m for m in self.imputed if self.values.get(m) is None]
        if unfilled:
            raise ContractError(
                f"`$.imputed` names {', '.join(unfilled)}, which have no value in `$.values`",
                "invalid_value",
                "$.imputed",
            )
