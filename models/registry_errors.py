"""Errors raised by the model registry, the model cache and store archives.

Every error derives from :class:`RegistryError`, itself a :class:`models.base.ModelError`, so
callers that already handle model errors also handle registry failures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.base import ModelError

if TYPE_CHECKING:
    from models.versions import VersionInfo


class RegistryError(ModelError):
    """Root of every registry, cache and archive error."""


class InvalidNameError(RegistryError):
    """A model name, key or version is not usable as a store path component."""


class ModelNotFoundError(RegistryError):
    """The store holds no model (or no key of a model) of that name."""


class VersionNotFoundError(RegistryError):
    """The requested version does not exist (never registered, or deleted)."""


class NoChampionError(RegistryError):
    """The model has versions but no champion alias (nothing to serve)."""


class AliasError(RegistryError):
    """An alias change was refused (deleting the champion, rolling back with no past)."""


class ChampionChangedError(AliasError):
    """The champion is no longer the one the caller validated against; nothing changed."""


class IntegrityError(RegistryError):
    """A version's files do not match the checksums recorded in its metadata.json."""


class StoreWriteError(RegistryError):
    """Writing to the store failed (read-only or full disk); nothing is left half-written."""


class NotPromotedError(StoreWriteError):
    """A first version was registered but could not be made champion; ``version`` holds it.

    Registering again would add a second version: promoting this one finishes the job.
    """

    def __init__(self, message: str, version: VersionInfo) -> None:
        super().__init__(message)
        self.version = version


class LoadError(RegistryError):
    """A verified version could not be turned back into a model by its family."""


class ArchiveError(RegistryError):
    """An archive is malformed, unsafe (traversal, links, devices) or conflicts with the store."""
