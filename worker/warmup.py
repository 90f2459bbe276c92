"""Partition assignment and revocation: warm per-entity state, commit, forget.

On assignment the pipeline's state for the new partitions is empty, so the first readings
of each entity would be scored without their lag and window features. Before the first
batch of a newly assigned partition is processed, :class:`Assignments` reads back a bounded
window of its history - from ``max(low watermark, committed - warmup_records)`` up to the
committed offset - with a separate consumer outside the group (``assign()``, never
committing) and feeds it to ``pipeline.warm``. This runs inside the rebalance callback,
i.e. inside ``consume()``, so no batch can reach the pipeline before its partitions are
warm. The read-back is bounded in records and in seconds (``warmup_timeout_s``); past the
deadline scoring starts, the entities of partitions not read back to the end start without
history (a window read from its start and cut short would hide a gap), and a warning says
so.

On revocation the outputs in flight are acknowledged and the stored offsets committed
before the partitions move (so their next owner starts where this one stopped), then the
pipeline forgets their entities. Lost partitions (the session expired) are only forgotten:
they already belong to someone else, committing for them is no longer possible.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from confluent_kafka import KafkaError, TopicPartition

from events.dlq import KafkaMessage
from worker import metrics
from worker.http import Health
from worker.offsets import Checkpoint, ConsumerLike
from worker.records import Pipeline

log = logging.getLogger(__name__)

# One poll of the read-back waits at most this long; the deadline is checked between polls.
READ_POLL_S: Final = 0.5
# Records fed to pipeline.warm at a time: bounds the memory of a read-back.
READ_CHUNK: Final = 5_000
# Broker round trips (committed offsets, watermarks) of the plan.
REQUEST_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class Window:
    """Offsets ``[start, end)`` of one partition to read back."""

    topic: str
    partition: int
    start: int
    end: int


class GroupConsumer(ConsumerLike, Protocol):
    def get_watermark_offsets(self, *args: Any, **kwargs: Any) -> Any: ...
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...
    def incremental_assign(self, partitions: list[TopicPartition]) -> None: ...


class ReaderConsumer(Protocol):
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def unassign(self) -> None: ...
    def consume(self, num_messages: int = ..., timeout: float = ...) -> list[Any]: ...
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...
    def close(self) -> None: ...


def plan(
    consumer: GroupConsumer,
    partitions: Sequence[TopicPartition],
    records: int,
    reset: str,
    *,
    to_position: bool = False,
    resume: dict[tuple[str, int], int] | None = None,
    starts: Mapping[tuple[str, int], int] | None = None,
    until: Mapping[tuple[str, int], int] | None = None,
) -> list[Window]:
    """The read-back window of each partition (empty ones left out).

    Windows end at the committed offsets (a new assignment: consumption resumes there) or,
    ``to_position``, at the consumer's positions (re-warming partitions it is consuming,
    whose last batches may not be committed yet); a partition in ``until`` ends there (the
    first offset of a batch consumed and still to be scored). A partition without any ends where
    its consumption started, if ``starts`` knows it (it was assigned or rewound there);
    else where ``reset`` says, as of now, and ``resume`` gets that offset, so that
    consumption can start exactly there (librdkafka would look "latest" up again later,
    and records produced in between would be neither read back nor scored).
    """
    if records <= 0 or not partitions:
        return []
    asked = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
    ends = consumer.committed(asked, timeout=REQUEST_TIMEOUT_S)
    if to_position:
        positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(asked)}
        for tp in ends:
            tp.offset = max(tp.offset, positions.get((tp.topic, tp.partition), -1))
    if until:
        for tp in ends:
            tp.offset = until.get((tp.topic, tp.partition), tp.offset)
    windows = []
    for tp in ends:
        low, high = consumer.get_watermark_offsets(tp, timeout=REQUEST_TIMEOUT_S)
        where = (tp.topic, tp.partition)
        known = None if starts is None else starts.get(where)
        if tp.offset >= 0:
            end = tp.offset
        elif known is not None:
            end = known
        else:  # consumption starts where auto.offset.reset says
            end = low if reset == "earliest" else high
            if resume is not None:
                resume[where] = end
        start = max(low, end - records)
        if end > start:
            windows.append(Window(tp.topic, tp.partition, start, end))
    return windows


class HistoryReader:
    """Reads windows of partitions with a consumer outside the group, chunk by chunk."""

    def __init__(
        self, make_consumer: Callable[[], ReaderConsumer], stop: threading.Event | None = None
    ) -> None:
        self._make_consumer = make_consumer
        self._consumer: ReaderConsumer | None = None
        # A stop request (SIGTERM) cuts a read-back short instead of waiting for its deadline.
        self._stop = stop or threading.Event()

    def read(
        self,
        windows: Sequence[Window],
        sink: Callable[[list[KafkaMessage]], None],
        timeout_s: float,
    ) -> tuple[int, list[tuple[str, int]]]:
        """Feed every record of ``windows`` to ``sink``; the records read and the partitions
        whose window was not read to its end (deadline or stop)."""
        if not windows:
            return 0, []
        consumer = self._reader()
        ends = {(w.topic, w.partition): w.end for w in windows}
        consumer.assign([TopicPartition(w.topic, w.partition, w.start) for w in windows])
        deadline = time.monotonic() + timeout_s
        total = 0
        try:
            while ends and time.monotonic() < deadline and not self._stop.is_set():
                chunk = self._poll(consumer, ends)
                if chunk:
                    sink(chunk)
                    total += len(chunk)
                self._finish_by_position(consumer, ends)
        finally:
            consumer.unassign()
        return total, sorted(ends)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _reader(self) -> ReaderConsumer:
        if self._consumer is None:
            self._consumer = self._make_consumer()
        return self._consumer

    @staticmethod
    def _poll(consumer: ReaderConsumer, ends: dict[tuple[str, int], int]) -> list[KafkaMessage]:
        chunk: list[KafkaMessage] = []
        for message in consumer.consume(num_messages=READ_CHUNK, timeout=READ_POLL_S):
            where = (message.topic(), message.partition())
            end = ends.get(where)
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    ends.pop(where, None)
                continue
            if end is None or message.offset() >= end:
                continue  # past the window: the group consumer scores it
            chunk.append(message)
            if message.offset() + 1 >= end:
                del ends[where]
        return chunk

    @staticmethod
    def _finish_by_position(consumer: ReaderConsumer, ends: dict[tuple[str, int], int]) -> None:
        # A window may end on a transaction marker, which is never delivered: the position
        # moving past the end says the window is complete.
        if not ends:
            return
        positions = consumer.position([TopicPartition(t, p) for t, p in ends])
        for tp in positions:
            if tp.offset >= ends.get((tp.topic, tp.partition), tp.offset + 1):
                ends.pop((tp.topic, tp.partition), None)


class Assignments:
    """The group consumer's rebalance callbacks (``subscribe(on_assign=..., ...)``)."""

    def __init__(
        self,
        pipeline: Pipeline,
        checkpoint: Checkpoint,
        reader: HistoryReader,
        health: Health,
        *,
        records: int,
        timeout_s: float,
        reset: str,
        name: str = "worker",
    ) -> None:
        self.name = name  # the instance id, in log lines
        self.pipeline = pipeline
        self.checkpoint = checkpoint
        self.reader = reader
        self.health = health
        self.records = records
        self.timeout_s = timeout_s
        self.reset = reset
        self.assigned: set[tuple[str, int]] = set()
        # Where consumption of an assigned partition without a committed offset started:
        # a re-warm before its first commit ends there, not at the reset watermark of then.
        self._starts: dict[tuple[str, int], int] = {}
        # Revoked or lost since the last take_dropped(): see there.
        self._dropped: set[tuple[str, int]] = set()

    def on_assign(self, consumer: GroupConsumer, partitions: list[TopicPartition]) -> None:
        if not partitions:  # a cooperative rebalance that gave this member nothing new
            return
        metrics.REBALANCES.labels("assign").inc()
        log.info("%s: assigned %s", self.name, _names(partitions))
        resume = self.warm(consumer, partitions)
        self._starts.update(resume)
        for tp in partitions:
            tp.offset = resume.get((tp.topic, tp.partition), tp.offset)
        # Assigned here, not by the client after the callback: only this takes the offsets.
        consumer.incremental_assign(partitions)
        self.assigned.update((tp.topic, tp.partition) for tp in partitions)
        self._report()

    def on_revoke(self, consumer: GroupConsumer, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        metrics.REBALANCES.labels("revoke").inc()
        log.info("%s: revoked %s", self.name, _names(partitions))
        self.checkpoint.revoke(consumer)
        self._drop(partitions)

    def on_lost(self, consumer: GroupConsumer, partitions: list[TopicPartition]) -> None:
        metrics.REBALANCES.labels("lost").inc()
        log.warning("%s: lost %s without a clean revoke", self.name, _names(partitions))
        self.checkpoint.forget([(tp.topic, tp.partition) for tp in partitions])
        self._drop(partitions)

    def take_dropped(self) -> set[tuple[str, int]]:
        """Partitions revoked or lost since the last call (and forgets them).

        The callbacks run inside ``consume()``, which may return records it fetched from a
        partition before revoking it in the same call. Those records are its next owner's:
        scored here, on the state just forgotten, they would go out wrong and twice.
        """
        dropped, self._dropped = self._dropped, set()
        return dropped

    def warm(
        self,
        consumer: GroupConsumer,
        partitions: Sequence[TopicPartition],
        to_position: bool = False,
        starts: Mapping[tuple[str, int], int] | None = None,
        until: Mapping[tuple[str, int], int] | None = None,
    ) -> dict[tuple[str, int], int]:
        """Read back history of ``partitions`` into the pipeline's state; where consumption
        of the partitions without a committed offset must start (see :func:`plan`)."""
        needed = self.records if self.pipeline.history_needed() > 0 else 0
        started = time.monotonic()
        self.health.set_warming(True)
        resume: dict[tuple[str, int], int] = {}
        try:
            windows = plan(
                consumer,
                partitions,
                needed,
                self.reset,
                to_position=to_position,
                resume=resume,
                starts=starts,
                until=until,
            )
            total, unfinished = self.reader.read(windows, self.pipeline.warm, self.timeout_s)
        finally:
            self.health.set_warming(False)
        elapsed = time.monotonic() - started
        metrics.WARMUP_SECONDS.observe(elapsed)
        metrics.WARMUP_RECORDS.inc(total)
        if unfinished:
            # A window read from its start and cut short holds the oldest readings only:
            # windows built on it would hide a gap before the first live reading. Those
            # entities start cold instead, as if there were no history.
            self.pipeline.forget(unfinished)
            log.warning(
                "%s: warm-up stopped after %.0f s with %d partition(s) incomplete (%s); "
                "their entities start without history",
                self.name,
                elapsed,
                len(unfinished),
                ", ".join(f"{topic}[{partition}]" for topic, partition in unfinished),
            )
        if windows:
            log.info(
                "%s: warmed %d partition(s) with %d record(s) in %.2f s",
                self.name,
                len(windows),
                total,
                elapsed,
            )
        return resume

    def rewarm(
        self,
        consumer: GroupConsumer,
        partitions: Sequence[tuple[str, int]],
        to_position: bool = False,
        rewound: Mapping[tuple[str, int], int] | None = None,
        until: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """Rebuild the state of ``partitions``: after an aborted transaction (up to the
        offsets the consumer was ``rewound`` to) or when a swapped model needs a longer
        window (``to_position``: up to where consumption stands, or to ``until`` for the
        partitions of a batch in hand)."""
        self.pipeline.forget(list(partitions))
        tps = [TopicPartition(topic, partition) for topic, partition in partitions]
        self.warm(consumer, tps, to_position, {**self._starts, **(rewound or {})}, until)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        pairs = [(tp.topic, tp.partition) for tp in partitions]
        self.pipeline.forget(pairs)
        self.assigned.difference_update(pairs)
        self._dropped.update(pairs)
        for pair in pairs:
            self._starts.pop(pair, None)
        metrics.forget_partitions(pairs)
        self._report()

    def _report(self) -> None:
        metrics.ASSIGNED_PARTITIONS.set(len(self.assigned))
        self.health.set_assigned(len(self.assigned))


def _names(partitions: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
