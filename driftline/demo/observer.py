"""What the services publish, read back as any downstream consumer would.

One consumer assigned to every partition of the output topics, from their end at the time
the demo starts (a broker given with ``--bootstrap`` may hold earlier runs): predictions are
only counted (the first one dates the first score); alerts, labelled pairs, model health,
retrain requests and model updates are decoded and kept with the wall time they were read.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from driftline.demo.stream import CLIENT_LOG
from events import (
    Alert,
    ContractError,
    ModelHealth,
    ModelUpdate,
    MonitorPair,
    RetrainRequest,
    codec_for,
)
from events import topics as names
from events.settings import KafkaSettings

log = logging.getLogger(__name__)

TOPICS: Final = (
    names.PREDICTIONS,
    names.ALERTS,
    names.MODEL_HEALTH,
    names.RETRAIN_REQUESTS,
    names.MODEL_UPDATES,
    names.MONITOR_PAIRS,
)
POLL_RECORDS: Final = 1_000  # per consume(): a second of the demo's predictions at most
POLL_S: Final = 0.2  # longest wait of one consume(): bounds how late stop is noticed
METADATA_TIMEOUT_S: Final = 10.0  # a local broker answers in milliseconds


@dataclass
class Seen:
    """Everything read so far, each item with the wall time (time.time) it was read."""

    predictions: int = 0
    first_prediction_at: float | None = None
    alerts: list[tuple[float, Alert]] = field(default_factory=list)
    health: list[tuple[float, ModelHealth]] = field(default_factory=list)
    requests: list[tuple[float, RetrainRequest]] = field(default_factory=list)
    updates: list[tuple[float, ModelUpdate]] = field(default_factory=list)
    pairs: list[MonitorPair] = field(default_factory=list)
    undecodable: int = 0


class Observer:
    """Reads the output topics on a thread into :attr:`seen`."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.seen = Seen()
        self._consumer: Any = Consumer(
            {
                **kafka.client_config(),
                "group.id": f"driftline-demo-observer-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "logger": CLIENT_LOG,
            }
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._codecs = {topic: codec_for(topic) for topic in TOPICS}

    def start(self) -> None:
        """Position at the end of every output topic, then read on a thread."""
        assigned = []
        for topic in TOPICS:
            described = self._consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)
            partitions = described.topics[topic].partitions
            assigned += [TopicPartition(topic, p, OFFSET_END) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        self._thread = threading.Thread(target=self._run, name="demo-observer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._consumer.consume(POLL_RECORDS, POLL_S)
            except KafkaException as exc:
                log.warning("reading the output topics failed: %s", exc)
                continue
            now = time.time()
            for message in batch:
                if message.error() is None:
                    self._take(message.topic(), message.value(), now)

    def _take(self, topic: str, value: bytes, now: float) -> None:
        seen = self.seen
        if topic == names.PREDICTIONS:
            seen.predictions += 1
            if seen.first_prediction_at is None:
                seen.first_prediction_at = now
            return
        try:
            decoded = self._codecs[topic].decode(value)
        except ContractError:
            seen.undecodable += 1
            return
        if isinstance(decoded, Alert):
            seen.alerts.append((now, decoded))
            if seen.first_prediction_at is None:
                seen.first_prediction_at = now
        elif isinstance(decoded, ModelHealth):
            seen.health.append((now, decoded))
        elif isinstance(decoded, RetrainRequest):
            seen.requests.append((now, decoded))
        elif isinstance(decoded, ModelUpdate):
            seen.updates.append((now, decoded))
        elif isinstance(decoded, MonitorPair):
            seen.pairs.append(decoded)
