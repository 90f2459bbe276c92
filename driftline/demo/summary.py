"""The run's outcome: figures, the goals it reached, and how to print them.

Pure functions of :class:`RunFacts` (what the producers, the output topics and the last
scrape of the services told), so they are tested on made-up facts without a broker.

Goals
    * anomalies alerted: at least half of the labelled anomaly events of the stream got an
      anomaly alert on one of their readings;
    * drift detected: after the onset, the monitor judged the drifting model degraded (a
      warning or critical health report, a retrain request or a drift alert);
    * retrain promoted: a retrained version of that model became champion after the onset;
    * MAE recovered: the promoted version's MAE came at least halfway back from the MAE of
      the old version during the drift to its MAE before the drift.

MAE figures are over every labelled pair (``monitor.pairs``) of the drifting model: before
(the version serving at the onset, targets before the onset), during (the same version,
targets from the onset on) and after (the last version promoted after the onset, all its
pairs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd

from driftline.demo.scrape import Figures, quantile
from events import Alert, ModelHealth, ModelUpdate, MonitorPair, RetrainRequest
from models.frames import ENTITY

ANOMALY_RECALL_GOAL: Final = 0.5  # share of labelled events that must be alerted
RECOVERY_SHARE: Final = 0.5  # share of the drift's excess error a retrain must remove
DEGRADED: Final = frozenset({"warning", "critical"})


@dataclass(frozen=True)
class RunFacts:
    """What one run observed (times are wall clock, ``time.time()``)."""

    started_at: float
    ended_at: float
    history_published: int = 0
    live_published: int = 0
    malformed: int = 0
    stream_started_at: float | None = None
    onset_at: float | None = None
    onset_ts: datetime | None = None  # simulated time of the first drifted reading
    first_score_at: float | None = None
    events: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[ENTITY]))
    alerts: Sequence[tuple[float, Alert]] = ()
    health: Sequence[tuple[float, ModelHealth]] = ()
    requests: Sequence[tuple[float, RetrainRequest]] = ()
    updates: Sequence[tuple[float, ModelUpdate]] = ()
    pairs: Sequence[MonitorPair] = ()
    figures: Figures = field(default_factory=Figures)
    drift_model: str = "demand"
    interrupted: bool = False


@dataclass(frozen=True)
class Summary:
    """Figures of a run and which goals it reached (``None``: did not happen)."""

    seconds: float
    readings: int
    malformed: int
    predictions: int
    alerts: dict[str, int]
    anomaly_events: int
    anomaly_events_alerted: int
    first_score_s: float | None
    stream_start_s: float | None
    onset_s: float | None
    detected_s: float | None
    requests: int
    promoted_version: int | None
    promoted_s: float | None
    serving_version: int | None  # the drift model's champion at the end
    rejected: int
    mae_before: float | None
    mae_during: float | None
    mae_after: float | None
    p99_s: float | None
    dlq: dict[str, int]
    interrupted: bool

    @property
    def goals(self) -> dict[str, bool]:
        recall = self.anomaly_events_alerted / self.anomaly_events if self.anomaly_events else 0
        return {
            "anomalies alerted": self.anomaly_events > 0 and recall >= ANOMALY_RECALL_GOAL,
            "drift detected": self.detected_s is not None,
            "retrain promoted": self.promoted_version is not None,
            "MAE recovered": recovered(self.mae_before, self.mae_during, self.mae_after),
        }

    @property
    def achieved(self) -> bool:
        return all(self.goals.values())

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "goals": self.goals, "achieved": self.achieved}


def recovered(before: float | None, during: float | None, after: float | None) -> bool:
    """Whether ``after`` came back at least ``RECOVERY_SHARE`` of the way to ``before``."""
    if before is None or during is None or after is None or during <= before:
        return False
    return after <= during - RECOVERY_SHARE * (during - before)


def summarize(facts: RunFacts) -> Summary:
    start = facts.started_at
    since = _since(start)
    onset = facts.onset_at
    promotion = _promotion(facts.updates, facts.drift_model, onset)
    latest = _promotion(facts.updates, facts.drift_model, onset, last=True)
    old, new = _versions(facts.health, facts.drift_model, onset, latest)
    figures = facts.figures
    return Summary(
        seconds=facts.ended_at - start,
        readings=facts.history_published + facts.live_published,
        malformed=facts.malformed,
        predictions=int(figures.outputs.get("prediction", 0)),
        alerts=dict(Counter(alert.type for _, alert in facts.alerts)),
        anomaly_events=len(facts.events),
        anomaly_events_alerted=alerted_events(facts.events, [a for _, a in facts.alerts]),
        first_score_s=since(facts.first_score_at),
        stream_start_s=since(facts.stream_started_at),
        onset_s=since(onset),
        detected_s=since(_detection(facts, onset)),
        requests=sum(1 for _, r in facts.requests if r.model == facts.drift_model),
        promoted_version=None if promotion is None else promotion[1].version,
        promoted_s=None if promotion is None else since(promotion[0]),
        serving_version=new if new is not None else old,
        rejected=figures.decisions.get(facts.drift_model, {}).get("rejected", 0),
        mae_before=_pair_mae(facts, old, before=True),
        mae_during=_pair_mae(facts, old, before=False),
        mae_after=_pair_mae(facts, new, before=None),
        p99_s=quantile(0.99, figures.latency),
        dlq={reason: int(n) for reason, n in figures.dlq.items()},
        interrupted=facts.interrupted,
    )


def alerted_events(events: pd.DataFrame, alerts: Sequence[Alert]) -> int:
    """Labelled events (entity_id, start, end) with an anomaly alert on one of their readings."""
    anomalies = [(a.entity_id, a.ts) for a in alerts if a.type == "anomaly"]
    if events.empty or not anomalies:
        return 0
    found = pd.DataFrame(anomalies, columns=[ENTITY, "alert_ts"])
    found["alert_ts"] = pd.to_datetime(found["alert_ts"], utc=True)
    numbered = events.reset_index(drop=True).rename_axis("event").reset_index()
    joined = numbered.merge(found, on=ENTITY)
    inside = (joined["alert_ts"] >= joined["start"]) & (joined["alert_ts"] <= joined["end"])
    return int(joined.loc[inside, "event"].nunique())


def _since(start: float) -> Any:
    def since(at: float | None) -> float | None:
        return None if at is None else at - start

    return since


def _promotion(
    updates: Sequence[tuple[float, ModelUpdate]],
    model: str,
    onset: float | None,
    last: bool = False,
) -> tuple[float, ModelUpdate] | None:
    """The first (or ``last``) promotion of ``model`` after the onset."""
    if onset is None:
        return None
    later = [
        (at, u) for at, u in updates if u.model == model and u.action == "promoted" and at > onset
    ]
    if not later:
        return None
    return later[-1] if last else later[0]


def _versions(
    health: Sequence[tuple[float, ModelHealth]],
    model: str,
    onset: float | None,
    promotion: tuple[float, ModelUpdate] | None,
) -> tuple[int | None, int | None]:
    """(version serving when the drift began, the last promoted version)."""
    before = [h.version for at, h in health if h.model == model and (onset is None or at <= onset)]
    old = before[-1] if before else None
    if old is None:
        old = next((h.version for _, h in health if h.model == model), None)
    return old, None if promotion is None else promotion[1].version


def _detection(facts: RunFacts, onset: float | None) -> float | None:
    """First sign after the onset that the monitor judged the drifting model degraded."""
    if onset is None:
        return None
    model = facts.drift_model
    signs = [at for at, h in facts.health if h.model == model and h.status in DEGRADED]
    signs += [at for at, r in facts.requests if r.model == model]
    signs += [at for at, a in facts.alerts if a.type == "drift" and a.model == model]
    later = [at for at in signs if at > onset]
    return min(later) if later else None


def _pair_mae(facts: RunFacts, version: int | None, before: bool | None) -> float | None:
    """MAE of the drifting model's ``version`` over pairs whose target is before the onset
    (``before``), from it on (not ``before``), or all of them (None)."""
    if version is None or (before is not None and facts.onset_ts is None):
        return None
    onset = facts.onset_ts
    errors = [
        abs(p.error)
        for p in facts.pairs
        if p.model == facts.drift_model
        and p.version == version
        and (before is None or onset is None or (p.target_ts < onset) == before)
    ]
    return float(np.mean(errors)) if errors else None


def rows(summary: Summary) -> list[tuple[str, str]]:
    """(label, value) lines of the summary, as printed at the end of a run."""
    s = summary
    alerts = ", ".join(f"{kind} {n}" for kind, n in sorted(s.alerts.items())) or "none"
    dlq = ", ".join(f"{reason} {n}" for reason, n in sorted(s.dlq.items())) or "none"
    return [
        ("duration", f"{s.seconds:.0f} s" + (" (interrupted)" if s.interrupted else "")),
        ("readings published", f"{s.readings:,} (+{s.malformed} malformed)"),
        ("predictions", f"{s.predictions:,}"),
        ("alerts by type", alerts),
        ("anomalies alerted", f"{s.anomaly_events_alerted} of {s.anomaly_events} labelled events"),
        ("first score after", _seconds(s.first_score_s)),
        ("drift onset at", _seconds(s.onset_s)),
        ("drift detected at", _detected(s)),
        ("retrain requests", str(s.requests)),
        ("candidates rejected by the gate", str(s.rejected)),
        ("retrain promoted", _promoted(s)),
        ("MAE before drift", _number(s.mae_before)),
        ("MAE during drift", _number(s.mae_during)),
        ("MAE after retrain", _after(s)),
        ("p99 end-to-end latency", "-" if s.p99_s is None else f"{s.p99_s * 1000:.0f} ms"),
        ("dead-lettered", dlq),
    ]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _detected(s: Summary) -> str:
    if s.detected_s is None:
        return "-"
    if s.onset_s is None:
        return _seconds(s.detected_s)
    return f"{s.detected_s:.1f} s ({s.detected_s - s.onset_s:.1f} s after the onset)"


def _after(s: Summary) -> str:
    if s.mae_after is None:
        return "-"
    return f"{s.mae_after:.2f} (v{s.serving_version}, latest)"


def _promoted(s: Summary) -> str:
    if s.promoted_version is None or s.promoted_s is None:
        return "-"
    return f"v{s.promoted_version} at {s.promoted_s:.1f} s"
