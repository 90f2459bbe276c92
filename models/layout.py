"""Where things live in a model store directory.

::

    <store>/<model>/<key>/versions/v<N>/   immutable version: model files + metadata.json
    <store>/<model>/<key>/aliases.json     champion / challenger, replaced atomically
    <store>/<model>/<key>/history.jsonl    append-only log of registry actions
    <store>/<model>/<key>/.lock            flock serialising writers of this model key

``<key>`` is ``_`` for an unkeyed model, otherwise the key percent-encoded so that any
product id or pollutant name is a safe single path component. Names starting with ``.`` are
scratch space (temporary version directories, deleted versions, imports) and never listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from models.registry_errors import InvalidNameError

# Model names are operator-chosen identifiers; 100 characters keeps paths far below PATH_MAX.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
VERSION_PATTERN = re.compile(r"v([1-9][0-9]*)")
NO_KEY = "_"
METADATA_FILE = "metadata.json"
# NAME_MAX on Linux file systems: one path component may not be longer.
MAX_COMPONENT_BYTES = 255


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise InvalidNameError."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidNameError(
            f"invalid model name {name!r}: use 1-100 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def key_dir(key: str | None) -> str:
    """Directory name of a model key (``_`` for no key)."""
    if key is None:
        return NO_KEY
    if not key:
        raise InvalidNameError("a model key may not be empty (use no key instead)")
    encoded = quote(key, safe="")
    if encoded == NO_KEY or encoded.startswith("."):
        encoded = f"%{ord(encoded[0]):02X}{encoded[1:]}"
    if len(encoded.encode()) > MAX_COMPONENT_BYTES:
        raise InvalidNameError(f"model key {key!r} is too long for a directory name")
    return encoded


def key_from_dir(name: str) -> str | None:
    """Inverse of :func:`key_dir`."""
    return None if name == NO_KEY else unquote(name)


def parse_version(text: str | int) -> int:
    """Accept ``3``, ``"3"`` or ``"v3"``; raise InvalidNameError otherwise."""
    if isinstance(text, int):
        if text < 1:
            raise InvalidNameError(f"invalid version {text}: versions start at 1")
        return text
    match = VERSION_PATTERN.fullmatch(text) or VERSION_PATTERN.fullmatch(f"v{text}")
    if match is None:
        raise InvalidNameError(f"invalid version {text!r}: expected a number such as 3 or v3")
    return int(match.group(1))


def describe(model: str, key: str | None, version: int | None = None) -> str:
    """Human-readable ``model[key] v3`` used in error messages and logs."""
    label = model if key is None else f"{model}[{key}]"
    return label if version is None else f"{label} v{version}"


@dataclass(frozen=True)
class KeyPaths:
    """Paths of one model key inside the store."""

    model: str
    key: str | None
    root: Path

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    @property
    def aliases(self) -> Path:
        return self.root / "aliases.json"

    @property
    def history(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def version(self, number: int) -> Path:
        return self.versions / f"v{number}"

    def version_numbers(self) -> list[int]:
        """Complete versions (those with a metadata.json), ascending."""
        if not self.versions.is_dir():
            return []
        numbers = []
        for entry in self.versions.iterdir():
            match = VERSION_PATTERN.fullmatch(entry.name)
            if match and (entry / METADATA_FILE).is_file():
                numbers.append(int(match.group(1)))
        return sorted(numbers)

    def scratch_dirs(self) -> list[Path]:
        """Temporary and deleted version directories left in ``versions/``."""
        if not self.versions.is_dir():
            return []
        return sorted(p for p in self.versions.iterdir() if p.name.startswith("."))


class StoreLayout:
    """Maps model names and keys to directories under the store root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def key_paths(self, model: str, key: str | None) -> KeyPaths:
        return KeyPaths(model, key, self.root / check_name(model) / key_dir(key))

    def model_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and NAME_PATTERN.fullmatch(p.name)
        )

    def keys(self, model: str) -> list[str | None]:
        """Keys of a model that hold versions or aliases; unkeyed (None) first."""
        directory = self.root / check_name(model)
        if not directory.is_dir():
            return []
        found = [
            key_from_dir(p.name)
            for p in directory.iterdir()
            if not p.name.startswith(".")
            and ((p / "versions").is_dir() or (p / "aliases.json").is_file())
        ]
        return sorted(found, key=lambda k: (k is not None, k or ""))
