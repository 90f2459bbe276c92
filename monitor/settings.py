"""Settings of the monitor (env prefix ``MONITOR_``) and the librdkafka configs they imply.

Kafka connection properties (brokers, security) come from :class:`events.settings.KafkaSettings`
(prefix ``KAFKA_``); everything here is about what the monitor joins, how it judges a model
and where it writes. Topic names are settings so that tests and side-by-side deployments
can point one monitor at their own topics.

>>> MonitorSettings(cooldown_s=600).cooldown_s
600.0
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import topics
from events.settings import KafkaSettings
from models.store import default_store

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S

JudgedWindow = Literal["count", "time"]


def default_instance_id() -> str:
    """``<host>-<pid>``: names this process in client ids and logs."""
    return f"{socket.gethostname()}-{os.getpid()}"


class MonitorSettings(BaseSettings):
    """How the monitor joins, measures, judges and reports (env prefix ``MONITOR_``)."""

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore")

    # Topics read.
    predictions_topic: str = Field(
        topics.PREDICTIONS, min_length=1, description="Predictions to score (champion)."
    )
    shadow_topic: str | None = Field(
        topics.PREDICTIONS_SHADOW,
        description="Predictions of challengers in shadow mode: each version is measured on "
        "its own and never asks for a retrain (empty: not read).",
    )
    actuals_topic: str = Field(
        topics.ACTUALS, min_length=1, description="Labels that arrive from elsewhere."
    )
    sensor_topic: str | None = Field(
        topics.READINGS_SENSOR,
        description="Sensor readings whose values are the actuals of sequence forecasts "
        "(empty: not read).",
    )
    demand_topic: str | None = Field(
        topics.READINGS_DEMAND,
        description="Demand readings whose quantity is the actual of demand forecasts "
        "(empty: not read).",
    )
    # Topics written.
    pairs_topic: str = Field(
        topics.MONITOR_PAIRS, min_length=1, description="Matched prediction/actual pairs."
    )
    health_topic: str = Field(
        topics.MODEL_HEALTH, min_length=1, description="Health snapshots per model version."
    )
    requests_topic: str = Field(
        topics.RETRAIN_REQUESTS, min_length=1, description="Retrain requests for the trainer."
    )
    alerts_topic: str = Field(
        topics.ALERTS, min_length=1, description="Drift alerts (when a model goes critical)."
    )

    # The join.
    demand_metric: str = Field(
        "quantity", description="Metric name of demand forecasts (matched with quantity)."
    )
    risk_metric: str = Field(
        "risk", description="Metric of `actuals` labels scoring risk predictions (0-3)."
    )
    lateness_s: float = Field(
        HOUR_S,
        gt=0,
        description="An actual may arrive up to this long (event time) after the target time; "
        "a prediction still unmatched when its entity's readings pass target + lateness "
        "expires and counts against label coverage.",
    )
    actual_buffer_s: float = Field(
        # Predictions normally come before their actual; this covers a worker lagging by
        # minutes without holding an hour of sensor readings per entity.
        900.0,
        ge=0,
        description="Actuals kept per entity (event time behind its newest) for predictions "
        "that arrive after their actual (0: none kept).",
    )
    idle_expiry_s: float = Field(
        DAY_S,
        ge=0,
        allow_inf_nan=False,
        description="A prediction still unmatched when the labels read from its partition "
        "number (actuals, readings; by Kafka timestamp) are this far past both its own "
        "timestamp and its target + lateness expires as idle: an entity gone quiet would "
        "otherwise hold it, and its partition's committed offset, forever (0: never).",
    )
    max_pending_per_entity: int = Field(
        1_000, ge=1, description="Unmatched predictions kept per entity; the oldest is dropped."
    )
    max_pending_total: int = Field(
        200_000, ge=1, description="Unmatched predictions kept overall (memory bound)."
    )
    max_actuals_per_entity: int = Field(
        2_000, ge=1, description="Actuals buffered per entity; the oldest is dropped."
    )
    max_actuals_total: int = Field(
        200_000, ge=1, description="Actuals buffered overall (memory bound)."
    )
    max_resolved_ids: int = Field(
        200_000,
        ge=1,
        description="Ids of recently matched or expired predictions remembered, so that a "
        "prediction read again after a restart or a replay is not paired twice.",
    )

    # Rolling error.
    count_window: int = Field(500, ge=1, description="Pairs in the count window (most recent).")
    time_window_s: float = Field(
        HOUR_S, gt=0, le=366 * DAY_S, description="Length of the time window, in target time."
    )
    max_window_pairs: int = Field(
        100_000,
        ge=1,
        description="Most pairs held per model version for the time window (memory bound).",
    )
    judged_window: JudgedWindow = Field(
        "count",
        description="Window whose MAE decides the status and is published in model.health.",
    )
    baseline_metric: str = Field(
        "mae", description="Metric of a version's registry metadata used as its baseline MAE."
    )
    model_store: Path = Field(
        default_factory=default_store, description="Model store directory (MODEL_STORE)."
    )

    # Judging.
    warning_degradation: float = Field(
        0.15, gt=0, description="Degradation (rolling MAE / baseline - 1) that means warning."
    )
    critical_degradation: float = Field(0.25, gt=0, description="Degradation that means critical.")
    min_pairs: int = Field(
        100, ge=1, description="Pairs the judged window needs before any verdict."
    )
    hysteresis_evaluations: int = Field(
        3,
        ge=1,
        description="Consecutive evaluations a level must hold before the status changes.",
    )
    evaluate_every_pairs: int = Field(
        50, ge=1, description="A model version is evaluated after this many new pairs..."
    )
    evaluate_interval_s: float = Field(
        60.0, gt=0, description="...or this long after its last evaluation, if new pairs came."
    )
    cooldown_s: float = Field(
        HOUR_S,
        ge=0,
        description="After a retrain request for a model key, no other request for it "
        "(except one full retrain when a warning turns critical).",
    )
    versions_per_key: int = Field(
        2,
        ge=1,
        description="Versions of one model key tracked at once (the champion and the one "
        "before, whose last predictions are still being labelled; or a challenger). A new "
        "one retires the least recently predicting version, never the serving one.",
    )

    # Recovery at start.
    recovery_horizon_s: float = Field(
        6 * HOUR_S,
        gt=0,
        description="monitor.pairs produced this long ago (wall clock) are replayed at start "
        "to rebuild the rolling windows; make it cover count_window pairs.",
    )
    recovery_timeout_s: float = Field(
        120.0, gt=0, description="Longest a start-up replay may take before the start fails."
    )

    # Consuming and producing.
    group_id: str = Field("driftline-monitor", min_length=1, description="Consumer group.")
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a partition without a committed offset starts."
    )
    batch_max_records: int = Field(
        500, ge=1, le=100_000, description="Most records consumed in one batch."
    )
    batch_max_wait_s: float = Field(
        0.2, gt=0, le=10, description="Longest wait (s) for a batch to fill."
    )
    session_timeout_ms: int = Field(
        45_000, ge=6_000, description="Group session timeout (a dead instance is noticed)."
    )
    delivery_timeout_ms: int = Field(
        60_000, ge=1_000, description="How long an output is retried before the monitor stops."
    )

    # Process and HTTP.
    instance_id: str = Field(
        default_factory=default_instance_id, min_length=1, description="Names this process."
    )
    http_host: str = Field(
        "127.0.0.1", description="Bind address of /metrics, /healthz and /readyz."
    )
    http_port: int = Field(9401, ge=0, le=65535, description="HTTP port (0 = any free one).")
    liveness_timeout_s: float = Field(
        120.0,
        gt=0,
        description="/healthz fails when the loop has not polled for this long. Longer than "
        "delivery_timeout_ms: a batch waits that long for its outputs while the broker is away.",
    )

    @model_validator(mode="after")
    def _check(self) -> MonitorSettings:
        if self.critical_degradation < self.warning_degradation:
            raise ValueError(
                f"critical_degradation {self.critical_degradation} is below "
                f"warning_degradation {self.warning_degradation}"
            )
        if self.liveness_timeout_s <= self.delivery_timeout_ms / 1000:
            raise ValueError(
                f"liveness_timeout_s {self.liveness_timeout_s:g} must exceed delivery_timeout_ms "
                f"{self.delivery_timeout_ms} (a batch may wait that long for the broker)"
            )
        if self.sensor_topic == "":
            self.sensor_topic = None
        if self.demand_topic == "":
            self.demand_topic = None
        if self.shadow_topic == "":
            self.shadow_topic = None
        return self

    @property
    def input_topics(self) -> list[str]:
        """Every topic the group consumer subscribes to."""
        optional = [self.shadow_topic, self.sensor_topic, self.demand_topic]
        return [self.predictions_topic, self.actuals_topic, *(t for t in optional if t)]

    @property
    def label_topics(self) -> list[str]:
        """The inputs that carry actuals: the labels topic and the readings topics."""
        optional = [self.sensor_topic, self.demand_topic]
        return [self.actuals_topic, *(t for t in optional if t)]

    def consumer_config(self, kafka: KafkaSettings) -> dict[str, Any]:
        """The group consumer of the inputs; offsets are committed by the service only."""
        return {
            **kafka.client_config(),
            "client.id": f"{kafka.client_id}-monitor-{self.instance_id}",
            "group.id": self.group_id,
            # range gives one member the same partition numbers of every input topic, which
            # the join needs: an entity's predictions and actuals share a partition number.
            "partition.assignment.strategy": "range",
            "auto.offset.reset": self.auto_offset_reset,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "session.timeout.ms": self.session_timeout_ms,
            # the join's label clocks must know when a topic has nothing more to read
            "enable.partition.eof": True,
        }

    def producer_config(self, kafka: KafkaSettings) -> dict[str, Any]:
        """Idempotent producer with Java-compatible key partitioning (co-partitioning)."""
        return kafka.producer_config(
            **{
                "client.id": f"{kafka.client_id}-monitor-{self.instance_id}",
                "message.timeout.ms": self.delivery_timeout_ms,
                # Low volume: a few ms groups one batch's pairs into fewer requests.
                "linger.ms": 5,
            }
        )

    def reader_config(self, kafka: KafkaSettings, role: str) -> dict[str, Any]:
        """A consumer outside the group that replays a topic with assign() only."""
        return kafka.reader_config(
            f"{kafka.client_id}-monitor-{self.instance_id}-{role}",
            f"{self.group_id}.{role}.{self.instance_id}",
        )
