"""Consumer lag of driftline's groups and record counts of the dead-letter topics.

Both come from the admin API alone (no consumer joins a group): committed offsets from
``list_consumer_group_offsets``, ends from ``list_offsets``. Lag is measured against the
last stable offset (read_committed), which is where driftline's consumers stop. A topic
written in transactions keeps a commit marker after its last record, so a group that is
fully caught up on it can show a lag of one per partition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)

# OffsetSpec is public API, but confluent_kafka.admin does not re-export it for type checkers.
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from events import topics
from events.settings import KafkaSettings

# Admin round trips to a reachable broker take milliseconds; a stuck one is reported.
DEFAULT_TIMEOUT_S: Final = 10.0
ABSENT: Final = "absent"
T = TypeVar("T")
# Error codes of a topic deleted between listing it and asking for its offsets.
GONE: Final = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._NOENT}
)
# confluent-kafka leaves these constructors untyped.
EARLIEST: Final = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
LATEST: Final = OffsetSpec.latest()  # type: ignore[no-untyped-call]


class KafkaStatusError(Exception):
    """The broker could not be asked for groups, offsets or topics."""


@dataclass
class GroupLag:
    """Lag of one consumer group: records behind the end, per topic, committed partitions only."""

    group: str
    state: str
    lag: dict[str, int] = field(default_factory=dict)
    partitions: int = 0

    @property
    def total(self) -> int:
        return sum(self.lag.values())


@dataclass(frozen=True)
class DeadLetters:
    """Records held by one dead-letter topic (high minus low watermark, every partition)."""

    topic: str
    records: int


class KafkaProbe:
    """Admin queries of one cluster, each bounded by ``timeout_s``."""

    def __init__(self, kafka: KafkaSettings, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        # The status reports an unreachable broker itself; librdkafka would repeat it on
        # stderr at every reconnect attempt.
        self.admin = AdminClient({**kafka.client_config(), "log_level": 0})
        self.timeout_s = timeout_s
        self.bootstrap = kafka.bootstrap_servers

    def group_lags(self, groups: Sequence[str]) -> list[GroupLag]:
        """Lag of each named group; a group the broker does not know is reported absent."""
        listed = self._wait(self.admin.list_consumer_groups(request_timeout=self.timeout_s))
        states = {g.group_id: g.state.name.lower() for g in listed.valid}
        lags = []
        for group in groups:
            result = GroupLag(group, states.get(group, ABSENT))
            committed = self._committed(group) if group in states else {}
            ends = self._offsets(committed, LATEST)
            for tp, offset in committed.items():
                if tp in ends:  # else its topic was deleted
                    lag = max(0, ends[tp] - offset)
                    result.lag[tp.topic] = result.lag.get(tp.topic, 0) + lag
                    result.partitions += 1
            lags.append(result)
        return lags

    def dead_letters(self, prefix: str = topics.DLQ_PREFIX) -> list[DeadLetters]:
        """Every topic named ``<prefix>...`` with the records it holds, by name."""
        metadata = self._call(lambda: self.admin.list_topics(timeout=self.timeout_s))
        partitions = [
            TopicPartition(name, partition)
            for name, topic in metadata.topics.items()
            if name.startswith(prefix) and topic.error is None
            for partition in topic.partitions
        ]
        lows = self._offsets(partitions, EARLIEST)
        highs = self._offsets(partitions, LATEST)
        counts: dict[str, int] = {}
        for tp in partitions:
            if tp in lows and tp in highs:  # else its topic was deleted meanwhile
                counts[tp.topic] = counts.get(tp.topic, 0) + highs[tp] - lows[tp]
        return [DeadLetters(name, counts[name]) for name in sorted(counts)]

    def _committed(self, group: str) -> dict[TopicPartition, int]:
        request = [ConsumerGroupTopicPartitions(group)]
        futures = self.admin.list_consumer_group_offsets(request, request_timeout=self.timeout_s)
        answer = self._wait(futures[group])
        return {
            TopicPartition(tp.topic, tp.partition): tp.offset
            for tp in answer.topic_partitions
            if tp.offset >= 0  # no committed offset: nothing to measure against
        }

    def _offsets(self, partitions: Iterable[TopicPartition], spec: OffsetSpec) -> dict[Any, int]:
        """Offset per partition (keyed by (topic, partition) equality) for one spec.

        One request per topic, so that a topic deleted since it was listed (a test's, an
        old dead-letter topic) is left out instead of failing the others.
        """
        by_topic: dict[str, list[TopicPartition]] = {}
        for tp in partitions:
            by_topic.setdefault(tp.topic, []).append(TopicPartition(tp.topic, tp.partition))
        offsets: dict[Any, int] = {}
        for topic, asked in by_topic.items():
            futures = self.admin.list_offsets(
                dict.fromkeys(asked, spec),
                isolation_level=IsolationLevel.READ_COMMITTED,
                request_timeout=self.timeout_s,
            )
            try:
                answered = {
                    tp: future.result(timeout=self.timeout_s) for tp, future in futures.items()
                }
            except KafkaException as exc:
                if _gone(exc):
                    continue
                raise KafkaStatusError(f"cannot read the offsets of {topic}: {exc}") from exc
            except TimeoutError as exc:
                raise KafkaStatusError(f"cannot read the offsets of {topic}: {exc}") from exc
            offsets.update((tp, info.offset) for tp, info in answered.items())
        return offsets

    def _wait(self, future: Future[Any]) -> Any:
        return self._call(lambda: future.result(timeout=self.timeout_s))

    def _call(self, request: Callable[[], T]) -> T:
        try:
            return request()
        except (KafkaException, TimeoutError) as exc:
            raise KafkaStatusError(f"cannot query {self.bootstrap}: {exc}") from exc


def _gone(exc: KafkaException) -> bool:
    """Whether an admin error says the topic or partition no longer exists."""
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and error.code() in GONE
