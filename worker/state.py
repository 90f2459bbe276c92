"""Per-entity state of one stream: a ring buffer (``EntityWindow``) of each entity's readings.

Every entity keeps the last ``length`` readings of the metrics it reports (its *layout*).
``length`` is the longest window any served spec needs (``spec.history_needed``), at least
the configured minimum; it only grows. Holding every reported metric, rather than only the
union of the served specs' inputs, costs little (an entity reports a handful of metrics)
and means that neither a newly promoted model using another metric nor the fallbacks
(robust z-score over every metric, last-value gap filling) ever need a rebuild.

Readings are pushed in batch order; each accepted reading's window is taken right after its
push, so a model gets exactly the windows ``models.features.frame_rows`` cuts from the same
history in training. A reading not newer than its entity's last one (a replay, an
out-of-order record) changes nothing and is reported as not accepted.

The number of entities is bounded (``max_entities``): a producer that sends ever new
entity ids (a bug, a misconfigured key) must not grow the worker until it is killed for
memory. Past the bound, the entities whose latest reading is oldest are dropped, a
twentieth of the bound at a time so that the search for them (one partial sort of every
entity's last time) is rare. Ranking by the readings' own times, not by when they were
processed, keeps the same entities whether they were scored live, warmed or replayed, up
to the margin of where a batch or a warm-up chunk ends (the bound is applied after each).
A dropped entity that comes back starts with an empty window, like a new one;
``on_evict`` is told how many went.

When ``length`` grows (a hot swap brings a spec with a longer window), each entity's buffer
is lengthened on its next reading, keeping what it holds; its older readings are gone, so
the runtime reads history back again (``forget`` then ``warm``) when ``history_needed``
grows, which restores windows as deep as the new spec needs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from models.base import FloatArray
from models.features import EntityWindow
from worker.limits import DEFAULT_MAX_ENTITIES
from worker.snapshot import Snapshot, SnapshotBuilder

log = logging.getLogger(__name__)

Where = tuple[str, int]  # (topic, partition) an entity's readings arrive on
Values = Mapping[str, float | None]

# Metrics one entity may accumulate: twice a reading's limit (64, events.fields.MAX_METRICS)
# leaves room for a sensor swap that renames every metric once, and bounds the memory a
# producer sending ever new metric names can take. Further new metrics are not tracked.
MAX_ENTITY_METRICS: Final = 128


@dataclass(eq=False)
class Layout:
    """The metrics an entity reports, in window column order (shared by its peers)."""

    names: tuple[str, ...]
    known: frozenset[str]  # names plus any dropped beyond MAX_ENTITY_METRICS

    def vector(self, values: Values) -> list[float]:
        """One reading's values in column order; absent or null metrics are NaN."""
        return [np.nan if (v := values.get(name)) is None else v for name in self.names]


@dataclass(eq=False)
class _Entity:
    window: EntityWindow
    layout: Layout
    length: int
    where: Where


