"""The decision rules: each rule on its own, and their precedence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trainer.rules import RULES, Decision, Lineage, Thresholds, Trigger, decide

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def fresh(**changes: object) -> Lineage:
    """A champion fully retrained 10 days ago, updated 2 days ago, one fine-tune since."""
    values: dict[str, object] = {
        "has_champion": True,
        "last_full": NOW - timedelta(days=10),
        "last_update": NOW - timedelta(days=2),
        "fine_tunes_since_full": 1,
        "champion": 3,
    }
    values.update(changes)
    return Lineage(**values)  # type: ignore[arg-type]


def run(trigger: Trigger, lineage: Lineage, limits: Thresholds | None = None) -> Decision:
    return decide(trigger, lineage, NOW, limits)


SCHEDULE = Trigger("schedule")


def test_nothing_when_no_rule_applies() -> None:
    decision = run(SCHEDULE, fresh())
    assert (decision.action, decision.rule) == ("none", "none")
    assert "2.0 days since last update" in decision.reason


def test_no_champion_means_a_first_full_retrain() -> None:
    decision = run(SCHEDULE, Lineage(has_champion=False))
    assert (decision.action, decision.rule) == ("full_retrain", "bootstrap")


@pytest.mark.parametrize(
    ("evidence", "action", "rule"),
    [
        ({"degradation": 0.25}, "full_retrain", "critical_drift"),
        ({"degradation": 0.31}, "full_retrain", "critical_drift"),
        ({"status": "critical"}, "full_retrain", "critical_drift"),
        ({"degradation": 0.15}, "fine_tune", "moderate_drift"),
        ({"degradation": 0.2}, "fine_tune", "moderate_drift"),
        ({"severity": "WARNING"}, "fine_tune", "moderate_drift"),
        ({"degradation": 0.149}, "none", "none"),
        ({"degradation": "high"}, "none", "none"),  # not a number: no drift figure
    ],
)
def test_drift_evidence(evidence: dict[str, float | str], action: str, rule: str) -> None:
    decision = run(Trigger("request", None, evidence), fresh())
    assert (decision.action, decision.rule) == (action, rule)


def test_evidence_about_another_version_is_stale() -> None:
    stale = run(Trigger("request", "full_retrain", {"degradation": 0.5, "version": 2}), fresh())
    assert (stale.action, stale.rule) == ("none", "stale_evidence")
    assert stale.reason == "the evidence is about v2, but v3 serves now"
    current = run(Trigger("request", "full_retrain", {"degradation": 0.5, "version": 3}), fresh())
    assert current.rule == "critical_drift"


def test_a_shadow_run_is_waited_for_except_by_an_operator() -> None:
    shadow = Thresholds(wait_for_shadow=True)
    running = fresh(challenger=4)
    drifting = Trigger("request", "full_retrain", {"degradation": 0.5, "version": 3})
    waits = run(drifting, running, shadow)
    assert (waits.action, waits.rule) == ("none", "shadow_run")
    assert waits.reason == "v4 is in its shadow run: its verdict first"
    assert run(SCHEDULE, fresh(challenger=4, last_full=NOW - timedelta(days=200)), shadow).rule == (
        "shadow_run"
    )
    operator = Trigger("request", "full_retrain", {"trigger": "operator"})
    assert run(operator, running, shadow).action == "full_retrain"
    assert run(drifting, fresh(), shadow).rule == "critical_drift"  # no challenger
    assert run(drifting, running).rule == "critical_drift"  # shadow mode off


def test_requested_actions() -> None:
    assert run(Trigger("request", "full_retrain"), fresh()).action == "full_retrain"
    fine = run(Trigger("request", "fine_tune"), fresh())
    assert (fine.action, fine.rule) == ("fine_tune", "requested")


def test_full_retrain_after_90_days() -> None:
    decision = run(SCHEDULE, fresh(last_full=NOW - timedelta(days=90)))
    assert (decision.action, decision.rule) == ("full_retrain", "full_retrain_age")
    assert run(SCHEDULE, fresh(last_full=NOW - timedelta(days=89))).action == "none"


def test_full_retrain_after_5_fine_tunes() -> None:
    decision = run(SCHEDULE, fresh(fine_tunes_since_full=5))
    assert (decision.action, decision.rule) == ("full_retrain", "fine_tune_count")
    assert run(SCHEDULE, fresh(fine_tunes_since_full=4)).action == "none"


def test_fine_tune_after_7_days_without_update() -> None:
    decision = run(SCHEDULE, fresh(last_update=NOW - timedelta(days=7)))
    assert (decision.action, decision.rule) == ("fine_tune", "update_age")
    assert run(SCHEDULE, fresh(last_update=NOW - timedelta(days=6.9))).action == "none"


def test_critical_evidence_turns_a_fine_tune_request_into_a_full_retrain() -> None:
    trigger = Trigger("request", "fine_tune", {"degradation": 0.4})
    assert run(trigger, fresh()).rule == "critical_drift"


def test_age_turns_a_fine_tune_request_into_a_full_retrain() -> None:
    trigger = Trigger("request", "fine_tune", {"degradation": 0.2})
    decision = run(trigger, fresh(last_full=NOW - timedelta(days=120)))
    assert (decision.action, decision.rule) == ("full_retrain", "full_retrain_age")


def test_precedence_full_before_fine_tune_and_evidence_before_age() -> None:
    old = fresh(
        last_full=NOW - timedelta(days=100),
        last_update=NOW - timedelta(days=30),
        fine_tunes_since_full=9,
    )
    assert run(Trigger("request", None, {"degradation": 0.5}), old).rule == "critical_drift"
    assert run(SCHEDULE, old).rule == "full_retrain_age"
    tuned = fresh(fine_tunes_since_full=9, last_update=NOW - timedelta(days=30))
    assert run(SCHEDULE, tuned).rule == "fine_tune_count"
    stale = fresh(last_update=NOW - timedelta(days=30))
    assert run(Trigger("request", None, {"degradation": 0.2}), stale).rule == "moderate_drift"
    assert [rule.__name__ for rule in RULES][:4] == [
        "_bootstrap",
        "_stale_evidence",
        "_shadow_run",
        "_critical_drift",
    ]


def test_thresholds_are_configurable() -> None:
    drift = Thresholds(critical_degradation=0.5, moderate_degradation=0.05)
    assert run(Trigger("request", None, {"degradation": 0.3}), fresh(), drift).action == "fine_tune"
    assert (
        run(Trigger("request", None, {"degradation": 0.06}), fresh(), drift).action == "fine_tune"
    )
    assert run(SCHEDULE, fresh(), Thresholds(full_retrain_days=5)).rule == "full_retrain_age"
    assert run(SCHEDULE, fresh(), Thresholds(max_fine_tunes=1)).rule == "fine_tune_count"
    lenient = Thresholds(full_retrain_days=365, update_days=30)
    assert run(SCHEDULE, fresh(last_update=NOW - timedelta(days=8)), lenient).action == "none"
