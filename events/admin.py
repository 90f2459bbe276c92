"""Idempotent topic provisioning.

Every entity-keyed topic gets the same partition count, so one entity lands on the same
partition number on every topic (the monitor's join and the worker's per-entity state rely
on that). An existing topic with another partition count is reported, never silently used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import topics
from events.settings import KafkaSettings

DAY_MS = 24 * 60 * 60 * 1000


class TopicSettings(BaseSettings):
    """How ``driftline topics create`` provisions topics (env prefix ``TOPICS_``)."""

    model_config = SettingsConfigDict(env_prefix="TOPICS_", extra="ignore")

    partitions: int = Field(6, ge=1, le=10_000, description="Partitions of every topic.")
    replication_factor: int = Field(1, ge=1, le=16, description="Replicas of every topic.")
    retention_ms: int = Field(
        7 * DAY_MS, ge=60_000, description="Retention of readings and outputs (ms)."
    )
    dlq_retention_ms: int = Field(
        30 * DAY_MS, ge=60_000, description="Retention of dead-letter topics (ms)."
    )
    timeout_s: float = Field(30.0, gt=0, description="Admin request timeout (s).")


class TopicError(Exception):
    """A topic could not be created or does not have the expected layout."""


@dataclass
class TopicsReport:
    """What ``ensure_topics`` did."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    mismatched: dict[str, int] = field(default_factory=dict)


def topic_config(name: str, settings: TopicSettings) -> dict[str, str]:
    """Per-topic broker config: retention, compaction of model-keyed snapshots."""
    if name.startswith(topics.DLQ_PREFIX):
        return {"retention.ms": str(settings.dlq_retention_ms)}
    if name in (topics.MODEL_UPDATES, topics.MODEL_HEALTH):
        # Latest record per model (and key) is what a late joiner needs; keep history a
        # while too so that `driftline status` can show recent changes.
        return {"cleanup.policy": "compact,delete", "retention.ms": str(settings.dlq_retention_ms)}
    return {"retention.ms": str(settings.retention_ms)}


def connect(kafka: KafkaSettings, timeout_s: float) -> tuple[AdminClient, Any]:
    """An admin client and the cluster's metadata; TopicError says why it failed.

    A failed metadata request only says the brokers were not reached; the client's own
    error events say why (a refused SASL login, a TLS handshake, a closed connection), so
    the last of them is added to the message.
    """
    errors: list[KafkaError] = []
    config: dict[str, Any] = {**kafka.client_config(), "error_cb": errors.append}
    admin = AdminClient(config)
    try:
        return admin, admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        admin.poll(0)  # serve the error events queued meanwhile
        reason = f" ({errors[-1].str()})" if errors else ""
        raise TopicError(f"cannot reach {kafka.bootstrap_servers}: {exc}{reason}") from exc


def ensure_topics(
    kafka: KafkaSettings,
    settings: TopicSettings,
    names: tuple[str, ...] = topics.ALL_TOPICS,
) -> TopicsReport:
    """Create the missing topics; report existing ones and partition-count mismatches."""
    admin, metadata = connect(kafka, settings.timeout_s)
    report = TopicsReport()
    missing = []
    for name in names:
        existing = metadata.topics.get(name)
        if existing is None or existing.error is not None:
            missing.append(name)
            continue
        report.existing.append(name)
        if len(existing.partitions) != settings.partitions:
            report.mismatched[name] = len(existing.partitions)
    if missing:
        _create(admin, missing, settings, report)
    return report


def _create(
    admin: AdminClient, names: list[str], settings: TopicSettings, report: TopicsReport
) -> None:
    new = [
        NewTopic(
            name,
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            config=topic_config(name, settings),
        )
        for name in names
    ]
    futures: dict[str, Any] = admin.create_topics(new, request_timeout=settings.timeout_s)
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                report.existing.append(name)  # created concurrently by another process
                continue
            raise TopicError(f"cannot create topic {name}: {exc}") from exc
        report.created.append(name)
