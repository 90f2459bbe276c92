"""Per-version evaluation: drift to critical, one request, version changes, replays."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from events import MonitorPair, RetrainRequest
from monitor import metrics
from monitor.evaluator import Evaluator, EvaluatorConfig, Outcome
from monitor.health import Thresholds

BASELINE = 2.0
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = EvaluatorConfig(
    count_window=200,
    time_window_s=24 * 3600,
    thresholds=Thresholds(0.15, 0.25, min_pairs=100),
    hysteresis_evaluations=3,
    evaluate_every_pairs=20,
    evaluate_interval_s=60,
    cooldown_s=3600,
)


def baselines(model: str, key: str | None, version: int) -> float | None:
    return BASELINE if version >= 1 else None


def stream(
    build: SimpleNamespace, count: int, mae: float, start: int = 0, **kw: object
) -> list[MonitorPair]:
    """Pairs whose absolute error is ``mae`` (alternating sign: no bias)."""
    return [build.pair(n, mae if n % 2 else -mae, **kw) for n in range(start, start + count)]


def feed(evaluator: Evaluator, pairs: Iterable[MonitorPair], now: datetime = NOW) -> Outcome:
    """Feed pairs and collect everything the evaluator emitted."""
    total = Outcome()
    for p in pairs:
        evaluator.add_pair(p, now)
        out = evaluator.take()
        for name in ("evaluations", "health", "requests", "alerts", "retired"):
            getattr(total, name).extend(getattr(out, name))
    return total


def test_drift_goes_critical_after_min_pairs_and_k_evaluations_with_one_request(
    build: SimpleNamespace,
) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    out = feed(evaluator, stream(build, 600, mae=BASELINE * 1.4))
    statuses = [(e.evaluation, e.status) for e in out.evaluations]
    # levels exist from 100 pairs on; 3 consecutive critical levels: 100, 120, 140
    assert statuses[:7] == [
        (20, "unknown"), (40, "unknown"), (60, "unknown"), (80, "unknown"),
        (100, "unknown"), (120, "unknown"), (140, "critical"),
    ]  # fmt: skip
    [request] = out.requests
    assert request.action == "full_retrain" and (request.model, request.key) == ("demand", "sku-1")
    assert request.evidence["degradation"] == pytest.approx(0.4)
    assert request.evidence["mae"] == pytest.approx(2.8)
    assert request.evidence["baseline_mae"] == BASELINE
    assert request.evidence["pairs"] == 140 and request.evidence["status"] == "critical"
    [alert] = out.alerts
    assert alert.type == "drift" and alert.severity == "critical"
    assert alert.score == pytest.approx(0.4) and alert.entity_id == "sku-1"
    assert request.request_id in (alert.recommendation or "")
    assert len(out.health) == len(out.evaluations) == 30
    assert out.health[-1].status == "critical" and out.health[-1].degradation == pytest.approx(0.4)


def test_no_drift_no_request(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    out = feed(evaluator, stream(build, 600, mae=BASELINE * 1.05))
    assert out.requests == [] and out.alerts == []
    assert out.evaluations[-1].status == "healthy"


def test_warning_asks_to_fine_tune_then_critical_escalates_once(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    out = feed(evaluator, stream(build, 300, mae=BASELINE * 1.2))
    assert [r.action for r in out.requests] == ["fine_tune"]
    out = feed(evaluator, stream(build, 800, mae=BASELINE * 1.6, start=300))
    assert [r.action for r in out.requests] == ["full_retrain"]
    assert len(out.alerts) == 1


def test_a_status_rising_through_warning_on_critical_evidence_asks_once_for_a_full_retrain(
    build: SimpleNamespace,
) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    healthy = feed(evaluator, stream(build, 200, mae=BASELINE))
    # each evaluation adds 20 pairs at 2x: +10 %, +20 % (warning level), +30 %, +40 %
    # (critical): the status becomes warning at +40 %, when the evidence is critical
    drift = feed(evaluator, stream(build, 400, mae=BASELINE * 2.0, start=200))
    statuses = [e.status for e in drift.evaluations]
    assert healthy.requests == [] and "warning" in statuses and statuses[-1] == "critical"
    [request] = drift.requests
    assert request.action == "full_retrain" and request.evidence["status"] == "warning"
    assert float(request.evidence["degradation"]) >= CONFIG.thresholds.critical


def test_requests_resume_after_the_cooldown(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    first = feed(evaluator, stream(build, 200, mae=4.0))
    later = feed(evaluator, stream(build, 40, mae=4.0, start=200), NOW + timedelta(hours=1))
    assert len(first.requests) == 1 and len(later.requests) == 1
    assert first.requests[0].request_id != later.requests[0].request_id


def test_a_new_version_starts_fresh_windows(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    feed(evaluator, stream(build, 300, mae=5.0, version=1))
    out = feed(evaluator, stream(build, 120, mae=1.0, version=2))
    v2 = [e for e in out.evaluations if e.version == 2]
    assert v2[-1].count.pairs == 120 and v2[-1].count.mae == pytest.approx(1.0)
    # a straggler of v1 is measured, but only the newest version asks for retraining
    late = feed(evaluator, stream(build, 400, mae=9.0, version=1, start=300))
    assert late.requests == [] and late.evaluations[-1].status == "critical"


def test_a_challenger_in_shadow_is_measured_and_the_champion_still_judged(
    build: SimpleNamespace,
) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    evaluator.note_source(("demand", "sku-1", 1), shadow=False)
    evaluator.note_source(("demand", "sku-1", 2), shadow=True)
    feed(evaluator, stream(build, 100, mae=1.0, version=1))
    shadow = feed(evaluator, stream(build, 300, mae=9.0, version=2, start=100))
    assert shadow.requests == [] and shadow.health[-1].version == 2
    assert shadow.health[-1].status == "critical"  # measured like any version
    champion = feed(evaluator, stream(build, 300, mae=9.0, version=1, start=400))
    assert [r.evidence["version"] for r in champion.requests] == [1]
    # promoted: its predictions now come from the main topic, and it is judged
    evaluator.note_source(("demand", "sku-1", 2), shadow=False)
    later = feed(
        evaluator, stream(build, 60, mae=9.0, version=2, start=700), NOW + timedelta(hours=1)
    )
    assert [r.evidence["version"] for r in later.requests] == [2]


def test_versions_beyond_the_limit_are_retired(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    feed(evaluator, stream(build, 1, mae=1.0, version=1))
    feed(evaluator, stream(build, 1, mae=1.0, version=2))
    out = feed(evaluator, stream(build, 1, mae=1.0, version=3))
    assert out.retired == [("demand", "sku-1", 1)]
    feed(evaluator, stream(build, 1, mae=1.0, version=1, start=5))
    assert sorted(s.version for s in evaluator.states()) == [2, 3]


def made(evaluator: Evaluator, version: int, minute: int, shadow: bool = False) -> None:
    """A prediction of ``version`` made ``minute`` minutes after NOW was read."""
    made_at = NOW + timedelta(minutes=minute)
    evaluator.note_source(("demand", "sku-1", version), shadow, made_at)


def test_a_second_challenger_retires_the_rejected_one_not_the_champion(
    build: SimpleNamespace,
) -> None:
    evaluator = Evaluator(CONFIG, baselines)  # two versions per key
    made(evaluator, 3, minute=0)
    feed(evaluator, stream(build, 50, mae=1.0, version=3))
    made(evaluator, 4, minute=1, shadow=True)  # a challenger, rejected after its run
    feed(evaluator, stream(build, 50, mae=1.0, version=4, start=50))
    made(evaluator, 3, minute=2)
    made(evaluator, 5, minute=3, shadow=True)  # the next challenger
    out = feed(evaluator, stream(build, 1, mae=1.0, version=5, start=100))
    assert out.retired == [("demand", "sku-1", 4)]
    # the champion is still tracked and still asks when it drifts
    drift = feed(evaluator, stream(build, 300, mae=9.0, version=3, start=200))
    assert [r.evidence["version"] for r in drift.requests] == [3]


def test_after_a_rollback_the_older_version_is_judged_again(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    made(evaluator, 3, minute=0)
    feed(evaluator, stream(build, 50, mae=1.0, version=3))
    made(evaluator, 4, minute=1)  # promoted ...
    feed(evaluator, stream(build, 50, mae=1.0, version=4, start=50))
    made(evaluator, 3, minute=2)  # ... and rolled back: v3 predicts again
    drift = feed(evaluator, stream(build, 300, mae=9.0, version=3, start=100))
    assert [r.evidence["version"] for r in drift.requests] == [3]


def test_each_take_says_which_tracked_version_serves(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    made(evaluator, 3, minute=0)
    feed(evaluator, stream(build, 50, mae=9.0, version=3))  # v3 drifted ...
    made(evaluator, 4, minute=1)  # ... and was replaced; its late pairs still arrive
    evaluator.add_pair(build.pair(50, 1.0, version=4), NOW)
    serving = evaluator.take().serving
    assert serving == {("demand", "sku-1", 3): False, ("demand", "sku-1", 4): True}
    metrics.record_serving(serving)
    assert metrics.SERVING.labels("demand", "sku-1", "3")._value.get() == 0
    assert metrics.SERVING.labels("demand", "sku-1", "4")._value.get() == 1
    made(evaluator, 3, minute=2)  # rolled back
    assert evaluator.take().serving[("demand", "sku-1", 3)]


def test_a_retired_version_rolled_back_to_is_tracked_again(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    for minute, version in enumerate((1, 2, 3)):
        made(evaluator, version, minute)
        feed(evaluator, stream(build, 1, mae=1.0, version=version, start=minute))
    assert sorted(s.version for s in evaluator.states()) == [2, 3]
    made(evaluator, 1, minute=10)  # rolled back to v1
    out = feed(evaluator, stream(build, 1, mae=1.0, version=1, start=10))
    assert out.retired == [("demand", "sku-1", 2)]
    assert sorted(s.version for s in evaluator.states()) == [1, 3]


def test_fallbacks_are_measured_but_never_judged(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    out = feed(evaluator, stream(build, 300, mae=50.0, version=0))
    assert out.requests == [] and out.evaluations[-1].status == "unknown"
    assert out.evaluations[-1].baseline_mae is None
    assert out.evaluations[-1].count.mae == pytest.approx(50.0)


def test_time_based_evaluation_of_a_quiet_model(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    feed(evaluator, stream(build, 5, mae=1.0))
    evaluator.tick(NOW + timedelta(seconds=59))
    assert evaluator.take().evaluations == []
    evaluator.tick(NOW + timedelta(seconds=60))
    [evaluation] = evaluator.take().evaluations
    assert evaluation.count.pairs == 5
    evaluator.tick(NOW + timedelta(seconds=200))  # nothing new since
    assert evaluator.take().evaluations == []


def test_replaying_the_same_evidence_repeats_the_request_id(build: SimpleNamespace) -> None:
    pairs = stream(build, 300, mae=3.0)
    [original] = feed(Evaluator(CONFIG, baselines), pairs).requests

    # A restart that finds the request on the topic: nothing is asked again.
    restarted = Evaluator(CONFIG, baselines)
    restarted.note_request(original)
    restarted.replaying = True
    replayed = feed(restarted, pairs, NOW + timedelta(minutes=5))
    assert replayed.requests == [] and replayed.health == [] and replayed.alerts == []
    assert replayed.evaluations[-1].status == "critical"

    # A restart after a crash between deciding and publishing: the same id is asked for.
    crashed = Evaluator(CONFIG, baselines)
    crashed.replaying = True
    [again] = feed(crashed, pairs, NOW + timedelta(minutes=5)).requests
    assert again.request_id == original.request_id


def test_a_restarted_monitor_that_counts_from_fewer_pairs_never_repeats_an_old_id(
    build: SimpleNamespace,
) -> None:
    # Before the restart v1 drifted at its first 300 pairs and asked; the pairs before the
    # recovery horizon are not replayed, so the restarted monitor counts from 0 again and
    # decides at the same count on later pairs: a new request, which must get a new id.
    [before] = feed(Evaluator(CONFIG, baselines), stream(build, 300, mae=3.0)).requests
    later = stream(build, 300, mae=3.0, start=10_000)
    [after] = feed(Evaluator(CONFIG, baselines), later, NOW + timedelta(days=2)).requests
    assert after.evidence["evaluation"] == before.evidence["evaluation"]
    assert after.request_id != before.request_id


def test_an_operator_request_starts_the_cooldown(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    by_hand = RetrainRequest(
        request_id="asked-by-hand",
        model="demand",
        key="sku-1",
        action="full_retrain",
        reason="operator",
        requested_at=NOW - timedelta(minutes=10),
    )
    evaluator.note_request(by_hand)
    out = feed(evaluator, stream(build, 300, mae=3.0))
    assert out.requests == [] and out.evaluations[-1].status == "critical"
    assert "cooldown" in (out.alerts[0].recommendation or "")


def test_snapshot_reports_without_an_evaluation_step(build: SimpleNamespace) -> None:
    evaluator = Evaluator(CONFIG, baselines)
    feed(evaluator, stream(build, 10, mae=1.0))
    evaluator.snapshot(NOW)
    out = evaluator.take()
    [health] = out.health
    assert health.pairs == 10 and health.status == "unknown" and health.mae == pytest.approx(1.0)
    assert health.degradation == pytest.approx(-0.5)
