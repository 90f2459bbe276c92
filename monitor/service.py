"""The monitor's Kafka loop: inputs in, pairs, health, requests and alerts out.

One group consumer reads predictions (the champions', and the challengers' from the shadow
topic), labels and readings (co-partitioned by entity, and assigned with the range strategy
so that one instance holds the same partition numbers of every input); each batch is fed
to the :class:`~monitor.join.Joiner`, its pairs to the :class:`~monitor.evaluator.Evaluator`,
and everything they emit is produced and acknowledged before offsets are committed (at
least once). Offsets are committed by hand and never past a record the join still holds,
which is how the join survives a restart.

Before consuming, the state of the evaluator is rebuilt from the monitor's own topics
(:mod:`monitor.state`). The model windows need every pair, so run one instance per set of
topics; a second instance would share the inputs and see half of each model's pairs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from events import (
    Actual,
    ContractError,
    DemandReading,
    Prediction,
    SensorReading,
    codec_for,
    topics,
)
from events.codec import Codec
from events.settings import KafkaSettings
from models.store import ModelStore
from monitor import metrics
from monitor.actuals import from_actual, from_demand, from_sensor
from monitor.baselines import BaselineSource, RegistryBaselines
from monitor.clock import micros
from monitor.errors import MonitorError
from monitor.evaluator import Evaluator, EvaluatorConfig
from monitor.http import MonitorHealth
from monitor.join import Joiner, JoinPolicy
from monitor.offsets import TopicPartition as Tp
from monitor.outbox import Outbox
from monitor.settings import MonitorSettings
from monitor.state import Recovery, recover

log = logging.getLogger(__name__)

# Bound on the final flush when stopping after a failure.
CLOSE_TIMEOUT_S: Final = 10.0

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class MonitorService:
    """Runs the monitor until :meth:`stop`; ``health.ready`` is set once it is consuming."""

    def __init__(
        self,
        settings: MonitorSettings,
        kafka: KafkaSettings,
        baselines: BaselineSource | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.clock = clock
        self.joiner = Joiner(JoinPolicy.from_settings(settings))
        self.evaluator = Evaluator(
            EvaluatorConfig.from_settings(settings),
            baselines
            or RegistryBaselines(ModelStore(settings.model_store), settings.baseline_metric),
        )
        self.health = MonitorHealth(settings.liveness_timeout_s)
        self.recovery: Recovery | None = None
        self._codecs = _codecs(settings)
        self._stop = threading.Event()
        self._outbox: Outbox | None = None
        self._consumer: Consumer | None = None
        self._assigned: set[Tp] = set()
        self._next: dict[Tp, int] = {}
        self._committed: dict[Tp, int] = {}
        self._refused: Counter[tuple[str, str]] = Counter()
        self._failed: MonitorError | None = None  # set by a rebalance callback that failed

    def stop(self) -> None:
        """Ask the loop to finish its batch, flush, commit and return."""
        self._stop.set()

    def run(self) -> None:
        """Recover, then consume until stopped. Raises MonitorError on a fatal fault."""
        outbox = Outbox(self.settings, self.settings.producer_config(self.kafka))
        self._outbox = outbox
        try:
            self._recover(outbox)
            consumer = Consumer(self.settings.consumer_config(self.kafka))
            self._consumer = consumer
            consumer.subscribe(
                self.settings.input_topics,
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            while not self._stop.is_set():
                messages = consumer.consume(
                    self.settings.batch_max_records, timeout=self.settings.batch_max_wait_s
                )
                self.health.polled()
                if self._failed is not None:
                    raise self._failed
                self._batch(outbox, messages)
            if self._failed is not None:
                raise self._failed
        finally:
            self.health.set_closing()
            self._close(outbox)
            self._outbox = None  # the last reference: librdkafka's producer is destroyed

    def _recover(self, outbox: Outbox) -> None:
        now = self.clock()
        self.recovery = recover(self.settings, self.kafka, self.joiner, self.evaluator, now)
        metrics.RECOVERY_SECONDS.set(self.recovery.seconds)
        metrics.RECOVERED_PAIRS.set(self.recovery.pairs)
        self.evaluator.snapshot(now)
        outbox.outcome(self.evaluator.take())  # with any request decided but never published
        outbox.flush()
        self.health.set_recovered()

    def _batch(self, outbox: Outbox, messages: list[Message]) -> None:
        started = time.perf_counter()
        now = self.clock()
        consumed: Counter[str] = Counter()
        for message in messages:
            topic = self._feed(message, outbox)
            if topic:
                consumed[topic] += 1
        self.joiner.expire_idle()
        out = self.joiner.take()
        outbox.pairs(out.pairs)
        for pair in out.pairs:
            self.evaluator.add_pair(pair, now)
        for expired in out.expired:
            self.evaluator.add_expired(expired.prediction, now)
        self.evaluator.tick(now)
        produced = outbox.outcome(self.evaluator.take()) + len(out.pairs)
        metrics.record_join(out, self.joiner.pending, self.joiner.buffered)
        for topic, count in consumed.items():
            metrics.RECORDS_CONSUMED.labels(topic).inc(count)
        self._report_refused()
        if consumed or produced or out.expired:
            outbox.flush()
            self._commit()
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _feed(self, message: Message, outbox: Outbox) -> str | None:
        """Hand one consumed record to the join; the topic it came from, if any."""
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self.joiner.labels.caught_up((message.topic() or "", message.partition() or 0))
            else:
                _consume_error(error)
            return None
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            return None
        tp = (topic, partition)
        self._next[tp] = offset + 1
        try:
            record = self._codecs[topic].decode(message.value())
        except ContractError as exc:
            metrics.DECODE_FAILURES.labels(topic, exc.reason).inc()
            self._refused[(topic, exc.reason)] += 1
            if topic == self.settings.actuals_topic:
                # The monitor is the consumer of labels, so it dead-letters them; readings
                # and predictions are dead-lettered by the worker that reads or writes them.
                outbox.dead_letter(message, exc)
                metrics.DLQ_RECORDS.labels(topic, exc.reason).inc()
            return topic
        kind, kafka_ms = message.timestamp()
        kafka_us = kafka_ms * 1000 if kind != TIMESTAMP_NOT_AVAILABLE else 0
        self._dispatch(record, tp, offset, kafka_us)
        return topic

    def _dispatch(self, record: Any, tp: Tp, offset: int, kafka_us: int = 0) -> None:
        joiner = self.joiner
        if isinstance(record, Prediction):
            shadow = tp[0] == self.settings.shadow_topic
            version_key = (record.model, record.key, record.version)
            self.evaluator.note_source(version_key, shadow, record.made_at)
            joiner.add_prediction(record, tp, offset, kafka_us)
            return
        joiner.labels.read(tp, kafka_us)
        if isinstance(record, Actual):
            joiner.add_actual(from_actual(record, micros(record.ts)), tp, offset)
        elif isinstance(record, DemandReading):
            # Readings are buffered whether or not a forecast of the entity was seen yet: a
            # worker catching up on a burst forecasts readings after the monitor read their
            # actuals. The buffer is bounded in event time and by the actual caps.
            metric = self.settings.demand_metric
            joiner.add_actual(from_demand(record, micros(record.ts), metric), tp, offset)
        elif isinstance(record, SensorReading):
            for observation in from_sensor(record, micros(record.ts)):
                joiner.add_actual(observation, tp, offset)

    def _report_refused(self) -> None:
        for (topic, reason), count in self._refused.items():
            log.warning(
                "skipped %d record(s) of %s breaking the contract (%s)", count, topic, reason
            )
        self._refused.clear()

    def _commit(self, only: set[Tp] | None = None) -> None:
        """Commit, per partition, the lowest offset the join still needs."""
        consumer = self._consumer
        if consumer is None:
            return
        offsets = []
        for tp in self._assigned if only is None else only:
            next_offset = self._next.get(tp)
            if next_offset is None:
                continue
            offset = self.joiner.commit_offset(tp, next_offset)
            if self._committed.get(tp) != offset:
                offsets.append(TopicPartition(tp[0], tp[1], offset))
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("commit failed (retried after the next batch): %s", exc)
            return
        for committed in offsets:
            self._committed[(committed.topic, committed.partition)] = committed.offset

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned.update((p.topic, p.partition) for p in partitions)
        labels = set(self.settings.label_topics)
        self.joiner.labels.assigned((p.topic, p.partition) for p in partitions if p.topic in labels)
        self.health.set_partitions(len(self._assigned))
        log.info("assigned %d partition(s)", len(partitions))
        for topic, numbers in _unlabelled(self._assigned, labels).items():
            log.warning(
                "label topic %s has no partition %s of the predictions assigned here: they "
                "get no actuals from it (give every input topic as many partitions as %s)",
                topic,
                ", ".join(str(n) for n in numbers),
                self.settings.predictions_topic,
            )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(p.topic, p.partition) for p in partitions}
        if self._outbox is not None:
            try:
                self._outbox.flush()
                self._commit(revoked & self._assigned)
            except MonitorError as exc:
                # Outputs of consumed records were lost, and the join remembers those
                # records as paired: read again, they would be skipped. Stop; a restart
                # rebuilds what was paired from the pairs topic and pairs them again.
                log.error("revocation without a commit; stopping: %s", exc)
                self._failed = exc
                self.stop()
        self._drop(revoked)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._drop({(p.topic, p.partition) for p in partitions})

    def _drop(self, tps: set[Tp]) -> None:
        self.joiner.forget(tps)
        self._assigned -= tps
        for tp in tps:
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
        self.health.set_partitions(len(self._assigned))

    def _close(self, outbox: Outbox) -> None:
        consumer = self._consumer
        try:
            if consumer is not None:
                outbox.flush()
                self._commit()
        except MonitorError as exc:
            log.error("stopping without a final commit: %s", exc)
        finally:
            self._consumer = None
            if consumer is not None:
                consumer.close()
            outbox.flush_quietly(CLOSE_TIMEOUT_S)


def _codecs(settings: MonitorSettings) -> dict[str, Codec[Any]]:
    """Input topic -> codec of its contract (topic names are settings; contracts are not)."""
    codecs: dict[str, Codec[Any]] = {
        settings.predictions_topic: codec_for(topics.PREDICTIONS),
        settings.actuals_topic: codec_for(topics.ACTUALS),
    }
    if settings.shadow_topic:
        codecs[settings.shadow_topic] = codec_for(topics.PREDICTIONS_SHADOW)
    if settings.sensor_topic:
        codecs[settings.sensor_topic] = codec_for(topics.READINGS_SENSOR)
    if settings.demand_topic:
        codecs[settings.demand_topic] = codec_for(topics.READINGS_DEMAND)
    return codecs


def _unlabelled(assigned: set[Tp], labels: set[str]) -> dict[str, list[int]]:
    """Label topic -> partition numbers of assigned predictions it has no partition for.

    The range assignor gives this instance the same numbers of every input, so a number
    beyond a label topic's partitions has predictions but never their actuals from it.
    """
    predicted = {partition for topic, partition in assigned if topic not in labels}
    missing = {}
    for label in sorted(labels):
        held = {partition for topic, partition in assigned if topic == label}
        if predicted - held:
            missing[label] = sorted(predicted - held)
    return missing


def _consume_error(error: KafkaError) -> None:
    if error.fatal():
        raise MonitorError(f"fatal consumer error: {error}")
    log.warning("consumer: %s", error)
