"""Rolling error, verdict and requests of every model version the monitor sees.

Pairs and expired predictions go in; health snapshots, retrain requests and drift alerts
come out (see :class:`Outcome`). Each ``(model, key, version)`` has its own windows and
hysteresis, so a newly promoted version starts from nothing instead of inheriting the
errors of the one it replaced. Requests are only made for the version of a model key that
serves: the one whose prediction (on the main topic) was made last, so that a rollback
makes the older version the judged one again; until a prediction is seen (after a
restart, pairs only), the highest such version. A challenger whose predictions come from
the shadow topic is measured but never asks; fallbacks (version 0) are measured but have
no baseline to judge against.

At most ``versions_per_key`` versions of a key are tracked. A new one retires the version
whose last prediction is oldest (never the serving version, so a rejected challenger
followed by another does not retire the champion); pairs of a retired version arriving
later are dropped, unless it serves again (a rollback to it).

While :attr:`Evaluator.replaying` is set (rebuilding state at start) evaluations still run,
so hysteresis and request decisions come out as they did before the restart, but health
snapshots and alerts are not emitted again; a request is emitted only if its id was not
read back from the requests topic and its model key is not in cooldown, which covers a
crash between deciding a request and publishing it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from math import inf
from typing import Final

from events import Alert, ModelHealth, MonitorPair, Prediction, RetrainRequest
from events.fields import MAX_MAGNITUDE
from monitor.baselines import BaselineSource
from monitor.clock import micros
from monitor.health import ACTIONS, Cooldowns, Hysteresis, ModelKey, Thresholds
from monitor.reports import (
    Evaluation,
    drift_alert,
    health_message,
    retrain_request,
    window_seconds,
)
from monitor.settings import JudgedWindow, MonitorSettings
from monitor.windows import RollingErrors

VersionKey = tuple[str, str | None, int]
CRITICAL_LEVEL: Final = 2  # Thresholds.level of a critical degradation
# Request ids remembered to recognise ones read back or decided again: far more than the
# requests of a cooldown period over every model key.
MAX_REQUEST_IDS: Final = 10_000


@dataclass(frozen=True)
class EvaluatorConfig:
    """Windows and judging rules (see :class:`monitor.settings.MonitorSettings`)."""

    count_window: int = 500
    time_window_s: float = 3600.0
    max_window_pairs: int = 100_000
    judged_window: JudgedWindow = "count"
    thresholds: Thresholds = field(default_factory=Thresholds)
    hysteresis_evaluations: int = 3
    evaluate_every_pairs: int = 50
    evaluate_interval_s: float = 60.0
    cooldown_s: float = 3600.0
    versions_per_key: int = 2

    @classmethod
    def from_settings(cls, s: MonitorSettings) -> EvaluatorConfig:
        return cls(
            count_window=s.count_window,
            time_window_s=s.time_window_s,
            max_window_pairs=s.max_window_pairs,
            judged_window=s.judged_window,
            thresholds=Thresholds(s.warning_degradation, s.critical_degradation, s.min_pairs),
            hysteresis_evaluations=s.hysteresis_evaluations,
            evaluate_every_pairs=s.evaluate_every_pairs,
            evaluate_interval_s=s.evaluate_interval_s,
            cooldown_s=s.cooldown_s,
            versions_per_key=s.versions_per_key,
        )


class VersionState:
    """Windows, verdict and counters of one model version."""

    def __init__(self, config: EvaluatorConfig, version_key: VersionKey, now_s: float) -> None:
        self.model, self.key, self.version = version_key
        self.windows = RollingErrors(
            config.count_window, config.time_window_s, config.max_window_pairs
        )
        self.hysteresis = Hysteresis(config.hysteresis_evaluations)
        self.pairs = 0  # pairs seen since tracking began: numbers the evaluations
        self.expired = 0
        self.since_evaluation = 0
        self.evaluated_at_s = now_s


@dataclass
class Outcome:
    """What the evaluator decided since the last :meth:`Evaluator.take`."""

    evaluations: list[Evaluation] = field(default_factory=list)
    health: list[ModelHealth] = field(default_factory=list)
    requests: list[RetrainRequest] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    retired: list[VersionKey] = field(default_factory=list)
    serving: dict[VersionKey, bool] = field(default_factory=dict)  # every tracked version


class Evaluator:
    """Feeds pairs into per-version windows and judges each version now and then."""

    def __init__(self, config: EvaluatorConfig, baselines: BaselineSource) -> None:
        self.config = config
        self.baselines = baselines
        self.cooldowns = Cooldowns(config.cooldown_s)
        self.replaying = False
        self._versions: dict[VersionKey, VersionState] = {}
        self._registered: dict[ModelKey, list[int]] = {}  # kept versions >= 1, ascending
        self._retired: dict[ModelKey, set[int]] = {}
        self._shadow: set[VersionKey] = set()  # versions last seen on the shadow topic
        # Per model key: when each version's newest prediction was made.
        self._made: dict[ModelKey, dict[int, float]] = {}
        self._request_ids: OrderedDict[str, None] = OrderedDict()
        self._out = Outcome()

    def states(self) -> list[VersionState]:
        return list(self._versions.values())

    def add_pair(self, pair: MonitorPair, now: datetime) -> None:
        state = self._state((pair.model, pair.key, pair.version), now)
        if state is None:
            return
        state.windows.add(micros(pair.target_ts), pair.error, pair.actual)
        state.pairs += 1
        state.since_evaluation += 1
        if state.since_evaluation >= self.config.evaluate_every_pairs:
            self._evaluate(state, now)

    def note_source(
        self, version_key: VersionKey, shadow: bool, made_at: datetime | None = None
    ) -> None:
        """Where a version's predictions come from: a challenger in shadow mode (measured,
        never asking for a retrain) or the serving version (once promoted); ``made_at``:
        when the prediction was made, which tells the version serving now."""
        model, key, version = version_key
        if shadow:
            self._shadow.add(version_key)
        else:
            self._shadow.discard(version_key)
        if made_at is not None and version > 0:
            made = self._made.setdefault((model, key), {})
            made[version] = max(made_at.timestamp(), made.get(version, -inf))

    def add_expired(self, prediction: Prediction, now: datetime) -> None:
        state = self._state((prediction.model, prediction.key, prediction.version), now)
        if state is not None:
            state.windows.add_expired(micros(prediction.target_ts))
            state.expired += 1

    def tick(self, now: datetime) -> None:
        """Evaluate every version with new pairs whose last evaluation is old enough."""
        now_s = now.timestamp()
        for state in list(self._versions.values()):
            due = now_s - state.evaluated_at_s >= self.config.evaluate_interval_s
            if state.since_evaluation > 0 and due:
                self._evaluate(state, now)

    def snapshot(self, now: datetime) -> None:
        """Health of every version as it stands, without counting as an evaluation."""
        for state in self._versions.values():
            evaluation = self._measure(state, now)
            self._out.evaluations.append(evaluation)
            self._out.health.append(health_message(evaluation))

    def note_request(self, request: RetrainRequest) -> None:
        """A request read back from the requests topic (ours or an operator's)."""
        model_key = (request.model, request.key)
        self.cooldowns.record(model_key, request.action, request.requested_at.timestamp())
        self._remember(request.request_id)

    def take(self) -> Outcome:
        out, self._out = self._out, Outcome()
        serving = {(m, k): self._serving_version(m, k) for m, k, _ in self._versions}
        out.serving = {(m, k, v): serving[m, k] == v for m, k, v in self._versions}
        return out

    def _state(self, version_key: VersionKey, now: datetime) -> VersionState | None:
        state = self._versions.get(version_key)
        if state is not None:
            return state
        if version_key[2] > 0 and not self._admit(version_key):
            return None
        state = VersionState(self.config, version_key, now.timestamp())
        self._versions[version_key] = state
        return state

    def _admit(self, version_key: VersionKey) -> bool:
        """Track a new version, retiring the least recently predicting one beyond the limit;
        False when the version itself is not tracked (a straggler of a retired version)."""
        model, key, version = version_key
        retired = self._retired.setdefault((model, key), set())
        kept = self._registered.setdefault((model, key), [])
        kept.append(version)
        kept.sort()
        serving = self._serving_version(model, key)
        if version in retired and version != serving:
            kept.remove(version)
            return False
        retired.discard(version)
        while len(kept) > self.config.versions_per_key:
            victim = min(
                (v for v in kept if v != serving),
                key=lambda v: (self._made.get((model, key), {}).get(v, -inf), v),
            )
            kept.remove(victim)
            retired.add(victim)
            if victim == version:
                return False
            gone = (model, key, victim)
            del self._versions[gone]
            self._shadow.discard(gone)
            self._made.get((model, key), {}).pop(victim, None)
            self._out.retired.append(gone)
        return True

    def _serving_version(self, model: str, key: str | None) -> int | None:
        """The version whose main-topic prediction is newest, else the highest tracked
        version not seen on the shadow topic."""
        made = self._made.get((model, key), {})
        main_made = [(at, v) for v, at in made.items() if (model, key, v) not in self._shadow]
        if main_made:
            return max(main_made)[1]
        kept = self._registered.get((model, key), ())
        main = [v for v in kept if (model, key, v) not in self._shadow]
        return main[-1] if main else None

    def _measure(self, state: VersionState, now: datetime) -> Evaluation:
        """Figures of ``state`` now, with its current status (no hysteresis step)."""
        windows, config = state.windows, self.config
        count, time = windows.count_stats(), windows.time_stats()
        judged = count if config.judged_window == "count" else time
        baseline = self.baselines(state.model, state.key, state.version)
        degradation = None
        if baseline and judged.mae is not None:
            degradation = min(judged.mae / baseline - 1.0, MAX_MAGNITUDE)
        status = state.hysteresis.status
        return Evaluation(
            model=state.model,
            key=state.key,
            version=state.version,
            at=now,
            evaluation=state.pairs,
            count=count,
            time=time,
            judged=judged,
            window_s=window_seconds(judged, config.judged_window, config.time_window_s),
            baseline_mae=baseline,
            degradation=degradation,
            coverage=windows.coverage(),
            status=status,
            previous=status,
        )

    def _evaluate(self, state: VersionState, now: datetime) -> None:
        state.since_evaluation = 0
        state.evaluated_at_s = now.timestamp()
        measured = self._measure(state, now)
        level = self.config.thresholds.level(measured.degradation, measured.judged.pairs)
        evaluation = replace(measured, status=state.hysteresis.observe(level))
        self._out.evaluations.append(evaluation)
        if not self.replaying:
            self._out.health.append(health_message(evaluation))
        if self._judged_for_requests(state):
            self._decide(evaluation, level)

    def _judged_for_requests(self, state: VersionState) -> bool:
        """Only the version serving a model key asks for retraining."""
        return state.version > 0 and state.version == self._serving_version(state.model, state.key)

    def _decide(self, evaluation: Evaluation, level: int | None) -> None:
        action = ACTIONS.get(evaluation.status)
        if action is None:
            return
        if level == CRITICAL_LEVEL:
            # The status is still rising through warning but this evidence is critical
            # already: ask for the full retrain now. A fine-tune followed by the escalation
            # a few evaluations later would train twice for one drift.
            action = ACTIONS["critical"]
        model_key = (evaluation.model, evaluation.key)
        now_s = evaluation.at.timestamp()
        request = retrain_request(evaluation, action)
        requested = False
        if request.request_id not in self._request_ids and self.cooldowns.allows(
            model_key, action, now_s
        ):
            self._out.requests.append(request)
            self.cooldowns.record(model_key, action, now_s)
            self._remember(request.request_id)
            requested = True
        went_critical = evaluation.status == "critical" and evaluation.previous != "critical"
        if went_critical and not self.replaying:
            self._out.alerts.append(
                drift_alert(
                    evaluation,
                    self.config.thresholds.critical,
                    self._recommendation(model_key, request, requested),
                )
            )

    def _recommendation(self, model_key: ModelKey, request: RetrainRequest, requested: bool) -> str:
        if requested:
            return f"{request.action} requested (request_id {request.request_id})"
        last = self.cooldowns.last(model_key)
        if last is None:
            return "retrain requested earlier for this evidence"
        until = datetime.fromtimestamp(last.at_s + self.cooldowns.seconds, UTC)
        return (
            f"{last.action} already requested; no other request until "
            f"{until.isoformat(timespec='seconds')} (cooldown)"
        )

    def _remember(self, request_id: str) -> None:
        self._request_ids[request_id] = None
        if len(self._request_ids) > MAX_REQUEST_IDS:
            self._request_ids.popitem(last=False)
