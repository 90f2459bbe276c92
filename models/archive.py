"""Back up and restore a model store as a tar.gz archive.

An archive holds paths relative to the store root (``<model>/<key>/versions/v<N>/...``,
``aliases.json``, ``history.jsonl``) plus a manifest. Export covers the whole store, one model
(every key and version) or one version; versions are verified before they are archived.

Import trusts nothing in the archive: it refuses absolute paths, ``..``, links, devices and
any path outside the store layout; extracts regular files into a scratch directory inside
the store; verifies every version's checksums; refuses versions that already exist with
different content, and numbers this store registered and deleted unless the archive's
history shows the same registration (before moving anything); then renames each version
into place under its key's lock. Versions already present with identical content are
skipped. Aliases and history are taken from the archive only where the store has none, so
an import never re-points a serving champion; every imported version is recorded in the
history.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from models.atomic import fsync_dir, lock_directory, writing
from models.history import (
    HistoryEvent,
    append_event,
    read_aliases,
    read_events,
    write_aliases,
)
from models.layout import METADATA_FILE, KeyPaths, describe, parse_version
from models.registry import Registry
from models.registry_errors import ArchiveError, IntegrityError
from models.staging import ARCHIVE_FORMAT, MANIFEST, StagedKey, extract
from models.store import ModelStore
from models.versions import VersionInfo, dumps, utc_now, verify_files

VersionId = tuple[str, str | None, int]
# A key read while writers change it is read again; this many times before giving up.
SNAPSHOT_ATTEMPTS: Final = 5


@dataclass
class ArchiveSummary:
    """What an export wrote or an import moved into place (and skipped as identical)."""

    path: Path
    versions: list[VersionId] = field(default_factory=list)
    skipped: list[VersionId] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def rows(ids: list[VersionId]) -> list[dict[str, Any]]:
            return [{"model": m, "key": k, "version": v} for m, k, v in ids]

        return {
            "path": str(self.path),
            "versions": rows(self.versions),
            "skipped": rows(self.skipped),
        }


# ---------------------------------------------------------------------------- export


def export_archive(
    store: ModelStore,
    destination: Path,
    name: str | None = None,
    key: str | None = None,
    version: int | str | None = None,
) -> ArchiveSummary:
    """Write the whole store, one model, one model key or one version to ``destination``.

    ``name`` alone exports every key of the model; with ``key`` only that key; with
    ``version`` only that version of ``(name, key)``.
    """
    if (version is not None or key is not None) and name is None:
        raise ValueError("exporting one version or one key needs the model name")
    if not store.root.is_dir():
        raise ArchiveError(f"model store {store.root} does not exist")
    files: list[tuple[str, Path | bytes]] = []
    summary = ArchiveSummary(destination)
    for paths in _export_keys(store, name, key, version):
        if version is None:
            kept, numbers = _key_snapshot(store, paths)
            files += kept
        else:
            numbers = [parse_version(version)]
        for number in numbers:
            info = store.info(paths.model, paths.key, number)
            verify_files(info)
            summary.versions.append((paths.model, paths.key, number))
            files += _version_files(store, info)
    _write_tar(destination, _manifest(name, version, summary), files)
    return summary


def _key_snapshot(store: ModelStore, paths: KeyPaths) -> tuple[list[tuple[str, bytes]], list[int]]:
    """A key's aliases and history (as bytes) and its versions, consistent with each other.

    Read in that order, every version the aliases name is among the versions listed after
    them (a version exists before it can be promoted), so a restore never comes back with
    a champion it lacks. A writer that promoted and deleted in between is caught by the
    check and the key read again.
    """
    for _ in range(SNAPSHOT_ATTEMPTS):
        kept = [
            (_relative(store, p), p.read_bytes())
            for p in (paths.aliases, paths.history)
            if p.is_file()
        ]
        numbers = paths.version_numbers()
        if not _unchanged(kept, paths):
            continue  # a writer changed the key meanwhile: read it again
        named = read_aliases(paths.aliases) if paths.aliases.is_file() else None
        wanted = [] if named is None else [named.champion, named.challenger]
        missing = [v for v in wanted if v is not None and v not in numbers]
        if missing:
            raise ArchiveError(
                f"{describe(paths.model, paths.key, missing[0])} is named by aliases.json but "
                "its directory is missing: promote (or roll back to) a version that exists, "
                "then export again"
            )
        return kept, numbers
    raise ArchiveError(
        f"{describe(paths.model, paths.key)} kept changing while it was exported; try again"
    )


def _unchanged(kept: list[tuple[str, bytes]], paths: KeyPaths) -> bool:
    """Whether the aliases and history read before the version list are still current."""
    now = {p.name: p.read_bytes() for p in (paths.aliases, paths.history) if p.is_file()}
    return {Path(arcname).name: data for arcname, data in kept} == now


def _export_keys(
    store: ModelStore, name: str | None, key: str | None, version: int | str | None
) -> list[KeyPaths]:
    if name is not None and (version is not None or key is not None):
        return [store.paths(name, key)]
    names = store.models() if name is None else [name]
    return [store.paths(n, k) for n in names for k in store.keys(n)]


def _version_files(store: ModelStore, info: VersionInfo) -> list[tuple[str, Path]]:
    names = [*sorted(info.files), METADATA_FILE]
    return [(_relative(store, info.path / n), info.path / n) for n in names]


def _relative(store: ModelStore, path: Path) -> str:
    return path.relative_to(store.root).as_posix()


def _manifest(name: str | None, version: int | str | None, summary: ArchiveSummary) -> bytes:
    scope = "store" if name is None else "model" if version is None else "version"
    return dumps(
        {
            "format": ARCHIVE_FORMAT,
            "created_at": utc_now(),
            "scope": scope,
            "versions": summary.to_dict()["versions"],
        }
    )


def _write_tar(destination: Path, manifest: bytes, files: list[tuple[str, Path | bytes]]) -> None:
    temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.tmp")
    with writing("archive", destination):
        try:
            with tarfile.open(temporary, "w:gz") as archive:
                _add_bytes(archive, MANIFEST, manifest)
                for arcname, content in files:
                    if isinstance(content, bytes):
                        _add_bytes(archive, arcname, content)
                    else:
                        _add_file(archive, arcname, content)
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, destination)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        fsync_dir(destination.parent)


def _add_bytes(archive: tarfile.TarFile, arcname: str, data: bytes) -> None:
    info = tarfile.TarInfo(arcname)
    info.size = len(data)
    info.mode = 0o644  # plain readable files: owners and modes of the source are not kept
    archive.addfile(info, io.BytesIO(data))


def _add_file(archive: tarfile.TarFile, arcname: str, path: Path) -> None:
    """Stream one file into the archive (model files can be large)."""
    with open(path, "rb") as handle:
        info = tarfile.TarInfo(arcname)
        info.size = os.fstat(handle.fileno()).st_size
        info.mode = 0o644
        archive.addfile(info, handle)


# ---------------------------------------------------------------------------- import


def import_archive(registry: Registry, source: Path) -> ArchiveSummary:
    """Verify and move every version of ``source`` into the store; see the module doc."""
    with writing("store directory", registry.root):
        registry.root.mkdir(parents=True, exist_ok=True)
    staging = registry.root / f".import-{uuid.uuid4().hex}"
    with writing("import scratch directory", staging):
        staging.mkdir()
        staging_lock = lock_directory(staging)  # Registry.gc skips it while held
    try:
        groups = extract(source, staging)
        for group in groups.values():
            _verify(group, source)
        summary = ArchiveSummary(source)
        _check_conflicts(registry, groups, summary, source)
        for group in groups.values():
            _install(registry, group, summary, source)
        return summary
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(staging_lock)


def _verify(group: StagedKey, source: Path) -> None:
    for number, path in group.versions.items():
        try:
            verify_files(group.info(number, path))
        except IntegrityError as exc:
            raise ArchiveError(f"{source}: {exc}") from exc


def _check_conflicts(
    registry: Registry,
    groups: dict[tuple[str, str | None], StagedKey],
    summary: ArchiveSummary,
    source: Path,
) -> None:
    """Sort versions into new and identical; refuse the import if any differs."""
    conflicts, reused = [], []
    for (model, key), group in groups.items():
        paths = registry.layout.key_paths(model, key)
        known = _registrations(read_events(paths.history))
        staged_history = [] if group.history is None else read_events(group.history)
        for number, path in sorted(group.versions.items()):
            existing = paths.version(number)
            if not existing.exists():
                if number in known and not _same_registration(known[number], path, staged_history):
                    reused.append(describe(model, key, number))
                continue
            if _same_version(existing, path):
                summary.skipped.append((model, key, number))
            else:
                conflicts.append(describe(model, key, number))
    if conflicts:
        raise ArchiveError(
            f"{source}: refusing to overwrite {', '.join(conflicts)}: the store holds different "
            "versions under the same numbers; nothing was imported"
        )
    if reused:
        raise ArchiveError(
            f"{source}: refusing to import {', '.join(reused)}: this store registered and "
            "deleted versions under those numbers, and the archive's history does not show "
            "they are the same ones (predictions name versions by number, so a number is never "
            "given to another model); nothing was imported"
        )


def _same_registration(event: HistoryEvent, staged: Path, history: list[HistoryEvent]) -> bool:
    """Whether the staged version is the one ``event`` brought into this store: the same
    metadata.json (the digest the event recorded), or, for lines written without one, the
    same registration in the archive's own history."""
    if event.digest is not None:
        return event.digest == metadata_digest(staged)
    return event in history


