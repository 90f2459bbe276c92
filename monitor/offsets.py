"""Which input offsets the monitor may commit: never past a record whose state it still holds.

The join keeps unmatched predictions and recent actuals in memory. If the committed offset
of a partition passed such a record, a crash would lose it. :class:`OffsetLedger` tracks the
offsets of every held record per partition; the service commits, per partition, the lowest
held offset (or the next offset to consume when nothing is held). After a restart the
group consumer re-reads from there and the join state is rebuilt by the ordinary code path;
records matched before the crash are recognised by their prediction id and skipped.
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Final

TopicPartition = tuple[str, int]

# Released offsets a partition's heap may keep before it is rebuilt from the held ones:
# enough that a rebuild (O(n log n)) is rare against the releases it saves.
COMPACT_SLACK: Final = 1024


class OffsetLedger:
    """Offsets of held records per partition, with the lowest one in O(log n).

    >>> ledger = OffsetLedger()
    >>> ledger.hold(("predictions", 0), 7); ledger.hold(("predictions", 0), 9)
    >>> ledger.release(("predictions", 0), 7)
    >>> ledger.low(("predictions", 0))
    9
    """

    def __init__(self) -> None:
        self._held: dict[TopicPartition, Counter[int]] = {}
        # Lazy-deletion heaps: released offsets are popped when they reach the top.
        self._heaps: dict[TopicPartition, list[int]] = {}

    def hold(self, tp: TopicPartition, offset: int) -> None:
        held = self._held.setdefault(tp, Counter())
        if held[offset] == 0:
            heapq.heappush(self._heaps.setdefault(tp, []), offset)
        held[offset] += 1

    def release(self, tp: TopicPartition, offset: int) -> None:
        held = self._held.get(tp)
        if held is None or held[offset] == 0:
            return
        held[offset] -= 1
        if held[offset] == 0:
            del held[offset]
            heap = self._heaps.get(tp)
            # A low offset held for long (a quiet entity's prediction) keeps every offset
            # released after it in the heap: rebuild it when released ones dominate.
            if heap is not None and len(heap) > 2 * len(held) + COMPACT_SLACK:
                self._heaps[tp] = sorted(held)  # a sorted list is a valid heap

    def low(self, tp: TopicPartition) -> int | None:
        """The lowest offset still held on ``tp``; None when nothing is held."""
        heap = self._heaps.get(tp)
        held = self._held.get(tp)
        if not heap or not held:
            self._heaps.pop(tp, None)
            return None
        while heap and heap[0] not in held:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def commit_offset(self, tp: TopicPartition, next_offset: int) -> int:
        """The offset to commit on ``tp`` given the next offset the consumer would read."""
        low = self.low(tp)
        return next_offset if low is None else min(low, next_offset)

    def forget(self, tps: set[TopicPartition]) -> None:
        """Drop every partition in ``tps`` (revoked from this instance)."""
        for tp in tps:
            self._held.pop(tp, None)
            self._heaps.pop(tp, None)

    def held(self) -> int:
        """Records held over every partition."""
        return sum(sum(c.values()) for c in self._held.values())
