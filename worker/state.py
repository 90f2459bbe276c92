"""Per-entity state of one stream: a ring buffer of each entity's readings.

Every entity keeps the last ``length`` readings of the metrics it reports (its *layout*).
``length`` is the longest window any served spec needs (``spec.history_needed``), at least
the configured minimum; it only grows. Holding every reported metric, rather than only the
union of the served specs' inputs, costs little (an entity reports a handful of metrics)
and means that neither a newly promoted model using another metric nor the fallbacks
(robust z-score over every metric, last-value gap filling) ever need a rebuild.

The entities of one layout share one :class:`~worker.rings.Rings` array, a slot each; an
array mostly released (a revoked partition, evictions) is compacted after the batch. A
batch is walked once in Python to find each reading's entity and refuse what is stale;
the pushes themselves, and the window of each accepted reading taken right after its push,
run as one compiled loop per layout. So a model gets exactly the windows
``models.features.frame_rows`` cuts from the same history in training. A reading not newer
than its entity's last one (a replay, an out-of-order record) changes nothing and is
reported as not accepted.

The number of entities is bounded (``max_entities``): a producer that sends ever new
entity ids (a bug, a misconfigured key) must not grow the worker until it is killed for
memory. Past the bound, the entities whose latest reading is oldest are dropped, a
twentieth of the bound at a time so that the search for them (one partial sort of every
entity's last time) is rare. Ranking by the readings' own times, not by when they were
processed, keeps the same entities whether they were scored live, warmed or replayed, up
to the margin of where a batch or a warm-up chunk ends (the bound is applied after each).
A dropped entity that comes back starts with an empty window, like a new one;
``on_evict`` is told how many went.

When ``length`` grows (a hot swap brings a spec with a longer window), every ring is
lengthened at once, keeping what it holds; its older readings are gone, so the runtime
reads history back again (``forget`` then ``warm``) when ``history_needed`` grows, which
restores windows as deep as the new spec needs. An entity that reports a new metric moves
to the rings of its new layout, its held readings with it (NaN in the new column).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from models.base import FloatArray
from worker.limits import DEFAULT_MAX_ENTITIES
from worker.rings import Rings
from worker.snapshot import Group, Snapshot

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
    index: Mapping[str, int] = field(init=False)  # name -> column
    known: frozenset[str] = field(init=False)  # names as a set: the check per reading
    # At MAX_ENTITY_METRICS a layout takes no more metrics: a reading with new names
    # neither moves the entity nor builds a layout (nor logs) again.
    full: bool = field(init=False)

    def __post_init__(self) -> None:
        self.index = {name: i for i, name in enumerate(self.names)}
        self.known = frozenset(self.names)
        self.full = len(self.names) >= MAX_ENTITY_METRICS

    def holds(self, values: Values) -> bool:
        """Whether a reading brings no metric this layout would add."""
        return self.full or self.known.issuperset(values)

    def row(self, values: Values) -> list[float | None]:
        """One reading's values in column order (None where absent or null: NaN in rings)."""
        return [values.get(name) for name in self.names]


class _Entity:
    __slots__ = ("last_ns", "layout", "slot", "where")

    def __init__(self, layout: Layout, slot: int, where: Where) -> None:
        self.layout = layout
        self.slot = slot
        self.where = where
        self.last_ns: int | None = None  # newest reading held; older ones are refused


