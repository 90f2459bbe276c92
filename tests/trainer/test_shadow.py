"""Shadow mode: verdicts from live health, and applying them to the registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from events import ModelHealth
from models.families import create
from models.history import Aliases
from models.registry import Registry
from trainer.errors import PublishError
from trainer.outbox import Outbox
from trainer.policy import shadows
from trainer.settings import TrainerSettings
from trainer.shadow import ShadowTracker, judge_shadow, settle
from trainer.state import TrainerState

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def health(version: int, mae: float | None, pairs: int, minutes: int = 0) -> ModelHealth:
    return ModelHealth(
        model="demand",
        version=version,
        ts=T0 + timedelta(minutes=minutes),
        window=3600,
        pairs=pairs,
        mae=mae,
        status="healthy",
    )


def test_no_verdict_before_both_have_enough_pairs() -> None:
    assert judge_shadow(health(1, 10.0, 99), health(2, 5.0, 500), 100, 0.02) is None
    assert judge_shadow(health(1, 10.0, 500), health(2, 5.0, 99), 100, 0.02) is None
    assert judge_shadow(health(1, None, 500), health(2, 5.0, 500), 100, 0.02) is None


def test_a_challenger_better_by_the_margin_is_promoted() -> None:
    verdict = judge_shadow(health(1, 10.0, 120), health(2, 9.7, 110), 100, 0.02)
    assert verdict is not None and verdict.promote
    assert (verdict.champion, verdict.challenger, verdict.job_id) == (1, 2, "shadow:demand:v2")
    assert verdict.figures == {
        "mae": 9.7,
        "champion_mae": 10.0,
        "pairs": 110.0,
        "champion_pairs": 120.0,
    }


def test_a_challenger_not_better_by_the_margin_is_rejected() -> None:
    verdict = judge_shadow(health(1, 10.0, 120), health(2, 9.9, 110), 100, 0.02)
    assert verdict is not None and not verdict.promote
    assert verdict.reason.startswith("reject: shadow: challenger v2 live MAE 9.9 on 110 pairs")


def test_tracker_waits_for_fresh_health_of_both_versions() -> None:
    tracker = ShadowTracker(min_pairs=100, margin=0.02)
    aliases = Aliases(champion=1, challenger=2)
    since = T0 + timedelta(minutes=5)
    assert tracker.observe(health(1, 10.0, 200, minutes=10), aliases, since) is None
    # measured before the challenger started: ignored
    assert tracker.observe(health(2, 5.0, 200, minutes=1), aliases, since) is None
    verdict = tracker.observe(health(2, 5.0, 200, minutes=11), aliases, since)
    assert verdict is not None and verdict.promote
    # handed out once until settled
    assert tracker.observe(health(2, 5.0, 210, minutes=12), aliases, since) is None
    tracker.settled(verdict)
    assert tracker.observe(health(1, 10.0, 200, minutes=13), aliases, since) is None


def test_tracker_waits_for_champion_health_measured_since_the_challenger_started() -> None:
    tracker = ShadowTracker(min_pairs=100, margin=0.02)
    aliases = Aliases(champion=1, challenger=2)
    since = T0 + timedelta(minutes=5)
    assert tracker.observe(health(1, 10.0, 200, minutes=1), aliases, since) is None
    assert tracker.observe(health(2, 5.0, 200, minutes=11), aliases, since) is None
    verdict = tracker.observe(health(1, 10.0, 200, minutes=12), aliases, since)
    assert verdict is not None and verdict.promote


def test_no_challenger_no_verdict() -> None:
    tracker = ShadowTracker(min_pairs=1, margin=0.0)
    assert tracker.observe(health(1, 10.0, 200), Aliases(champion=1), None) is None
    assert tracker.observe(health(2, 1.0, 200), Aliases(champion=1), None) is None


def _registry_with_challenger(
    tmp_path: Path, history: pd.DataFrame, params: dict[str, Any]
) -> Registry:
    registry = Registry(tmp_path / "store")
    for _ in range(2):
        model = create("demand", params)
        model.fit(history)
        registry.register(model, "demand")
    registry.set_challenger("demand", 2, reason="passed the gate")
    return registry


def test_settle_promotes_and_announces(
    tmp_path: Path, demand_history: pd.DataFrame, tiny_params: dict[str, Any], announcer: Any
) -> None:
    registry = _registry_with_challenger(tmp_path, demand_history, tiny_params)
    state = TrainerState(tmp_path / "state.json")
    verdict = judge_shadow(health(1, 10.0, 200), health(2, 9.0, 200), 100, 0.02)
    assert verdict is not None
    record = settle(verdict, registry, announcer, state)
    assert record is not None and record.outcome == "promoted"
    assert registry.aliases("demand").champion == 2
    assert registry.aliases("demand").challenger is None
    assert [(a.version, a.action) for a in announcer.sent] == [(2, "promoted")]


def test_a_shadow_promotion_whose_announcement_failed_goes_out_at_the_next_flush(
    tmp_path: Path, demand_history: pd.DataFrame, tiny_params: dict[str, Any], announcer: Any
) -> None:
    registry = _registry_with_challenger(tmp_path, demand_history, tiny_params)
    state = TrainerState(tmp_path / "state.json")
    verdict = judge_shadow(health(1, 10.0, 200), health(2, 9.0, 200), 100, 0.02)
    assert verdict is not None
    announcer.failures = 1
    with pytest.raises(PublishError):
        settle(verdict, registry, announcer, state)
    assert registry.aliases("demand").champion == 2 and announcer.sent == []
    restarted = TrainerState.load(tmp_path / "state.json")  # the note outlives the process
    assert Outbox(restarted, registry, announcer).flush() == 1
    assert [(a.version, a.action) for a in announcer.sent] == [(2, "promoted")]
    assert Outbox(restarted, registry, announcer).flush() == 0


def test_settle_rejects_without_announcing(
    tmp_path: Path, demand_history: pd.DataFrame, tiny_params: dict[str, Any], announcer: Any
) -> None:
    registry = _registry_with_challenger(tmp_path, demand_history, tiny_params)
    state = TrainerState(tmp_path / "state.json")
    verdict = judge_shadow(health(1, 10.0, 200), health(2, 10.5, 200), 100, 0.02)
    assert verdict is not None
    record = settle(verdict, registry, announcer, state)
    assert record is not None and record.outcome == "rejected"
    assert (registry.aliases("demand").champion, registry.aliases("demand").challenger) == (1, None)
    assert [e.action for e in registry.history("demand")][-1] == "reject"
    assert announcer.sent == []


def test_settle_drops_a_stale_verdict(
    tmp_path: Path, demand_history: pd.DataFrame, tiny_params: dict[str, Any], announcer: Any
) -> None:
    registry = _registry_with_challenger(tmp_path, demand_history, tiny_params)
    registry.set_challenger("demand", None, reason="an operator dropped it")
    verdict = judge_shadow(health(1, 10.0, 200), health(2, 9.0, 200), 100, 0.02)
    assert verdict is not None
    assert settle(verdict, registry, announcer, TrainerState(tmp_path / "s.json")) is None
    assert registry.aliases("demand").champion == 1


def test_settle_does_not_promote_over_a_champion_changed_after_its_check(
    tmp_path: Path,
    demand_history: pd.DataFrame,
    tiny_params: dict[str, Any],
    announcer: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = _registry_with_challenger(tmp_path, demand_history, tiny_params)
    model = create("demand", tiny_params)
    model.fit(demand_history)
    registry.register(model, "demand", promote_if_first=False)
    read = registry.aliases

    def an_operator_promotes_v3_just_after(name: str, key: str | None = None) -> Aliases:
        aliases = read(name, key)
        monkeypatch.undo()
        registry.promote("demand", 3, reason="operator")
        return aliases

    monkeypatch.setattr(registry, "aliases", an_operator_promotes_v3_just_after)
    verdict = judge_shadow(health(1, 10.0, 200), health(2, 9.0, 200), 100, 0.02)
    assert verdict is not None
    assert settle(verdict, registry, announcer, TrainerState(tmp_path / "s.json")) is None
    assert registry.aliases("demand").champion == 3
    assert announcer.sent == []


def test_health_is_dated_by_when_it_was_measured_not_by_its_event_time() -> None:
    tracker = ShadowTracker(min_pairs=100, margin=0.02)
    aliases = Aliases(champion=1, challenger=2)
    # a replayed stream: the readings (and so health.ts) lie months before the wall clock
    started = T0 + timedelta(days=150)
    assert tracker.observe(health(1, 10.0, 200), aliases, started, started) is None
    measured = started + timedelta(seconds=30)
    verdict = tracker.observe(health(2, 5.0, 200, minutes=1), aliases, started, measured)
    assert verdict is not None and verdict.promote


def test_only_families_whose_predictions_are_paired_run_in_shadow(tmp_path: Path) -> None:
    shadow = TrainerSettings(model_store=tmp_path / "store", shadow=True)
    # an anomaly model publishes alerts, never a paired prediction: a challenger of it
    # would wait for live pairs forever, so its gate's verdict promotes it
    assert [f for f in ("anomaly", "maintenance", "demand", "sequence") if shadows(f, shadow)] == [
        "maintenance",
        "demand",
        "sequence",
    ]
    assert not shadows("demand", shadow.model_copy(update={"shadow": False}))
