"""Serving versions and health of every model key: the registry joined with model.health.

The registry (the shared model store) says which version is champion and challenger; the
monitor's latest ``model.health`` record of the key says how the version it measured is
doing. The two can disagree for a while after a promotion (the monitor still reports the
previous champion until the new one's predictions are labelled): ``measured`` then differs
from ``champion``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from events import ModelHealth
from models.registry_errors import RegistryError
from models.store import ModelStore

ModelKey = tuple[str, str | None]


class ModelStatusError(Exception):
    """The model store could not be read."""


@dataclass(frozen=True)
class ModelStatus:
    """One model key: its registry aliases and its latest health report, if any."""

    model: str
    key: str | None
    champion: int | None
    challenger: int | None
    measured: int | None = None
    status: str | None = None
    mae: float | None = None
    baseline_mae: float | None = None
    degradation: float | None = None
    reported_at: datetime | None = None


def registry_aliases(store: Path) -> dict[ModelKey, tuple[int | None, int | None]]:
    """(champion, challenger) of every model key of the store; empty if it has none."""
    registry = ModelStore(store)
    aliases: dict[ModelKey, tuple[int | None, int | None]] = {}
    try:
        for model in registry.models():
            for key in registry.layout.keys(model):  # [] for a model being written
                found = registry.aliases(model, key)
                aliases[(model, key)] = (found.champion, found.challenger)
    except (RegistryError, OSError) as exc:
        raise ModelStatusError(f"cannot read the model store {store}: {exc}") from exc
    return aliases


def model_statuses(
    aliases: dict[ModelKey, tuple[int | None, int | None]], health: list[ModelHealth]
) -> list[ModelStatus]:
    """Every model key known to the registry or reported on, sorted by model and key."""
    reports = {(h.model, h.key): h for h in health}
    rows = []
    for model, key in sorted(aliases.keys() | reports.keys(), key=lambda mk: (mk[0], mk[1] or "")):
        champion, challenger = aliases.get((model, key), (None, None))
        report = reports.get((model, key))
        if report is None:
            rows.append(ModelStatus(model, key, champion, challenger))
            continue
        rows.append(
            ModelStatus(
                model,
                key,
                champion,
                challenger,
                measured=report.version,
                status=report.status,
                mae=report.mae,
                baseline_mae=report.baseline_mae,
                degradation=report.degradation,
                reported_at=report.ts,
            )
        )
    return rows