@dataclass
class StreamState:
    """Ring buffers of every entity of one stream, keyed by entity id."""

    length: int
    max_entities: int = DEFAULT_MAX_ENTITIES
    on_evict: Callable[[int], None] | None = None  # told how many entities were dropped
    _entities: dict[str, _Entity] = field(default_factory=dict)
    _layouts: dict[tuple[str, ...], Layout] = field(default_factory=dict)  # those in use
    _rings: dict[Layout, Rings] = field(default_factory=dict)

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
        for rings in self._rings.values():
            rings.lengthen(length)
        return True

    def push_batch(
        self,
        entities: Sequence[str],
        values: Sequence[Values],
        stamps_ns: Sequence[int],
        wheres: Sequence[Where],
    ) -> tuple[list[int], Snapshot]:
        """Push readings in order; the positions accepted and their windows."""
        pushes = _Pushes(self._rings, windows=True)
        accepted = self._push(pushes, entities, values, stamps_ns, wheres)
        snapshot = pushes.snapshot(self.length)
        self._bound()
        self._compact()
        return accepted, snapshot

    def warm(
        self,
        entities: Sequence[str],
        values: Sequence[Values],
        stamps_ns: Sequence[int],
        wheres: Sequence[Where],
    ) -> int:
        """Push history read back from Kafka (no windows taken); how many were new."""
        pushes = _Pushes(self._rings, windows=False)
        pushed = len(self._push(pushes, entities, values, stamps_ns, wheres))
        pushes.flush()
        self._bound()
        self._compact()
        return pushed

    def forget(self, partitions: Collection[Where]) -> int:
        """Drop every entity last seen on one of ``partitions``; how many were dropped."""
        wanted = set(partitions)
        dropped = [e for e, entry in self._entities.items() if entry.where in wanted]
        for entity in dropped:
            self._drop(entity)
        self._compact()
        return len(dropped)

    def window(self, entity: str) -> tuple[tuple[str, ...], FloatArray] | None:
        """An entity's metric names and its ``[length, metrics]`` window (None if unknown)."""
        entry = self._entities.get(entity)
        if entry is None:
            return None
        return entry.layout.names, self._rings[entry.layout].window(entry.slot)

    def _push(
        self,
        pushes: _Pushes,
        entities: Sequence[str],
        values: Sequence[Values],
        stamps_ns: Sequence[int],
        wheres: Sequence[Where],
    ) -> list[int]:
        """Queue every new reading's push in order; the positions accepted."""
        accepted: list[int] = []
        known = self._entities
        for i, entity in enumerate(entities):
            entry, reading = known.get(entity), values[i]
            if entry is None:
                entry = known[entity] = self._create(reading, wheres[i])
            else:
                last = entry.last_ns
                if last is not None and stamps_ns[i] <= last:
                    # refused, and changes nothing: not even the partition the entity is on
                    # (a replayed or older record on another partition must not move it there)
                    continue
                if not entry.layout.holds(reading):
                    pushes.flush(entry.layout)  # its earlier readings land in the rings it leaves
                    self._regrow(entry, reading)
                entry.where = wheres[i]
            entry.last_ns = stamps_ns[i]
            pushes.add(entry, reading)
            accepted.append(i)
        return accepted

    def _bound(self) -> None:
        """Drop the entities with the oldest latest readings once there are too many."""
        excess = len(self._entities) - self.max_entities
        if excess <= 0:
            return
        count = excess + self.max_entities // 20
        names = list(self._entities)
        latest = np.fromiter(
            (entry.last_ns or 0 for entry in self._entities.values()),
            dtype=np.int64,
            count=len(names),
        )
        for index in np.argpartition(latest, count - 1)[:count].tolist():
            self._drop(names[index])
        if self.on_evict is not None:
            self.on_evict(count)
        log.warning(
            "more than %d entities in state: dropped the %d with the oldest readings",
            self.max_entities,
            count,
        )

    def _create(self, values: Values, where: Where) -> _Entity:
        layout = self._layout((), values)
        return _Entity(layout, self._rings_of(layout).allocate(), where)

    def _drop(self, entity: str) -> None:
        entry = self._entities.pop(entity)
        self._release(entry.layout, entry.slot)

    def _rings_of(self, layout: Layout) -> Rings:
        rings = self._rings.get(layout)
        if rings is None:
            rings = Rings(self.length, len(layout.names), limit=self.max_entities)
            self._rings[layout] = rings
        return rings

    def _compact(self) -> None:
        """Give back the memory of rings mostly released (between batches only: a slot
        queued for a push must not move)."""
        moved = {layout: rings.compact() for layout, rings in self._rings.items() if rings.sparse}
        if not moved:
            return
        for entry in self._entities.values():
            slots = moved.get(entry.layout)
            if slots is not None:
                entry.slot = slots[entry.slot]

    def _release(self, layout: Layout, slot: int) -> None:
        rings = self._rings[layout]
        rings.release(slot)
        if not rings.used:  # no entity of this layout is left
            del self._rings[layout]
            del self._layouts[layout.names]

    def _layout(self, names: tuple[str, ...], values: Values) -> Layout:
        """The shared layout of ``names`` plus the new metrics of ``values`` (capped)."""
        new = [name for name in values if name not in names]
        room = MAX_ENTITY_METRICS - len(names)
        if len(new) > room:
            log.warning(
                "an entity reports more than %d metrics; not tracking %s (nor any further "
                "new metric of it)",
                MAX_ENTITY_METRICS,
                ", ".join(new[room:]),
            )
        grown = names + tuple(new[:room])
        layout = self._layouts.get(grown)
        if layout is None:
            layout = self._layouts[grown] = Layout(grown)
        return layout

    def _regrow(self, entry: _Entity, values: Values) -> None:
        """Move an entity to the rings of its layout plus the new metrics of ``values``,
        keeping its readings (NaN in the new columns)."""
        layout = self._layout(entry.layout.names, values)
        rings = self._rings_of(layout)
        slot = rings.allocate()
        rings.adopt(slot, self._rings[entry.layout], entry.slot)
        self._release(entry.layout, entry.slot)
        entry.layout, entry.slot = layout, slot


