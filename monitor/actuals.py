"""Actuals: what the join matches predictions with, and the buffer of recent ones.

Three sources give actuals. A demand reading's ``quantity`` is the actual of a demand
forecast of the same product and period; a sensor reading's value of a metric is the
actual of a sequence forecast of that metric at that time; an ``actuals`` record is a
label from elsewhere (maintenance outcomes, corrected figures).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from events import Actual, DemandReading, SensorReading
from monitor.offsets import TopicPartition
from monitor.pending import MatchKey


@dataclass(frozen=True, slots=True)
class Observation:
    """One observed value of one metric of one entity at one time."""

    entity_id: str
    metric: str
    ts_us: int
    value: float


def from_actual(actual: Actual, ts_us: int) -> Observation:
    return Observation(actual.entity_id, actual.metric, ts_us, actual.value)


def from_demand(reading: DemandReading, ts_us: int, metric: str) -> Observation:
    return Observation(reading.product_id, metric, ts_us, reading.quantity)


def from_sensor(reading: SensorReading, ts_us: int) -> list[Observation]:
    """Observations of the reading's non-null values, one per metric."""
    return [
        Observation(reading.entity_id, metric, ts_us, value)
        for metric, value in reading.values.items()
        if value is not None
    ]


@dataclass(frozen=True, slots=True)
class Held:
    """A buffered actual and where it was read (its offset may not be committed yet)."""

    value: float
    tp: TopicPartition
    offset: int


class ActualBuffer:
    """Recent actuals per entity, for predictions that arrive after their actual.

    Each entity's actuals are kept in arrival order (readings arrive roughly in time
    order), so evicting the oldest is O(1). ``_order`` records arrival over all entities
    for the overall cap; its entries are checked lazily against the buffer.
    """

    def __init__(self) -> None:
        self._by_entity: dict[str, OrderedDict[MatchKey, Held]] = {}
        self._order: deque[tuple[str, MatchKey]] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def get(self, entity_id: str, key: MatchKey) -> Held | None:
        held = self._by_entity.get(entity_id)
        return held.get(key) if held is not None else None

    def count(self, entity_id: str) -> int:
        return len(self._by_entity.get(entity_id, ()))

    def add(self, entity_id: str, key: MatchKey, held: Held) -> bool:
        """Buffer an actual; False (and nothing kept) when one is already held for ``key``."""
        entries = self._by_entity.setdefault(entity_id, OrderedDict())
        if key in entries:
            return False
        entries[key] = held
        self._order.append((entity_id, key))
        self._size += 1
        return True

    def pop_older(self, entity_id: str, before_us: int) -> list[Held]:
        """Remove the entity's leading actuals whose time is before ``before_us``."""
        entries = self._by_entity.get(entity_id)
        gone: list[Held] = []
        while entries and next(iter(entries))[1] < before_us:
            gone.append(entries.popitem(last=False)[1])
        self._settle(entity_id, len(gone))
        return gone

    def pop_first(self, entity_id: str) -> Held | None:
        """Remove the entity's earliest-arrived actual."""
        entries = self._by_entity.get(entity_id)
        if not entries:
            return None
        held = entries.popitem(last=False)[1]
        self._settle(entity_id, 1)
        return held

    def pop_oldest(self) -> Held | None:
        """Remove the earliest-arrived actual of any entity."""
        while self._order:
            entity_id, key = self._order.popleft()
            entries = self._by_entity.get(entity_id)
            if entries is not None and key in entries:
                held = entries.pop(key)
                self._settle(entity_id, 1)
                return held
        return None

    def remove_where(self, tps: set[TopicPartition]) -> int:
        """Drop every actual read from a partition in ``tps``; how many were dropped."""
        dropped = 0
        for entity_id in list(self._by_entity):
            entries = self._by_entity[entity_id]
            gone = [key for key, held in entries.items() if held.tp in tps]
            for key in gone:
                del entries[key]
            self._settle(entity_id, len(gone))
            dropped += len(gone)
        return dropped

    def _settle(self, entity_id: str, removed: int) -> None:
        self._size -= removed
        if not self._by_entity.get(entity_id):
            self._by_entity.pop(entity_id, None)
        # Stale entries of _order (actuals evicted by time) outnumber live ones: rebuild it,
        # keeping arrival order within each entity. The slack of 1024 entries stops a small
        # buffer from being rebuilt on every eviction.
        if len(self._order) > 2 * self._size + 1024:
            self._order = deque(
                (entity, key) for entity, entries in self._by_entity.items() for key in entries
            )
