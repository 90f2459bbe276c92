"""Everything the monitor produces goes through one :class:`Outbox`.

It wraps an idempotent producer (murmur2 key partitioning, see
:meth:`events.settings.KafkaSettings.producer_config`), waits for room when the queue is
full instead of dropping, and :meth:`Outbox.flush` raises when any record was not
acknowledged, so the service never commits input offsets past lost outputs. The failure
sticks: every later flush raises too, since the records lost are not in the queue any more
and a flush that found the queue empty would otherwise let the stop commit past them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

from confluent_kafka import KafkaError, Message, Producer

from events import ContractError, MonitorPair, SourceRecord, codec_for, dead_letter, topics
from events.dlq import KafkaMessage
from monitor import metrics
from monitor.errors import DeliveryError
from monitor.evaluator import Outcome
from monitor.settings import MonitorSettings

log = logging.getLogger(__name__)

# Waiting for room in a full producer queue: serve delivery reports this long per attempt.
QUEUE_FULL_POLL_S: Final = 0.1
# Delivery failures named in the error message; the rest are counted.
NAMED_FAILURES: Final = 3


class Outbox:
    """The monitor's producer and what it publishes."""

    def __init__(self, settings: MonitorSettings, config: dict[str, Any]) -> None:
        self.settings = settings
        self._failures: list[str] = []
        self._lost: str | None = None  # the first failed flush: every later one fails too
        # The callback holds the list, not the outbox: no reference cycle through the
        # producer, so dropping the outbox destroys the producer at once.
        self._producer = Producer(
            config
            | {"on_delivery": _failure_recorder(self._failures), "delivery.report.only.error": True}
        )
        self._pairs = codec_for(topics.MONITOR_PAIRS)
        self._health = codec_for(topics.MODEL_HEALTH)
        self._requests = codec_for(topics.RETRAIN_REQUESTS)
        self._alerts = codec_for(topics.ALERTS)

    def produce(
        self, topic: str, value: bytes | None, key: bytes | None, headers: Any = None
    ) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers)
                return
            except BufferError:  # queue full: serve delivery reports until there is room
                self._producer.poll(QUEUE_FULL_POLL_S)

    def pairs(self, pairs: Iterable[MonitorPair]) -> None:
        codec = self._pairs
        for pair in pairs:
            # Built by the join from validated records: no second validation on this path.
            encoded = codec.encode(pair, validate=False)
            self.produce(self.settings.pairs_topic, encoded, codec.key(pair))

    def outcome(self, outcome: Outcome) -> int:
        """Produce what the evaluator decided and update its gauges; records produced."""
        settings = self.settings
        for health in outcome.health:
            self.produce(
                settings.health_topic, self._health.encode(health), self._health.key(health)
            )
        for request in outcome.requests:
            encoded = self._requests.encode(request)
            self.produce(settings.requests_topic, encoded, self._requests.key(request))
            metrics.REQUESTS.labels(request.model, request.key or "", request.action).inc()
            log.warning("retrain requested: %s (%s)", request.reason, request.request_id)
        for alert in outcome.alerts:
            self.produce(settings.alerts_topic, self._alerts.encode(alert), self._alerts.key(alert))
            metrics.ALERTS.labels(alert.model, alert.key or "").inc()
        for evaluation in outcome.evaluations:
            metrics.record_evaluation(evaluation)
        metrics.retire(outcome.retired)
        metrics.record_serving(outcome.serving)
        return len(outcome.health) + len(outcome.requests) + len(outcome.alerts)

    def dead_letter(self, message: Message, error: ContractError) -> None:
        """Copy a refused record to ``dlq.<its topic>`` with the reason in its headers."""
        letter = dead_letter(SourceRecord.of(_as_source(message)), error)
        self.produce(letter.topic, letter.value, letter.key, letter.headers)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every record to be acknowledged; DeliveryError if any was not."""
        timeout_s = self.settings.delivery_timeout_ms / 1000 if timeout_s is None else timeout_s
        left = self._producer.flush(timeout_s)
        if left or self._failures:
            failures = list(self._failures)
            self._failures.clear()  # in place: the delivery callback holds this list
            named = "; ".join(failures[:NAMED_FAILURES])
            self._lost = self._lost or (
                f"{left} record(s) unacknowledged after {timeout_s:.0f} s and "
                f"{len(failures)} failed ({named})"
            )
        if self._lost is not None:
            raise DeliveryError(f"{self._lost}; input offsets not committed")

    def flush_quietly(self, timeout_s: float) -> int:
        """Best-effort flush when stopping; the number of records left unacknowledged."""
        return int(self._producer.flush(timeout_s))


def _failure_recorder(failures: list[str]) -> Callable[[KafkaError | None, Message], None]:
    def record(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(f"{message.topic()}: {error}")

    return record


def _as_source(message: Message) -> KafkaMessage:
    # confluent-kafka's stubs type headers() more loosely than the DLQ protocol; the
    # consumer returns list[tuple[str, bytes | None]].
    return message  # type: ignore[return-value]
