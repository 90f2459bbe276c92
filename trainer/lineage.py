"""What the time-based rules need, read from the registry rather than kept on the side.

The registry is the source of truth for what serves: an operator may promote or roll back
with ``driftline models`` while the trainer runs, so the trainer re-reads the lineage of
the champion every time it decides:

* **fine-tunes since the last full retrain**: the champion's parent chain, since every
  fine-tune is registered with ``parent`` = the version it continued from, and a full
  retrain (or a first version) has no parent;
* **last full retrain**: ``created_at`` of the chain's root;
* **last update**: when the champion alias last moved to the current champion (history).
"""

from __future__ import annotations

from datetime import datetime

from models.history import LOST_CHAMPION, Aliases, lost_champion
from models.layout import describe
from models.registry_errors import ModelNotFoundError, RegistryError, VersionNotFoundError
from models.store import ModelStore
from models.versions import VersionInfo
from trainer.rules import Lineage

# History actions that make a version the champion.
CHAMPION_ACTIONS = frozenset({"promote", "rollback"})


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time written by the registry or the trainer (None when absent/bad)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def serving_champion(store: ModelStore, name: str, key: str | None) -> int | None:
    """The champion of ``name``/``key`` now; None for a key that never had one.

    No champion alias while the key's history records a champion is a lost or unreadable
    alias file, not a new model: RegistryError, so that nothing is bootstrapped over it.
    """
    return _aliases(store, name, key).champion


def read_lineage(store: ModelStore, name: str, key: str | None) -> Lineage:
    """The serving lineage of ``name``/``key``; ``has_champion`` False when none serves.

    Raises RegistryError as :func:`serving_champion` does.
    """
    aliases = _aliases(store, name, key)
    champion = aliases.champion
    if champion is None:
        return Lineage(has_champion=False)
    info = store.info(name, key, champion)
    root, fine_tunes = _chain_root(store, info)
    return Lineage(
        has_champion=True,
        last_full=parse_time(root.created_at),
        last_update=_last_update(store, info) or parse_time(info.created_at),
        fine_tunes_since_full=fine_tunes,
        champion=champion,
        challenger=aliases.challenger,
    )


def _aliases(store: ModelStore, name: str, key: str | None) -> Aliases:
    try:
        aliases = store.aliases(name, key)
    except ModelNotFoundError:
        return Aliases()
    lost = lost_champion(aliases.champion, store.paths(name, key).history)
    if lost is not None:
        raise RegistryError(LOST_CHAMPION.format(label=describe(name, key), version=lost))
    return aliases


def _chain_root(store: ModelStore, info: VersionInfo) -> tuple[VersionInfo, int]:
    """Follow ``parent`` links to the version with no parent; count the steps.

    A parent deleted by retention ends the walk: the oldest version found still counts as
    a fine-tune, and its ``created_at`` stands in for the unknown full retrain (a lower
    bound of its age, so the age rule fires late rather than early).
    """
    steps, seen, current = 0, {info.version}, info
    while current.parent is not None and current.parent not in seen:
        try:
            parent = store.info(current.model, current.key, current.parent)
        except VersionNotFoundError:
            break
        seen.add(parent.version)
        steps += 1
        current = parent
    if current.parent is not None:  # the chain is cut: the oldest known is a fine-tune too
        steps += 1
    return current, steps


def _last_update(store: ModelStore, info: VersionInfo) -> datetime | None:
    events = store.history(info.model, info.key)
    for event in reversed(events):
        if event.action in CHAMPION_ACTIONS and event.version == info.version:
            return parse_time(event.ts)
    return None
