"""Scratch space of a model key: where new versions are written before they become visible.

A new version is saved into ``versions/.tmp-<uuid>`` and flocked for as long as its writer
runs; a deleted version is first renamed to ``versions/.del-v<N>-<uuid>``. Both names start
with a dot, so listings never show them, and both are removed by :func:`collect_garbage`
once nobody holds them (the kernel drops the flock of a crashed writer).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from models.atomic import fsync_dir, is_abandoned, lock_directory, writing
from models.base import Model, ModelError
from models.history import highest_version, read_events
from models.layout import VERSION_PATTERN, KeyPaths
from models.registry_errors import RegistryError, StoreWriteError
from models.versions import scan_files

DELETED_PATTERN = re.compile(r"\.del-v([0-9]+)-.*")


def create_scratch(paths: KeyPaths) -> tuple[Path, int]:
    """Make and flock a scratch directory; call with the key's lock held.

    Holding the key lock means gc never sees the directory between mkdir and flock.
    Returns the directory and the descriptor whose closing releases it.
    """
    scratch = paths.versions / f".tmp-{uuid.uuid4().hex}"
    with writing("scratch directory", scratch):
        scratch.mkdir()
        return scratch, lock_directory(scratch)


def graveyard(paths: KeyPaths, number: int) -> Path:
    """Name a deleted version is renamed to before its files are removed."""
    return paths.versions / f".del-v{number}-{uuid.uuid4().hex}"


def save_into(model: Model, scratch: Path, label: str) -> dict[str, dict[str, Any]]:
    """Save ``model`` into ``scratch``, fsync and checksum every file it wrote.

    Frameworks report a failed write in their own words (CatBoost raises CatBoostError on
    a full disk, not OSError): any error of ``save`` other than a ModelError (the family
    refusing, e.g. an unfitted model) is a StoreWriteError that keeps their message.
    """
    with writing(f"{label} model files", scratch):
        try:
            names = model.save(scratch)
        except (OSError, ModelError):
            raise
        except Exception as exc:
            raise StoreWriteError(f"cannot write {label} model files at {scratch}: {exc}") from exc
        files = scan_files(scratch, fsync=True)
    missing = [n for n in names if n not in files]
    if missing or not files:
        raise RegistryError(f"{label}: {model.family}.save did not write {missing or 'any file'}")
    return files


def fsync_tree(directory: Path) -> None:
    """fsync every directory under ``directory`` so new entries survive a power cut."""
    for current, _, _ in os.walk(directory):
        fsync_dir(Path(current))


def next_version(paths: KeyPaths) -> int:
    """One above every existing, half-deleted or historical version: numbers are never reused."""
    taken = [highest_version(read_events(paths.history)), *paths.version_numbers()]
    for entry in paths.versions.iterdir():
        match = VERSION_PATTERN.fullmatch(entry.name) or DELETED_PATTERN.fullmatch(entry.name)
        if match:
            taken.append(int(match.group(1)))
    return max(taken) + 1


def collect_garbage(paths: KeyPaths) -> list[Path]:
    """Remove abandoned scratch of one key; call with the key's lock held."""
    removed = []
    for scratch in paths.scratch_dirs():
        if scratch.name.startswith(".del-") or is_abandoned(scratch):
            shutil.rmtree(scratch, ignore_errors=True)
            removed.append(scratch)
    for stale in paths.root.glob(".*.tmp"):  # atomic writes of aliases.json torn by a crash
        stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed
