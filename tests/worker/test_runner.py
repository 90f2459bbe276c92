"""The consume loop, its settings and the rebalance handling, with fake Kafka clients."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from prometheus_client import REGISTRY

from worker import metrics
from worker.http import Health
from worker.offsets import (
    AtLeastOnce,
    Deliveries,
    ExactlyOnce,
    Outputs,
    TransactionAborted,
    TransactionError,
    rewind,
)
from worker.records import BatchResult, OutRecord
from worker.runner import Runner, WorkerStopped
from worker.settings import WorkerSettings
from worker.warmup import Assignments, HistoryReader, Window, plan

TOPIC = "readings.sensor"


class Msg:
    """A consumed record or, with ``error``, an error event."""

    def __init__(self, partition: int, offset: int, error: KafkaError | None = None) -> None:
        self._partition = partition
        self._offset = offset
        self._error = error

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"m-1"

    def value(self) -> bytes:
        return f"{self._partition}:{self._offset}".encode()

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000 + self._offset)

    def error(self) -> KafkaError | None:
        return self._error


class RecordingPipeline:
    """One output per record; logs every call so tests can check their order."""

    def __init__(self, history: int = 5) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self.history = history

    def process(self, messages: Sequence[Any]) -> BatchResult:
        self.calls.append(("process", [(m.partition(), m.offset()) for m in messages]))
        out = [OutRecord("out", m.key(), m.value(), "prediction") for m in messages]
        return BatchResult(records=out, model_seconds={"fake": 0.001})

    def warm(self, messages: Sequence[Any]) -> None:
        self.calls.append(("warm", [(m.partition(), m.offset()) for m in messages]))

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        self.calls.append(("forget", sorted(partitions)))

    def history_needed(self) -> int:
        return self.history

    def refresh(self, name: str, key: str | None) -> None:
        self.calls.append(("refresh", [(name, key)]))

    def close(self) -> None:
        self.calls.append(("close", []))


def warmed_offsets(calls: Sequence[tuple[str, list[Any]]]) -> list[int]:
    """Offsets of the records fed to ``pipeline.warm`` in ``calls``, in order."""
    return [offset for kind, batch in calls if kind == "warm" for _, offset in batch]


class GroupConsumer:
    """Returns scripted batches; a script step may first run a rebalance callback."""

    def __init__(self, script: list[Any], committed: dict[int, int] | None = None) -> None:
        self.script = list(script)
        self.callbacks: dict[str, Callable[..., None]] = {}
        self.stored: list[dict[tuple[str, int], int]] = []
        self.commits = 0
        self.closed = False
        self.seeks: list[tuple[str, int, int]] = []
        self._committed = committed or {}
        self.positions: dict[int, int] = {}
        self.assigned: list[tuple[int, int]] = []  # (partition, start offset) as assigned
        self.on_empty: Callable[[], None] = lambda: None

    def subscribe(self, topics: list[str], **callbacks: Callable[..., None]) -> None:
        assert topics == [TOPIC]
        self.callbacks = callbacks

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        if not self.script:
            self.on_empty()
            return []
        step = self.script.pop(0)
        if isinstance(step, tuple):  # ("on_assign", [TopicPartition...][, records fetched before])
            name, partitions, *fetched = step
            self.callbacks[name](self, partitions)
            return list(fetched[0]) if fetched else []
        assert len(step) <= num_messages
        for message in step:  # the application's position, as librdkafka keeps it
            self.positions[message.partition()] = message.offset() + 1
        return list(step)

    def store_offsets(self, *args: Any, offsets: list[TopicPartition]) -> None:
        self.stored.append({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def commit(self, *args: Any, **kwargs: Any) -> None:
        self.commits += 1

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[Any]:
        return [
            TopicPartition(tp.topic, tp.partition, self._committed.get(tp.partition, -1001))
            for tp in partitions
        ]

    def get_watermark_offsets(self, tp: TopicPartition, **kwargs: Any) -> tuple[int, int]:
        return (0, 1_000)

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned += [(tp.partition, tp.offset) for tp in partitions]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.positions.get(tp.partition, -1001))
            for tp in partitions
        ]

    def consumer_group_metadata(self) -> str:
        return "meta"

    def close(self) -> None:
        self.closed = True


class Producer:
    def __init__(self) -> None:
        self.produced: list[bytes | None] = []

    def produce(self, topic: str, value: bytes | None = None, *args: Any, **kw: Any) -> None:
        self.produced.append(value)

    def poll(self, timeout: float = -1) -> int:
        return 0

    def flush(self, timeout: float = -1) -> int:
        return 0


class Reader:
    """A non-group consumer over a fixed history per partition (offsets 0..n-1)."""

    def __init__(self, history: dict[int, int]) -> None:
        self.history = history
        self.positions: dict[int, int] = {}
        self.assigned: list[tuple[int, int]] = []

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = [(tp.partition, tp.offset) for tp in partitions]
        self.positions = {tp.partition: tp.offset for tp in partitions}

    def unassign(self) -> None:
        self.positions = {}

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        out: list[Any] = []
        for partition, position in self.positions.items():
            end = self.history[partition]
            if position >= end:
                out.append(Msg(partition, end, KafkaError(KafkaError._PARTITION_EOF)))
                continue
            out.extend(Msg(partition, o) for o in range(position, min(end, position + 3)))
            self.positions[partition] = min(end, position + 3)
        return out

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(TOPIC, tp.partition, self.positions[tp.partition]) for tp in partitions
        ]

    def close(self) -> None:
        pass


def make_runner(
    consumer: GroupConsumer,
    pipeline: RecordingPipeline,
    reader: Reader | None = None,
    **settings: Any,
) -> tuple[Runner, Producer]:
    producer = Producer()
    deliveries = Deliveries()
    config = WorkerSettings(input_topics=[TOPIC], instance_id="t-0", **settings)
    runner = Runner(
        config,
        consumer,
        AtLeastOnce(Outputs(producer, deliveries, 1.0)),
        pipeline,
        health=Health(60),
        reader=HistoryReader(lambda: reader or Reader({})),
    )
    return runner, producer


# --- settings -------------------------------------------------------------------------


def test_settings_read_the_worker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_INPUT_TOPICS", '["a", "b"]')
    monkeypatch.setenv("WORKER_PROCESSING_GUARANTEE", "exactly_once")
    monkeypatch.setenv("WORKER_BATCH_MAX_RECORDS", "64")
    monkeypatch.setenv("WORKER_INSTANCE_ID", "host-3")
    settings = WorkerSettings()
    assert settings.input_topics == ["a", "b"]
    assert settings.batch_max_records == 64
    assert settings.http_host == "127.0.0.1"
    assert settings.transactional_id == "driftline-worker-host-3"


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="guarantee"):
        WorkerSettings.model_validate({"processing_guarantee": "at_most_once"})
    with pytest.raises(ValueError, match="batch_max_records"):
        WorkerSettings.model_validate({"batch_max_records": 0})


def test_every_setting_is_documented() -> None:
    undocumented = [n for n, f in WorkerSettings.model_fields.items() if not f.description]
    assert undocumented == []


def test_at_least_once_client_configs() -> None:
    settings = WorkerSettings(instance_id="w-1")
    from events.settings import KafkaSettings

    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    consumer = settings.consumer_config(kafka)
    assert consumer["partition.assignment.strategy"] == "cooperative-sticky"
    assert consumer["isolation.level"] == "read_committed"
    assert (consumer["enable.auto.commit"], consumer["enable.auto.offset.store"]) == (True, False)
    producer = settings.producer_config(kafka)
    assert (producer["enable.idempotence"], producer["acks"]) == (True, "all")
    assert "transactional.id" not in producer


def test_exactly_once_client_configs() -> None:
    from events.settings import KafkaSettings

    settings = WorkerSettings(instance_id="w-1", processing_guarantee="exactly_once")
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    assert settings.consumer_config(kafka)["enable.auto.commit"] is False
    assert settings.producer_config(kafka)["transactional.id"] == "driftline-worker-w-1"
    reader = settings.reader_config(kafka, "warmup")
    assert reader["group.id"] != settings.group_id
    assert reader["enable.auto.commit"] is False


def test_pipeline_factories_are_named_module_colon_callable() -> None:
    from worker.pipeline import build_pipeline

    assert WorkerSettings().pipeline_factory() is build_pipeline
    with pytest.raises(ValueError, match="module:callable"):
        WorkerSettings(pipeline="worker.pipeline").pipeline_factory()


# --- the loop -------------------------------------------------------------------------


def test_a_batch_is_scored_produced_and_its_offsets_stored() -> None:
    eof = Msg(0, 3, KafkaError(KafkaError._PARTITION_EOF))
    broken = Msg(1, -1, KafkaError(KafkaError._TRANSPORT))
    consumer = GroupConsumer([[Msg(0, 1), Msg(0, 2), eof, broken, Msg(1, 7)]])
    pipeline = RecordingPipeline()
    runner, producer = make_runner(consumer, pipeline)
    errors = metrics.CONSUME_ERRORS.labels("_TRANSPORT")
    consumed = metrics.RECORDS_CONSUMED.labels(TOPIC)
    before = (errors._value.get(), consumed._value.get())
    assert runner.step() == 3
    assert pipeline.calls == [("process", [(0, 1), (0, 2), (1, 7)])]
    assert producer.produced == [b"0:1", b"0:2", b"1:7"]
    assert consumer.stored == []  # acknowledged one batch late: at the next step
    assert errors._value.get() == before[0] + 1  # the EOF event is not an error
    assert consumed._value.get() == before[1] + 3
    assert runner.step() == 0  # an idle poll settles the batch
    assert consumer.stored == [{(TOPIC, 0): 3, (TOPIC, 1): 8}]


class TimedConsumer(GroupConsumer):
    """Records each consume call: how many records it asked for and how long it may block."""

    def __init__(self, script: list[Any]) -> None:
        super().__init__(script)
        self.calls: list[tuple[int, float]] = []

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        self.calls.append((num_messages, timeout))
        return super().consume(num_messages, timeout)


def test_a_batch_waits_at_most_the_batch_wait_to_fill() -> None:
    consumer = TimedConsumer([[Msg(0, 1), Msg(0, 2)]])
    runner, _ = make_runner(consumer, RecordingPipeline())
    assert runner.step() == 2
    assert consumer.calls == [(runner.settings.batch_max_records, runner.settings.batch_max_wait_s)]


def test_stop_finishes_the_batch_in_flight_then_commits_and_closes() -> None:
    consumer = GroupConsumer([[Msg(0, 0)], [Msg(0, 1)], [Msg(0, 2)]])
    pipeline = RecordingPipeline()
    runner, _ = make_runner(consumer, pipeline)
    consumer.script.insert(2, [Msg(0, 9)])
    original = pipeline.process

    def process_then_stop(messages: Sequence[Any]) -> BatchResult:
        if messages[0].offset() == 1:
            runner.stop()  # a SIGTERM arriving while batch 2 is scored
        return original(messages)

    pipeline.process = process_then_stop  # type: ignore[method-assign]
    runner.run()
    assert [c[1] for c in pipeline.calls] == [[(0, 0)], [(0, 1)], []]
    assert pipeline.calls[-1][0] == "close"  # its helper thread stops last
    assert consumer.stored[-1] == {(TOPIC, 0): 2}
    assert consumer.commits >= 1 and consumer.closed


def test_assignment_warms_state_before_the_first_batch() -> None:
    tp = TopicPartition(TOPIC, 0)
    consumer = GroupConsumer([("on_assign", [tp]), [Msg(0, 10), Msg(0, 11)]], committed={0: 10})
    pipeline = RecordingPipeline()
    reader = Reader({0: 10})
    runner, _ = make_runner(consumer, pipeline, reader, warmup_records=4)
    consumer.on_empty = runner.stop
    runner.run()
    assert reader.assigned == [(0, 6)]  # committed 10 - 4 records
    kinds = [kind for kind, _ in pipeline.calls]
    assert kinds[: kinds.index("process")] == ["warm", "warm"]
    warmed = warmed_offsets(pipeline.calls)
    assert warmed == [6, 7, 8, 9]
    assert runner.health.readiness()[1]["assigned_partitions"] == 1


def test_a_new_partition_is_consumed_from_where_its_read_back_ended() -> None:
    committed, new = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    consumer = GroupConsumer([("on_assign", [committed, new])], committed={0: 10})
    reader = Reader({0: 10, 1: 1_000})
    runner, _ = make_runner(
        consumer, RecordingPipeline(), reader, warmup_records=4, auto_offset_reset="latest"
    )
    runner.start()
    runner.step()
    # partition 1 has no committed offset: "latest" as of the read-back (the fake's high
    # watermark), not as librdkafka would look it up later; partition 0 resumes as committed
    assert consumer.assigned == [(0, -1001), (1, 1_000)]


def test_revoke_commits_before_the_state_is_forgotten() -> None:
    tp = TopicPartition(TOPIC, 2)
    consumer = GroupConsumer([("on_assign", [tp]), [Msg(2, 0)], ("on_revoke", [tp])])
    pipeline = RecordingPipeline(history=0)  # nothing to warm
    runner, _ = make_runner(consumer, pipeline)
    runner.start()
    for _ in range(3):
        runner.step()
    assert consumer.commits == 1
    assert pipeline.calls[-1] == ("forget", [(TOPIC, 2)])
    assert runner.assignments.assigned == set()


def test_records_of_a_partition_revoked_during_the_poll_are_left_to_its_next_owner() -> None:
    kept, moved = TopicPartition(TOPIC, 1), TopicPartition(TOPIC, 2)
    fetched = [Msg(1, 5), Msg(2, 7), Msg(2, 8)]  # fetched before the revoke, returned after
    consumer = GroupConsumer(
        [("on_assign", [kept, moved]), ("on_revoke", [moved], fetched), [Msg(1, 6)]]
    )
    pipeline = RecordingPipeline(history=0)
    runner, _ = make_runner(consumer, pipeline)
    runner.start()
    before = REGISTRY.get_sample_value("driftline_worker_revoked_records_total") or 0.0
    for _ in range(4):
        runner.step()
    processed = [batch for kind, batch in pipeline.calls if kind == "process"]
    assert processed == [[(1, 5)], [(1, 6)]]
    stored = {tp: offset for offsets in consumer.stored for tp, offset in offsets.items()}
    assert stored == {(TOPIC, 1): 7}  # nothing stored, hence committed, for partition 2
    after = REGISTRY.get_sample_value("driftline_worker_revoked_records_total")
    assert after == before + 2


@pytest.fixture
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """An aborted batch is consumed again at once (the pause has its own test)."""
    monkeypatch.setattr("worker.runner.abort_pause_s", lambda attempt: 0.0)


def aborting_runner() -> tuple[Runner, RecordingPipeline]:
    """A runner over one record of partition 1 whose every transaction aborts."""
    consumer = GroupConsumer([[Msg(1, 4)]], committed={1: 4})
    pipeline = RecordingPipeline()
    runner, _ = make_runner(consumer, pipeline, Reader({1: 4}), warmup_records=2)

    def abort(*args: Any) -> None:
        raise TransactionAborted("aborted", {(TOPIC, 1): 4})

    runner.checkpoint.commit = abort  # type: ignore[method-assign,assignment]
    return runner, pipeline


@pytest.mark.usefixtures("no_pause")
def test_an_aborted_transaction_rebuilds_the_state_of_its_partitions() -> None:
    runner, pipeline = aborting_runner()
    assert runner.step() == 0
    assert [kind for kind, _ in pipeline.calls] == ["process", "forget", "warm"]
    assert pipeline.calls[-1] == ("warm", [(1, 2), (1, 3)])


def test_a_stop_during_the_pause_after_an_abort_leaves_without_re_warming() -> None:
    runner, pipeline = aborting_runner()
    runner.stop()  # SIGTERM arrives while the batch is scored: the pause ends at once
    assert runner.step() == 0
    assert [kind for kind, _ in pipeline.calls] == ["process"]


class RefusingProducer(Producer):
    """A transactional producer whose broker refuses an output of every transaction (a
    dead-letter copy above its topic's max.message.bytes): each commit needs an abort."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def init_transactions(self, timeout: float = -1) -> None:
        self.calls.append("init")

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, *args: Any, **kwargs: Any) -> None:
        raise KafkaException(
            KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large", txn_requires_abort=True)
        )

    def commit_transaction(self, timeout: float = -1) -> None:
        self.calls.append("commit")

    def abort_transaction(self, timeout: float = -1) -> None:
        self.calls.append("abort")


@pytest.mark.usefixtures("no_pause")
def test_a_batch_that_can_never_commit_stops_the_worker_after_the_abort_limit() -> None:
    consumer = GroupConsumer([[Msg(0, 0), Msg(0, 1)]] * 10, committed={0: 0})
    producer = RefusingProducer()
    runner, _ = make_runner(consumer, RecordingPipeline())
    runner.checkpoint = ExactlyOnce(
        producer, Outputs(producer, Deliveries(), 1.0), 1.0, abort_limit=3
    )
    assert runner.step() == 0  # aborted, rewound, consumed again
    assert runner.step() == 0
    with pytest.raises(TransactionError, match="3 transactions in a row"):
        runner.step()
    assert producer.calls.count("abort") == 3
    assert "commit" not in producer.calls


class GrowingTopic(GroupConsumer):
    """A partition whose end moves as records arrive (reset=latest starts there)."""

    high = 1_000

    def get_watermark_offsets(self, tp: TopicPartition, **kwargs: Any) -> tuple[int, int]:
        return (0, self.high)


@pytest.mark.usefixtures("no_pause")
def test_an_abort_before_the_first_commit_rewarms_up_to_where_it_rewound() -> None:
    # No committed offset and reset=latest: consumption started at 1000. The re-warm after
    # the abort must end at the rewind point, not at the partition's end as of then, or
    # the rewound batch would be in state before it is scored again.
    consumer = GrowingTopic([("on_assign", [TopicPartition(TOPIC, 1)]), [Msg(1, 1000)]])
    reader = Reader({1: 1_000})
    pipeline = RecordingPipeline(history=4)
    runner, _ = make_runner(
        consumer, pipeline, reader, warmup_records=4, auto_offset_reset="latest"
    )

    def abort(consumer: Any, messages: Sequence[Any]) -> None:
        raise TransactionAborted("aborted", rewind(consumer, messages, 1.0))

    runner.checkpoint.commit = abort  # type: ignore[method-assign,assignment]
    runner.start()
    runner.step()  # assigned at the end of the partition, 1000
    consumer.high = reader.history[1] = 1_001  # reading 1000 arrives
    assert runner.step() == 0  # scored, aborted, rewound, re-warmed
    assert consumer.seeks == [(TOPIC, 1, 1_000)]
    kinds = [kind for kind, _ in pipeline.calls]
    forget = len(kinds) - 1 - kinds[::-1].index("forget")
    assert kinds[forget - 1] == "process" and set(kinds[forget + 1 :]) == {"warm"}
    rewarmed = warmed_offsets(pipeline.calls[forget + 1 :])
    assert rewarmed == [996, 997, 998, 999]


def test_a_swap_before_the_first_batch_rewarms_up_to_where_consumption_started() -> None:
    consumer = GrowingTopic([("on_assign", [TopicPartition(TOPIC, 1)]), [Msg(1, 1000)]])
    reader = Reader({1: 1_000})
    pipeline = RecordingPipeline(history=4)
    pipeline.refresh = lambda name, key: True  # type: ignore[method-assign,assignment]
    runner, _ = make_runner(
        consumer, pipeline, reader, warmup_records=4, auto_offset_reset="latest"
    )
    runner.start()
    runner.step()  # assigned at 1000; nothing consumed yet, so no position
    consumer.high = reader.history[1] = 1_001
    runner.updates = FakeUpdates()  # type: ignore[assignment]
    assert runner.step() == 1
    warmed = warmed_offsets(pipeline.calls)
    assert max(warmed) == 999
    assert pipeline.calls[-1] == ("process", [(1, 1000)])


class FakeUpdates:
    """Model updates with one swap (demand/p-1) to take, as the updates thread queues it."""

    def __init__(self, alive: bool = True) -> None:
        self.ready = threading.Event()
        self.ready.set()
        self.positioned = threading.Event()
        self.alive = alive
        self.error = None
        self.pending: list[tuple[str, str | None]] = [("demand", "p-1")]

    def is_alive(self) -> bool:
        return self.alive

    def refreshes(self) -> list[tuple[str, str | None]]:
        taken, self.pending = self.pending, []
        return taken

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def test_model_changes_refresh_the_pipeline_between_batches() -> None:
    consumer = GroupConsumer([[]])
    pipeline = RecordingPipeline()
    runner, _ = make_runner(consumer, pipeline)
    runner.updates = FakeUpdates()  # type: ignore[assignment]
    runner.step()
    assert pipeline.calls == [("refresh", [("demand", "p-1")])]
    assert runner.health.readiness()[1]["models_ready"] is True


