"""Baseline MAE of a model version: the figure its registry metadata recorded at training.

Versions are immutable, so a found baseline is cached for good. A version without one (not
in this store, no ``mae`` in its metrics) is asked again after ``retry_s``: the store may be
a volume that another service is still writing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Final, Protocol

from models.registry_errors import RegistryError
from models.store import ModelStore

log = logging.getLogger(__name__)

# A missing baseline is looked up again after this long: often enough to notice a version
# registered late, rarely enough that a store without the model is not scanned per pair.
RETRY_S: Final = 300.0


class BaselineSource(Protocol):
    """Gives the baseline MAE of a version, or None when there is none."""

    def __call__(self, model: str, key: str | None, version: int) -> float | None: ...


class RegistryBaselines:
    """Baselines read from a :class:`ModelStore` (``metrics[metric]`` of each version)."""

    def __init__(
        self,
        store: ModelStore,
        metric: str = "mae",
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.metric = metric
        self.retry_s = retry_s
        self._clock = clock
        self._found: dict[tuple[str, str | None, int], float] = {}
        self._missing: dict[tuple[str, str | None, int], float] = {}

    def __call__(self, model: str, key: str | None, version: int) -> float | None:
        if version < 1:
            return None  # a fallback has no registered version, hence no baseline
        wanted = (model, key, version)
        if wanted in self._found:
            return self._found[wanted]
        asked = self._missing.get(wanted)
        if asked is not None and self._clock() - asked < self.retry_s:
            return None
        value = self._read(model, key, version)
        if value is None:
            self._missing[wanted] = self._clock()
        else:
            self._found[wanted] = value
            self._missing.pop(wanted, None)
        return value

    def _read(self, model: str, key: str | None, version: int) -> float | None:
        try:
            raw = self.store.info(model, key, version).metrics.get(self.metric)
        except (RegistryError, OSError, ValueError) as exc:
            log.warning("no baseline for %s/%s v%s: %s", model, key, version, exc)
            return None
        try:
            value = float(raw) if raw is not None else None
        except (TypeError, ValueError):
            value = None
        if value is None or not math.isfinite(value) or value < 0:
            log.warning("%s/%s v%s has no usable %r metric", model, key, version, self.metric)
            return None
        return value
