"""Version metadata: what metadata.json records and how a version's files are verified.

metadata.json holds the model family's own ``Model.metadata()`` keys at top level (so
``Model.load`` finds ``features``, ``params`` and ``info`` where the family wrote them, and a
verbatim copy under ``model_metadata``) next to the registry's fields: format, model, key,
version, parent, created_at, training (window, rows, data fingerprint), metrics, frameworks
and ``files`` (sha256 and size of every file). Registry fields win on a name clash.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.atomic import sha256_file
from models.base import FitReport, Model
from models.layout import METADATA_FILE, describe
from models.registry_errors import IntegrityError, RegistryError

# Bumped when the meaning of a metadata.json field changes.
METADATA_FORMAT = 1
# Frameworks recorded in every version (read from package metadata; nothing is imported).
FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "numba": ("numba",),  # compiles the feature statistics and the forest walk
    "pandas": ("pandas",),
    "scikit-learn": ("scikit-learn",),
    "catboost": ("catboost",),
    "joblib": ("joblib",),
}
# Recorded only when the process has imported them, i.e. when the model used them.
LAZY_FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
}


@dataclass(frozen=True)
class VersionInfo:
    """One registered version as read from its metadata.json."""

    model: str
    key: str | None
    version: int
    path: Path
    metadata: dict[str, Any]

    @property
    def family(self) -> str:
        return str(self.metadata.get("family", ""))

    @property
    def parent(self) -> int | None:
        parent = self.metadata.get("parent")
        return None if parent is None else int(parent)

    @property
    def created_at(self) -> str:
        return str(self.metadata.get("created_at", ""))

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.metadata.get("metrics") or {})

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return dict(self.metadata.get("files") or {})

    @property
    def size_bytes(self) -> int:
        """Bytes of the version's files on disk (the cache's memory proxy)."""
        return sum(int(record.get("bytes", 0)) for record in self.files.values())

    @property
    def label(self) -> str:
        return describe(self.model, self.key, self.version)


@dataclass(frozen=True)
class LoadedModel:
    """A model loaded from a verified version, with the facts needed to label its outputs."""

    model: Model
    info: VersionInfo

    @property
    def version(self) -> int:
        return self.info.version


def utc_now() -> str:
    """Current time as an ISO 8601 UTC string with millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def json_default(value: Any) -> Any:
    """Make numpy scalars/arrays, paths and timestamps JSON-serialisable."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True, default=json_default).encode()


def framework_versions() -> dict[str, str]:
    """Python and ML framework versions, read without importing the frameworks."""
    found = {"python": platform.python_version()}
    lazy = {name: dists for name, dists in LAZY_FRAMEWORKS.items() if name in sys.modules}
    for name, distributions in (FRAMEWORKS | lazy).items():
        for distribution in distributions:
            try:
                found[name] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return found


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the column names, dtypes and per-row hashes of a training frame."""
    digest = hashlib.sha256()
    header = [[str(c), str(t)] for c, t in zip(frame.columns, frame.dtypes, strict=True)]
    digest.update(json.dumps(header).encode())
    try:
        rows = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    except TypeError as exc:  # unhashable cells, e.g. lists in an object column
        raise RegistryError(f"cannot fingerprint the training frame: {exc}") from exc
    digest.update(rows.tobytes())
    return f"sha256:{digest.hexdigest()}"


def training_facts(report: FitReport | None, frame: pd.DataFrame | None) -> dict[str, Any]:
    """Training window, row count and data fingerprint from a fit report and/or frame."""
    window: tuple[str, str] | None = report.window if report else None
    if window is None and frame is not None and "ts" in frame.columns and len(frame):
        window = _time_window(frame["ts"])
    rows = report.rows if report else (len(frame) if frame is not None else None)
    return {
        "window": None if window is None else {"start": window[0], "end": window[1]},
        "rows": rows,
        "fingerprint": None if frame is None else fingerprint(frame),
        "seconds": report.seconds if report else None,
    }


def _time_window(stamps: pd.Series) -> tuple[str, str] | None:
    try:
        parsed = pd.to_datetime(stamps, utc=True)
    except (ValueError, TypeError):  # not timestamps: the window is simply not recorded
        return None
    return parsed.min().isoformat(), parsed.max().isoformat()


def scan_files(directory: Path, *, fsync: bool = False) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under ``directory`` except metadata.json."""
    records: dict[str, dict[str, Any]] = {}
    for current, dirnames, filenames in os.walk(directory):
        base = Path(current)
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]:
            path = base / name
            relative = path.relative_to(directory).as_posix()
            if relative == METADATA_FILE:
                continue
            if path.is_symlink() or not path.is_file():
                raise IntegrityError(f"{path} is not a regular file; versions hold only files")
            digest, size = sha256_file(path, fsync=fsync)
            records[relative] = {"sha256": digest, "bytes": size}
    return records


def build_metadata(
    model: Model,
    *,
    name: str,
    key: str | None,
    version: int,
    parent: int | None,
    files: dict[str, dict[str, Any]],
    training: dict[str, Any],
    metrics: dict[str, float],
) -> dict[str, Any]:
    """The metadata.json document of a new version."""
    own = model.metadata()
    return {
        **own,
        "format": METADATA_FORMAT,
        "model": name,
        "key": key,
        "version": version,
        "parent": parent,
        "family": model.family,
        "created_at": utc_now(),
        "training": training,
        "features": list(model.feature_names),
        "params": dict(model.params),
        "metrics": dict(metrics),
        "frameworks": framework_versions(),
        "files": files,
        "model_metadata": own,
    }


def read_metadata(path: Path, label: str) -> dict[str, Any]:
    """Parse a version's metadata.json; IntegrityError if it is missing or unreadable."""
    try:
        document = json.loads((path / METADATA_FILE).read_bytes())
    except FileNotFoundError as exc:
        raise IntegrityError(f"{label}: {METADATA_FILE} is missing") from exc
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{label}: {METADATA_FILE} is unreadable: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        raise IntegrityError(f"{label}: {METADATA_FILE} has no 'files' checksum table")
    return document


def verify_files(info: VersionInfo) -> None:
    """Check every file against metadata.json; IntegrityError names the first culprit."""
    expected = info.files
    try:
        actual = scan_files(info.path)
    except OSError as exc:  # deleted (retention, an operator) or unreadable while checked
        raise IntegrityError(
            f"{info.label}: cannot read its files ({exc.strerror or exc}: {info.path})"
        ) from exc
    missing = sorted(set(expected) - set(actual))
    if missing:
        raise IntegrityError(f"{info.label}: file {missing[0]} is missing ({info.path})")
    extra = sorted(set(actual) - set(expected))
    if extra:
        raise IntegrityError(f"{info.label}: unexpected file {extra[0]} ({info.path})")
    for name in sorted(expected):
        if actual[name]["sha256"] != expected[name].get("sha256"):
            raise IntegrityError(
                f"{info.label}: checksum mismatch for file {name} ({info.path / name}); "
                "the file was modified or corrupted after registration"
            )
