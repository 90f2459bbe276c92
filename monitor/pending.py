"""Predictions waiting for their actual, indexed for matching, expiry and eviction."""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from events import Prediction
from monitor.offsets import TopicPartition

# (metric, target time in microseconds): what an actual must carry to match.
MatchKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Waiting:
    """A prediction held until its actual arrives, and where it was read."""

    prediction: Prediction
    metric: str
    target_us: int
    tp: TopicPartition
    offset: int
    arrived_us: int = 0  # its record's Kafka timestamp (0: unknown)


class PendingPredictions:
    """Unmatched predictions by id, by (entity, metric, target time), and by target time.

    Lookups are O(1) and eviction of an entity's earliest target is O(log n): the
    per-entity heaps delete lazily (entries whose prediction is gone are skipped).
    """

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, Waiting] = OrderedDict()  # arrival order
        self._by_key: dict[str, dict[MatchKey, list[str]]] = {}
        self._heaps: dict[str, list[tuple[int, str]]] = {}
        self._counts: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, prediction_id: str) -> bool:
        return prediction_id in self._by_id

    def __iter__(self) -> Iterator[Waiting]:
        return iter(list(self._by_id.values()))

    def count(self, entity_id: str) -> int:
        return self._counts[entity_id]

    def add(self, waiting: Waiting) -> None:
        prediction = waiting.prediction
        entity = prediction.entity_id
        self._by_id[prediction.prediction_id] = waiting
        self._counts[entity] += 1
        keys = self._by_key.setdefault(entity, {})
        keys.setdefault((waiting.metric, waiting.target_us), []).append(prediction.prediction_id)
        heapq.heappush(
            self._heaps.setdefault(entity, []), (waiting.target_us, prediction.prediction_id)
        )

    def take_matching(self, entity_id: str, key: MatchKey) -> list[Waiting]:
        """Remove and return every prediction of ``entity_id`` waiting for ``key``."""
        keys = self._by_key.get(entity_id)
        ids = keys.pop(key, None) if keys is not None else None
        if not ids:
            return []
        if keys is not None and not keys:
            self._drop_entity(entity_id)
        else:
            self._counts[entity_id] -= len(ids)
        return [self._by_id.pop(pid) for pid in ids]

    def take_due(self, entity_id: str, before_us: int) -> list[Waiting]:
        """Remove and return the predictions of ``entity_id`` with target before ``before_us``."""
        heap = self._heaps.get(entity_id)
        due = []
        while heap and heap[0][0] < before_us:
            _, pid = heapq.heappop(heap)
            if pid in self._by_id:
                due.append(self.remove(pid))
        return due

    def take_earliest(self, entity_id: str) -> Waiting | None:
        """Remove and return the prediction of ``entity_id`` with the earliest target."""
        heap = self._heaps.get(entity_id)
        while heap:
            _, pid = heapq.heappop(heap)
            if pid in self._by_id:
                return self.remove(pid)
        return None

    def take_oldest(self) -> Waiting | None:
        """Remove and return the prediction that arrived first."""
        if not self._by_id:
            return None
        return self.remove(next(iter(self._by_id)))

    def remove(self, prediction_id: str) -> Waiting:
        waiting = self._by_id.pop(prediction_id)
        entity = waiting.prediction.entity_id
        self._counts[entity] -= 1
        keys = self._by_key.get(entity, {})
        key = (waiting.metric, waiting.target_us)
        ids = keys.get(key, [])
        if prediction_id in ids:
            ids.remove(prediction_id)
            if not ids:
                del keys[key]
        if not keys:
            self._drop_entity(entity)
        return waiting

    def _drop_entity(self, entity_id: str) -> None:
        del self._counts[entity_id]
        self._by_key.pop(entity_id, None)
        self._heaps.pop(entity_id, None)