def metadata_digest(version_dir: Path) -> str:
    return hashlib.sha256((version_dir / METADATA_FILE).read_bytes()).hexdigest()


def _registrations(events: list[HistoryEvent]) -> dict[int, HistoryEvent]:
    """The event that first brought each version number into a store (register, import)."""
    first: dict[int, HistoryEvent] = {}
    for event in events:
        if event.action in ("register", "import") and event.version is not None:
            first.setdefault(event.version, event)
    return first


def _same_version(existing: Path, staged: Path) -> bool:
    try:
        return bool(
            (existing / METADATA_FILE).read_bytes() == (staged / METADATA_FILE).read_bytes()
        )
    except OSError:
        return False


def _install(registry: Registry, group: StagedKey, summary: ArchiveSummary, source: Path) -> None:
    paths = registry.layout.key_paths(group.model, group.key)
    with writing("model directory", paths.versions):
        paths.versions.mkdir(parents=True, exist_ok=True)
    skipped = set(summary.skipped)
    with registry.locked(paths):
        moved: list[tuple[int, str]] = []
        for number, path in sorted(group.versions.items()):
            if (group.model, group.key, number) in skipped:
                continue
            target = paths.version(number)
            if target.exists():  # registered concurrently since the conflict check
                raise ArchiveError(f"{source}: {describe(group.model, group.key, number)} appeared")
            digest = metadata_digest(path)
            with writing(f"imported {describe(group.model, group.key, number)}", target):
                os.rename(path, target)
                fsync_dir(paths.versions)
            moved.append((number, digest))
            summary.versions.append((group.model, group.key, number))
        _adopt_history(paths, group)
        _adopt_aliases(paths, group)
        for number, digest in moved:
            event = HistoryEvent.now(
                "import",
                group.model,
                group.key,
                number,
                actor=registry.actor,
                reason=f"imported from {source.name}",
                digest=digest,
            )
            append_event(paths.history, event)


def _adopt_history(paths: KeyPaths, group: StagedKey) -> None:
    if group.history is not None and not paths.history.exists():
        with writing("imported history", paths.history):
            os.rename(group.history, paths.history)
            fsync_dir(paths.root)


def _adopt_aliases(paths: KeyPaths, group: StagedKey) -> None:
    if group.aliases is None or paths.aliases.exists():
        return
    staged = read_aliases(group.aliases)
    present = set(paths.version_numbers())
    champion = staged.champion if staged.champion in present else None
    challenger = staged.challenger if staged.challenger in present else None
    if champion is not None or challenger is not None:
        write_aliases(paths.aliases, champion, challenger)


__all__ = ["ARCHIVE_FORMAT", "MANIFEST", "ArchiveSummary", "export_archive", "import_archive"]
