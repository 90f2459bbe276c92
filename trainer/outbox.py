"""Registry changes the workers must hear of, noted in the trainer state until announced.

A promotion (or a new challenger) is two writes to two systems: the registry's aliases and
a ``model.updates`` record. Workers hot-swap only on the record, so a trainer killed between
the two, or a broker that refuses the record, would leave every running worker on the old
version while the registry names the new one, with nothing left to announce it: a retried
job finds its evidence stale, a shadow verdict is not reached twice.

So the change is noted in the trainer state (``unannounced``, per model key) before the
registry is written, and the note is cleared once the broker acknowledged the update.
:meth:`Outbox.flush` announces what is still noted - at start and at every scheduled check -
when the registry still says so; a note whose registry write never happened, or was undone
since (a rollback), is dropped. Announcing a version twice is harmless: a worker already
serving it swaps nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, cast

from events.lifecycle import UpdateAction
from models.registry import Registry
from models.registry_errors import RegistryError
from trainer import metrics
from trainer.errors import PublishError
from trainer.state import TrainerState, model_label
from trainer.updates import Announcer

log = logging.getLogger(__name__)

NOTE: Final = "unannounced"  # the trainer state's per-key field


@dataclass(frozen=True)
class Change:
    """One registry change to announce."""

    model: str
    key: str | None
    version: int
    action: UpdateAction
    reason: str
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return model_label(self.model, self.key)


class Outbox:
    """Writes a registry change and announces it, so that no change goes unannounced."""

    def __init__(self, state: TrainerState, registry: Registry, announcer: Announcer) -> None:
        self.state = state
        self.registry = registry
        self.announcer = announcer

    def change(self, change: Change, write: Callable[[], object] | None = None) -> None:
        """Note ``change``, make the registry ``write`` (None: it is made already), announce.

        Raises what the write or the announcement raised; the note stays for ``flush``.
        """
        self.state.set_model(change.model, change.key, **{NOTE: asdict(change)})
        if write is not None:
            write()
        self._announce(change)

    def flush(self) -> int:
        """Announce the noted changes the registry still holds; returns how many went out.

        A change that still cannot be announced stays noted for the next call.
        """
        sent = 0
        for change in self.noted():
            try:
                aliases = self.registry.aliases(change.model, change.key)
            except RegistryError as exc:
                log.warning(
                    "%s: cannot read the aliases to announce a change: %s", change.label, exc
                )
                continue
            now = aliases.challenger if change.action == "challenger" else aliases.champion
            if now != change.version:
                log.info(
                    "%s: v%d (%s) was never written or is undone: not announced",
                    change.label,
                    change.version,
                    change.action,
                )
                self._clear(change)
                continue
            try:
                self._announce(change)
            except PublishError as exc:
                log.warning("%s: still not announced: %s", change.label, exc)
                continue
            log.info("%s: v%d (%s) announced late", change.label, change.version, change.action)
            sent += 1
        return sent

    def resend(self, model: str, key: str | None, version: int) -> bool:
        """Announce the noted change of ``version``, if one is still noted; True if so.

        A change of this trainer that is no longer noted was acknowledged already.
        """
        for change in self.noted():
            if (change.model, change.key, change.version) == (model, key, version):
                self._announce(change)
                return True
        return False

    def noted(self) -> list[Change]:
        """The changes written or about to be, not yet acknowledged by the broker."""
        return [
            _change(values[NOTE]) for values in self.state.models().values() if values.get(NOTE)
        ]

    def _announce(self, change: Change) -> None:
        self.announcer.publish(
            change.model, change.key, change.version, change.action, change.figures, change.reason
        )
        metrics.UPDATES.labels(change.model, change.action).inc()
        self._clear(change)

    def _clear(self, change: Change) -> None:
        if self.state.model_value(change.model, change.key, NOTE) == asdict(change):
            self.state.set_model(change.model, change.key, **{NOTE: None})


def _change(note: Mapping[str, Any]) -> Change:
    return Change(
        model=str(note["model"]),
        key=note.get("key"),
        version=int(note["version"]),
        action=cast(UpdateAction, note["action"]),
        reason=str(note.get("reason", "")),
        figures={str(k): float(v) for k, v in (note.get("figures") or {}).items() if v is not None},
    )
