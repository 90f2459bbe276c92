"""Versioned model registry: everything that writes to a model store.

* Versions are immutable and numbered v1, v2, ... per model key. ``register`` saves the model
  into a scratch directory inside the store, fsyncs every file, checksums them, writes
  metadata.json and only then renames the directory into place: a crash at any point leaves
  no visible version, only scratch that :meth:`Registry.gc` (and the next ``register``)
  removes.
* Version numbers are claimed under a per-key ``flock`` (see ``models.atomic``), so concurrent
  registrations from threads or processes never share a number. Numbers are never reused:
  the next one is above every existing, deleted (history) or half-deleted version.
* ``champion`` and ``challenger`` live in aliases.json, replaced atomically, so a reader
  racing a promote resolves either the old or the new champion, both complete. Every alias
  change and deletion is appended to history.jsonl with time, actor and reason. The alias
  file is replaced before its history line is appended; a writer killed in between leaves
  a champion the history does not name, and the next writer of the key (or ``gc``) appends
  the missing line first (:meth:`Registry.locked`), so rollbacks follow the real order.
"""

from __future__ import annotations

import contextlib
import enum
import getpass
import hashlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pandas as pd

from models.atomic import fsync_dir, is_abandoned, write_new, writing
from models.base import FitReport, Model
from models.history import (
    LOST_CHAMPION,
    HistoryEvent,
    append_event,
    champion_stack,
    lost_champion,
    read_aliases,
    read_events,
    write_aliases,
)
from models.layout import METADATA_FILE, KeyPaths, describe, parse_version
from models.registry_errors import (
    AliasError,
    ChampionChangedError,
    NoChampionError,
    NotPromotedError,
    RegistryError,
)
from models.scratch import (
    collect_garbage,
    create_scratch,
    fsync_tree,
    graveyard,
    next_version,
    save_into,
)
from models.store import Loader, ModelStore
from models.versions import VersionInfo, build_metadata, dumps, training_facts, verify_files

RECOVERED: Final = "recovered: the champion alias changed without its history line"


class Unchecked(enum.Enum):
    """``expected_champion`` not given: the alias changes whatever the champion is."""

    ANY = "any"


ANY_CHAMPION: Final = Unchecked.ANY


def default_actor() -> str:
    """Who performs registry actions: ``$DRIFTLINE_ACTOR`` or user@host."""
    if actor := os.environ.get("DRIFTLINE_ACTOR"):
        return actor
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # containers often run a uid without a passwd entry
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


