"""Offset handling without a broker: fakes of the producer and consumer interfaces.

At least once: offsets are stored only after every output is acknowledged; a failed or
missing acknowledgement stores nothing. Exactly once: one transaction per batch, and the
abort path rewinds the consumer to the committed offsets, a refused output aborts too, a
batch aborted again and again stops the worker, and a worker stopping mid-batch aborts its
open transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from worker import metrics
from worker.offsets import (
    AtLeastOnce,
    Deliveries,
    DeliveryError,
    ExactlyOnce,
    Outputs,
    TransactionAborted,
    TransactionError,
    abort_pause_s,
    commit_stored,
    next_offsets,
)
from worker.records import OutRecord


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes = b"{}") -> None:
        self._where = (topic, partition, offset)
        self._value = value

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)

    def error(self) -> KafkaError | None:
        return None


class FakeProducer:
    """Queues records up to ``capacity``; flush delivers them, failing the ones asked to."""

    def __init__(self, deliveries: Deliveries, capacity: int = 1_000_000) -> None:
        self.deliveries = deliveries
        self.capacity = capacity
        self.queued: list[tuple[str, bytes | None]] = []
        self.delivered: list[tuple[str, bytes | None]] = []
        self.fail_next: KafkaError | None = None
        self.stuck = 0  # records flush leaves unacknowledged (a timeout)
        self.calls: list[str] = []
        self.commit_errors: list[KafkaException] = []
        self.send_offsets_error: KafkaException | None = None
        self.sent_offsets: list[list[TopicPartition]] = []
        self.refuse_after: int | None = None  # produce raises _STATE past this many records
        self.abort_error: KafkaException | None = None

    def produce(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, **kwargs: Any
    ) -> None:
        if len(self.queued) >= self.capacity:
            raise BufferError("queue full")
        if self.refuse_after is not None and len(self.queued) >= self.refuse_after:
            # what librdkafka raises once an output of the transaction has failed
            raise KafkaException(KafkaError(KafkaError._STATE, "in AbortableError state"))
        self.queued.append((topic, value))

    def poll(self, timeout: float = -1) -> int:
        served = len(self.queued)
        self._deliver(len(self.queued))
        return served

    def flush(self, timeout: float = -1) -> int:
        self.calls.append("flush")
        self._deliver(len(self.queued) - self.stuck)
        return len(self.queued)

    def _deliver(self, count: int) -> None:
        batch, self.queued = self.queued[:count], self.queued[count:]
        for record in batch:
            if self.fail_next is not None:
                self.deliveries(self.fail_next, SimpleNamespace(topic=lambda t=record[0]: t))
            else:
                self.delivered.append(record)

    # transactional API
    def init_transactions(self, timeout: float = -1) -> None:
        self.calls.append("init")

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: Any, timeout: float = -1
    ) -> None:
        self.calls.append("send_offsets")
        if self.send_offsets_error is not None:
            raise self.send_offsets_error
        assert group_metadata == "group-metadata"
        self.sent_offsets.append(positions)

    def commit_transaction(self, timeout: float = -1) -> None:
        self.calls.append("commit")
        if self.commit_errors:
            raise self.commit_errors.pop(0)

    def abort_transaction(self, timeout: float = -1) -> None:
        self.calls.append("abort")
        if self.abort_error is not None:
            raise self.abort_error


class FakeConsumer:
    def __init__(self, committed: dict[tuple[str, int], int] | None = None) -> None:
        self.stored: list[list[TopicPartition]] = []
        self.commits = 0
        self.commit_error: KafkaException | None = None
        self.seeks: list[tuple[str, int, int]] = []
        self._committed = committed or {}

    def store_offsets(self, *args: Any, offsets: list[TopicPartition] | None = None) -> None:
        self.stored.append(list(offsets or []))

    def commit(self, *args: Any, **kwargs: Any) -> None:
        assert kwargs.get("asynchronous") is False
        if self.commit_error is not None:
            raise self.commit_error
        self.commits += 1

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[Any]:
        return [
            TopicPartition(
                tp.topic, tp.partition, self._committed.get((tp.topic, tp.partition), -1001)
            )
            for tp in partitions
        ]

    def seek(self, partition: TopicPartition) -> None:
        self.seeks.append((partition.topic, partition.partition, partition.offset))

    def consumer_group_metadata(self) -> str:
        return "group-metadata"


def batch(*where: tuple[str, int, int]) -> list[FakeMessage]:
    return [FakeMessage(topic, partition, offset) for topic, partition, offset in where]


def records(count: int) -> list[OutRecord]:
    return [OutRecord("out", b"k", str(i).encode(), "prediction") for i in range(count)]


def offsets(stored: list[TopicPartition]) -> dict[tuple[str, int], int]:
    return {(tp.topic, tp.partition): tp.offset for tp in stored}


Setup = tuple[FakeProducer, Outputs]


@pytest.fixture
def setup() -> Callable[..., Setup]:
    def make(capacity: int = 1_000_000) -> Setup:
        deliveries = Deliveries()
        producer = FakeProducer(deliveries, capacity)
        return producer, Outputs(producer, deliveries, flush_timeout_s=1.0)

    return make


def test_next_offsets_are_one_past_the_last_message_of_each_partition() -> None:
    messages = batch(("a", 0, 5), ("a", 1, 7), ("a", 0, 6), ("b", 0, 0))
    assert offsets(next_offsets(messages)) == {("a", 0): 7, ("a", 1): 8, ("b", 0): 1}


def test_at_least_once_stores_offsets_after_every_output_is_acknowledged(
    setup: Callable[..., Setup],
) -> None:
    producer, outputs = setup()
    consumer = FakeConsumer()
    checkpoint = AtLeastOnce(outputs)
    checkpoint.begin()
    assert checkpoint.settle(consumer) == []
    checkpoint.produce(records(3))
    first = batch(("in", 0, 10), ("in", 2, 4))
    assert checkpoint.commit(consumer, first) == []
    # Pending: nothing waited for, nothing stored until the next settle.
    assert producer.calls == [] and consumer.stored == []
    waits = _count(metrics.ACK_WAIT_SECONDS)
    assert checkpoint.settle(consumer) == first
    assert _count(metrics.ACK_WAIT_SECONDS) == waits + 1  # the wait is observed
    assert len(producer.delivered) == 3
    assert producer.calls == ["flush"]
    assert [offsets(s) for s in consumer.stored] == [{("in", 0): 11, ("in", 2): 5}]
    assert checkpoint.settle(consumer) == []  # settled once


def test_a_batch_is_settled_before_the_next_batch_is_produced(
    setup: Callable[..., Setup],
) -> None:
    producer, outputs = setup()
    consumer = FakeConsumer()
    checkpoint = AtLeastOnce(outputs)
    checkpoint.produce(records(2))
    checkpoint.commit(consumer, batch(("in", 0, 1)))
    checkpoint.settle(consumer)  # as the runtime does, after scoring the next batch
    checkpoint.produce(records(3))
    checkpoint.commit(consumer, batch(("in", 0, 2)))
    # The first batch's offsets were stored after its two outputs only; the second batch
    # is pending with its three outputs unflushed.
    assert [offsets(s) for s in consumer.stored] == [{("in", 0): 2}]
    assert len(producer.delivered) == 2 and len(producer.queued) == 3
    checkpoint.close(consumer)
    assert [offsets(s) for s in consumer.stored] == [{("in", 0): 2}, {("in", 0): 3}]
    assert consumer.commits == 1


def test_commit_without_a_settle_still_stores_the_previous_batch(
    setup: Callable[..., Setup],
) -> None:
    _, outputs = setup()
    consumer = FakeConsumer()
    checkpoint = AtLeastOnce(outputs)
    first = batch(("in", 0, 1))
    checkpoint.commit(consumer, first)
    assert checkpoint.commit(consumer, batch(("in", 0, 2))) == first
    assert [offsets(s) for s in consumer.stored] == [{("in", 0): 2}]


def test_a_failed_delivery_stores_nothing_and_raises(setup: Callable[..., Setup]) -> None:
    producer, outputs = setup()
    producer.fail_next = KafkaError(KafkaError._MSG_TIMED_OUT, "timed out")
    consumer = FakeConsumer()
    checkpoint = AtLeastOnce(outputs)
    failures = metrics.DELIVERY_FAILURES.labels("_MSG_TIMED_OUT")
    before = failures._value.get()
    checkpoint.produce(records(2))
    checkpoint.commit(consumer, batch(("in", 0, 10)))
    with pytest.raises(DeliveryError, match=r"2 output\(s\) not acknowledged \(2 to out\)"):
        checkpoint.settle(consumer)
    assert consumer.stored == []
    assert failures._value.get() == before + 2
    # Closing after the failure commits what was stored before it, never the failed batch.
    checkpoint.close(consumer)
    assert consumer.stored == [] and consumer.commits == 1


def test_unacknowledged_outputs_after_the_flush_timeout_store_nothing(
    setup: Callable[..., Setup],
) -> None:
    producer, outputs = setup()
    producer.stuck = 1
    consumer = FakeConsumer()
    checkpoint = AtLeastOnce(outputs)
    checkpoint.produce(records(3))
    checkpoint.commit(consumer, batch(("in", 0, 10)))
    with pytest.raises(DeliveryError, match="still unacknowledged"):
        checkpoint.settle(consumer)
    assert consumer.stored == []


def test_lost_partitions_drop_their_pending_offsets(setup: Callable[..., Setup]) -> None:
    _, outputs = setup()
    consumer = FakeConsumer()
    checkpoint = AtLeastOnce(outputs)
    checkpoint.produce(records(2))
    checkpoint.commit(consumer, batch(("in", 0, 5), ("in", 1, 8)))
    checkpoint.forget([("in", 1)])
    checkpoint.settle(consumer)
    assert [offsets(s) for s in consumer.stored] == [{("in", 0): 6}]


def test_a_full_producer_queue_applies_backpressure_and_drops_nothing(
    setup: Callable[..., Setup],
) -> None:
    producer, outputs = setup(capacity=2)
    before = metrics.PRODUCE_BACKPRESSURE._value.get()
    outputs.produce(records(7))
    outputs.acknowledge()
    assert [value for _, value in producer.delivered] == [str(i).encode() for i in range(7)]
    assert metrics.PRODUCE_BACKPRESSURE._value.get() > before


def test_revoke_settles_and_commits_the_stored_offsets_synchronously(
    setup: Callable[..., Setup],
) -> None:
    _, outputs = setup()
    consumer = FakeConsumer()
    checkpoint = AtLeastOnce(outputs)
    checkpoint.produce(records(1))
    checkpoint.commit(consumer, batch(("in", 0, 3)))
    checkpoint.revoke(consumer)
    assert [offsets(s) for s in consumer.stored] == [{("in", 0): 4}]
    assert consumer.commits == 1


def test_nothing_stored_to_commit_is_not_an_error() -> None:
    consumer = FakeConsumer()
    consumer.commit_error = KafkaException(KafkaError(KafkaError._NO_OFFSET))
    commit_stored(consumer)  # must not raise
    consumer.commit_error = KafkaException(KafkaError(KafkaError._TRANSPORT))
    commit_stored(consumer)  # logged; the offsets stay stored for the next commit
    assert consumer.commits == 0


def _abortable() -> KafkaException:
    return KafkaException(KafkaError(KafkaError._STATE, "abort me", txn_requires_abort=True))


def begun(producer: FakeProducer, outputs: Outputs) -> ExactlyOnce:
    """An exactly-once checkpoint with its first transaction open."""
    checkpoint = ExactlyOnce(producer, outputs, timeout_s=1.0)
    checkpoint.begin()
    return checkpoint


def test_exactly_once_commits_outputs_and_offsets_in_one_transaction(
    setup: Callable[..., Setup],
) -> None:
    producer, outputs = setup()
    consumer = FakeConsumer()
    checkpoint = begun(producer, outputs)
    checkpoint.produce(records(2))
    checkpoint.commit(consumer, batch(("in", 1, 3), ("in", 1, 4)))
    assert producer.calls == ["init", "begin", "send_offsets", "commit"]
    assert [offsets(s) for s in producer.sent_offsets] == [{("in", 1): 5}]
    assert consumer.stored == []  # offsets travel in the transaction only


def test_an_abortable_error_aborts_and_rewinds_to_the_committed_offsets(
    setup: Callable[..., Setup],
) -> None:
    producer, outputs = setup()
    consumer = FakeConsumer(committed={("in", 0): 8})
    producer.commit_errors = [_abortable()]
    checkpoint = begun(producer, outputs)
    checkpoint.produce(records(2))
    with pytest.raises(TransactionAborted) as raised:
        checkpoint.commit(consumer, batch(("in", 0, 8), ("in", 0, 9), ("in", 2, 30)))
    assert producer.calls[-1] == "abort"
    # partition 0 goes back to its committed offset; partition 2 has none: to the batch start
    assert sorted(consumer.seeks) == [("in", 0, 8), ("in", 2, 30)]
    assert sorted(raised.value.partitions) == [("in", 0), ("in", 2)]


def test_a_retriable_commit_error_is_retried(setup: Callable[..., Setup]) -> None:
    producer, outputs = setup()
    producer.commit_errors = [
        KafkaException(KafkaError(KafkaError._TIMED_OUT, "slow", retriable=True))
    ]
    checkpoint = begun(producer, outputs)
    checkpoint.commit(FakeConsumer(), batch(("in", 0, 1)))
    assert producer.calls.count("commit") == 2
    assert "abort" not in producer.calls


def test_a_fatal_transaction_error_is_raised_without_abort(setup: Callable[..., Setup]) -> None:
    producer, outputs = setup()
    producer.send_offsets_error = KafkaException(
        KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    )
    consumer = FakeConsumer()
    checkpoint = begun(producer, outputs)
    with pytest.raises(TransactionError, match="cannot be aborted"):
        checkpoint.commit(consumer, batch(("in", 0, 1)))
    assert "abort" not in producer.calls
    assert consumer.seeks == []


def test_an_output_refused_mid_batch_aborts_the_transaction_instead_of_committing(
    setup: Callable[..., Setup],
) -> None:
    producer, outputs = setup()
    producer.refuse_after = 1  # the first output failed: librdkafka refuses the second
    consumer = FakeConsumer(committed={("in", 0): 8})
    checkpoint = begun(producer, outputs)
    checkpoint.produce(records(3))  # no error escapes: the commit deals with it
    with pytest.raises(TransactionAborted, match="refused") as raised:
        checkpoint.commit(consumer, batch(("in", 0, 8), ("in", 0, 9)))
    assert producer.calls == ["init", "begin", "abort"]  # no offsets, no commit
    assert consumer.seeks == [("in", 0, 8)]
    assert raised.value.attempt == 1


def test_a_batch_aborted_again_and_again_stops_the_worker(setup: Callable[..., Setup]) -> None:
    producer, outputs = setup()
    consumer = FakeConsumer(committed={("in", 0): 8})
    checkpoint = ExactlyOnce(producer, outputs, timeout_s=1.0, abort_limit=3)
    attempts = []
    for _ in range(2):
        producer.commit_errors = [_abortable()]
        checkpoint.begin()
        with pytest.raises(TransactionAborted) as raised:
            checkpoint.commit(consumer, batch(("in", 0, 8)))
        attempts.append(raised.value.attempt)
    assert attempts == [1, 2]
    producer.commit_errors = [_abortable()]
    checkpoint.begin()
    with pytest.raises(TransactionError, match="3 transactions in a row were aborted"):
        checkpoint.commit(consumer, batch(("in", 0, 8)))
    assert producer.calls.count("abort") == 3  # the last one aborted too: nothing left open


def test_a_commit_resets_the_count_of_aborts_in_a_row(setup: Callable[..., Setup]) -> None:
    producer, outputs = setup()
    consumer = FakeConsumer(committed={("in", 0): 8})
    checkpoint = ExactlyOnce(producer, outputs, timeout_s=1.0, abort_limit=2)
    for _ in range(3):  # abort, commit, abort: never two in a row
        producer.commit_errors = [_abortable()]
        checkpoint.begin()
        with pytest.raises(TransactionAborted) as raised:
            checkpoint.commit(consumer, batch(("in", 0, 8)))
        assert raised.value.attempt == 1
        checkpoint.begin()
        checkpoint.commit(consumer, batch(("in", 0, 8)))


def test_an_abort_that_fails_is_a_transaction_error(setup: Callable[..., Setup]) -> None:
    producer, outputs = setup()
    producer.commit_errors = [_abortable()]
    producer.abort_error = KafkaException(KafkaError(KafkaError._FATAL, "fatal", fatal=True))
    consumer = FakeConsumer()
    checkpoint = begun(producer, outputs)
    with pytest.raises(TransactionError, match="abort failed"):
        checkpoint.commit(consumer, batch(("in", 0, 1)))
    assert consumer.seeks == []


def test_close_aborts_the_transaction_of_a_batch_that_failed_midway(
    setup: Callable[..., Setup],
) -> None:
    producer, outputs = setup()
    consumer = FakeConsumer()
    checkpoint = begun(producer, outputs)
    checkpoint.commit(consumer, batch(("in", 0, 1)))
    checkpoint.close(consumer)  # committed: nothing is open
    assert "abort" not in producer.calls
    checkpoint.begin()  # the next batch fails while scoring: no commit comes
    checkpoint.close(consumer)
    checkpoint.close(consumer)
    assert producer.calls[-2:] == ["begin", "abort"]


def test_close_after_a_failed_abort_only_warns(setup: Callable[..., Setup]) -> None:
    producer, outputs = setup()
    producer.abort_error = KafkaException(KafkaError(KafkaError._FATAL, "fatal", fatal=True))
    checkpoint = begun(producer, outputs)
    checkpoint.close(FakeConsumer())  # the broker times the transaction out instead
    assert producer.calls[-1] == "abort"


def test_an_aborted_batch_is_consumed_again_after_a_pause_that_doubles() -> None:
    assert [abort_pause_s(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def _count(histogram: Any) -> float:
    """Observations of an unlabelled histogram so far."""
    return sum(
        sample.value for sample in histogram.collect()[0].samples if sample.name.endswith("_count")
    )
