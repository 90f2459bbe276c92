"""Which contract each topic carries and which field is its Kafka key.

>>> from events.catalog import codec_for
>>> codec_for("readings.sensor")
Codec(SensorReading, key_fields=('entity_id',))
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, overload

from events import topics
from events.codec import Codec
from events.errors import UnknownTopicError
from events.lifecycle import ModelHealth, ModelUpdate, RetrainRequest
from events.messages import Message
from events.outputs import Alert, MonitorPair, Prediction
from events.readings import Actual, DemandReading, ImputedReading, SensorReading


@dataclass(frozen=True)
class Contract:
    """A topic's message type and the fields whose values make the record key."""

    topic: str
    type: type[Message]
    key_fields: tuple[str, ...]


# Model topics: keyed by model and registry key, so that every message about one model key
# stays in order on one partition and compaction keeps the latest one *per key*; an
# unkeyed model's records are keyed by its name alone.
_MODEL_KEY: Final = ("model", "key")

_ALL: Final = (
    Contract(topics.READINGS_SENSOR, SensorReading, ("entity_id",)),
    Contract(topics.READINGS_DEMAND, DemandReading, ("product_id",)),
    Contract(topics.ACTUALS, Actual, ("entity_id",)),
    Contract(topics.PREDICTIONS, Prediction, ("entity_id",)),
    Contract(topics.PREDICTIONS_SHADOW, Prediction, ("entity_id",)),
    Contract(topics.ALERTS, Alert, ("entity_id",)),
    Contract(topics.READINGS_IMPUTED, ImputedReading, ("entity_id",)),
    Contract(topics.MONITOR_PAIRS, MonitorPair, ("entity_id",)),
    Contract(topics.MODEL_HEALTH, ModelHealth, _MODEL_KEY),
    Contract(topics.RETRAIN_REQUESTS, RetrainRequest, _MODEL_KEY),
    Contract(topics.MODEL_UPDATES, ModelUpdate, _MODEL_KEY),
)

CONTRACTS: Final[Mapping[str, Contract]] = MappingProxyType({c.topic: c for c in _ALL})
"""topic -> Contract, for every topic except the dead-letter queues."""


def contract_for(topic: str) -> Contract:
    """The contract of ``topic``; UnknownTopicError if it has none."""
    try:
        return CONTRACTS[topic]
    except KeyError:
        hint = (
            " (dead-letter topics hold the original bytes: read them with "
            "events.dlq.read_dead_letter)"
            if topic.startswith(topics.DLQ_PREFIX)
            else f"; known topics: {', '.join(CONTRACTS)}"
        )
        raise UnknownTopicError(f"topic {topic!r} has no message contract{hint}") from None


# Precise return types so that callers get typed messages without casts.
@overload
def codec_for(topic: Literal["readings.sensor"]) -> Codec[SensorReading]: ...
@overload
def codec_for(topic: Literal["readings.demand"]) -> Codec[DemandReading]: ...
@overload
def codec_for(topic: Literal["actuals"]) -> Codec[Actual]: ...
@overload
def codec_for(topic: Literal["predictions", "predictions.shadow"]) -> Codec[Prediction]: ...
@overload
def codec_for(topic: Literal["alerts"]) -> Codec[Alert]: ...
@overload
def codec_for(topic: Literal["readings.imputed"]) -> Codec[ImputedReading]: ...
@overload
def codec_for(topic: Literal["monitor.pairs"]) -> Codec[MonitorPair]: ...
@overload
def codec_for(topic: Literal["model.health"]) -> Codec[ModelHealth]: ...
@overload
def codec_for(topic: Literal["retrain.requests"]) -> Codec[RetrainRequest]: ...
@overload
def codec_for(topic: Literal["model.updates"]) -> Codec[ModelUpdate]: ...
@overload
def codec_for(topic: str) -> Codec[Any]: ...
def codec_for(topic: str) -> Codec[Any]:
    """The (shared, cached) codec of ``topic``, keying records by the topic's key fields."""
    return _codec(topic)


@functools.cache
def _codec(topic: str) -> Codec[Any]:
    contract = contract_for(topic)
    return Codec(contract.type, key_fields=contract.key_fields)