def test_a_swap_needing_a_longer_window_rewarms_up_to_the_consumer_position() -> None:
    tp = TopicPartition(TOPIC, 1)
    consumer = GroupConsumer([("on_assign", [tp]), [], []], committed={1: 6})
    pipeline = RecordingPipeline()
    pipeline.refresh = lambda name, key: True  # type: ignore[method-assign,assignment]
    runner, _ = make_runner(consumer, pipeline, Reader({1: 9}), warmup_records=4)
    runner.start()
    runner.step()  # assignment: warmed up to the committed offset 6
    consumer.positions[1] = 9  # batches up to 8 processed, not committed yet
    runner.updates = FakeUpdates()  # type: ignore[assignment]
    runner.step()
    assert [kind for kind, _ in pipeline.calls] == ["warm", "warm", "forget", "warm", "warm"]
    rewarmed = warmed_offsets(pipeline.calls[3:])
    assert rewarmed == [5, 6, 7, 8]


def runner_past_one_batch() -> tuple[Runner, GroupConsumer, RecordingPipeline]:
    """Partition 1 warmed up to 6 and 6-7 scored, 8-9 next; every swap needs more history."""
    tp = TopicPartition(TOPIC, 1)
    consumer = GroupConsumer(
        [("on_assign", [tp]), [Msg(1, 6), Msg(1, 7)], [Msg(1, 8), Msg(1, 9)]], committed={1: 6}
    )
    pipeline = RecordingPipeline()
    pipeline.refresh = lambda name, key: True  # type: ignore[method-assign,assignment]
    runner, _ = make_runner(consumer, pipeline, Reader({1: 12}), warmup_records=4)
    runner.start()
    runner.step()  # assignment: warmed up to the committed offset 6
    assert runner.step() == 2  # 6 and 7 scored
    del pipeline.calls[:]
    return runner, consumer, pipeline


