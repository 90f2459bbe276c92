"""Settings of the stream worker (env prefix ``WORKER_``) and the librdkafka configs they imply.

Kafka connection properties (brokers, security) come from :class:`events.settings.KafkaSettings`
(prefix ``KAFKA_``); everything here is about how the worker consumes, scores and produces.

>>> settings = WorkerSettings(input_topics=["readings.sensor"], instance_id="w-0")
>>> settings.transactional_id
'driftline-worker-w-0'
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import topics
from events.settings import KafkaSettings
from models.store import default_store
from worker.limits import (
    DEFAULT_ABORT_LIMIT,
    DEFAULT_MAX_ENTITIES,
    DEFAULT_MAX_FUTURE_S,
    DEFAULT_SCORING_THREADS,
)
from worker.routes import StreamKind

if TYPE_CHECKING:
    from models.cache import ModelCache
    from worker.records import Pipeline

PipelineFactory = Callable[["WorkerSettings", "ModelCache"], "Pipeline"]
Guarantee = Literal["at_least_once", "exactly_once"]
Compression = Literal["lz4", "zstd", "snappy", "gzip", "none"]

MIB = 1024 * 1024
# flush() waits out librdkafka's own delivery timeout plus this, for the last reports.
FLUSH_MARGIN_S = 5.0


def default_instance_id() -> str:
    """``<host>-<pid>``: unique among the processes of one group on one machine."""
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(BaseSettings):
    """How one worker process consumes, scores, produces and reports (env prefix ``WORKER_``).

    List fields are JSON in the environment: ``WORKER_INPUT_TOPICS='["readings.sensor"]'``.
    """

    model_config = SettingsConfigDict(env_prefix="WORKER_", extra="ignore")

    # What to read and in which group.
    input_topics: list[str] = Field(
        default_factory=lambda: [topics.READINGS_SENSOR, topics.READINGS_DEMAND],
        min_length=1,
        description="Topics of readings to score; every instance of the group reads them all.",
    )
    streams: dict[str, StreamKind] = Field(
        default_factory=dict,
        description="Stream (sensor or demand) of each input topic not named as in "
        'events.topics: WORKER_STREAMS=\'{"tenant-a.demand": "demand"}\'.',
    )
    group_id: str = Field(
        "driftline-worker", min_length=1, description="Consumer group shared by all instances."
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a partition without a committed offset starts "
        "(earliest: score the backlog; latest: only new readings).",
    )
    max_future_s: float = Field(
        DEFAULT_MAX_FUTURE_S,
        ge=0,
        allow_inf_nan=False,
        description="A reading stamped more than this (s) after its record's Kafka timestamp "
        "goes to the DLQ (reason future_timestamp): state only moves forward, so a device "
        "clock running ahead would stop its entity's scoring until that time. 0 accepts any "
        "time (a simulated clock, as in the demo).",
    )
    # Micro-batching: a batch closes at max_records or max_wait_s, whichever comes first.
    batch_max_records: int = Field(
        500, ge=1, le=100_000, description="Most records handed to the pipeline at once."
    )
    # consume() returns a full batch at once, else what arrived within this wait. 5 ms: at
    # 5,000 readings/s batches gather ~100 readings (each batch pays a fixed cost per
    # model call, so tiny batches burn CPU the broker needs), while a reading waits at most
    # a twentieth of a 100 ms latency budget for its batch to close.
    batch_max_wait_s: float = Field(
        0.005,
        gt=0,
        le=10,
        description="Longest wait (s) for a batch to fill before scoring it: a full batch "
        "is scored at once, a smaller one after this wait.",
    )

    # Delivery guarantee.
    processing_guarantee: Guarantee = Field(
        "at_least_once",
        description="at_least_once: offsets stored after every output of a batch is "
        "acknowledged; exactly_once: outputs and offsets committed in one transaction.",
    )
    transactional_id_prefix: str = Field(
        "driftline-worker",
        min_length=1,
        description="exactly_once: transactional.id is <prefix>-<instance_id>. Set "
        "WORKER_INSTANCE_ID to a name stable across restarts, so that a restarted instance "
        "aborts what its previous run left open at once instead of after the transaction "
        "timeout (read_committed consumers wait for that).",
    )
    transaction_timeout_ms: int = Field(
        60_000, ge=1_000, description="exactly_once: broker aborts a transaction open this long."
    )
    transaction_abort_limit: int = Field(
        DEFAULT_ABORT_LIMIT,
        ge=1,
        description="exactly_once: aborted transactions in a row after which the worker "
        "stops (exit 1). An aborted batch is consumed again after a pause doubling from "
        "0.5 s; an output the cluster refuses every time would otherwise abort it forever.",
    )

    # Warm-up of per-entity state on partition assignment.
    warmup_records: int = Field(
        10_000,
        ge=0,
        description="Records per newly assigned partition read back before its first batch "
        "(0 disables warm-up). 10 000 covers e.g. 100 entities x 100 readings per partition.",
    )
    warmup_timeout_s: float = Field(
        30.0,
        gt=0,
        description=(
            "Longest read-back (s) per assignment; then scoring starts, and partitions not "
            "read back by then start without history."
        ),
    )

    max_entities: int = Field(
        DEFAULT_MAX_ENTITIES,
        ge=1,
        description="Entities whose recent readings each stream keeps in memory. Past it, "
        "those whose latest reading is oldest are dropped (state_evicted_total) and start "
        "again with an empty window if they come back: a producer sending ever new entity "
        "ids cannot exhaust the worker's memory.",
    )
    scoring_threads: int = Field(
        DEFAULT_SCORING_THREADS,
        ge=1,
        le=2,
        description="Threads that score a batch: with 2 the maintenance model scores on a "
        "helper thread while the anomaly and demand models score on the main one (their "
        "compiled features and forest walks release the GIL, so they overlap on two cores); "
        "1 scores them one after the other, on one core.",
    )

    # Models.
    model_store: Path = Field(
        default_factory=default_store, description="Model store directory (MODEL_STORE)."
    )
    cache_bytes: int = Field(
        512 * MIB,
        ge=1,
        description="Byte budget of the in-process model cache (LRU), challengers included.",
    )
    preload_models: list[str] = Field(
        default_factory=list,
        description='Champions loaded before the worker reports ready: "model" or "model/key".',
    )
    updates_topic: str = Field(
        topics.MODEL_UPDATES, description="Topic of registry changes that trigger hot swaps."
    )
    alerts_topic: str = Field(
        topics.ALERTS,
        description="Topic of anomaly and maintenance alerts, and of failed model swaps.",
    )
    predictions_topic: str = Field(topics.PREDICTIONS, description="Topic of predictions.")
    imputed_topic: str = Field(
        topics.READINGS_IMPUTED, description="Topic of readings with their gaps filled."
    )
    shadow_topic: str = Field(
        topics.PREDICTIONS_SHADOW,
        description="Topic of a challenger's predictions while it runs in shadow.",
    )
    alias_check_s: float = Field(
        10.0,
        gt=0,
        # The name it had before it checked champions too keeps working.
        validation_alias=AliasChoices(
            "alias_check_s", "WORKER_ALIAS_CHECK_S", "WORKER_CHALLENGER_CHECK_S"
        ),
        description="How often the store's aliases of the served keys and the keys of "
        "every served model are read again: a champion changed or a key's first champion "
        "made without an update reaching this instance, or a challenger the trainer "
        "rejected (no update says so), is followed within this.",
    )
    pipeline: str = Field(
        "worker.pipeline:build_pipeline",
        description="module:callable that builds the scoring pipeline from "
        "(WorkerSettings, ModelCache).",
    )

    # Producer.
    linger_ms: int = Field(
        5,
        ge=0,
        le=1_000,
        description="Producer linger (ms): a batch's outputs are flushed at its end anyway, "
        "so a few ms only groups records of one batch into fewer requests.",
    )
    compression: Compression = Field(
        "lz4",
        description="Producer compression. lz4: the cheapest CPU per byte of the codecs "
        "Kafka supports, which matters on the hot path; zstd packs JSON tighter at about "
        "twice the CPU, worth it only when the network is the bottleneck.",
    )
    producer_queue_kbytes: int = Field(
        64 * 1024,
        ge=1_024,
        description="queue.buffering.max.kbytes: bounds the producer's memory; when full, "
        "producing waits for acknowledgements (backpressure, nothing dropped).",
    )
    producer_queue_messages: int = Field(
        100_000, ge=1_000, description="queue.buffering.max.messages (see producer_queue_kbytes)."
    )
    delivery_timeout_ms: int = Field(
        120_000,
        ge=1_000,
        description="message.timeout.ms: how long librdkafka retries one output before it "
        "reports the delivery failed (then the worker stops without storing offsets).",
    )

    # Group membership.
    session_timeout_ms: int = Field(
        45_000, ge=6_000, description="Group session timeout (a dead instance is noticed)."
    )
    heartbeat_interval_ms: int = Field(
        1_000,
        ge=100,
        description="Group heartbeat interval: members learn of a rebalance at their next "
        "heartbeat, and a cooperative rebalance takes two rounds, so this bounds how fast "
        "partitions move when instances come and go (librdkafka's default is 3 s).",
    )
    max_poll_interval_ms: int = Field(
        300_000, ge=10_000, description="Longest gap between polls before the group evicts us."
    )
    auto_commit_interval_ms: int = Field(
        1_000, ge=100, description="at_least_once: how often stored offsets are committed."
    )

    # Process, HTTP and shutdown.
    instance_id: str = Field(
        default_factory=default_instance_id,
        min_length=1,
        description="Names this process in metrics, logs and its transactional.id.",
    )
    http_host: str = Field(
        "127.0.0.1", description="Bind address of /metrics, /healthz and /readyz."
    )
    http_port: int = Field(9400, ge=0, le=65535, description="HTTP port (0 = any free one).")
    liveness_timeout_s: float = Field(
        180.0,
        gt=0,
        description="/healthz fails when the consume loop has not polled for this long. "
        "Longer than delivery_timeout_ms: a batch waits that long for its acknowledgements "
        "while the broker is away, and a probe must not restart a worker that waits.",
    )
    shutdown_timeout_s: float = Field(
        30.0, gt=0, description="Bound on a graceful stop: finish the batch, flush, commit."
    )

    @model_validator(mode="after")
    def _check(self) -> WorkerSettings:
        if self.liveness_timeout_s <= self.flush_timeout_s:
            raise ValueError(
                f"liveness_timeout_s {self.liveness_timeout_s:g} must exceed delivery_timeout_ms "
                f"{self.delivery_timeout_ms} + {FLUSH_MARGIN_S:g} s (a batch may wait that long "
                "for the broker)"
            )
        return self

    @property
    def flush_timeout_s(self) -> float:
        """Longest wait for a batch's acknowledgements: librdkafka's own delivery timeout,
        plus a margin for its report to arrive."""
        return self.delivery_timeout_ms / 1000 + FLUSH_MARGIN_S

    def pipeline_factory(self) -> PipelineFactory:
        """The callable named by :attr:`pipeline`, imported now."""
        module_name, _, attribute = self.pipeline.partition(":")
        if not module_name or not attribute:
            raise ValueError(f"pipeline {self.pipeline!r} is not of the form module:callable")
        factory = getattr(importlib.import_module(module_name), attribute)
        if not callable(factory):
            raise TypeError(f"pipeline {self.pipeline!r} is not callable")
        return cast(PipelineFactory, factory)

    @property
    def transactional_id(self) -> str:
        return f"{self.transactional_id_prefix}-{self.instance_id}"

    def consumer_config(self, kafka: KafkaSettings) -> dict[str, Any]:
        """The group consumer of the input topics."""
        exactly_once = self.processing_guarantee == "exactly_once"
        return {
            **kafka.client_config(),
            "client.id": f"{kafka.client_id}-worker-{self.instance_id}",
            "group.id": self.group_id,
            "partition.assignment.strategy": "cooperative-sticky",
            "isolation.level": "read_committed",
            "auto.offset.reset": self.auto_offset_reset,
            # Offsets are committed in the transaction (exactly once) or, at least once,
            # stored by worker.offsets after outputs are acknowledged and then auto-committed.
            "enable.auto.commit": not exactly_once,
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": self.auto_commit_interval_ms,
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": self.heartbeat_interval_ms,
            "max.poll.interval.ms": self.max_poll_interval_ms,
            "enable.partition.eof": False,
        }

    def producer_config(self, kafka: KafkaSettings) -> dict[str, Any]:
        """The producer of outputs (idempotent; transactional when exactly once)."""
        config: dict[str, Any] = {
            **kafka.client_config(),
            "client.id": f"{kafka.client_id}-worker-{self.instance_id}",
            "enable.idempotence": True,
            "acks": "all",
            # Java-compatible key hashing: an entity's outputs land on the partition number
            # of its readings (co-partitioning, see KafkaSettings.producer_config).
            "partitioner": "murmur2_random",
            "linger.ms": self.linger_ms,
            "compression.type": self.compression,
            "queue.buffering.max.kbytes": self.producer_queue_kbytes,
            "queue.buffering.max.messages": self.producer_queue_messages,
            "message.timeout.ms": self.delivery_timeout_ms,
            # Successes need no Python callback: flush() returning 0 means every record was
            # acknowledged or failed, and failures are reported to the callback.
            "delivery.report.only.error": True,
        }
        if self.processing_guarantee == "exactly_once":
            config["transactional.id"] = self.transactional_id
            config["transaction.timeout.ms"] = self.transaction_timeout_ms
            # librdkafka refuses a delivery timeout longer than the transaction's.
            config["message.timeout.ms"] = min(
                self.delivery_timeout_ms, self.transaction_timeout_ms
            )
        return config

    def reader_config(self, kafka: KafkaSettings, role: str) -> dict[str, Any]:
        """A consumer outside the group (warm-up read-back, model updates): assign() only."""
        return kafka.reader_config(
            f"{kafka.client_id}-worker-{self.instance_id}-{role}",
            f"{self.group_id}.{role}.{self.instance_id}",
        )
