"""The benchmark's topics on the broker: created fresh, filled before a phase, read back.

Every topic is created with ``message.timestamp.type=LogAppendTime``: the broker stamps each
record when it appends it, on its one clock. A reading's timestamp is then the moment it
became readable, an output's the moment it became readable to consumers, and both
throughput spans and end-to-end latencies are differences of broker times (no producer
clock, no linger, enters either figure).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from driftline.publish import produce_waiting
from events import topics
from events.settings import KafkaSettings
from worker.routes import StreamTopics

# The environment variable that tells a benchmarked worker process its topics.
TOPICS_ENV: Final = "DRIFTLINE_BENCH_TOPICS"
# Admin requests on a local broker answer in milliseconds; 30 s flags a broken one.
ADMIN_TIMEOUT_S: Final = 30.0
# One consume call: large enough to drain 100k records in a few dozen calls.
READ_BATCH: Final = 10_000
READ_POLL_S: Final = 1.0
FLUSH_TIMEOUT_S: Final = 120.0


class BenchError(Exception):
    """The stream benchmark could not run or measure a phase."""


@dataclass(frozen=True)
class PhaseTopics:
    """Input and output topics of one phase (outputs are written by the phase's worker)."""

    sensor: str
    demand: str
    predictions: str
    alerts: str
    imputed: str

    @classmethod
    def named(cls, run: str, inputs: str, outputs: str) -> PhaseTopics:
        """``<run>.<inputs>.readings.sensor`` ... ``<run>.<outputs>.predictions`` ..."""
        return cls(
            sensor=f"{run}.{inputs}.readings.sensor",
            demand=f"{run}.{inputs}.readings.demand",
            predictions=f"{run}.{outputs}.predictions",
            alerts=f"{run}.{outputs}.alerts",
            imputed=f"{run}.{outputs}.readings.imputed",
        )

    @property
    def inputs(self) -> tuple[str, str]:
        return (self.sensor, self.demand)

    @property
    def outputs(self) -> tuple[str, str, str]:
        return (self.predictions, self.alerts, self.imputed)

    @property
    def dead_letters(self) -> tuple[str, ...]:
        """The dead-letter topic of each input (the scoring worker checks they exist)."""
        return tuple(topics.dlq_topic(t) for t in self.inputs)

    def streams(self) -> StreamTopics:
        """The scoring pipeline's view: which input carries which stream, where outputs go."""
        return StreamTopics(
            sensor=(self.sensor,),
            demand=(self.demand,),
            predictions=self.predictions,
            alerts=self.alerts,
            imputed=self.imputed,
        )

    def to_env(self) -> dict[str, str]:
        return {TOPICS_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls) -> PhaseTopics:
        try:
            return cls(**json.loads(os.environ[TOPICS_ENV]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BenchError(f"{TOPICS_ENV} does not name the phase's topics: {exc}") from exc


@dataclass(frozen=True)
class Stamped:
    """A record read back: where it sits, its value and its broker timestamp (ms)."""

    topic: str
    partition: int
    offset: int
    value: bytes
    timestamp_ms: int

    @classmethod
    def of(cls, message: Any) -> Stamped:
        """From a consumed ``confluent_kafka.Message``."""
        return cls(
            message.topic() or "",
            message.partition() or 0,
            message.offset() or 0,
            message.value() or b"",
            message.timestamp()[1],
        )


def run_prefix() -> str:
    """A prefix no other run uses, so a shared broker never mixes two runs' records."""
    return f"bench-{uuid.uuid4().hex[:8]}"


class Cluster:
    """Creates, fills, reads and deletes the topics of one benchmark run."""

    def __init__(self, kafka: KafkaSettings, partitions: int) -> None:
        self.kafka = kafka
        self.partitions = partitions
        self._admin = AdminClient(kafka.client_config())
        self._created: list[str] = []

    def create(self, names: Sequence[str]) -> None:
        """Create ``names`` with broker (LogAppendTime) timestamps."""
        config = {"message.timestamp.type": "LogAppendTime"}
        wanted = [n for n in dict.fromkeys(names) if n not in self._created]
        new = [NewTopic(n, self.partitions, replication_factor=1, config=config) for n in wanted]
        futures = self._admin.create_topics(new, request_timeout=ADMIN_TIMEOUT_S)
        for name, future in futures.items():
            try:
                future.result(timeout=ADMIN_TIMEOUT_S)
            except KafkaException as exc:
                raise BenchError(f"cannot create topic {name}: {exc}") from exc
            self._created.append(name)

    def close(self) -> None:
        """Delete every topic this run created (a benchmark leaves no data behind) and drop
        the admin client, before the broker stops."""
        if self._created:
            futures = self._admin.delete_topics(self._created, request_timeout=ADMIN_TIMEOUT_S)
            for future in futures.values():
                future.exception(timeout=ADMIN_TIMEOUT_S)
            self._created.clear()
        del self._admin  # librdkafka handles are freed with their last reference

    def producer(self, linger_ms: int) -> Producer:
        """An idempotent producer that places keys as every driftline producer does."""
        return Producer(
            self.kafka.producer_config(
                **{"linger.ms": linger_ms, "compression.type": "lz4", "client.id": "bench"}
            )
        )

    def publish(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Produce ``(key, value)`` records in order and wait until all are acknowledged."""
        # A few ms of linger fills batches: pre-publishing is not what is measured.
        producer = self.producer(linger_ms=20)
        failures: list[str] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                failures.append(str(error))

        for key, value in records:
            produce_waiting(producer, topic, value, key, delivered)
        remaining = producer.flush(FLUSH_TIMEOUT_S)
        if remaining or failures:
            raise BenchError(f"{topic}: {remaining} record(s) unsent, {len(failures)} failed")

    def end_offsets(self, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        """High watermark of every partition of ``topics``."""
        reader = self._reader()
        try:
            return {
                (tp.topic, tp.partition): reader.get_watermark_offsets(tp, ADMIN_TIMEOUT_S)[1]
                for tp in self._partitions(topics)
            }
        finally:
            reader.close()

    def commit(self, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit ``offsets`` for ``group`` (as if it had processed everything before them)."""
        committer = Consumer({**self.kafka.client_config(), "group.id": group})
        try:
            positions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            committer.commit(offsets=positions, asynchronous=False)
        except KafkaException as exc:
            raise BenchError(f"cannot commit offsets for group {group}: {exc}") from exc
        finally:
            committer.close()

    def committed(self, group: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        """Committed offsets of ``group`` (-1001 where none), without joining the group."""
        probe = Consumer({**self.kafka.client_config(), "group.id": group})
        try:
            found = probe.committed(self._partitions(topics), timeout=ADMIN_TIMEOUT_S)
            return {(tp.topic, tp.partition): tp.offset for tp in found}
        finally:
            probe.close()

    def wait_committed(
        self, group: str, topics: Sequence[str], deadline_s: float, alive: Callable[[], None]
    ) -> None:
        """Until ``group`` committed every record of ``topics``; ``alive`` raises if the
        worker died. The worker commits what it acknowledged every second."""
        ends = self.end_offsets(topics)
        deadline = time.monotonic() + deadline_s
        while True:
            alive()
            committed = self.committed(group, topics)
            if all(committed.get(where, -1) >= end for where, end in ends.items()):
                return
            if time.monotonic() > deadline:
                done = sum(max(0, committed.get(w, 0)) for w in ends)
                raise BenchError(
                    f"group {group} committed {done:,} of {sum(ends.values()):,} records "
                    f"within {deadline_s:.0f} s"
                )
            time.sleep(0.5)  # polling committed offsets: the group has no completion event

    def read(self, topics: Sequence[str]) -> Iterator[Stamped]:
        """Every record of ``topics`` up to their current ends."""
        ends = self.end_offsets(topics)
        left = {where: end for where, end in ends.items() if end > 0}
        reader = self._reader()
        try:
            reader.assign([TopicPartition(t, p, 0) for t, p in left])
            progressed = time.monotonic()
            while left:
                batch = reader.consume(READ_BATCH, READ_POLL_S)
                if batch:
                    progressed = time.monotonic()
                elif time.monotonic() - progressed > ADMIN_TIMEOUT_S:
                    raise BenchError(f"reading {', '.join(topics)} stalled before their ends")
                for message in batch:
                    if message.error() is not None:
                        continue
                    record = Stamped.of(message)
                    where = (record.topic, record.partition)
                    if record.offset + 1 >= left.get(where, 0):
                        left.pop(where, None)
                    yield record
        finally:
            reader.close()

    def _reader(self) -> Consumer:
        return Consumer(
            {
                **self.kafka.client_config(),
                "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )

    def _partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t in topics for p in range(self.partitions)]
