"""One job end to end against a real registry, with readings from a fake data source."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models.base import Model
from models.registry import Registry
from trainer.candidate import job_marker
from trainer.errors import PublishError
from trainer.lineage import read_lineage
from trainer.retraining import Retrainer
from trainer.settings import TrainerSettings
from trainer.state import DecisionRecord, Job, TrainerState

NOW = datetime(2026, 9, 20, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, tiny_params: dict[str, Any]) -> TrainerSettings:
    return TrainerSettings(
        model_store=tmp_path / "store",
        plot=False,
        fine_tune_days=60,
        bootstrap_params={"demand": tiny_params},
    )


@pytest.fixture
def registry(settings: TrainerSettings) -> Registry:
    return Registry(settings.model_store, actor="test")


Build = Callable[..., tuple[Retrainer, TrainerState, Any]]


@pytest.fixture
def make(fake_data: type) -> Build:
    """``make(settings, registry, history, announcer)``: a Retrainer on a fake data source."""

    def build(
        settings: TrainerSettings, registry: Registry, history: pd.DataFrame, announcer: Any
    ) -> tuple[Retrainer, TrainerState, Any]:
        state = TrainerState(settings.state_path)
        data = fake_data(history)
        retrainer = Retrainer(settings, registry, data, announcer, state, lambda: NOW)
        return retrainer, state, data

    return build


def run(retrainer: Retrainer, state: TrainerState, job: Job) -> DecisionRecord:
    assert state.enqueue(job)
    record = retrainer.run(job)
    state.finish(record)
    return record


def request(
    job_id: str, action: str | None = "full_retrain", key: str | None = None, **evidence: Any
) -> Job:
    return Job(job_id, "demand", key, "request", action, "test", dict(evidence))


def test_bootstrap_trains_validates_and_promotes_the_first_version(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    announcer: Any,
) -> None:
    retrainer, state, data = make(settings, registry, demand_history, announcer)
    job = Job("b-1", "demand", None, "bootstrap", "full_retrain", "no version", family="demand")
    record = run(retrainer, state, job)
    assert (record.action, record.outcome, record.version) == ("full_retrain", "promoted", 1)
    assert registry.aliases("demand").champion == 1
    assert [(a.version, a.action) for a in announcer.sent] == [(1, "promoted")]
    [(source, window, entity)] = data.asked
    assert (source, entity, window.end) == ("demand", None, NOW)
    assert (window.end - window.start).days == 90
    events = [(e.action, e.version) for e in registry.history("demand")]
    assert events == [("register", 1), ("promote", 1)]  # never champion before the gate


def test_a_champion_promoted_while_the_candidate_trains_is_the_one_it_must_beat(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
    announcer: Any,
) -> None:
    # Decided as a bootstrap (no champion); an operator registers v1 during the replay.
    retrainer, state, data = make(settings, registry, demand_history, announcer)
    replay = data.frame

    def operator_promotes_first(*args: Any, **kwargs: Any) -> pd.DataFrame:
        if not registry.models():
            registry.register(fit_demand(demand_history), "demand")
        return replay(*args, **kwargs)

    data.frame = operator_promotes_first
    job = Job("b-1", "demand", None, "bootstrap", "full_retrain", "no version", family="demand")
    record = run(retrainer, state, job)
    assert record.version == 2
    assert "champion_mae" in record.metrics  # compared with v1, not promoted unseen
    if record.outcome == "promoted":
        promoted = registry.history("demand")[-1]
        assert (promoted.action, promoted.version, promoted.previous) == ("promote", 2, 1)


def test_a_better_full_retrain_is_promoted_and_announced(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
    announcer: Any,
) -> None:
    registry.register(fit_demand(demand_history, shuffled=True), "demand")
    retrainer, state, _ = make(settings, registry, demand_history, announcer)
    record = run(retrainer, state, request("r-1"))
    assert (record.outcome, record.version, record.rule) == ("promoted", 2, "requested")
    assert record.metrics["mae"] < record.metrics["champion_mae"]
    assert registry.aliases("demand").champion == 2
    assert registry.info("demand", None, 2).parent is None
    [update] = announcer.sent
    assert (update.version, update.action) == (2, "promoted")
    assert update.metrics["holdout_rows"] == record.metrics["holdout_rows"] > 0


def test_a_candidate_that_cannot_beat_the_margin_is_rejected(
    make: Build,
    tmp_path: Path,
    registry: Registry,
    settings: TrainerSettings,
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
    announcer: Any,
) -> None:
    strict = settings.model_copy(update={"forecast_margin": 0.99})
    registry.register(fit_demand(demand_history), "demand")
    retrainer, state, _ = make(strict, registry, demand_history, announcer)
    record = run(retrainer, state, request("r-1"))
    assert (record.outcome, record.version) == ("rejected", 2)
    assert {"mae", "champion_mae"} <= set(record.metrics)
    assert registry.aliases("demand").champion == 1
    reject = registry.history("demand")[-1]
    assert (reject.action, reject.version) == ("reject", 2)
    assert "candidate mae" in reject.reason and "vs champion" in reject.reason
    assert announcer.sent == []


def test_a_fine_tune_continues_from_the_champion(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
    announcer: Any,
) -> None:
    registry.register(fit_demand(demand_history, shuffled=True), "demand")
    retrainer, state, _ = make(settings, registry, demand_history, announcer)
    record = run(retrainer, state, request("r-1", "fine_tune"))
    assert (record.action, record.rule) == ("fine_tune", "requested")
    assert registry.info("demand", None, 2).parent == 1
    # warm-started on real quantities, it beats the champion trained on shuffled ones
    assert (record.outcome, record.version) == ("promoted", 2)
    assert read_lineage(registry, "demand", None).fine_tunes_since_full == 1


def test_shadow_mode_makes_the_winner_a_challenger(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
    announcer: Any,
) -> None:
    registry.register(fit_demand(demand_history, shuffled=True), "demand")
    shadow = settings.model_copy(update={"shadow": True})
    retrainer, state, _ = make(shadow, registry, demand_history, announcer)
    record = run(retrainer, state, request("r-1"))
    assert record.outcome == "challenger"
    aliases = registry.aliases("demand")
    assert (aliases.champion, aliases.challenger) == (1, 2)
    assert [(a.version, a.action) for a in announcer.sent] == [(2, "challenger")]
    assert state.model_value("demand", None, "challenger") == 2


def test_too_little_data_is_skipped_with_a_clear_reason(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    announcer: Any,
) -> None:
    few = demand_history.groupby("product_id").head(30)
    retrainer, state, _ = make(settings, registry, few, announcer)
    job = Job("b-1", "demand", None, "bootstrap", "full_retrain", "new", family="demand")
    record = run(retrainer, state, job)
    assert record.outcome == "skipped"
    assert record.reason == (
        "skipped: too little data: demand's training window has 48 row(s) (n < 60)"
    )
    assert registry.models() == []


def test_nothing_to_do_for_a_fresh_champion(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
    announcer: Any,
) -> None:
    registry.register(fit_demand(demand_history), "demand")
    retrainer, state, _ = make(settings, registry, demand_history, announcer)
    job = Job("s-1", "demand", None, "schedule", None, "scheduled check")
    record = run(retrainer, state, job)
    assert (record.action, record.outcome) == ("none", "nothing")
    assert len(registry.versions("demand")) == 1


def test_an_unknown_model_is_skipped(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    announcer: Any,
) -> None:
    retrainer, state, _ = make(settings, registry, demand_history, announcer)
    record = run(retrainer, state, Job("r-1", "nosuch", None, "request", "fine_tune", "x"))
    assert record.outcome == "skipped"
    assert "nosuch has no version and no family" in record.reason


def test_a_resumed_job_validates_its_earlier_candidate(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
    announcer: Any,
) -> None:
    registry.register(fit_demand(demand_history, shuffled=True), "demand")
    earlier = fit_demand(demand_history[demand_history["ts"] < "2026-08-01"])
    registry.register(earlier, "demand", promote_if_first=False, reason=f"x {job_marker('r-1')}")
    retrainer, state, _ = make(settings, registry, demand_history, announcer)
    record = run(retrainer, state, request("r-1"))
    assert (record.outcome, record.version) == ("promoted", 2)
    assert [v.version for v in registry.versions("demand")] == [1, 2]  # nothing trained again


def test_a_promotion_whose_announcement_failed_is_announced_when_the_job_runs_again(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    fit_demand: Callable[..., Model],
    announcer: Any,
) -> None:
    registry.register(fit_demand(demand_history, shuffled=True), "demand")
    retrainer, state, _ = make(settings, registry, demand_history, announcer)
    job = request("r-1", version=1)  # the monitor names the version it measured
    assert state.enqueue(job)
    announcer.failures = 1
    with pytest.raises(PublishError):
        retrainer.run(job)
    assert registry.aliases("demand").champion == 2 and announcer.sent == []
    # v2 serves now, so the evidence about v1 is stale: the job must not decide again
    record = retrainer.run(job)
    assert (record.outcome, record.version, record.rule) == ("promoted", 2, "resumed")
    assert [(a.version, a.action) for a in announcer.sent] == [(2, "promoted")]
    assert retrainer.outbox.noted() == []


def test_per_product_models_read_only_their_product(
    make: Build,
    settings: TrainerSettings,
    registry: Registry,
    demand_history: pd.DataFrame,
    announcer: Any,
) -> None:
    retrainer, state, data = make(settings, registry, demand_history, announcer)
    product = str(demand_history["product_id"].iloc[0])
    job = Job("b-1", "demand", product, "bootstrap", "full_retrain", "new", family="demand")
    record = run(retrainer, state, job)
    assert record.outcome == "promoted"
    assert data.asked[0][2] == product
    assert registry.aliases("demand", product).champion == 1
