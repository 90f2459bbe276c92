"""Checking and staging the members of a model archive before they enter the store.

:func:`check_member` is the gate every tar member passes: only regular files and
directories, only relative paths without ``..``, and only paths of the store layout
(``driftline-archive.json``, ``<model>/<key>/aliases.json``, ``<model>/<key>/history.jsonl``,
``<model>/<key>/versions/v<N>/...``). :func:`stage_members` copies the file members into a
scratch directory without ever calling ``tarfile.extract``, so nothing but plain files with
default permissions is ever created. :func:`extract` runs both over a whole archive.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from models.atomic import writing
from models.layout import NAME_PATTERN, VERSION_PATTERN, describe, key_dir, key_from_dir
from models.registry_errors import ArchiveError, IntegrityError, InvalidNameError
from models.scratch import fsync_tree
from models.versions import VersionInfo, read_metadata

MANIFEST = "driftline-archive.json"
# Bumped when the archive layout changes incompatibly.
ARCHIVE_FORMAT = 1
KEY_FILES = ("aliases.json", "history.jsonl")


@dataclass
class StagedKey:
    """Files of one model key extracted into the scratch directory."""

    model: str
    key: str | None
    versions: dict[int, Path] = field(default_factory=dict)
    aliases: Path | None = None
    history: Path | None = None

    def info(self, number: int, path: Path) -> VersionInfo:
        label = describe(self.model, self.key, number)
        metadata = read_metadata(path, label)
        if metadata.get("version") != number or metadata.get("model") != self.model:
            raise IntegrityError(f"{label}: metadata.json describes another version")
        if metadata.get("key") != self.key:
            raise IntegrityError(f"{label}: metadata.json describes key {metadata.get('key')!r}")
        return VersionInfo(self.model, self.key, number, path, metadata)


def check_member(member: tarfile.TarInfo) -> tuple[str, ...]:
    """Path components of a safe member; ArchiveError names the member otherwise."""
    path = PurePosixPath(member.name)
    if member.issym() or member.islnk():
        raise ArchiveError(f"archive member {member.name!r} is a link; links are refused")
    if not (member.isfile() or member.isdir()):
        raise ArchiveError(f"archive member {member.name!r} is a device or special file")
    if path.is_absolute() or "\\" in member.name:
        raise ArchiveError(f"archive member {member.name!r} has an absolute path")
    if not path.parts and member.isdir():
        return ()  # the archive's root ("." of `tar -C store .`): nothing to place
    if ".." in path.parts or not path.parts:
        raise ArchiveError(f"archive member {member.name!r} escapes the store (path traversal)")
    if not _in_layout(path.parts, member.isdir()):
        raise ArchiveError(f"archive member {member.name!r} is not part of a model store")
    return path.parts


def _in_layout(parts: tuple[str, ...], is_dir: bool) -> bool:
    if parts == (MANIFEST,):
        return not is_dir
    if not NAME_PATTERN.fullmatch(parts[0]):
        return False
    if len(parts) == 1:
        return is_dir
    if parts[1].startswith(".") or not _canonical_key(parts[1]):
        return False
    rest = parts[2:]
    if len(rest) == 0:
        return is_dir
    if rest[0] in KEY_FILES:
        return len(rest) == 1 and not is_dir
    if rest[0] != "versions":
        return False
    if len(rest) == 1:
        return is_dir
    return bool(VERSION_PATTERN.fullmatch(rest[1])) and (is_dir or len(rest) > 2)


def _canonical_key(name: str) -> bool:
    try:
        return key_dir(key_from_dir(name)) == name
    except InvalidNameError:
        return False


def extract(source: Path, staging: Path) -> dict[tuple[str, str | None], StagedKey]:
    """Check every member of ``source``, then copy its files into ``staging`` by model key."""
    try:
        with tarfile.open(source, "r:gz") as archive:
            members = archive.getmembers()
            for member in members:
                check_member(member)
            named = {PurePosixPath(m.name).as_posix(): m for m in members}  # "./x" is "x"
            if MANIFEST not in named:
                raise ArchiveError(f"{source} is not a driftline model archive (no {MANIFEST})")
            manifest = json.loads(_read_member(archive, named[MANIFEST]))
            found = manifest.get("format") if isinstance(manifest, dict) else None
            if found != ARCHIVE_FORMAT:
                raise ArchiveError(f"{source}: unsupported archive format {found!r}")
            return stage_members(archive, members, staging)
    except (tarfile.TarError, EOFError, ValueError) as exc:
        raise ArchiveError(f"{source} is not a readable tar.gz archive: {exc}") from exc
    except OSError as exc:
        raise ArchiveError(f"cannot read archive {source}: {exc.strerror or exc}") from exc


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = archive.extractfile(member)
    if handle is None:
        raise ArchiveError(f"archive member {member.name} is not a file")
    with handle:
        return handle.read()


def stage_members(
    archive: tarfile.TarFile, members: list[tarfile.TarInfo], staging: Path
) -> dict[tuple[str, str | None], StagedKey]:
    """Copy file members into ``staging`` and group them by model key."""
    groups: dict[tuple[str, str | None], StagedKey] = {}
    for member in members:
        parts = check_member(member)
        if member.isdir() or parts == (MANIFEST,):
            continue
        target = staging.joinpath(*parts)
        _copy_member(archive, member, target)
        model, key = parts[0], key_from_dir(parts[1])
        group = groups.setdefault((model, key), StagedKey(model, key))
        if parts[2] == "aliases.json":
            group.aliases = target
        elif parts[2] == "history.jsonl":
            group.history = target
        else:
            number = int(parts[3][1:])  # "v12" -> 12, shape checked by check_member
            group.versions[number] = staging.joinpath(*parts[:4])
    with writing("import scratch directory", staging):
        fsync_tree(staging)
    return groups


def _copy_member(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = archive.extractfile(member)
    if source is None:
        raise ArchiveError(f"archive member {member.name!r} has no content")
    with writing("imported file", target), source:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = open(target, "xb")  # noqa: SIM115 - closed right below
        except FileExistsError as exc:
            raise ArchiveError(f"archive member {member.name!r} appears twice") from exc
        with handle:
            shutil.copyfileobj(source, handle)
            handle.flush()
            os.fsync(handle.fileno())
