"""Outputs and offsets of a micro-batch, in one place.

The runtime hands every batch to a :class:`Checkpoint`: ``begin``, ``produce`` the outputs,
``commit`` the batch. Two implementations, chosen by ``WorkerSettings.processing_guarantee``:

* :class:`AtLeastOnce` - the consumer runs with ``enable.auto.offset.store=false``. A batch's
  outputs are acknowledged one batch late, so the broker's round trip overlaps scoring the
  next batch: ``commit`` leaves the batch *pending*, and ``settle`` - called by the runtime
  after scoring the next batch and before producing its outputs, on an idle poll, on revoke
  and on close - flushes the producer and checks the delivery reports; only when every
  output of the pending batch is acknowledged are its next offsets *stored*, and
  librdkafka's auto-commit (plus an explicit commit on revoke and on close) commits stored
  offsets. A crash anywhere before the store replays the batch: outputs may repeat (their
  ids are deterministic), none is lost.
* :class:`ExactlyOnce` - one transaction per batch: ``begin_transaction``, produce,
  ``send_offsets_to_transaction`` with the consumer's group metadata (fencing zombies of a
  rebalance, KIP-447), ``commit_transaction``. An abortable error aborts the transaction and
  rewinds the batch's partitions to their last committed offsets, so the batch is consumed
  and scored again; :class:`TransactionAborted` tells the runtime which partitions to re-warm.
  Once an output of a transaction fails, librdkafka refuses every further ``produce`` of it;
  the first refusal ends the batch's producing and its transaction is aborted the same way.
  An output the cluster refuses every time (a dead-letter copy above its topic's
  ``max.message.bytes``, a topic this worker may not write) would abort the same batch
  forever: after ``abort_limit`` aborts in a row :class:`TransactionError` stops the worker
  (exit 1), as a delivery failure does at least once. A worker that stops mid-batch aborts
  its open transaction on close, so ``read_committed`` readers do not wait for the
  broker's transaction timeout.

Delivery failures (at least once): librdkafka has already retried an output for
``message.timeout.ms`` (2 min by default) when it reports it failed, so the cluster is not
taking writes. The batch's offsets are not stored and :class:`DeliveryError` is raised: the
worker stops and exits non-zero, loudly, and whatever restarts it replays from the last
committed offsets. Retrying in-process was rejected: an idempotent producer with timed-out
records may have a sequence gap it cannot recover from, and a fresh process is the clean
state.

A transaction call that hangs: librdkafka's ``send_offsets_to_transaction`` can block past
its own timeout when the group coordinator moves while it waits, as in a broker restart
(confluentinc/librdkafka#5456, #5511). It runs on a helper thread with a deadline; past it
:class:`TransactionStuck` stops the worker (exit 1), and its restart aborts the open
transaction and resumes from the committed offsets, the same path as any fatal error.

Backpressure: ``produce`` never drops a record. When librdkafka's queue (bounded by
``queue.buffering.max.*``) is full it raises BufferError; we serve delivery reports for a
moment and try again, so memory stays bounded and consumption slows to the broker's pace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final, NoReturn, Protocol

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from events.dlq import KafkaMessage
from worker import metrics
from worker.errors import WorkerError
from worker.limits import DEFAULT_ABORT_LIMIT
from worker.records import OutRecord

log = logging.getLogger(__name__)

# While the producer queue is full, serve delivery reports this long before trying again:
# long enough to free space (a request round trip), short enough not to idle.
QUEUE_FULL_WAIT_S: Final = 0.05
# commit_transaction errors marked retriable (e.g. a coordinator moving) usually clear
# within a few attempts; past that the error is treated as fatal.
COMMIT_ATTEMPTS: Final = 5
# A transaction call still blocked this long after its own timeout is hung, not slow.
HUNG_CALL_MARGIN_S: Final = 5.0
# The pause before consuming an aborted batch again: doubling from the first, at most the
# last.
ABORT_PAUSE_S: Final = (0.5, 8.0)

Partition = tuple[str, int]


class OffsetError(WorkerError):
    """Root of the errors of the offset and transaction handling."""


class DeliveryError(OffsetError):
    """Outputs of a batch were not acknowledged; its offsets were not stored."""


class TransactionError(OffsetError):
    """A transaction failed in a way that aborting cannot fix (fenced, fatal)."""


class TransactionStuck(TransactionError):
    """A transaction call did not return by its deadline; only a new process recovers."""


class TransactionAborted(OffsetError):
    """The batch's transaction was aborted and its partitions rewound to committed offsets."""

    def __init__(self, message: str, offsets: Mapping[Partition, int], attempt: int = 1) -> None:
        super().__init__(message)
        self.offsets = dict(offsets)  # where each partition was rewound to
        self.partitions = list(offsets)
        self.attempt = attempt  # aborts in a row, this one included


class ProducerLike(Protocol):
    """What the checkpoints use of ``confluent_kafka.Producer``."""

    def produce(self, *args: Any, **kwargs: Any) -> None: ...
    def poll(self, timeout: float = ...) -> int: ...
    def flush(self, timeout: float = ...) -> int: ...


class TransactionalProducer(ProducerLike, Protocol):
    def init_transactions(self, timeout: float = ...) -> None: ...
    def begin_transaction(self) -> None: ...
    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: Any, timeout: float = ...
    ) -> None: ...
    def commit_transaction(self, timeout: float = ...) -> None: ...
    def abort_transaction(self, timeout: float = ...) -> None: ...


class ConsumerLike(Protocol):
    """What the checkpoints use of ``confluent_kafka.Consumer``."""

    def store_offsets(self, *args: Any, **kwargs: Any) -> None: ...
    def commit(self, *args: Any, **kwargs: Any) -> Any: ...
    def committed(self, partitions: list[TopicPartition], timeout: float = ...) -> Any: ...
    def seek(self, partition: TopicPartition) -> None: ...
    def consumer_group_metadata(self) -> Any: ...


class Deliveries:
    """The producer's delivery callback: collects the failures (successes are not reported),
    each with the topic its record was for."""

    def __init__(self) -> None:
        self.failures: list[tuple[KafkaError, str]] = []

    def __call__(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            topic = message.topic() if message is not None else None
            self.failures.append((error, topic or "?"))

    def take(self) -> list[tuple[KafkaError, str]]:
        failures, self.failures = self.failures, []
        return failures


class Outputs:
    """Produces a batch's records with backpressure and checks they were all acknowledged."""

    def __init__(self, producer: ProducerLike, deliveries: Deliveries, flush_timeout_s: float):
        self.producer = producer
        self.deliveries = deliveries
        self.flush_timeout_s = flush_timeout_s

    def produce(self, records: Sequence[OutRecord]) -> None:
        produce = self.producer.produce
        waits = 0
        for record in records:
            while True:
                try:
                    produce(record.topic, record.value, record.key, headers=record.headers)
                    break
                except BufferError:
                    waits += 1
                    self.producer.poll(QUEUE_FULL_WAIT_S)
        if waits:
            metrics.PRODUCE_BACKPRESSURE.inc(waits)

    def acknowledge(self) -> None:
        """Wait until every record produced so far is acknowledged; DeliveryError if not."""
        started = time.monotonic()
        remaining = self.producer.flush(self.flush_timeout_s)
        metrics.ACK_WAIT_SECONDS.observe(time.monotonic() - started)
        failures = self.deliveries.take()
        for error, _ in failures:
            metrics.DELIVERY_FAILURES.labels(_error_name(error)).inc()
        if failures:
            # "Unknown topic" alone does not say which topic is missing (a dlq.<input>?)
            by_topic = Counter(topic for _, topic in failures).most_common()
            where = ", ".join(f"{count} to {topic}" for topic, count in by_topic)
            raise DeliveryError(
                f"{len(failures)} output(s) not acknowledged ({where}), first: "
                f"{failures[0][0]}; offsets of the batch were not stored"
            )
        if remaining:
            raise DeliveryError(
                f"{remaining} output(s) still unacknowledged after {self.flush_timeout_s:.0f} s; "
                "offsets of the batch were not stored"
            )


class Checkpoint(Protocol):
    """How a batch's outputs and offsets are made durable.

    Per batch the runtime calls ``begin``, scores, ``settle``, ``produce`` and ``commit``;
    ``settle`` and ``commit`` return the batches whose outputs they saw acknowledged.
    """

    def begin(self) -> None: ...
    def settle(self, consumer: ConsumerLike) -> list[KafkaMessage]: ...
    def produce(self, records: Sequence[OutRecord]) -> None: ...
    def commit(
        self, consumer: ConsumerLike, messages: Sequence[KafkaMessage]
    ) -> list[KafkaMessage]: ...
    def revoke(self, consumer: ConsumerLike) -> None: ...
    def forget(self, partitions: Collection[Partition]) -> None: ...
    def close(self, consumer: ConsumerLike) -> None: ...


class AtLeastOnce:
    """Store a batch's offsets only after all its outputs are acknowledged (one batch late)."""

    def __init__(self, outputs: Outputs) -> None:
        self.outputs = outputs
        self._pending: list[KafkaMessage] = []  # produced, acknowledgement not yet checked

    def begin(self) -> None:
        """Nothing to open: outputs and offsets are separate writes."""

    def settle(self, consumer: ConsumerLike) -> list[KafkaMessage]:
        """Wait for the pending batch's outputs, then store its offsets; the batch settled.

        The batch stops being pending *before* the wait: when the wait raises, a later
        settle (on close) must not store the offsets of outputs that were not delivered.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return []
        self.outputs.acknowledge()
        consumer.store_offsets(offsets=next_offsets(pending))
        return pending

    def produce(self, records: Sequence[OutRecord]) -> None:
        self.outputs.produce(records)

    def commit(
        self, consumer: ConsumerLike, messages: Sequence[KafkaMessage]
    ) -> list[KafkaMessage]:
        """Leave ``messages`` pending until the next settle; what this settled first.

        The runtime settles before producing a batch, so nothing is pending here; settling
        anyway keeps a caller that did not from dropping the previous batch's offsets.
        """
        settled = self.settle(consumer)
        self._pending = list(messages)
        return settled

    def revoke(self, consumer: ConsumerLike) -> None:
        """Partitions are leaving: settle, and commit what is stored now, not at the next tick."""
        try:
            self.settle(consumer)
        finally:
            commit_stored(consumer)

    def forget(self, partitions: Collection[Partition]) -> None:
        """Partitions were lost (no clean revoke): their pending offsets are not stored; their
        next owner consumes from the last committed offsets (repeats, never losses)."""
        gone = set(partitions)
        self._pending = [
            m for m in self._pending if (m.topic() or "", m.partition() or 0) not in gone
        ]

    def close(self, consumer: ConsumerLike) -> None:
        try:
            self.settle(consumer)
        finally:
            commit_stored(consumer)


class ExactlyOnce:
    """One transaction per batch: outputs and input offsets commit together or not at all."""

    def __init__(
        self,
        producer: TransactionalProducer,
        outputs: Outputs,
        timeout_s: float,
        abort_limit: int = DEFAULT_ABORT_LIMIT,
    ):
        self.producer = producer
        self.outputs = outputs
        self.timeout_s = timeout_s
        self.abort_limit = abort_limit
        self._open = False  # a transaction was begun and is not yet committed or aborted
        self._refused: KafkaException | None = None  # produce refused in this transaction
        self._aborts = 0  # transactions aborted since the last commit
        # Aborts any transaction a previous incarnation of this instance left open and
        # fences it (same transactional.id).
        producer.init_transactions(timeout_s)

    def begin(self) -> None:
        self.outputs.deliveries.take()
        self._refused = None
        self.producer.begin_transaction()
        self._open = True

    def settle(self, consumer: ConsumerLike) -> list[KafkaMessage]:
        """Nothing is pending: every batch's transaction completes in its ``commit``."""
        return []

    def produce(self, records: Sequence[OutRecord]) -> None:
        """Produce in the open transaction; a refused record ends it (``commit`` aborts).

        After a failed output librdkafka refuses every further record of the transaction
        (``_STATE``), and a record it refuses at once (too large) must not be committed
        without: either way the batch cannot commit whole.
        """
        try:
            self.outputs.produce(records)
        except KafkaException as exc:
            self._refused = exc

    def commit(
        self, consumer: ConsumerLike, messages: Sequence[KafkaMessage]
    ) -> list[KafkaMessage]:
        """Commit the batch's transaction; the batch, now acknowledged."""
        if self._refused is not None:
            refused, self._refused = self._refused, None
            self._abort_batch(consumer, messages, f"an output was refused: {refused}", refused)
        offsets, group = next_offsets(messages), consumer.consumer_group_metadata()
        try:
            call_with_deadline(
                lambda: self.producer.send_offsets_to_transaction(offsets, group, self.timeout_s),
                self.timeout_s + HUNG_CALL_MARGIN_S,
                "send_offsets_to_transaction",
            )
            self._commit_transaction()
        except TransactionStuck:
            self._open = False  # a hung client cannot abort; a restart does
            metrics.TRANSACTIONS.labels("failed").inc()
            raise
        except KafkaException as exc:
            error = exc.args[0]
            if not (isinstance(error, KafkaError) and error.txn_requires_abort()):
                self._open = False  # fenced or fatal: the producer can do nothing more
                metrics.TRANSACTIONS.labels("failed").inc()
                raise TransactionError(f"transaction failed and cannot be aborted: {exc}") from exc
            self._abort_batch(consumer, messages, str(error), exc)
        self._open = False
        self._aborts = 0
        metrics.TRANSACTIONS.labels("committed").inc()
        return list(messages)

    def revoke(self, consumer: ConsumerLike) -> None:
        """Nothing to do: every batch's transaction completes before the next poll."""

    def forget(self, partitions: Collection[Partition]) -> None:
        """Nothing to do: no batch stays pending between polls."""

    def close(self, consumer: ConsumerLike) -> None:
        """Abort the transaction of a batch that failed midway (a clean stop leaves none)."""
        if not self._open:
            return
        self._open = False
        try:
            call_with_deadline(
                lambda: self.producer.abort_transaction(self.timeout_s),
                self.timeout_s + HUNG_CALL_MARGIN_S,
                "abort_transaction",
            )
        except (KafkaException, TransactionStuck) as exc:
            log.warning(
                "could not abort the open transaction (the broker aborts it after "
                "transaction.timeout.ms): %s",
                exc,
            )
            return
        metrics.TRANSACTIONS.labels("aborted").inc()

    def _commit_transaction(self) -> None:
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                self.producer.commit_transaction(self.timeout_s)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if attempt == COMMIT_ATTEMPTS or not (
                    isinstance(error, KafkaError) and error.retriable()
                ):
                    raise
                log.warning("commit_transaction attempt %d failed, retrying: %s", attempt, error)

    def _abort_batch(
        self,
        consumer: ConsumerLike,
        messages: Sequence[KafkaMessage],
        reason: str,
        cause: BaseException,
    ) -> NoReturn:
        """Abort the transaction and rewind the batch; raise TransactionAborted, or
        TransactionError once ``abort_limit`` transactions in a row were aborted."""
        try:
            self.producer.abort_transaction(self.timeout_s)
        except KafkaException as exc:
            metrics.TRANSACTIONS.labels("failed").inc()
            raise TransactionError(
                f"transaction failed ({reason}) and abort failed: {exc}"
            ) from exc
        finally:
            self._open = False
        self.outputs.deliveries.take()
        metrics.TRANSACTIONS.labels("aborted").inc()
        self._aborts += 1
        partitions = rewind(consumer, messages, self.timeout_s)
        if self._aborts >= self.abort_limit:
            raise TransactionError(
                f"{self._aborts} transactions in a row were aborted (the last: {reason}); "
                "stopping: an output the cluster refuses every time (a dead-letter record "
                "above its topic's max.message.bytes, a topic this worker may not write) "
                "cannot commit by retrying"
            ) from cause
        raise TransactionAborted(
            f"transaction aborted ({reason}); rewound {len(partitions)} partition(s)",
            partitions,
            self._aborts,
        ) from cause


def abort_pause_s(attempt: int) -> float:
    """Seconds to wait before consuming a batch again after its ``attempt``-th abort in a
    row: a cause that clears (a broker restarting) gets time to, without a busy loop."""
    first, most = ABORT_PAUSE_S
    return float(min(first * 2 ** (attempt - 1), most))


def call_with_deadline(call: Callable[[], None], deadline_s: float, what: str) -> None:
    """Run a blocking client call on a helper thread; re-raise what it raised.

    Raises :class:`TransactionStuck` when it has not returned after ``deadline_s``; the
    helper thread is a daemon, so the stuck call does not keep the process from exiting.
    """
    failures: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the calling thread below
            failures.append(exc)

    helper = threading.Thread(target=run, name=what, daemon=True)
    helper.start()
    helper.join(deadline_s)
    if helper.is_alive():
        raise TransactionStuck(
            f"{what} did not return within {deadline_s:.0f} s (librdkafka can hang when the "
            "group coordinator moves, confluentinc/librdkafka#5456); stopping: a restart "
            "aborts the open transaction and resumes from the committed offsets"
        )
    if failures:
        raise failures[0]


def next_offsets(messages: Sequence[KafkaMessage]) -> list[TopicPartition]:
    """Per partition of the batch, the offset after its last message (what to commit)."""
    last: dict[Partition, int] = {}
    for message in messages:
        last[(message.topic() or "", message.partition() or 0)] = message.offset() or 0
    return [
        TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()
    ]


def rewind(
    consumer: ConsumerLike, messages: Sequence[KafkaMessage], timeout_s: float
) -> dict[Partition, int]:
    """Seek the batch's partitions back to their committed offsets; the offsets sought.

    A partition that has no committed offset yet goes back to the batch's first offset of
    it, which is where consumption of it started.
    """
    first = first_offsets(messages)
    asked = [TopicPartition(topic, partition) for topic, partition in first]
    try:
        committed = consumer.committed(asked, timeout=timeout_s)
    except KafkaException as exc:
        raise TransactionError(f"cannot read committed offsets to rewind: {exc}") from exc
    sought: dict[Partition, int] = {}
    for tp in committed:
        offset = tp.offset if tp.offset >= 0 else first[(tp.topic, tp.partition)]
        consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        sought[(tp.topic, tp.partition)] = offset
    return sought


def first_offsets(messages: Sequence[KafkaMessage]) -> dict[Partition, int]:
    """The first offset of each partition among ``messages`` (in the order consumed)."""
    first: dict[Partition, int] = {}
    for message in messages:
        first.setdefault((message.topic() or "", message.partition() or 0), message.offset() or 0)
    return first


def commit_stored(consumer: ConsumerLike) -> None:
    """Synchronously commit the stored offsets; nothing stored is not an error.

    A failed commit is logged, not raised: the offsets stay stored and the next commit
    carries them; if the partitions move meanwhile, their next owner replays a little
    (at least once, never lost).
    """
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        error = exc.args[0]
        if isinstance(error, KafkaError) and error.code() == KafkaError._NO_OFFSET:
            return
        log.warning("committing stored offsets failed (they will be retried): %s", exc)


def _error_name(error: KafkaError) -> str:
    try:
        return str(error.name())
    except Exception:  # a fake or exotic error object; the label must still be bounded
        return "unknown"
