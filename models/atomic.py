"""Durable file-system primitives the model store is built on.

Everything the registry writes goes through these helpers so that a crash, a full disk or a
read-only volume never leaves a half-written file visible:

* whole files are written to a temporary sibling, fsynced, ``os.replace``-d into place and the
  directory is fsynced (the rename is atomic and survives a power cut);
* append-only logs are appended with ``O_APPEND``, fsynced, and truncated back to their old
  length when a write fails part-way;
* every ``OSError`` is re-raised as :class:`StoreWriteError` naming what was being written.

Locks are ``fcntl.flock`` locks: the kernel releases them when the holding process dies, so a
crash never leaves a stale lock behind (an ``O_EXCL`` lock file would need manual clean-up).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from models.registry_errors import StoreWriteError

# 1 MiB reads keep hashing of large model files fast without holding them in memory.
CHUNK_BYTES = 1 << 20


@contextlib.contextmanager
def writing(what: str, path: Path) -> Iterator[None]:
    """Re-raise any OSError in the block as StoreWriteError naming ``what`` and ``path``."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StoreWriteError(f"cannot write {what} at {path}: {reason}") from exc


def fsync_dir(path: Path) -> None:
    """Flush a directory entry change (create, rename, unlink) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, what: str) -> None:
    """Replace ``path`` with ``data`` atomically: readers see the old or new file, never a mix."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with writing(what, path):
        try:
            with open(temporary, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        fsync_dir(path.parent)


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` and fsync it (the caller fsyncs the directory)."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def append_line(path: Path, line: bytes, what: str) -> None:
    """Append one newline-terminated record and fsync it; undo a partial write on failure."""
    created = not path.exists()
    with writing(what, path):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            record = line if line.endswith(b"\n") else line + b"\n"
            if size and os.pread(fd, 1, size - 1) != b"\n":
                record = b"\n" + record  # a crash tore the last line: keep ours separate
            try:
                _write_all(fd, record)
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
        if created:
            fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def sha256_file(path: Path, *, fsync: bool = False) -> tuple[str, int]:
    """Return (hex sha256, size in bytes) of a file, optionally fsyncing it first."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        if fsync:
            os.fsync(fd)
        while chunk := os.read(fd, CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest(), size


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if missing) for the duration of the block."""
    with writing("lock file", path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def lock_directory(path: Path) -> int:
    """Take an exclusive flock on a directory; return the descriptor that holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def is_abandoned(path: Path) -> bool:
    """True if nobody holds the flock of directory ``path`` (its writer finished or died)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True
