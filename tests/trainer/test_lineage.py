"""Lineage facts read from the registry: fine-tunes since full, last full, last update."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from models.base import Model
from models.registry import Registry
from models.registry_errors import RegistryError
from trainer.lineage import parse_time, read_lineage


def test_no_model_no_champion(tmp_path: Path) -> None:
    assert not read_lineage(Registry(tmp_path), "demand", None).has_champion


def test_a_lost_champion_alias_is_an_error_not_a_new_model(
    tmp_path: Path, demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    registry = Registry(tmp_path)
    registry.register(fit_demand(demand_history), "demand")
    registry.paths("demand", None).aliases.unlink()
    with pytest.raises(RegistryError, match="history records v1 as champion"):
        read_lineage(registry, "demand", None)


def test_the_parent_chain_counts_fine_tunes(
    tmp_path: Path, demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    registry = Registry(tmp_path)
    model = fit_demand(demand_history)
    first = registry.register(model, "demand")
    registry.register(model, "demand", parent=1, promote_if_first=False)
    registry.register(model, "demand", parent=2, promote_if_first=False)
    registry.promote("demand", 3, reason="fine-tuned twice")
    lineage = read_lineage(registry, "demand", None)
    assert lineage.has_champion and lineage.fine_tunes_since_full == 2
    assert lineage.last_full == parse_time(first.created_at)
    promoted = registry.history("demand")[-1]
    assert (promoted.action, lineage.last_update) == ("promote", parse_time(promoted.ts))
    registry.register(model, "demand", promote_if_first=False)  # a full retrain: no parent
    registry.promote("demand", 4)
    assert read_lineage(registry, "demand", None).fine_tunes_since_full == 0


def test_a_chain_cut_by_retention_still_counts_what_it_knows(
    tmp_path: Path, demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    registry = Registry(tmp_path)
    model = fit_demand(demand_history)
    registry.register(model, "demand")
    second = registry.register(model, "demand", parent=1, promote_if_first=False)
    registry.register(model, "demand", parent=2, promote_if_first=False)
    registry.promote("demand", 3)
    registry.delete("demand", 1, reason="retention")
    lineage = read_lineage(registry, "demand", None)
    assert lineage.fine_tunes_since_full == 2
    assert lineage.last_full == parse_time(second.created_at)
