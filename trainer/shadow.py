"""Shadow mode: promote a challenger only after it beat the champion on live pairs.

In shadow mode a candidate that passed the offline gate becomes the registry's challenger
and is announced with a ``challenger`` update; workers then score with both versions and
write the challenger's outputs to ``predictions.shadow``, and the monitor publishes a
``ModelHealth`` per version on ``model.health``. The trainer keeps the latest health of
every version; once the champion and the challenger each have at least ``min_pairs``
labelled pairs (measured after the challenger started), the challenger is promoted if its
rolling MAE is lower by the margin, else rejected (the registry clears the alias).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime

from events import ModelHealth
from models.history import Aliases
from models.registry import Registry
from models.registry_errors import ChampionChangedError
from trainer.outbox import Change, Outbox
from trainer.state import DecisionRecord, TrainerState
from trainer.updates import Announcer

log = logging.getLogger(__name__)

HealthKey = tuple[str, str | None, int]


@dataclass(frozen=True)
class ShadowVerdict:
    """Promote or reject ``challenger`` of a model key, and why."""

    model: str
    key: str | None
    challenger: int
    champion: int
    promote: bool
    reason: str
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def job_id(self) -> str:
        label = self.model if self.key is None else f"{self.model}/{self.key}"
        return f"shadow:{label}:v{self.challenger}"


def judge_shadow(
    champion: ModelHealth, challenger: ModelHealth, min_pairs: int, margin: float
) -> ShadowVerdict | None:
    """The verdict once both versions have ``min_pairs`` pairs and an MAE; else None."""
    if min(champion.pairs, challenger.pairs) < min_pairs:
        return None
    if champion.mae is None or challenger.mae is None:
        return None
    theirs, mine = champion.mae, challenger.mae
    needed = theirs * (1.0 - margin)
    promote = mine <= needed and mine < theirs
    reason = (
        f"shadow: challenger v{challenger.version} live MAE {mine:.4g} on {challenger.pairs} "
        f"pairs vs champion v{champion.version} {theirs:.4g} on {champion.pairs} pairs "
        f"(needs <= {needed:.4g}, margin {margin:.1%})"
    )
    figures = {
        "mae": mine,
        "champion_mae": theirs,
        "pairs": float(challenger.pairs),
        "champion_pairs": float(champion.pairs),
    }
    finite = {k: v for k, v in figures.items() if math.isfinite(v)}
    return ShadowVerdict(
        champion.model,
        champion.key,
        challenger.version,
        champion.version,
        promote,
        ("promote: " if promote else "reject: ") + reason,
        finite,
    )


class ShadowTracker:
    """The latest ``ModelHealth`` of every version, and verdicts when they are due."""

    def __init__(self, min_pairs: int, margin: float) -> None:
        self.min_pairs = min_pairs
        self.margin = margin
        self._latest: dict[HealthKey, tuple[ModelHealth, datetime]] = {}  # with measured_at
        self._due: set[HealthKey] = set()  # verdicts handed out and not settled yet
        self._lock = threading.Lock()  # observed on the loop, settled on the job thread

    def observe(
        self,
        health: ModelHealth,
        aliases: Aliases,
        since: datetime | None = None,
        measured_at: datetime | None = None,
    ) -> ShadowVerdict | None:
        """Remember ``health``; a verdict when the key's challenger has played enough.

        ``since``: when the challenger started (wall clock); health measured before it is
        ignored. ``measured_at``: when the monitor measured ``health`` (its record's Kafka
        timestamp). ``health.ts`` is no substitute: it ends the judged window in the
        readings' own time, which runs months behind the wall clock in a backfill or a
        replay. Without ``measured_at``, ``health.ts`` is taken.
        """
        with self._lock:
            return self._observe(health, aliases, since, measured_at or health.ts)

    def _observe(
        self, health: ModelHealth, aliases: Aliases, since: datetime | None, measured: datetime
    ) -> ShadowVerdict | None:
        key = (health.model, health.key, health.version)
        known = self._latest.get(key)
        if known is None or health.ts >= known[0].ts:
            self._latest[key] = (health, measured)
        if aliases.champion is None or aliases.challenger is None:
            return None
        champion = self._latest.get((health.model, health.key, aliases.champion))
        challenger = self._latest.get((health.model, health.key, aliases.challenger))
        if champion is None or challenger is None:
            return None
        # Both measured since the challenger started: a champion figure from before it
        # would judge the two versions on different stretches of readings.
        if since is not None and min(challenger[1], champion[1]) < since:
            return None
        if (health.model, health.key, aliases.challenger) in self._due:
            return None
        verdict = judge_shadow(champion[0], challenger[0], self.min_pairs, self.margin)
        if verdict is not None:
            self._due.add((health.model, health.key, aliases.challenger))
        return verdict

    def settled(self, verdict: ShadowVerdict) -> None:
        """The verdict was applied (or dropped): forget the challenger's figures."""
        key = (verdict.model, verdict.key, verdict.challenger)
        with self._lock:
            self._due.discard(key)
            self._latest.pop(key, None)


def settle(
    verdict: ShadowVerdict, registry: Registry, announcer: Announcer, state: TrainerState
) -> DecisionRecord | None:
    """Apply a shadow verdict; None when the aliases moved on since it was reached."""
    aliases = registry.aliases(verdict.model, verdict.key)
    if (aliases.champion, aliases.challenger) != (verdict.champion, verdict.challenger):
        return None
    if verdict.promote:
        change = Change(
            verdict.model,
            verdict.key,
            verdict.challenger,
            "promoted",
            verdict.reason,
            dict(verdict.figures),
        )

        def promote() -> None:
            registry.promote(
                verdict.model,
                verdict.challenger,
                verdict.key,
                verdict.reason,
                expected_champion=verdict.champion,
            )

        try:
            Outbox(state, registry, announcer).change(change, promote)
        except ChampionChangedError as exc:  # an operator moved the champion just now
            log.info("%s: shadow verdict not applied: %s", change.label, exc)
            return None
    else:
        registry.reject(verdict.model, verdict.challenger, verdict.key, verdict.reason)
    state.set_model(verdict.model, verdict.key, challenger=None, challenger_since=None)
    return DecisionRecord(
        job_id=verdict.job_id,
        model=verdict.model,
        key=verdict.key,
        trigger="shadow",
        action="shadow",
        outcome="promoted" if verdict.promote else "rejected",
        reason=verdict.reason,
        rule="shadow",
        version=verdict.challenger,
        metrics=dict(verdict.figures),
    )