class Registry(ModelStore):
    """Register, promote, roll back, delete and retain model versions."""

    def __init__(
        self, root: Path | str | None = None, loader: Loader | None = None, actor: str | None = None
    ) -> None:
        super().__init__(root, loader)
        self.actor = actor or default_actor()

    @contextlib.contextmanager
    def locked(self, paths: KeyPaths) -> Iterator[None]:
        """Hold the key's writer lock, first repairing a history line a killed writer lost."""
        with super().locked(paths):
            self._recover_history(paths)
            yield

    def _recover_history(self, paths: KeyPaths) -> None:
        """Append the champion change a writer made without recording it (killed between
        the aliases rename and the history append): a rollback when the alias points back
        down the champion stack, else a promotion."""
        aliases = read_aliases(paths.aliases)
        champion = aliases.champion
        if champion is None:
            return
        stack = champion_stack(read_events(paths.history))
        top = stack[-1] if stack else None
        if champion == top:
            return
        if aliases.champion_by in ("promote", "rollback"):
            action = aliases.champion_by  # a re-promotion of an older champion is no rollback
        else:  # written before aliases said how
            action = "rollback" if champion in stack else "promote"
        self._record(paths, action, champion, RECOVERED, previous=top)

    def register(
        self,
        model: Model,
        name: str,
        key: str | None = None,
        fit_report: FitReport | None = None,
        frame: pd.DataFrame | None = None,
        parent: int | str | None = None,
        promote_if_first: bool = True,
        *,
        reason: str = "registered",
    ) -> VersionInfo:
        """Save ``model`` as the next immutable version; champion if there is none yet."""
        paths = self.layout.key_paths(name, key)
        parent_version = None if parent is None else parse_version(parent)
        training = training_facts(fit_report, frame)
        with writing("model directory", paths.versions):
            paths.versions.mkdir(parents=True, exist_ok=True)
        with self.locked(paths):
            scratch, scratch_lock = create_scratch(paths)
        try:
            files = save_into(model, scratch, describe(name, key))
            with self.locked(paths):
                collect_garbage(paths)
                number = next_version(paths)
                metadata = build_metadata(
                    model,
                    name=name,
                    key=key,
                    version=number,
                    parent=parent_version,
                    files=files,
                    training=training,
                    metrics=fit_report.metrics if fit_report else {},
                )
                target = paths.version(number)
                document = _serialise(metadata, describe(name, key, number))
                with writing(f"{describe(name, key, number)} metadata", scratch):
                    write_new(scratch / METADATA_FILE, document)
                    fsync_tree(scratch)
                    os.rename(scratch, target)
                    fsync_dir(paths.versions)
                try:
                    digest = hashlib.sha256(document).hexdigest()
                    self._record(paths, "register", number, reason, digest=digest)
                except BaseException:
                    # No version without its history line: a caller that retries after the
                    # error must not leave a duplicate behind.
                    os.rename(target, scratch)
                    raise
                info = VersionInfo(name, key, number, target, metadata)
                if promote_if_first and read_aliases(paths.aliases).champion is None:
                    self._promote_first(paths, info)
            return info
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)  # a no-op once renamed into place
            raise
        finally:
            os.close(scratch_lock)

    def promote(
        self,
        name: str,
        version: int | str,
        key: str | None = None,
        reason: str = "",
        *,
        expected_champion: int | Unchecked | None = ANY_CHAMPION,
    ) -> VersionInfo:
        """Make ``version`` the champion (it stops being the challenger).

        ``expected_champion``: the champion ``version`` was validated against (None: there
        was none); ChampionChangedError, and nothing written, if another serves now.
        """
        paths = self.paths(name, key)
        with self.locked(paths):
            info = self._info(paths, parse_version(version))
            aliases = read_aliases(paths.aliases)
            if aliases.champion == info.version:
                return info
            _check_champion(paths, aliases.champion, expected_champion, describe(name, key))
            verify_files(info)
            challenger = None if aliases.challenger == info.version else aliases.challenger
            write_aliases(paths.aliases, info.version, challenger, "promote")
            self._record(paths, "promote", info.version, reason, previous=aliases.champion)
        return info

    def set_challenger(
        self,
        name: str,
        version: int | str | None,
        key: str | None = None,
        reason: str = "",
        *,
        expected_champion: int | Unchecked | None = ANY_CHAMPION,
    ) -> None:
        """Point the challenger alias at ``version`` (None clears it).

        ``expected_champion`` as for :meth:`promote`: the champion it was validated against.
        """
        paths = self.paths(name, key)
        with self.locked(paths):
            number = None if version is None else self._info(paths, parse_version(version)).version
            aliases = read_aliases(paths.aliases)
            _check_champion(paths, aliases.champion, expected_champion, describe(name, key))
            if number is not None and number == aliases.champion:
                raise AliasError(f"{describe(name, key, number)} is the champion, not a challenger")
            write_aliases(paths.aliases, aliases.champion, number, previous=aliases)
            self._record(paths, "challenger", number, reason, previous=aliases.challenger)

    def reject(
        self, name: str, version: int | str, key: str | None = None, reason: str = ""
    ) -> None:
        """Record that a candidate lost validation; it stops being the challenger."""
        paths = self.paths(name, key)
        with self.locked(paths):
            number = self._info(paths, parse_version(version)).version
            aliases = read_aliases(paths.aliases)
            if number == aliases.champion:
                raise AliasError(
                    f"{describe(name, key, number)} is the champion; roll back instead"
                )
            if aliases.challenger == number:
                write_aliases(paths.aliases, aliases.champion, None, previous=aliases)
            self._record(paths, "reject", number, reason)

    def rollback(self, name: str, key: str | None = None, reason: str = "") -> VersionInfo:
        """Re-point the champion at the previous champion that still exists."""
        paths = self.paths(name, key)
        with self.locked(paths):
            aliases = read_aliases(paths.aliases)
            current = aliases.champion
            if current is None:
                raise NoChampionError(f"{describe(name, key)} has no champion to roll back")
            stack = champion_stack(read_events(paths.history))
            existing = set(paths.version_numbers())
            target = next((v for v in reversed(stack) if v != current and v in existing), None)
            if target is None:
                raise AliasError(f"{describe(name, key)} has no previous champion to roll back to")
            info = self._info(paths, target)
            verify_files(info)
            challenger = None if aliases.challenger == target else aliases.challenger
            write_aliases(paths.aliases, target, challenger, "rollback")
            self._record(paths, "rollback", target, reason, previous=current)
        return info

    def delete(
        self, name: str, version: int | str, key: str | None = None, reason: str = ""
    ) -> None:
        """Delete a version; the champion is refused, a challenger alias is cleared."""
        paths = self.paths(name, key)
        with self.locked(paths):
            self._delete(paths, parse_version(version), reason)

    def keep_last(self, name: str, n: int, key: str | None = None) -> list[int]:
        """Delete all but the newest ``n`` versions, never the champion or challenger."""
        if n < 1:
            raise ValueError(f"keep_last needs n >= 1, got {n}")
        paths = self.paths(name, key)
        with self.locked(paths):
            numbers = paths.version_numbers()
            aliases = read_aliases(paths.aliases)
            keep = set(numbers[-n:]) | {aliases.champion, aliases.challenger}
            doomed = [v for v in numbers if v not in keep]
            for number in doomed:
                self._delete(paths, number, f"retention: keep last {n}")
        return doomed

    def gc(self) -> list[Path]:
        """Remove scratch left by crashed writers (and restore the history line a killed
        promotion lost); return what was removed."""
        removed: list[Path] = []
        for name in self.models():
            for key in self.layout.keys(name):
                paths = self.layout.key_paths(name, key)
                with self.locked(paths):  # also restores a lost history line
                    removed += collect_garbage(paths)
        for scratch in sorted(self.root.glob(".import-*")):
            if is_abandoned(scratch):
                shutil.rmtree(scratch, ignore_errors=True)
                removed.append(scratch)
        return removed

    def _promote_first(self, paths: KeyPaths, info: VersionInfo) -> None:
        """Make a key's first version its champion. The version stays registered when this
        fails, and the error says how to finish rather than invite a second version."""
        try:
            write_aliases(paths.aliases, info.version, None, "promote")
            self._record(paths, "promote", info.version, "first version")
        except RegistryError as exc:
            key = f" --key {info.key}" if info.key else ""
            raise NotPromotedError(
                f"{info.label} is registered but could not be made champion: {exc}; "
                f"`driftline models promote {info.model} {info.version}{key} --reason ...` "
                "finishes it (training again would register another version)",
                info,
            ) from exc

    def _record(
        self,
        paths: KeyPaths,
        action: str,
        version: int | None,
        reason: str,
        previous: int | None = None,
        digest: str | None = None,
    ) -> None:
        event = HistoryEvent.now(
            action,
            paths.model,
            paths.key,
            version,
            actor=self.actor,
            reason=reason,
            previous=previous,
            digest=digest,
        )
        append_event(paths.history, event)

    def _delete(self, paths: KeyPaths, number: int, reason: str) -> None:
        info = self._info(paths, number)
        aliases = read_aliases(paths.aliases)
        if aliases.champion == number:
            raise AliasError(
                f"{info.label} is the champion and cannot be deleted; promote another version "
                "or roll back first"
            )
        if aliases.challenger == number:
            write_aliases(paths.aliases, aliases.champion, None, previous=aliases)
        grave = graveyard(paths, number)
        with writing(f"deletion of {info.label}", info.path):
            os.rename(info.path, grave)
            fsync_dir(paths.versions)
        self._record(paths, "delete", number, reason)
        shutil.rmtree(grave, ignore_errors=True)  # leftovers are removed by gc


def _serialise(metadata: dict[str, object], label: str) -> bytes:
    try:
        return dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{label}: metadata is not JSON-serialisable: {exc}") from exc


def _check_champion(
    paths: KeyPaths, champion: int | None, expected: int | Unchecked | None, label: str
) -> None:
    """Raise ChampionChangedError unless ``champion`` is the ``expected`` one.

    No champion alias while the history records one means the alias file was lost or
    could not be read: never the "no champion yet" a first version is promoted over.
    """
    if expected is ANY_CHAMPION:
        return
    lost = lost_champion(champion, paths.history)
    if lost is not None:
        raise ChampionChangedError(LOST_CHAMPION.format(label=label, version=lost))
    if champion == expected:
        return
    now = "no champion" if champion is None else f"v{champion} as champion"
    was = "none" if expected is None else f"v{expected}"
    raise ChampionChangedError(
        f"{label} has {now}; the change was validated against champion {was}: validate again"
    )
