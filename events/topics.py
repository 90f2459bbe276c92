"""Topic names. Every topic is keyed by the entity (or model) it is about."""

from __future__ import annotations

from typing import Final

READINGS_SENSOR: Final = "readings.sensor"
READINGS_DEMAND: Final = "readings.demand"
ACTUALS: Final = "actuals"
PREDICTIONS: Final = "predictions"
PREDICTIONS_SHADOW: Final = "predictions.shadow"
ALERTS: Final = "alerts"
READINGS_IMPUTED: Final = "readings.imputed"
MONITOR_PAIRS: Final = "monitor.pairs"
MODEL_HEALTH: Final = "model.health"
RETRAIN_REQUESTS: Final = "retrain.requests"
MODEL_UPDATES: Final = "model.updates"

DLQ_PREFIX: Final = "dlq."

# Topics whose records are keyed by entity id: they share a partition count so that one
# entity lands on the same partition number everywhere (the monitor's join and the worker's
# per-entity state rely on it).
ENTITY_TOPICS: Final = (
    READINGS_SENSOR,
    READINGS_DEMAND,
    ACTUALS,
    PREDICTIONS,
    PREDICTIONS_SHADOW,
    ALERTS,
    READINGS_IMPUTED,
    MONITOR_PAIRS,
)
# Keyed by model name; low volume.
MODEL_TOPICS: Final = (MODEL_HEALTH, RETRAIN_REQUESTS, MODEL_UPDATES)
# Topics that receive external input and therefore have a dead-letter queue.
INPUT_TOPICS: Final = (READINGS_SENSOR, READINGS_DEMAND, ACTUALS)


def dlq_topic(source: str) -> str:
    """Dead-letter topic of an input topic: ``dlq.<source>``."""
    return f"{DLQ_PREFIX}{source}"


ALL_TOPICS: Final = (*ENTITY_TOPICS, *MODEL_TOPICS, *(dlq_topic(t) for t in INPUT_TOPICS))