def assert_rewarmed_up_to_the_batch_then_scored_it(pipeline: RecordingPipeline) -> None:
    # The batch's own readings are scored, not read back: in state first, they would be
    # skipped as stale.
    assert [kind for kind, _ in pipeline.calls] == ["forget", "warm", "warm", "process"]
    assert warmed_offsets(pipeline.calls[1:3]) == [4, 5, 6, 7]
    assert pipeline.calls[3] == ("process", [(1, 8), (1, 9)])


def test_a_swap_seen_with_a_batch_in_hand_rewarms_before_consuming_it() -> None:
    runner, _, pipeline = runner_past_one_batch()
    runner.updates = FakeUpdates()  # type: ignore[assignment]
    assert runner.step() == 2
    assert_rewarmed_up_to_the_batch_then_scored_it(pipeline)


def test_a_swap_during_the_poll_rewarms_up_to_the_batch_before_scoring_it() -> None:
    runner, consumer, pipeline = runner_past_one_batch()
    updates = FakeUpdates()
    updates.pending = []
    runner.updates = updates  # type: ignore[assignment]
    polled = consumer.consume

    def swap_while_polling(num_messages: int = 1, timeout: float = -1) -> list[Any]:
        updates.pending.append(("anomaly", None))  # the updates thread swaps meanwhile
        return polled(num_messages, timeout)

    consumer.consume = swap_while_polling  # type: ignore[method-assign]
    assert runner.step() == 2
    assert_rewarmed_up_to_the_batch_then_scored_it(pipeline)


