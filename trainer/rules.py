"""The decision rules: what to do with one model key, as a pure function.

Rules, first match wins (thresholds from :class:`Thresholds`, i.e. the trainer settings):

1. no champion yet                                   -> full retrain (bootstrap)
   (evidence measured on another version than the champion -> nothing: it is stale)
2. critical drift (degradation >= 25 % or status critical) -> full retrain
3. a request asked for a full retrain                -> full retrain
4. >= 90 days since the last full retrain            -> full retrain
5. >= 5 fine-tunes since the last full retrain       -> full retrain
6. moderate drift (degradation >= 15 % or status warning) -> fine-tune
7. a request asked for a fine-tune                   -> fine-tune
8. >= 7 days since the champion last changed         -> fine-tune
9. otherwise                                         -> nothing

A request's action is one input among others: a fine-tune request whose evidence shows
critical drift, or that arrives 90 days after the last full retrain, becomes a full retrain.

>>> from datetime import UTC, datetime, timedelta
>>> now = datetime(2026, 6, 1, tzinfo=UTC)
>>> lineage = Lineage(True, now - timedelta(days=10), now - timedelta(days=3), 1)
>>> decide(Trigger("request", "fine_tune", {"degradation": 0.31}), lineage, now).reason
'critical drift: degradation 31.0% >= 25.0%'
>>> decide(Trigger("schedule"), lineage, now).action
'none'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Action = Literal["full_retrain", "fine_tune", "none"]
Source = Literal["request", "schedule", "bootstrap"]
DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class Thresholds:
    """Rule thresholds (defaults are the trainer settings' defaults)."""

    critical_degradation: float = 0.25
    moderate_degradation: float = 0.15
    full_retrain_days: float = 90.0
    max_fine_tunes: int = 5
    update_days: float = 7.0
    # Shadow mode: a challenger's shadow run is waited for (see _shadow_run).
    wait_for_shadow: bool = False


@dataclass(frozen=True)
class Lineage:
    """What the registry says about the serving version of one model key."""

    has_champion: bool
    last_full: datetime | None = None  # when the champion's lineage was last fully retrained
    last_update: datetime | None = None  # when the champion last changed
    fine_tunes_since_full: int = 0
    champion: int | None = None  # the serving version
    challenger: int | None = None  # the version in a shadow run, if any


@dataclass(frozen=True)
class Trigger:
    """Why the rules run: a request (with its action and evidence) or a scheduled check."""

    source: Source
    action: Literal["fine_tune", "full_retrain"] | None = None
    evidence: Mapping[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The action and the rule (with its figures) that chose it."""

    action: Action
    rule: str
    reason: str


@dataclass(frozen=True)
class Facts:
    """Everything a rule looks at, computed once."""

    trigger: Trigger
    lineage: Lineage
    limits: Thresholds
    degradation: float | None
    status: str | None
    since_full: float | None  # days
    since_update: float | None  # days


Rule = Callable[[Facts], Decision | None]


def decide(
    trigger: Trigger, lineage: Lineage, now: datetime, limits: Thresholds | None = None
) -> Decision:
    """Apply the rules in order; the first that matches decides."""
    degradation, status = _drift(trigger.evidence)
    facts = Facts(
        trigger,
        lineage,
        limits or Thresholds(),
        degradation,
        status,
        _days(now, lineage.last_full),
        _days(now, lineage.last_update),
    )
    for rule in RULES:
        decision = rule(facts)
        if decision is not None:
            return decision
    return Decision("none", "none", _nothing(facts))


def _bootstrap(f: Facts) -> Decision | None:
    if f.lineage.has_champion:
        return None
    return Decision("full_retrain", "bootstrap", "no champion yet: train the first version")


def _stale_evidence(f: Facts) -> Decision | None:
    """Evidence measured on another version than the one serving now says nothing about it."""
    measured = f.trigger.evidence.get("version")
    champion = f.lineage.champion
    if not isinstance(measured, int | float) or champion is None or int(measured) == champion:
        return None
    text = f"the evidence is about v{int(measured)}, but v{champion} serves now"
    return Decision("none", "stale_evidence", text)


def _shadow_run(f: Facts) -> Decision | None:
    """A challenger in its shadow run is the answer to the drift that made it: the
    monitor's requests and scheduled checks wait for its verdict. Otherwise, with the
    champion still drifting, each hourly request would replace the challenger and no shadow
    run would last long enough to be judged. An operator's request still goes ahead."""
    challenger = f.lineage.challenger
    if not f.limits.wait_for_shadow or challenger is None:
        return None
    if f.trigger.source == "request" and f.trigger.evidence.get("trigger") == "operator":
        return None
    return Decision("none", "shadow_run", f"v{challenger} is in its shadow run: its verdict first")


def _drift_rule(
    f: Facts, threshold: float, status: str, action: Action, level: str
) -> Decision | None:
    """Degradation at or above ``threshold``, or the monitor's ``status``, asks ``action``."""
    reason = f"{level}_drift"
    if f.degradation is not None and f.degradation >= threshold:
        text = f"degradation {f.degradation:.1%} >= {threshold:.1%}"
        return Decision(action, reason, f"{level} drift: {text}")
    if f.status == status:
        return Decision(action, reason, f"{level} drift: health status {status}")
    return None


def _critical_drift(f: Facts) -> Decision | None:
    return _drift_rule(f, f.limits.critical_degradation, "critical", "full_retrain", "critical")


def _requested_full(f: Facts) -> Decision | None:
    if f.trigger.action != "full_retrain":
        return None
    return Decision("full_retrain", "requested", "a full retrain was requested")


def _full_retrain_age(f: Facts) -> Decision | None:
    if f.since_full is None or f.since_full < f.limits.full_retrain_days:
        return None
    text = f"{f.since_full:.1f} days since the last full retrain >= {f.limits.full_retrain_days:g}"
    return Decision("full_retrain", "full_retrain_age", text)


def _fine_tune_count(f: Facts) -> Decision | None:
    count, limit = f.lineage.fine_tunes_since_full, f.limits.max_fine_tunes
    if count < limit:
        return None
    text = f"{count} fine-tunes since the last full retrain >= {limit}"
    return Decision("full_retrain", "fine_tune_count", text)


def _moderate_drift(f: Facts) -> Decision | None:
    return _drift_rule(f, f.limits.moderate_degradation, "warning", "fine_tune", "moderate")


def _requested_fine_tune(f: Facts) -> Decision | None:
    if f.trigger.action != "fine_tune":
        return None
    return Decision("fine_tune", "requested", "a fine-tune was requested")


def _update_age(f: Facts) -> Decision | None:
    if f.since_update is None or f.since_update < f.limits.update_days:
        return None
    text = f"{f.since_update:.1f} days since the champion last changed >= {f.limits.update_days:g}"
    return Decision("fine_tune", "update_age", text)


# The order is the precedence: full retrains before fine-tunes, evidence before age.
RULES: tuple[Rule, ...] = (
    _bootstrap,
    _stale_evidence,
    _shadow_run,
    _critical_drift,
    _requested_full,
    _full_retrain_age,
    _fine_tune_count,
    _moderate_drift,
    _requested_fine_tune,
    _update_age,
)


def _drift(evidence: Mapping[str, float | str]) -> tuple[float | None, str | None]:
    """Degradation fraction and health status named by a request's evidence, if any."""
    raw = evidence.get("degradation")
    degradation = float(raw) if isinstance(raw, int | float) else None
    status = evidence.get("status", evidence.get("severity"))
    return degradation, status.lower() if isinstance(status, str) else None


def _days(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else (now - then).total_seconds() / DAY_SECONDS


def _nothing(f: Facts) -> str:
    facts = []
    if f.degradation is not None:
        facts.append(f"degradation {f.degradation:.1%}")
    if f.since_full is not None:
        facts.append(f"{f.since_full:.1f} days since full retrain")
    if f.since_update is not None:
        facts.append(f"{f.since_update:.1f} days since last update")
    return "no rule applies" + (f" ({', '.join(facts)})" if facts else "")
