"""A transaction call that never returns stops the worker instead of hanging it.

librdkafka's send_offsets_to_transaction can block past its own timeout when the group
coordinator moves (a broker restart, see tests/faults/test_broker_restart.py); the worker
runs it with a deadline of its own.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from worker import metrics, offsets
from worker.offsets import (
    Deliveries,
    ExactlyOnce,
    Outputs,
    TransactionError,
    TransactionStuck,
    call_with_deadline,
)

# The stuck calls below are released as soon as the test has its answer.
SHORT_DEADLINE_S = 0.05


class Message:
    def topic(self) -> str:
        return "in"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 41


class HangingProducer:
    """A transactional producer whose send_offsets_to_transaction blocks until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.committed = 0

    def init_transactions(self, timeout: float = 0) -> None:
        pass

    def begin_transaction(self) -> None:
        pass

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: Any, timeout: float = 0
    ) -> None:
        self.release.wait()

    def commit_transaction(self, timeout: float = 0) -> None:
        self.committed += 1

    def produce(self, *args: Any, **kwargs: Any) -> None:
        pass

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0


class Consumer:
    def consumer_group_metadata(self) -> object:
        return object()


def test_a_call_that_returns_in_time_passes_its_result_through() -> None:
    calls: list[str] = []
    call_with_deadline(lambda: calls.append("ran"), 5.0, "call")
    assert calls == ["ran"]

    def fails() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        call_with_deadline(fails, 5.0, "call")


def test_a_call_past_its_deadline_raises_transaction_stuck() -> None:
    release = threading.Event()
    try:
        with pytest.raises(TransactionStuck, match="stuck_call did not return") as raised:
            call_with_deadline(release.wait, SHORT_DEADLINE_S, "stuck_call")
        assert isinstance(raised.value, TransactionError)  # the runner's fatal path
    finally:
        release.set()


def test_exactly_once_commit_stops_on_a_hung_send_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offsets, "HUNG_CALL_MARGIN_S", 0.0)
    producer = HangingProducer()
    checkpoint = ExactlyOnce(producer, Outputs(producer, Deliveries(), 1.0), SHORT_DEADLINE_S)
    failed = metrics.TRANSACTIONS.labels("failed")
    before = failed._value.get()
    try:
        checkpoint.begin()
        with pytest.raises(TransactionStuck, match="send_offsets_to_transaction"):
            checkpoint.commit(Consumer(), [Message()])
    finally:
        producer.release.set()
    assert producer.committed == 0  # nothing is committed after a hung offsets call
    assert failed._value.get() == before + 1
