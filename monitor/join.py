"""The prediction/actual join with bounded lateness, expiry and memory caps.

A prediction is matched with the actual of the same entity, metric and time as its target
(``entity_id``, metric, ``target_ts``). Either may come first:

* the actual may arrive up to ``lateness`` after ``target_ts`` (event time): until then the
  prediction waits. Each entity's *watermark* is the newest time of its actuals; once it
  passes ``target_ts + lateness`` the prediction *expires* and counts against label
  coverage. Watermarks are per entity because feeds (and replays of history) run on
  different clocks: a live sensor must not expire a demand forecast from last year.
* the prediction may arrive after its actual (a lagging worker): actuals are buffered per
  entity for ``actual_buffer`` behind its watermark.
* an entity may go quiet for good (a machine taken out of service): its watermark stops,
  and its last forecasts would wait forever, holding back the committed offset of their
  partition, so that every restart read again all that came after them. A prediction
  still waiting when the label clock of its partition number (:mod:`monitor.labels`: how
  far the actuals and readings co-partitioned with it have been read, in Kafka time) is
  ``idle_expiry`` past both its own Kafka timestamp and its target + ``lateness`` expires
  as ``idle``. A broker outage, or a catch-up that reads predictions ahead of readings,
  expires nothing; a replay of last year's readings (targets long past) gives the labels
  ``idle_expiry`` of stream time to come; a forecast for next week waits for next week.

Every match becomes a :class:`events.MonitorPair` (``error = predicted - actual``); an
actual matches every prediction waiting for it (several models, several horizons).
Memory is bounded by caps on waiting predictions and buffered actuals, per entity and
overall; a prediction evicted by a cap is reported like an expired one, with its reason.
Prediction ids already matched or expired (remembered up to a bound) are skipped, so
records read again after a restart are not paired twice.

The join is pure: no Kafka, and a clock only to pace its scans for idle predictions. The
service feeds it decoded records with where they were read and their Kafka timestamps,
keeps its label clocks (``Joiner.labels``) told what is assigned and read to its end, and
asks it which offsets are safe to commit.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from events import MonitorPair, Prediction
from events.fields import MAX_MAGNITUDE
from monitor.actuals import ActualBuffer, Held, Observation
from monitor.clock import micros, seconds_to_micros
from monitor.labels import LabelClocks
from monitor.offsets import OffsetLedger, TopicPartition
from monitor.pending import MatchKey, PendingPredictions, Waiting
from monitor.settings import MonitorSettings

ExpiryReason = Literal["late", "idle", "entity_cap", "total_cap"]
IGNORED_IMPUTATION: Final = "imputation"
IGNORED_NO_METRIC: Final = "no_metric"
IGNORED_OUT_OF_RANGE: Final = "error_out_of_range"
# Waiting predictions are checked for idle expiry at most this often, in label time and
# in wall-clock time (a catch-up moves label time fast; a scan walks every prediction).
IDLE_SCAN_S: Final = 60.0
IDLE_SCAN_WALL_S: Final = 5.0


@dataclass(frozen=True)
class JoinPolicy:
    """Bounds of the join (see :class:`monitor.settings.MonitorSettings`)."""

    lateness_s: float = 3600.0
    actual_buffer_s: float = 900.0
    idle_expiry_s: float = 86_400.0  # 0: never
    max_pending_per_entity: int = 1_000
    max_pending_total: int = 200_000
    max_actuals_per_entity: int = 2_000
    max_actuals_total: int = 200_000
    max_resolved_ids: int = 200_000
    risk_metric: str = "risk"

    @classmethod
    def from_settings(cls, settings: MonitorSettings) -> JoinPolicy:
        return cls(
            lateness_s=settings.lateness_s,
            actual_buffer_s=settings.actual_buffer_s,
            idle_expiry_s=settings.idle_expiry_s,
            max_pending_per_entity=settings.max_pending_per_entity,
            max_pending_total=settings.max_pending_total,
            max_actuals_per_entity=settings.max_actuals_per_entity,
            max_actuals_total=settings.max_actuals_total,
            max_resolved_ids=settings.max_resolved_ids,
            risk_metric=settings.risk_metric,
        )


@dataclass(frozen=True, slots=True)
class Expired:
    """A prediction that never found its actual, and why it stopped waiting."""

    prediction: Prediction
    reason: ExpiryReason


@dataclass
class JoinOutput:
    """What the join produced since the last :meth:`Joiner.take`."""

    pairs: list[MonitorPair] = field(default_factory=list)
    expired: list[Expired] = field(default_factory=list)
    duplicates: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    dropped_actuals: Counter[str] = field(default_factory=Counter)


class Joiner:
    """Matches predictions with actuals; see the module docstring."""

    def __init__(
        self, policy: JoinPolicy | None = None, pace: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or JoinPolicy()
        self._pace = pace
        self._lateness_us = seconds_to_micros(self.policy.lateness_s)
        self._buffer_us = seconds_to_micros(self.policy.actual_buffer_s)
        self._idle_us = seconds_to_micros(self.policy.idle_expiry_s)
        self.labels = LabelClocks()
        self._next_scan_us = 0
        self._next_scan_wall = float("-inf")
        self._pending = PendingPredictions()
        self._actuals = ActualBuffer()
        self._ledger = OffsetLedger()
        self._watermarks: dict[str, int] = {}
        self._resolved: OrderedDict[str, None] = OrderedDict()
        self._out = JoinOutput()

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def buffered(self) -> int:
        return len(self._actuals)

    def metric_of(self, prediction: Prediction) -> str | None:
        """The metric whose actual scores ``prediction``; None if it is not monitored."""
        if prediction.kind == "imputation":
            return None
        if prediction.kind == "risk":
            return prediction.metric or self.policy.risk_metric
        return prediction.metric

    def expire_idle(self) -> None:
        """Expire the predictions idle on their partition's label clock (see the module).

        The waiting predictions are scanned at most every ``IDLE_SCAN_S`` of label time and
        ``IDLE_SCAN_WALL_S`` of wall-clock time.
        """
        clocks = self.labels.clocks()
        newest = max(clocks.values(), default=0)
        if self._idle_us <= 0 or not clocks or newest < self._next_scan_us:
            return
        wall = self._pace()
        if wall < self._next_scan_wall:
            return
        self._next_scan_us = newest + min(seconds_to_micros(IDLE_SCAN_S), self._idle_us)
        self._next_scan_wall = wall + IDLE_SCAN_WALL_S
        for waiting in self._pending:
            clock = clocks.get(waiting.tp[1])
            since = max(waiting.arrived_us, waiting.target_us + self._lateness_us)
            if clock is not None and clock - since >= self._idle_us:
                self._evict(self._pending.remove(waiting.prediction.prediction_id), "idle")

    def remember(self, prediction_ids: Iterable[str]) -> None:
        """Mark predictions as already resolved (their pairs were read back at start)."""
        for prediction_id in prediction_ids:
            self._resolve(prediction_id)

    def add_prediction(
        self, prediction: Prediction, tp: TopicPartition, offset: int, kafka_us: int = 0
    ) -> None:
        """A prediction read at ``offset`` of ``tp``; ``kafka_us``: its record's timestamp."""
        metric = self.metric_of(prediction)
        if metric is None:
            kind = IGNORED_IMPUTATION if prediction.kind == "imputation" else IGNORED_NO_METRIC
            self._out.ignored[kind] += 1
            return
        pid = prediction.prediction_id
        if pid in self._resolved or pid in self._pending:
            self._out.duplicates += 1
            return
        entity = prediction.entity_id
        target_us = micros(prediction.target_ts)
        held = self._actuals.get(entity, (metric, target_us))
        if held is not None:
            self._pair(prediction, metric, held.value)
            return
        watermark = self._watermarks.get(entity)
        if watermark is not None and watermark > target_us + self._lateness_us:
            self._expire(prediction, "late")
            return
        self._pending.add(Waiting(prediction, metric, target_us, tp, offset, kafka_us))
        self._ledger.hold(tp, offset)
        self._enforce_pending_caps(entity)

    def add_actual(self, observation: Observation, tp: TopicPartition, offset: int) -> None:
        entity = observation.entity_id
        key = (observation.metric, observation.ts_us)
        for waiting in self._pending.take_matching(entity, key):
            self._ledger.release(waiting.tp, waiting.offset)
            self._pair(waiting.prediction, waiting.metric, observation.value)
        watermark = self._watermarks.get(entity)
        if watermark is None or observation.ts_us > watermark:
            watermark = observation.ts_us
            self._advance(entity, watermark)
        if observation.ts_us >= watermark - self._buffer_us:
            self._buffer(entity, key, Held(observation.value, tp, offset))

    def take(self) -> JoinOutput:
        """Pairs, expirations and counts since the last call."""
        out, self._out = self._out, JoinOutput()
        return out

    def commit_offset(self, tp: TopicPartition, next_offset: int) -> int:
        """Offset to commit on ``tp``: never past a record still held."""
        return self._ledger.commit_offset(tp, next_offset)

    def forget(self, tps: set[TopicPartition]) -> None:
        """Drop the state read from revoked partitions (another instance re-reads it)."""
        for waiting in self._pending:
            if waiting.tp in tps:
                self._pending.remove(waiting.prediction.prediction_id)
        self._out.dropped_actuals["revoked"] += self._actuals.remove_where(tps)
        self._ledger.forget(tps)
        self.labels.forget(tps)

    def _advance(self, entity: str, watermark: int) -> None:
        self._watermarks[entity] = watermark
        for waiting in self._pending.take_due(entity, watermark - self._lateness_us):
            self._ledger.release(waiting.tp, waiting.offset)
            self._expire(waiting.prediction, "late")
        for held in self._actuals.pop_older(entity, watermark - self._buffer_us):
            self._ledger.release(held.tp, held.offset)

    def _buffer(self, entity: str, key: MatchKey, held: Held) -> None:
        if self._buffer_us > 0 and self._actuals.add(entity, key, held):
            self._ledger.hold(held.tp, held.offset)
            self._enforce_actual_caps(entity)

    def _enforce_pending_caps(self, entity: str) -> None:
        policy = self.policy
        if self._pending.count(entity) > policy.max_pending_per_entity:
            self._evict(self._pending.take_earliest(entity), "entity_cap")
        if len(self._pending) > policy.max_pending_total:
            self._evict(self._pending.take_oldest(), "total_cap")

    def _enforce_actual_caps(self, entity: str) -> None:
        if self._actuals.count(entity) > self.policy.max_actuals_per_entity:
            self._drop_actual(self._actuals.pop_first(entity), "entity_cap")
        if len(self._actuals) > self.policy.max_actuals_total:
            self._drop_actual(self._actuals.pop_oldest(), "total_cap")

    def _evict(self, waiting: Waiting | None, reason: ExpiryReason) -> None:
        if waiting is not None:
            self._ledger.release(waiting.tp, waiting.offset)
            self._expire(waiting.prediction, reason)

    def _drop_actual(self, held: Held | None, reason: str) -> None:
        if held is not None:
            self._ledger.release(held.tp, held.offset)
            self._out.dropped_actuals[reason] += 1

    def _pair(self, prediction: Prediction, metric: str, actual: float) -> None:
        error = prediction.value - actual
        self._resolve(prediction.prediction_id)
        if abs(error) > MAX_MAGNITUDE:
            self._out.ignored[IGNORED_OUT_OF_RANGE] += 1
            return
        self._out.pairs.append(
            MonitorPair(
                prediction_id=prediction.prediction_id,
                model=prediction.model,
                version=prediction.version,
                key=prediction.key,
                entity_id=prediction.entity_id,
                metric=metric,
                target_ts=prediction.target_ts,
                predicted=prediction.value,
                actual=actual,
                error=error,
            )
        )

    def _expire(self, prediction: Prediction, reason: ExpiryReason) -> None:
        self._resolve(prediction.prediction_id)
        self._out.expired.append(Expired(prediction, reason))

    def _resolve(self, prediction_id: str) -> None:
        self._resolved[prediction_id] = None
        self._resolved.move_to_end(prediction_id)
        if len(self._resolved) > self.policy.max_resolved_ids:
            self._resolved.popitem(last=False)