def test_outputs_unacknowledged_at_a_graceful_stop_fail_the_run() -> None:
    consumer = GroupConsumer([[Msg(0, 0)]])
    pipeline = RecordingPipeline()
    runner, _ = make_runner(consumer, pipeline)
    deliveries = Deliveries()

    class Undelivered(Producer):
        def flush(self, timeout: float = -1) -> int:
            deliveries(KafkaError(KafkaError._MSG_TIMED_OUT), None)
            return 0

    runner.checkpoint = AtLeastOnce(Outputs(Undelivered(), deliveries, 1.0))
    scored = pipeline.process

    def stop_while_scoring(messages: Sequence[Any]) -> BatchResult:
        runner.stop()  # SIGTERM arrives during the batch
        return scored(messages)

    pipeline.process = stop_while_scoring  # type: ignore[method-assign]
    with pytest.raises(WorkerStopped, match="not acknowledged"):
        runner.run()
    assert consumer.stored == [] and consumer.closed  # nothing stored; every step ran


def test_the_model_keys_are_listed_again_when_positioned_then_at_every_alias_check() -> None:
    consumer = GroupConsumer([[]] * 6)
    pipeline = RecordingPipeline()
    relisted: list[float] = []
    now = [0.0]
    pipeline.relist = lambda: relisted.append(now[0]) or False  # type: ignore[attr-defined]
    config = WorkerSettings(input_topics=[TOPIC], instance_id="t-0", alias_check_s=10)
    producer = Producer()
    runner = Runner(
        config,
        consumer,
        AtLeastOnce(Outputs(producer, Deliveries(), 1.0)),
        pipeline,
        health=Health(60),
        reader=HistoryReader(lambda: Reader({})),
        clock=lambda: now[0],
    )
    runner.updates = updates = FakeUpdates()  # type: ignore[assignment]
    runner.step()
    assert relisted == []  # not positioned yet: a promotion may still be missed
    updates.positioned.set()
    for at in (1.0, 5.0, 11.0, 12.0, 21.0):
        now[0] = at
        runner.step()
    # a key first promoted unannounced (--no-announce) is served within the alias check
    assert relisted == [1.0, 11.0, 21.0]


