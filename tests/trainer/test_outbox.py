"""Registry changes are announced even when the trainer stops between the two writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models.base import Model
from models.registry import Registry
from models.registry_errors import StoreWriteError
from trainer.errors import PublishError
from trainer.outbox import Change, Outbox
from trainer.state import TrainerState


@pytest.fixture
def registry(tmp_path: Path, fit_demand: Any, demand_history: pd.DataFrame) -> Registry:
    registry = Registry(tmp_path / "store", actor="test")
    model: Model = fit_demand(demand_history)
    registry.register(model, "demand")
    registry.register(model, "demand", promote_if_first=False)
    return registry


def promotion(version: int = 2) -> Change:
    return Change("demand", None, version, "promoted", "passed the gate", {"mae": 1.5})


def test_a_change_is_written_announced_and_forgotten(
    tmp_path: Path, registry: Registry, announcer: Any
) -> None:
    outbox = Outbox(TrainerState(tmp_path / "state.json"), registry, announcer)
    outbox.change(promotion(), lambda: registry.promote("demand", 2))
    assert registry.aliases("demand").champion == 2
    [sent] = announcer.sent
    assert (sent.version, sent.action, sent.metrics) == (2, "promoted", {"mae": 1.5})
    assert outbox.noted() == [] and outbox.flush() == 0


def test_a_stop_between_the_registry_write_and_the_announcement_is_made_good(
    tmp_path: Path, registry: Registry, announcer: Any
) -> None:
    state = TrainerState(tmp_path / "state.json")
    announcer.failures = 2
    with pytest.raises(PublishError):
        Outbox(state, registry, announcer).change(
            promotion(), lambda: registry.promote("demand", 2)
        )
    restarted = Outbox(TrainerState.load(tmp_path / "state.json"), registry, announcer)
    assert restarted.noted() == [promotion()]
    assert restarted.flush() == 0  # the broker is still away: kept for the next flush
    assert restarted.flush() == 1
    assert [(a.version, a.action) for a in announcer.sent] == [(2, "promoted")]
    assert restarted.noted() == []


def test_a_change_never_written_or_undone_since_is_not_announced(
    tmp_path: Path, registry: Registry, announcer: Any
) -> None:
    state = TrainerState(tmp_path / "state.json")
    outbox = Outbox(state, registry, announcer)

    def disk_full() -> None:
        raise StoreWriteError("no space left on device")

    with pytest.raises(StoreWriteError):
        outbox.change(promotion(), disk_full)
    assert outbox.noted() == [promotion()]
    assert outbox.flush() == 0 and outbox.noted() == []  # v1 still serves: nothing to say

    announcer.failures = 1
    with pytest.raises(PublishError):
        outbox.change(promotion(), lambda: registry.promote("demand", 2))
    registry.rollback("demand")  # an operator rolled back (and announced that) meanwhile
    assert outbox.flush() == 0 and outbox.noted() == [] and announcer.sent == []
