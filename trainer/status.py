"""What ``driftline trainer status`` shows: the queue, recent decisions, the model versions.

Everything is read from the state file and the model store, so the report works whether
the trainer runs or not (and on a copy of the store).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from models.registry_errors import RegistryError
from models.store import ModelStore
from trainer.lineage import read_lineage
from trainer.settings import TrainerSettings
from trainer.state import DecisionRecord, TrainerState, model_label


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def model_rows(store: ModelStore, last: dict[str, DecisionRecord]) -> list[dict[str, Any]]:
    """One row per model key: versions, aliases, lineage and the last decision about it."""
    rows: list[dict[str, Any]] = []
    for name in store.models():
        for key in store.layout.keys(name):
            try:
                versions = store.layout.key_paths(name, key).version_numbers()
                aliases = store.aliases(name, key)
                lineage = read_lineage(store, name, key)
            except RegistryError as exc:
                rows.append({"model": name, "key": key, "error": str(exc)})
                continue
            decision = last.get(model_label(name, key))
            rows.append(
                {
                    "model": name,
                    "key": key,
                    "versions": len(versions),
                    "latest": versions[-1] if versions else None,
                    "champion": aliases.champion,
                    "challenger": aliases.challenger,
                    "last_full_retrain": _iso(lineage.last_full),
                    "last_update": _iso(lineage.last_update),
                    "fine_tunes_since_full": lineage.fine_tunes_since_full,
                    "last_decision": None if decision is None else decision.outcome,
                    "last_reason": None if decision is None else decision.reason,
                }
            )
    return rows


def trainer_status(settings: TrainerSettings, decisions: int = 20) -> dict[str, Any]:
    """The full report as JSON-ready data."""
    state = TrainerState.load(settings.state_path)
    recent = state.decisions()
    last = {model_label(d.model, d.key): d for d in recent}
    return {
        "state_file": str(settings.state_path),
        "store": str(settings.model_store),
        "queue": [asdict(job) for job in state.pending()],
        "decisions": [asdict(d) for d in recent[-decisions:]] if decisions else [],
        "handled_requests": state.processed_count(),
        "models": model_rows(ModelStore(settings.model_store), last),
    }