@dataclass(eq=False)
class _Pending:
    """One layout's pushes waiting for the next flush, and the windows taken so far."""

    number: int  # the layout's group in the snapshot
    slots: list[int] = field(default_factory=list)
    rows: list[list[float | None]] = field(default_factory=list)
    windows: list[FloatArray] = field(default_factory=list)
    taken: int = 0  # readings of this layout so far in the batch


class _Pushes:
    """The pushes of one batch, in order, run as one compiled loop per layout per flush."""

    def __init__(self, rings: Mapping[Layout, Rings], *, windows: bool) -> None:
        self._rings = rings
        self._windows = windows
        self._pending: dict[Layout, _Pending] = {}
        self._group_of: list[int] = []
        self._position: list[int] = []

    def add(self, entry: _Entity, values: Values) -> None:
        layout = entry.layout
        pending = self._pending.get(layout)
        if pending is None:
            pending = self._pending[layout] = _Pending(len(self._pending))
        pending.slots.append(entry.slot)
        pending.rows.append(layout.row(values))
        if self._windows:
            self._group_of.append(pending.number)
            self._position.append(pending.taken)
            pending.taken += 1

    def flush(self, layout: Layout | None = None) -> None:
        """Run the pushes queued so far for ``layout`` (before an entity leaves its rings)
        or for every layout (at the end). Each layout's pushes keep their order; pushes to
        different layouts touch different arrays, so their order between layouts is free."""
        if layout is None:
            for queued, pending in self._pending.items():
                self._run(queued, pending)
        elif layout in self._pending:
            self._run(layout, self._pending[layout])

    def _run(self, layout: Layout, pending: _Pending) -> None:
        if not pending.slots:
            return
        rings = self._rings[layout]
        slots = np.array(pending.slots, dtype=np.int64)
        rows = np.array(pending.rows, dtype=np.float64).reshape(len(slots), rings.width)
        pending.windows.append(rings.push(slots, rows, self._windows))
        pending.slots.clear()
        pending.rows.clear()

    def snapshot(self, length: int) -> Snapshot:
        """Every accepted reading's window, stacked per layout."""
        self.flush()
        groups = [
            Group(layout.names, layout.index, _stacked(pending.windows))
            for layout, pending in self._pending.items()
        ]
        return Snapshot(
            length,
            groups,
            np.array(self._group_of, dtype=np.int64),
            np.array(self._position, dtype=np.int64),
        )


def _stacked(parts: list[FloatArray]) -> FloatArray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
