"""Read access to a model store directory (the ``MODEL_STORE`` volume).

:class:`ModelStore` lists models, keys and versions, resolves aliases, reads history and
loads verified versions; :class:`models.registry.Registry` adds everything that writes.
Services that only serve models (the worker and its cache) need nothing more than this.

Loading verifies the sha256 of every file against metadata.json before the family's
``Model.load`` sees the directory. The check guards against corruption and tampering at
rest; a writer with access to the store while a load runs is outside that guarantee.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

from models.atomic import file_lock
from models.base import Model
from models.history import Aliases, HistoryEvent, read_aliases, read_events
from models.layout import METADATA_FILE, KeyPaths, StoreLayout, describe, parse_version
from models.registry_errors import (
    IntegrityError,
    LoadError,
    ModelNotFoundError,
    NoChampionError,
    RegistryError,
    VersionNotFoundError,
)
from models.settings import RegistrySettings
from models.versions import LoadedModel, VersionInfo, read_metadata, verify_files

Loader = Callable[[str], type[Model]]
# Keys named in a "no such key" message; per-product models may have thousands.
MAX_LISTED = 10


def default_loader(family: str) -> type[Model]:
    """``models.families.model_class(family)``, imported only when a model is loaded.

    The import is deferred because the families pull in scikit-learn, CatBoost and (for the
    sequence family) TensorFlow, which listing or promoting versions never needs.
    """
    model_class = importlib.import_module("models.families").model_class(family)
    if not (isinstance(model_class, type) and issubclass(model_class, Model)):
        raise TypeError(f"models.families.model_class({family!r}) is not a Model subclass")
    return model_class


def default_store() -> Path:
    """``$MODEL_STORE``, or ``./model-store`` when it is not set."""
    return RegistrySettings().store


class ModelStore:
    """List, inspect and load model versions of a store directory."""

    def __init__(self, root: Path | str | None = None, loader: Loader | None = None) -> None:
        self.root = Path(root) if root is not None else default_store()
        self.layout = StoreLayout(self.root)
        self._loader = loader or default_loader

    def models(self) -> list[str]:
        return self.layout.model_names()

    def keys(self, name: str) -> list[str | None]:
        keys = self.layout.keys(name)
        if not keys:
            raise ModelNotFoundError(f"no model named {name!r} in {self.root}")
        return keys

    def paths(self, name: str, key: str | None = None) -> KeyPaths:
        """Paths of an existing model key; ModelNotFoundError if it does not exist."""
        paths = self.layout.key_paths(name, key)
        if paths.root.is_dir():
            return paths
        known = self.layout.keys(name)
        if not known:
            raise ModelNotFoundError(f"no model named {name!r} in {self.root}")
        wanted = "no unkeyed versions" if key is None else f"no key {key!r}"
        listed = ", ".join("(unkeyed)" if k is None else k for k in known[:MAX_LISTED])
        more = f" and {len(known) - MAX_LISTED} more" if len(known) > MAX_LISTED else ""
        raise ModelNotFoundError(f"model {name!r} has {wanted} (keys: {listed}{more})")

    def versions(self, name: str, key: str | None = None) -> list[VersionInfo]:
        paths = self.paths(name, key)
        return [self._info(paths, number) for number in paths.version_numbers()]

    def aliases(self, name: str, key: str | None = None) -> Aliases:
        return read_aliases(self.paths(name, key).aliases)

    def champion(self, name: str, key: str | None = None) -> int:
        champion = self.aliases(name, key).champion
        if champion is None:
            raise NoChampionError(f"{describe(name, key)} has no champion; promote a version first")
        return champion

    def info(
        self, name: str, key: str | None = None, version: int | str | None = None
    ) -> VersionInfo:
        """Metadata of a version (the champion when ``version`` is None)."""
        number = self.champion(name, key) if version is None else parse_version(version)
        return self._info(self.paths(name, key), number)

    def history(self, name: str, key: str | None = None) -> list[HistoryEvent]:
        return read_events(self.paths(name, key).history)

    def load(
        self, name: str, key: str | None = None, version: int | str | None = None
    ) -> LoadedModel:
        """Verify and load a version (the champion when ``version`` is None)."""
        info = self.info(name, key, version)
        verify_files(info)
        try:
            model_class = self._loader(info.family)
        except Exception as exc:
            raise LoadError(f"{info.label}: unknown model family {info.family!r}: {exc}") from exc
        try:
            model = model_class.load(info.path, dict(info.metadata))
        except RegistryError:
            raise
        except Exception as exc:
            raise LoadError(
                f"{info.label}: {info.family} could not load {info.path}: {exc}"
            ) from exc
        return LoadedModel(model, info)

    def _info(self, paths: KeyPaths, number: int) -> VersionInfo:
        label = describe(paths.model, paths.key, number)
        path = paths.version(number)
        if not (path / METADATA_FILE).is_file():
            known = ", ".join(f"v{n}" for n in paths.version_numbers()) or "none"
            raise VersionNotFoundError(f"{label} does not exist (versions: {known})")
        metadata = read_metadata(path, label)
        described = (metadata.get("model"), metadata.get("key"), metadata.get("version"))
        if described != (paths.model, paths.key, number):
            model, key, version = described
            raise IntegrityError(
                f"{label}: metadata.json describes model {model!r} key {key!r} v{version}"
            )
        return VersionInfo(paths.model, paths.key, number, path, metadata)

    @contextlib.contextmanager
    def locked(self, paths: KeyPaths) -> Iterator[None]:
        """Serialise writers of one model key across threads and processes."""
        with file_lock(paths.lock):
            yield
