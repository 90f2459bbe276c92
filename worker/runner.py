"""The consume loop of the stream worker (the hot path).

One thread does everything that touches the group consumer and the scoring pipeline:

    consume(num_messages=batch_max_records, timeout=batch_max_wait_s)   # micro-batch
    -> models swapped meanwhile served (history read back up to the batch if needed)
    -> pipeline.process(batch)                                          # decode, score
    -> checkpoint.settle()          # the previous batch acknowledged -> its offsets stored
    -> checkpoint.produce(outputs); checkpoint.commit(batch)            # worker.offsets

At least once, a batch's acknowledgements are awaited after the next batch is scored
(``worker.offsets.AtLeastOnce``), so the broker's round trip overlaps scoring; an idle
poll settles the last batch at once.

Rebalance callbacks (warm-up, commit on revoke; worker.warmup) run inside ``consume()`` on
this same thread, so the pipeline is never called concurrently. Metrics are updated once
per batch. :meth:`Runner.stop` (from a signal handler) lets the current batch finish, then
the loop commits, leaves the group and stops the updates thread and the HTTP server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import confluent_kafka
from confluent_kafka import KafkaError, TopicPartition

from events.dlq import KafkaMessage
from events.settings import KafkaSettings
from models.cache import ModelCache
from models.store import ModelStore
from worker import metrics
from worker.errors import WorkerError
from worker.http import Health, HealthServer
from worker.offsets import (
    AtLeastOnce,
    Checkpoint,
    Deliveries,
    ExactlyOnce,
    OffsetError,
    Outputs,
    TransactionAborted,
    abort_pause_s,
    first_offsets,
)
from worker.preflight import check_outputs
from worker.records import Pipeline
from worker.scoring import warm_up
from worker.settings import PipelineFactory, WorkerSettings
from worker.updates import AlertPublisher, ModelUpdates, parse_model_key
from worker.warmup import Assignments, GroupConsumer, HistoryReader

log = logging.getLogger(__name__)

# Consumer error codes that are expected and not worth a count.
IGNORED_ERRORS: Final = frozenset({KafkaError._PARTITION_EOF})
# A model alert is one small record; 30 s flags a broker that is not taking writes.
ALERT_TIMEOUT_S: Final = 30.0
# Listing the cluster's topics at start (worker.preflight); an unreachable broker only warns,
# and a short wait keeps the start (and a stop asked meanwhile) prompt.
PREFLIGHT_TIMEOUT_S: Final = 10.0


class WorkerStopped(WorkerError):
    """The worker stopped because a component it depends on failed."""


class Consumer(GroupConsumer, Protocol):
    """What the runner uses of ``confluent_kafka.Consumer``."""

    def subscribe(self, *args: Any, **kwargs: Any) -> None: ...
    def consume(self, num_messages: int = ..., timeout: float = ...) -> list[Any]: ...
    def close(self) -> None: ...


class CacheLike(Protocol):
    @property
    def bytes_used(self) -> int: ...


class Runner:
    """Runs the consume loop until :meth:`stop`; closes everything on the way out."""

    def __init__(
        self,
        settings: WorkerSettings,
        consumer: Consumer,
        checkpoint: Checkpoint,
        pipeline: Pipeline,
        *,
        health: Health,
        reader: HistoryReader,
        updates: ModelUpdates | None = None,
        cache: CacheLike | None = None,
        server: HealthServer | None = None,
        stop_event: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.checkpoint = checkpoint
        self.pipeline = pipeline
        self.health = health
        self.reader = reader
        self.updates = updates
        self.cache = cache
        self.server = server
        self._stop = stop_event or threading.Event()
        self.assignments = Assignments(
            pipeline,
            checkpoint,
            reader,
            health,
            records=settings.warmup_records,
            timeout_s=settings.warmup_timeout_s,
            reset=settings.auto_offset_reset,
            name=settings.instance_id,
        )
        self._refresh = getattr(pipeline, "refresh", None)
        # A key's first champion may come with no update that announces it (promoted before
        # the updates thread was positioned, or with --no-announce): the pipeline lists the
        # keys again when that thread is positioned, then at every alias check.
        self._relist = getattr(pipeline, "relist", None)
        self._next_relist: float | None = None  # None: not yet positioned
        self._clock = clock
        self._close_pipeline = getattr(pipeline, "close", None)  # its helper thread, if any
        if updates is None:
            health.set_models_ready(True)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the loop to stop after the batch in flight (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> None:
        """Start, process batches until stopped; always closes the clients."""
        try:
            self.start()
            while not self._stop.is_set():
                self.step()
        except BaseException:
            try:
                self.close()
            except WorkerStopped as exc:  # the failure being raised matters more
                log.error("%s", exc)
            raise
        self.close()

    def start(self) -> None:
        """Serve HTTP, follow model updates and join the group (partitions come later)."""
        if self.server is not None:
            self.server.start()
        if self.updates is not None:
            self.updates.start()
        self.consumer.subscribe(
            list(self.settings.input_topics),
            on_assign=self.assignments.on_assign,
            on_revoke=self.assignments.on_revoke,
            on_lost=self.assignments.on_lost,
        )
        log.info(
            "worker %s consuming %s in group %s (%s)",
            self.settings.instance_id,
            ", ".join(self.settings.input_topics),
            self.settings.group_id,
            self.settings.processing_guarantee,
        )

    def step(self) -> int:
        """Consume, score and commit one micro-batch; returns the records it processed."""
        messages = self.consumer.consume(
            num_messages=self.settings.batch_max_records, timeout=self.settings.batch_max_wait_s
        )
        self.health.polled()
        batch = self._owned(self._valid(messages))
        # Models swapped in up to now (while consume() waited too) serve this batch; one
        # that needs a longer window has the history read back first, up to the batch.
        self._watch_updates(batch)
        if not batch:
            self._acknowledged(self.checkpoint.settle(self.consumer))
            return 0
        started = time.monotonic()
        self.checkpoint.begin()
        result = self.pipeline.process(batch)
        settled = self.checkpoint.settle(self.consumer)
        self.checkpoint.produce(result.records)
        try:
            settled += self.checkpoint.commit(self.consumer, batch)
        except TransactionAborted as exc:
            pause = abort_pause_s(exc.attempt)
            log.warning("%s; consuming the batch again in %.1f s", exc, pause)
            if self._stop.wait(pause):
                return 0
            self.assignments.rewarm(self.consumer, exc.partitions, rewound=exc.offsets)
            return 0
        metrics.BATCH_SECONDS.observe(time.monotonic() - started)
        metrics.record_result(result)
        self._observe(batch)
        self._acknowledged(settled)
        return len(batch)

    def close(self) -> None:
        """Commit what is acknowledged, leave the group, stop the helpers.

        Every step runs even when one fails. A failed final commit (outputs the broker did
        not acknowledge) is raised afterwards, so the exit status says so; their offsets
        were not stored and the readings are scored again after a restart.
        """
        self.health.set_stopping()
        steps = (
            ("commit", lambda: self.checkpoint.close(self.consumer)),
            ("consumer close", self.consumer.close),
            ("warm-up reader close", self.reader.close),
            ("updates stop", self.updates.stop if self.updates else None),
            ("pipeline close", self._close_pipeline),
            ("http stop", self.server.stop if self.server else None),
        )
        unacknowledged: OffsetError | None = None
        for name, action in steps:
            if action is None:
                continue
            try:
                action()
            except OffsetError as exc:
                unacknowledged = exc
            except Exception:
                log.exception("shutdown step %r failed", name)
        if unacknowledged is not None:
            raise WorkerStopped(
                f"worker {self.settings.instance_id} stopped with outputs not acknowledged: "
                f"{unacknowledged}"
            ) from unacknowledged
        log.info("worker %s stopped", self.settings.instance_id)

    def _watch_updates(self, batch: Sequence[KafkaMessage] = ()) -> None:
        """Serve swapped models; re-warm when one needs a longer window, up to the first
        offsets of ``batch`` for its partitions (consumed, still to be scored)."""
        if self.updates is None:
            return
        if not self.updates.is_alive() and not self._stop.is_set():
            raise WorkerStopped("the model updates thread died; stopping") from self.updates.error
        self.health.set_models_ready(self.updates.ready.is_set())
        if self._refresh is None:
            return
        rewarm = False
        for name, key in self.updates.refreshes():
            # True: the new model needs a longer window than the state holds.
            rewarm = bool(self._refresh(name, key)) or rewarm
        if self._relist is not None and self.updates.positioned.is_set():
            now = self._clock()
            if self._next_relist is None or now >= self._next_relist:
                self._next_relist = now + self.settings.alias_check_s
                rewarm = bool(self._relist()) or rewarm
        if rewarm and self.assignments.assigned:
            log.info("a swapped model needs more history; re-warming the assigned partitions")
            self.assignments.rewarm(
                self.consumer,
                sorted(self.assignments.assigned),
                to_position=True,
                until=first_offsets(batch),
            )

    def _valid(self, messages: Sequence[Any]) -> list[KafkaMessage]:
        """The batch without error events; errors are counted and logged once per batch."""
        if not messages:
            return []
        batch = [m for m in messages if m.error() is None]
        if len(batch) == len(messages):
            return batch
        errors = Counter(
            m.error().name()
            for m in messages
            if m.error() is not None and m.error().code() not in IGNORED_ERRORS
        )
        for reason, count in errors.items():
            metrics.CONSUME_ERRORS.labels(reason).inc(count)
        if errors:
            log.warning(
                "consume returned %d error event(s): %s",
                sum(errors.values()),
                ", ".join(f"{name} x{count}" for name, count in errors.items()),
            )
        return batch

    def _owned(self, batch: list[KafkaMessage]) -> list[KafkaMessage]:
        """The batch without records of partitions revoked during the ``consume()`` call
        that returned them: they are left, unscored and uncommitted, to the next owner."""
        dropped = self.assignments.take_dropped()
        if not dropped or not batch:
            return batch
        owned = [m for m in batch if (m.topic(), m.partition()) not in dropped]
        if len(owned) < len(batch):
            metrics.REVOKED_RECORDS.inc(len(batch) - len(owned))
            log.info(
                "left %d record(s) of partitions revoked during the poll to their next owner",
                len(batch) - len(owned),
            )
        return owned

    def _observe(self, batch: Sequence[KafkaMessage]) -> None:
        per_topic: Counter[str] = Counter()
        last: dict[tuple[str, int], int] = {}
        for message in batch:
            topic = message.topic() or ""
            per_topic[topic] += 1
            last[(topic, message.partition() or 0)] = message.offset() or 0
        metrics.record_consumed(per_topic)
        metrics.record_lag(self._lags(last))
        if self.cache is not None:
            metrics.CACHE_BYTES.set(self.cache.bytes_used)

    @staticmethod
    def _acknowledged(settled: Sequence[KafkaMessage]) -> None:
        """End-to-end latency of every reading of the batches just settled."""
        if not settled:
            return
        acknowledged_ms = time.time_ns() // 1_000_000
        stamps: dict[str, list[int]] = defaultdict(list)
        for message in settled:
            _, timestamp_ms = message.timestamp()
            if timestamp_ms > 0:
                stamps[message.topic() or ""].append(timestamp_ms)
        metrics.record_latency(stamps, acknowledged_ms)

    def _lags(self, last: dict[tuple[str, int], int]) -> list[tuple[str, int, int]]:
        lags = []
        for (topic, partition), offset in last.items():
            # The high watermark arrives with every fetch response: no broker round trip.
            _, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if high is not None and high >= 0:
                lags.append((topic, partition, max(0, high - offset - 1)))
        return lags


def build_runner(
    settings: WorkerSettings,
    kafka: KafkaSettings,
    factory: PipelineFactory | None = None,
    stop_event: threading.Event | None = None,
) -> Runner:
    """A runner wired to real Kafka clients, the model store and an HTTP server."""
    # librdkafka's own log lines go through Python logging (plain or JSON lines alike).
    kafka_log = {"logger": logging.getLogger("worker.kafka")}

    def consumer_of(config: dict[str, Any]) -> confluent_kafka.Consumer:
        return confluent_kafka.Consumer({**config, **kafka_log})

    def producer_of(config: dict[str, Any]) -> confluent_kafka.Producer:
        return confluent_kafka.Producer({**config, **kafka_log})

    cache = ModelCache(ModelStore(settings.model_store), settings.cache_bytes, warm_up)
    pipeline = (factory or settings.pipeline_factory())(settings, cache)
    check_outputs(pipeline, kafka, PREFLIGHT_TIMEOUT_S)
    deliveries = Deliveries()
    producer = producer_of({**settings.producer_config(kafka), "on_delivery": deliveries})
    outputs = Outputs(producer, deliveries, settings.flush_timeout_s)
    checkpoint: Checkpoint = (
        ExactlyOnce(
            producer,
            outputs,
            settings.transaction_timeout_ms / 1000,
            settings.transaction_abort_limit,
        )
        if settings.processing_guarantee == "exactly_once"
        else AtLeastOnce(outputs)
    )
    stop = stop_event or threading.Event()
    health = Health(settings.liveness_timeout_s)
    alerts = AlertPublisher(
        producer_of(kafka.producer_config()),
        settings.alerts_topic,
        ALERT_TIMEOUT_S,
    )
    updates = ModelUpdates(
        settings.updates_topic,
        cache,
        lambda: consumer_of(settings.reader_config(kafka, "updates")),
        alerts,
        settings.instance_id,
        [parse_model_key(text) for text in settings.preload_models],
        settings.alias_check_s,
    )
    return Runner(
        settings,
        consumer_of(settings.consumer_config(kafka)),
        checkpoint,
        pipeline,
        health=health,
        reader=HistoryReader(lambda: consumer_of(settings.reader_config(kafka, "warmup")), stop),
        updates=updates,
        cache=cache,
        server=HealthServer(health, settings.http_host, settings.http_port),
        stop_event=stop,
    )
