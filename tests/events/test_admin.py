"""Topic provisioning against the real broker."""

from __future__ import annotations

import uuid

from confluent_kafka.admin import AdminClient

from events.admin import TopicSettings, ensure_topics, topic_config
from events.settings import KafkaSettings
from events.topics import ALL_TOPICS, DLQ_PREFIX, MODEL_UPDATES, READINGS_SENSOR


def test_topic_config_by_kind() -> None:
    settings = TopicSettings(retention_ms=120_000, dlq_retention_ms=240_000)
    assert topic_config(READINGS_SENSOR, settings) == {"retention.ms": "120000"}
    assert topic_config(f"{DLQ_PREFIX}{READINGS_SENSOR}", settings) == {"retention.ms": "240000"}
    assert "compact" in topic_config(MODEL_UPDATES, settings)["cleanup.policy"]


def test_every_topic_is_provisioned() -> None:
    assert len(set(ALL_TOPICS)) == len(ALL_TOPICS)
    assert {"readings.sensor", "model.updates", "dlq.readings.sensor"} <= set(ALL_TOPICS)


def test_ensure_topics_is_idempotent_and_reports_mismatch(kafka_bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    names = (f"{prefix}a", f"{prefix}b")
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    settings = TopicSettings(partitions=3)

    first = ensure_topics(kafka, settings, names)
    assert sorted(first.created) == sorted(names)
    assert first.existing == []

    second = ensure_topics(kafka, settings, names)
    assert second.created == []
    assert sorted(second.existing) == sorted(names)
    assert second.mismatched == {}

    metadata = AdminClient(kafka.client_config()).list_topics(timeout=10)
    assert all(len(metadata.topics[n].partitions) == 3 for n in names)

    wider = ensure_topics(kafka, TopicSettings(partitions=6), names)
    assert wider.mismatched == {n: 3 for n in names}
