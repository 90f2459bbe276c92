"""Watch a loop run from outside: every record of the output topics, as it arrives.

One consumer thread reads predictions, shadow predictions, pairs, health, requests and
updates from their beginning (assign(), no group) and keeps what it decoded with the wall
time it arrived. The runner and the caller read :meth:`Observer.snapshot` (a consistent
copy) to follow the run and to compute its figures afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from driftline.loop.environment import LoopTopics
from events import (
    ModelHealth,
    ModelUpdate,
    MonitorPair,
    codec_for,
    topics,
)
from events.settings import KafkaSettings

# One consume() waits at most this long: bounds how late a stop is noticed.
POLL_S: Final = 0.2
# Records per consume() call.
BATCH: Final = 1_000
# Metadata and watermark requests to a local broker.
REQUEST_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class Seen:
    """A decoded record, the wall time (epoch s) it was read and its Kafka timestamp (ms:
    when its producer wrote it, which orders records of different partitions)."""

    at: float
    message: Any
    produced_ms: int = 0


@dataclass
class Snapshot:
    """Everything observed so far (copies: safe to read while the observer runs)."""

    predictions: list[Seen] = field(default_factory=list)
    shadow: list[Seen] = field(default_factory=list)
    pairs: list[Seen] = field(default_factory=list)
    health: list[Seen] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    updates: list[Seen] = field(default_factory=list)

    def first_prediction(self, version: int) -> Seen | None:
        return next((s for s in self.predictions if s.message.version == version), None)

    def updates_of(self, action: str) -> list[ModelUpdate]:
        return [s.message for s in self.updates if s.message.action == action]

    def pairs_of(self, version: int) -> list[MonitorPair]:
        return [s.message for s in self.pairs if s.message.version == version]

    def health_of(self, version: int) -> list[ModelHealth]:
        return [s.message for s in self.health if s.message.version == version]


class Observer:
    """Reads the run's output topics on its own thread until :meth:`stop`."""

    def __init__(self, kafka: KafkaSettings, names: LoopTopics) -> None:
        config = {
            **kafka.client_config(),
            "group.id": f"loop-observer-{uuid.uuid4().hex[:8]}",  # assign() only
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
        self._consumer = Consumer(config)
        self._watermarks = Consumer(config)  # asked from the caller's thread
        self._fields: dict[str, str] = {
            names.predictions: "predictions",
            names.shadow: "shadow",
            names.pairs: "pairs",
            names.health: "health",
            names.requests: "requests",
            names.updates: "updates",
        }
        contracts = {
            "predictions": topics.PREDICTIONS,
            "shadow": topics.PREDICTIONS_SHADOW,
            "pairs": topics.MONITOR_PAIRS,
            "health": topics.MODEL_HEALTH,
            "requests": topics.RETRAIN_REQUESTS,
            "updates": topics.MODEL_UPDATES,
        }
        self._decode: dict[str, Callable[[bytes | None], Any]] = {
            name: codec_for(contracts[name]).decode for name in contracts
        }
        self._seen = Snapshot()
        self._offsets: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loop-observer", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> Observer:
        assignment = []
        for topic in self._fields:
            described = self._consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics[topic]
            assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in described.partitions]
        self._consumer.assign(assignment)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._consumer.close()
        self._watermarks.close()

    def snapshot(self) -> Snapshot:
        """A copy of what was observed; raises what stopped the observer, if anything."""
        if self.error is not None:
            raise RuntimeError(f"the observer failed: {self.error}") from self.error
        with self._lock:
            return Snapshot(**{name: list(getattr(self._seen, name)) for name in self._decode})

    def caught_up(self, topic: str) -> bool:
        """Whether every record of ``topic`` written so far has been read."""
        described = self._watermarks.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics[topic]
        for partition in described.partitions:
            _, high = self._watermarks.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=REQUEST_TIMEOUT_S
            )
            with self._lock:
                if self._offsets.get((topic, partition), 0) < high:
                    return False
        return True

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for message in self._consumer.consume(BATCH, timeout=POLL_S):
                    self._take(message)
        except BaseException as exc:  # noticed by the next snapshot()
            self.error = exc

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"consuming {message.topic()}: {error}")
            return
        topic, partition, offset = message.topic() or "", message.partition(), message.offset()
        name = self._fields[topic]
        decoded = self._decode[name](message.value())
        with self._lock:
            seen = Seen(time.time(), decoded, message.timestamp()[1])
            getattr(self._seen, name).append(seen)
            if partition is not None and offset is not None:
                self._offsets[(topic, partition)] = offset + 1
