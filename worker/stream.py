"""What every input stream does with its readings: plan, push into state, score, emit.

A stream owns the per-entity state of its readings. :meth:`Stream.start` resolves the
models that serve the batch first (so the state can grow to their windows before anything
is pushed), pushes every reading in batch order and scores the accepted readings; what it
returns finishes the batch: it takes what the helper thread scored, emits it and
dead-letters the readings whose outputs the contracts refused. Between the two the caller
may score another stream, so its thread works while the helper's model runs (the helper's
compiled code releases the GIL). Subclasses say how a reading becomes state values, which
models serve and how their scores become outputs.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Executor
from typing import ClassVar, Generic, TypeVar

from events.dlq import PROCESSING_REASON
from events.readings import DemandReading, SensorReading
from worker import metrics
from worker.deadletters import DeadLetters
from worker.emit import Emitter, Outbox
from worker.intake import Readings
from worker.limits import DEFAULT_MAX_ENTITIES
from worker.records import BatchResult
from worker.routes import ModelRoutes, StreamKind
from worker.scoring import Scorer
from worker.serving import Serving
from worker.snapshot import Snapshot
from worker.state import StreamState, Values

log = logging.getLogger(__name__)

R = TypeVar("R", SensorReading, DemandReading)
P = TypeVar("P")
Finish = Callable[[], None]


def _nothing() -> None:
    """The end of a batch with nothing to score."""


class Stream(ABC, Generic[R, P]):
    """One input stream's state and scoring; ``P`` is what :meth:`plan` resolves."""

    kind: ClassVar[StreamKind]

    def __init__(
        self,
        serving: Serving,
        emitter: Emitter,
        max_entities: int = DEFAULT_MAX_ENTITIES,
        helper: Executor | None = None,
    ) -> None:
        self.serving = serving
        self.emitter = emitter
        self.helper = helper  # a thread for models that can score beside the caller
        self.routes: ModelRoutes = serving.routes
        evicted = metrics.STATE_EVICTED.labels(self.kind)
        self.state = StreamState(serving.needed(self.kind), max_entities, on_evict=evicted.inc)
        # The state grew in a batch while it held entities: a model swapped in before the
        # runner took its refresh needs more history than was read back (see take_short).
        self._lengthened = False
        # read at each scrape: right after a revoke too, or with no batch of this stream
        metrics.STATE_ENTITIES.labels(self.kind).set_function(self.state.__len__)

    @abstractmethod
    def values(self, reading: R) -> Values:
        """The state values of one reading (metric or input name -> value)."""

    @abstractmethod
    def plan(self, readings: Readings[R]) -> P:
        """The models that serve this batch, each resolved once."""

    @abstractmethod
    def score(
        self, plan: P, batch: Readings[R], snapshot: Snapshot, scorer: Scorer, out: Outbox
    ) -> Finish | None:
        """Score the accepted readings (``snapshot`` row i is ``batch`` row i); what is
        still scoring on the helper thread is emitted by the returned call, if any."""

    def process(self, readings: Readings[R], result: BatchResult, dead: DeadLetters) -> None:
        """Push ``readings`` into state and add their outputs to ``result``."""
        self.start(readings, result, dead)()

    def start(self, readings: Readings[R], result: BatchResult, dead: DeadLetters) -> Finish:
        """:meth:`process` up to what the helper thread still scores; the returned call
        waits for it and ends the batch. Call it before this stream's next batch."""
        plan = self.plan(readings)
        held = len(self.state)
        if self.state.require(self.serving.needed(self.kind)) and held:
            self._lengthened = True
        accepted, snapshot = self.state.push_batch(*self._columns(readings))
        self._count_stale(readings, accepted, result)
        if not accepted:
            return _nothing
        batch = readings.take(accepted)
        out = Outbox(result.records)
        rest = self.score(plan, batch, snapshot, Scorer(result, self.helper), out)

        def finish() -> None:
            if rest is not None:
                rest()
            for row, error in out.failed.items():
                dead.refuse(batch.sources[row], error, PROCESSING_REASON)
            if out.dropped:
                log.warning("%s: %d non-finite model output(s) dropped", self.kind, out.dropped)

        return finish

    def take_short(self) -> bool:
        """Whether the state holds fewer readings than the serving models need, or grew to
        their need in a batch (its entities' older readings were never read back); the
        caller re-warms, so the second case is reported once."""
        lengthened, self._lengthened = self._lengthened, False
        return lengthened or self.serving.needed(self.kind) > self.state.length

    def warm(self, readings: Readings[R]) -> int:
        """Push history into state only; how many readings were new."""
        self.state.require(self.serving.needed(self.kind))
        return self.state.warm(*self._columns(readings))

    def _columns(
        self, readings: Readings[R]
    ) -> tuple[list[str], list[Values], list[int], list[tuple[str, int]]]:
        values = [self.values(message) for message in readings.messages]
        wheres = list(zip(readings.topics, readings.partitions, strict=True))
        return readings.entities, values, readings.stamps_ns, wheres

    @staticmethod
    def _count_stale(readings: Readings[R], accepted: list[int], result: BatchResult) -> None:
        if len(accepted) == len(readings):
            return
        kept = set(accepted)
        for i, topic in enumerate(readings.topics):
            if i not in kept:
                result.stale[topic] = result.stale.get(topic, 0) + 1
