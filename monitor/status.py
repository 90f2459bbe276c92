"""The latest health of every model key, read from ``model.health`` (for operators).

``model.health`` is compacted by key (``model/key``), so reading it from the beginning
gives at least the latest snapshot of every model key. When several versions of one key
report (the champion and the one before, whose last predictions are still labelled), the
newest version's latest snapshot is the one shown.
"""

from __future__ import annotations

from typing import Any

import msgspec

from events import ModelHealth, codec_for, topics
from events.settings import KafkaSettings
from monitor.errors import RecoveryError, StatusReadError
from monitor.replay import read_topic
from monitor.settings import MonitorSettings

# model.health holds one small record per model key and evaluation: seconds to read.
READ_TIMEOUT_S = 60.0


def latest_health(
    settings: MonitorSettings, kafka: KafkaSettings, timeout_s: float = READ_TIMEOUT_S
) -> list[ModelHealth]:
    """The newest version's latest snapshot per model key, sorted by model and key."""
    codec = codec_for(topics.MODEL_HEALTH)
    latest: dict[tuple[str, str | None], ModelHealth] = {}
    config = settings.reader_config(kafka, "status")
    try:
        for batch in read_topic(config, settings.health_topic, None, timeout_s):
            health: ModelHealth
            for health in codec.decode_batch([m.value() for m in batch]).messages:
                model_key = (health.model, health.key)
                current = latest.get(model_key)
                if current is None or health.version >= current.version:
                    latest[model_key] = health
    except RecoveryError as exc:
        raise StatusReadError(f"cannot read {settings.health_topic}: {exc}") from exc
    return sorted(latest.values(), key=lambda h: (h.model, h.key or ""))


def as_json(records: list[ModelHealth]) -> list[dict[str, Any]]:
    """Plain JSON-ready dicts (timestamps as RFC 3339 text), without the schema tag."""
    rows: list[dict[str, Any]] = msgspec.to_builtins(records)
    for row in rows:
        row.pop("schema", None)
    return rows