def test_a_dead_updates_thread_stops_the_worker() -> None:
    consumer = GroupConsumer([[Msg(0, 0)]])
    runner, _ = make_runner(consumer, RecordingPipeline())
    runner.updates = FakeUpdates(alive=False)  # type: ignore[assignment]
    with pytest.raises(WorkerStopped):
        runner.run()
    assert consumer.closed


# --- warm-up planning and reading -----------------------------------------------------


def test_a_warm_up_cut_short_leaves_the_partitions_it_did_not_finish_cold() -> None:
    # Read from its start and stopped, a window holds only the oldest readings: scored
    # windows would hide the gap before the first live reading.
    stop = threading.Event()
    reader = Reader({0: 2, 1: 40})
    original = reader.consume

    def consume_then_stop(num_messages: int = 1, timeout: float = -1) -> list[Any]:
        stop.set()  # SIGTERM during the read-back: partition 0's window is read whole
        return original(num_messages, timeout)

    reader.consume = consume_then_stop  # type: ignore[method-assign]
    consumer = GroupConsumer([], committed={0: 2, 1: 40})
    pipeline = RecordingPipeline(history=10)
    assignments = Assignments(
        pipeline,
        AtLeastOnce(Outputs(Producer(), Deliveries(), 1.0)),
        HistoryReader(lambda: reader, stop),
        Health(60),
        records=10,
        timeout_s=60,
        reset="earliest",
    )
    assignments.warm(consumer, [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])
    assert pipeline.calls[-1] == ("forget", [(TOPIC, 1)])
    assert [kind for kind, _ in pipeline.calls[:-1]] == ["warm"] * (len(pipeline.calls) - 1)


def test_plan_reads_back_a_bounded_window_ending_at_the_committed_offset() -> None:
    consumer = GroupConsumer([], committed={0: 500, 1: 3})
    windows = plan(consumer, [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)], 100, "earliest")
    assert windows == [Window(TOPIC, 0, 400, 500), Window(TOPIC, 1, 0, 3)]


def test_plan_without_committed_offsets_follows_auto_offset_reset() -> None:
    consumer = GroupConsumer([])
    partitions = [TopicPartition(TOPIC, 0)]
    assert plan(consumer, partitions, 100, "earliest") == []  # starts at the oldest record
    assert plan(consumer, partitions, 100, "latest") == [Window(TOPIC, 0, 900, 1_000)]
    assert plan(consumer, partitions, 0, "latest") == []  # warm-up disabled


def test_history_reader_stops_at_each_window_end() -> None:
    reader = Reader({0: 8, 1: 2})
    chunks: list[list[Any]] = []
    total, unfinished = HistoryReader(lambda: reader).read(
        [Window(TOPIC, 0, 3, 8), Window(TOPIC, 1, 0, 2)], chunks.append, timeout_s=5
    )
    got = sorted((m.partition(), m.offset()) for chunk in chunks for m in chunk)
    assert got == [(0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (1, 0), (1, 1)]
    assert (total, unfinished) == (7, [])
