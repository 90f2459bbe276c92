"""Label clocks: how far the labels of each partition number have been read, in Kafka time.

Actuals and readings are co-partitioned with the predictions, so the labels of a
prediction read from partition n come from partition n of the label topics. The clock of
partition number n is the newest Kafka timestamp read on the slowest of those label
partitions that still has records to read, or, once every one is read to its end, the
newest of all. A label partition just assigned holds its number's clock back until it is
read or reported at its end: a catch-up may fetch one topic before another.

The join ages waiting predictions on these clocks (see :mod:`monitor.join`): they move only
as labels are read, so a broker outage or a lagging topic ages nothing.

>>> clocks = LabelClocks()
>>> clocks.assigned([("readings.sensor", 0), ("actuals", 0)])
>>> clocks.read(("readings.sensor", 0), 5_000)
>>> clocks.clocks()  # the actuals partition is not heard from yet
{}
>>> clocks.caught_up(("actuals", 0))
>>> clocks.clocks()
{0: 5000}
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.offsets import TopicPartition


class LabelClocks:
    """The label clock of every partition number (µs since the epoch, Kafka time)."""

    def __init__(self) -> None:
        self._newest: dict[TopicPartition, int] = {}  # newest label time read, per partition
        self._caught_up: set[TopicPartition] = set()  # read to their end
        self._unheard: set[TopicPartition] = set()  # assigned, neither read nor at their end

    def assigned(self, tps: Iterable[TopicPartition]) -> None:
        """Label partitions just assigned: each holds its number's clock until heard from."""
        self._unheard.update(tps)

    def read(self, tp: TopicPartition, kafka_us: int) -> None:
        """A label record with Kafka timestamp ``kafka_us`` was read from ``tp``."""
        self._unheard.discard(tp)
        self._caught_up.discard(tp)
        if kafka_us > self._newest.get(tp, 0):
            self._newest[tp] = kafka_us

    def caught_up(self, tp: TopicPartition) -> None:
        """``tp`` is read to its end: until its next record, it holds no clock back."""
        self._unheard.discard(tp)
        self._caught_up.add(tp)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Revoked partitions: read again later, from older records."""
        for tp in tps:
            self._newest.pop(tp, None)
            self._caught_up.discard(tp)
            self._unheard.discard(tp)

    def clocks(self) -> dict[int, int]:
        """Partition number -> its clock; none while one of its label partitions is unheard."""
        behind: dict[int, int] = {}
        newest: dict[int, int] = {}
        for tp, clock in self._newest.items():
            partition = tp[1]
            newest[partition] = max(clock, newest.get(partition, clock))
            if tp not in self._caught_up:
                behind[partition] = min(clock, behind.get(partition, clock))
        clocks = newest | behind
        for _, partition in self._unheard:
            clocks.pop(partition, None)
        return clocks