@dataclass
class StreamState:
    """Ring buffers of every entity of one stream, keyed by entity id."""

    length: int
    max_entities: int = DEFAULT_MAX_ENTITIES
    _entities: dict[str, _Entity] = field(default_factory=dict)
    _layouts: dict[tuple[tuple[str, ...], frozenset[str]], Layout] = field(default_factory=dict)
    on_evict: Callable[[int], None] | None = None  # told how many entities were dropped

    def __post_init__(self) -> None:
        if self.length < 2:
            raise ValueError(f"state length must be at least 2 readings, got {self.length}")
        if self.max_entities < 1:
            raise ValueError(f"max_entities must be at least 1, got {self.max_entities}")

    def __len__(self) -> int:
        return len(self._entities)

    def require(self, length: int) -> bool:
        """Hold at least ``length`` readings per entity from now on; True if that grew."""
        if length <= self.length:
            return False
        log.info("per-entity state grows from %d to %d readings", self.length, length)
        self.length = length
        return True

    def push_batch(
        self,
        entities: Sequence[str],
        values: Sequence[Values],
        stamps_ns: Sequence[int],
        wheres: Sequence[Where],
    ) -> tuple[list[int], Snapshot]:
        """Push readings in order; the positions accepted and their windows."""
        accepted: list[int] = []
        builder = SnapshotBuilder(self.length)
        for i, entity in enumerate(entities):
            entry = self._push(entity, values[i], stamps_ns[i], wheres[i])
            if entry is not None:
                builder.add(entry.layout.names, entry.window.window())
                accepted.append(i)
        self._bound()
        return accepted, builder.build()

    def warm(
        self,
        entities: Sequence[str],
        values: Sequence[Values],
        stamps_ns: Sequence[int],
        wheres: Sequence[Where],
    ) -> int:
        """Push history read back from Kafka (no windows taken); how many were new."""
        pushed = 0
        for i, entity in enumerate(entities):
            pushed += self._push(entity, values[i], stamps_ns[i], wheres[i]) is not None
        self._bound()
        return pushed

    def forget(self, partitions: Collection[Where]) -> int:
        """Drop every entity last seen on one of ``partitions``; how many were dropped."""
        wanted = set(partitions)
        dropped = [e for e, entry in self._entities.items() if entry.where in wanted]
        for entity in dropped:
            del self._entities[entity]
        return len(dropped)

    def window(self, entity: str) -> tuple[tuple[str, ...], FloatArray] | None:
        """An entity's metric names and its ``[length, metrics]`` window (None if unknown)."""
        entry = self._entities.get(entity)
        return None if entry is None else (entry.layout.names, entry.window.window())

    def _push(self, entity: str, values: Values, ns: int, where: Where) -> _Entity | None:
        entry = self._entities.get(entity)
        if entry is None:
            entry = self._entities[entity] = self._create(values, where)
        else:
            last = entry.window.last_ns
            if last is not None and ns <= last:
                # refused, and changes nothing: not even the partition the entity is on
                # (a replayed or older record on another partition must not move it there)
                return None
            if entry.length < self.length or not entry.layout.known.issuperset(values):
                self._regrow(entry, values)
            entry.where = where
        return entry if entry.window.push(entry.layout.vector(values), ns) else None

    def _bound(self) -> None:
        """Drop the entities with the oldest latest readings once there are too many."""
        excess = len(self._entities) - self.max_entities
        if excess <= 0:
            return
        count = excess + self.max_entities // 20
        names = list(self._entities)
        latest = np.fromiter(
            (entry.window.last_ns or 0 for entry in self._entities.values()),
            dtype=np.int64,
            count=len(names),
        )
        for index in np.argpartition(latest, count - 1)[:count].tolist():
            del self._entities[names[index]]
        if self.on_evict is not None:
            self.on_evict(count)
        log.warning(
            "more than %d entities in state: dropped the %d with the oldest readings",
            self.max_entities,
            count,
        )

    def _create(self, values: Values, where: Where) -> _Entity:
        layout = self._layout((), frozenset(), values)
        return _Entity(EntityWindow(self.length, len(layout.names)), layout, self.length, where)

    def _layout(self, names: tuple[str, ...], known: frozenset[str], values: Values) -> Layout:
        """The shared layout of ``names`` plus the new metrics of ``values`` (capped)."""
        new = [name for name in values if name not in known]
        room = max(0, MAX_ENTITY_METRICS - len(names))
        if len(new) > room:
            log.warning(
                "an entity reports more than %d metrics; not tracking %s",
                MAX_ENTITY_METRICS,
                ", ".join(new[room:]),
            )
        grown = names + tuple(new[:room])
        everything = known | frozenset(new)
        return self._layouts.setdefault((grown, everything), Layout(grown, everything))

    def _regrow(self, entry: _Entity, values: Values) -> None:
        """Lengthen the buffer to ``self.length`` and add new metrics, keeping the readings.

        ``EntityWindow`` keeps only its newest time, so replaying the held rows with times
        that end exactly at it rebuilds the same buffer: later pushes compare against the
        same last time.
        """
        layout = self._layout(entry.layout.names, entry.layout.known, values)
        fresh = EntityWindow(self.length, len(layout.names))
        held, last = len(entry.window), entry.window.last_ts
        if held and last is not None:
            rows = entry.window.window()[-held:]
            extra = len(layout.names) - rows.shape[1]
            rows = np.hstack([rows, np.full((held, extra), np.nan)]) if extra else rows
            newest = int(last.value)
            for k, row in enumerate(rows):
                fresh.push(row, newest - (held - 1 - k))
        entry.window, entry.layout, entry.length = fresh, layout, self.length
