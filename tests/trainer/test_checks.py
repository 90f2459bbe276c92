"""Scheduled checks: time rules over the registry, bootstrap of models with no version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models.base import Model
from models.registry import Registry
from trainer.checks import ScheduledCheck
from trainer.lineage import parse_time, read_lineage
from trainer.settings import TrainerSettings
from trainer.state import DecisionRecord, Job, TrainerState

NOW = datetime(2026, 9, 20, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, tiny_params: dict[str, Any]) -> TrainerSettings:
    return TrainerSettings(model_store=tmp_path / "store", bootstrap_params={"demand": tiny_params})


def check_for(
    settings: TrainerSettings, history: pd.DataFrame, fake_data: type
) -> tuple[ScheduledCheck, Registry, TrainerState]:
    registry = Registry(settings.model_store, actor="test")
    state = TrainerState(settings.state_path)
    return ScheduledCheck(settings, registry, fake_data(history), state), registry, state


def test_bootstrap_the_global_model_then_one_per_product(
    settings: TrainerSettings, demand_history: pd.DataFrame, fake_data: type
) -> None:
    per_product = settings.model_copy(update={"per_product_models": True})
    check, _, _ = check_for(per_product, demand_history, fake_data)
    jobs = check.run(NOW)
    assert [(j.model, j.key) for j in jobs] == [
        ("demand", None),
        ("demand", "product-000"),
        ("demand", "product-001"),
    ]
    first = jobs[0]
    assert (first.trigger, first.action, first.family) == ("bootstrap", "full_retrain", "demand")
    assert first.params["iterations"] == 40
    assert first.reason == "bootstrap: 400 readings and no version yet"
    assert len({j.job_id for j in jobs}) == 3


def test_no_bootstrap_without_enough_history(
    settings: TrainerSettings, demand_history: pd.DataFrame, fake_data: type
) -> None:
    # 200 days x 2 products, 80 % before the holdout: 320 usable readings
    check, _, _ = check_for(
        settings.model_copy(update={"min_samples": 321}), demand_history, fake_data
    )
    assert check.run(NOW) == []
    check, _, _ = check_for(
        settings.model_copy(update={"min_samples": 320}), demand_history, fake_data
    )
    assert len(check.run(NOW)) == 1


def test_one_key_with_a_lost_alias_is_skipped_and_the_others_still_checked(
    settings: TrainerSettings,
    demand_history: pd.DataFrame,
    fake_data: type,
    fit_demand: Callable[..., Model],
) -> None:
    per_product = settings.model_copy(update={"per_product_models": True})
    check, registry, _ = check_for(per_product, demand_history, fake_data)
    registry.register(fit_demand(demand_history), "demand", "product-000")
    registry.paths("demand", "product-000").aliases.unlink()  # lost: not a new model
    jobs = check.run(NOW)
    assert [(j.model, j.key) for j in jobs] == [("demand", None), ("demand", "product-001")]


def test_no_bootstrap_for_models_that_have_a_champion(
    settings: TrainerSettings,
    demand_history: pd.DataFrame,
    fake_data: type,
    fit_demand: Callable[..., Model],
) -> None:
    check, registry, _ = check_for(settings, demand_history, fake_data)
    registry.register(fit_demand(demand_history), "demand")
    assert [j.trigger for j in check.run(datetime.now(UTC))] == []


def test_pending_and_recently_attempted_keys_are_left_alone(
    settings: TrainerSettings, demand_history: pd.DataFrame, fake_data: type
) -> None:
    check, _, state = check_for(settings, demand_history, fake_data)
    state.enqueue(Job("r-1", "demand", None, "request", "fine_tune", "asked"))
    assert check.run(NOW) == []
    state.finish(DecisionRecord("r-1", "demand", None, "request", "none", "skipped", "x"))
    last = parse_time(state.model_value("demand", None, "last_attempt"))
    assert last is not None
    assert check.run(last + timedelta(hours=23)) == []  # within retry_after_hours (24)
    assert len(check.run(last + timedelta(hours=25))) == 1


def test_time_rules_over_every_champion(
    settings: TrainerSettings,
    demand_history: pd.DataFrame,
    fake_data: type,
    fit_demand: Callable[..., Model],
) -> None:
    check, registry, _ = check_for(
        settings.model_copy(update={"bootstrap": False}), demand_history, fake_data
    )
    registry.register(fit_demand(demand_history), "demand")
    registry.register(fit_demand(demand_history), "demand", "product-000")
    created = read_lineage(registry, "demand", None).last_full
    assert created is not None
    assert check.run(created + timedelta(days=6)) == []
    jobs = check.run(created + timedelta(days=8))
    assert [(j.key, j.trigger, j.action) for j in jobs] == [
        (None, "schedule", "fine_tune"),
        ("product-000", "schedule", "fine_tune"),
    ]
    assert "days since the champion last changed >= 7" in jobs[0].reason
    assert {j.action for j in check.run(created + timedelta(days=91))} == {"full_retrain"}
