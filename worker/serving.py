"""Which model serves what: the champion from the model cache, else a fallback.

:meth:`Serving.champion` returns the champion of a registry model key as a :class:`Served`
(the model, its version, its feature spec and sampling step), or None when the key has no
champion or its version cannot be loaded; the caller then serves a fallback
(:meth:`Serving.anomaly_fallback`, :meth:`Serving.demand_fallback`,
:meth:`Serving.forecast_fallback`), tagged version 0. The pipeline asks once per model key
per batch and scores the whole batch with that one reference, so every output of a batch
carries the version that really scored it, even if a swap lands meanwhile.

:meth:`Serving.challenger` is the same for the version loaded beside the champion in shadow
mode (``ModelCache.load_challenger``); its outputs go to the shadow topic.

The keys of every model are listed from the store at start and extended by
:meth:`Serving.refresh` (a ``model.updates`` message). A key that failed is not asked again
for ``ModelRoutes.retry_seconds`` unless a refresh names it. :meth:`Serving.needed` is the
window length the served specs need per stream, read from metadata without loading models.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from models.base import Model, ModelError
from models.fallback import season_for_step
from models.families import FALLBACK_FOR, create
from models.features import DemandSpec, FeatureSpec, spec_from_metadata
from models.frames import QUANTITY
from models.registry_errors import ModelNotFoundError, NoChampionError
from models.store import ModelStore
from models.versions import LoadedModel
from worker.routes import STREAMS, ModelRoutes, StreamKind

# Fallbacks kept built, the most recently used: the anomaly fallback is built per set of
# metrics a batch's machines report, and a fleet of varied metric sets makes many sets.
FALLBACKS_KEPT: Final = 256

log = logging.getLogger(__name__)

ModelKey = tuple[str, str | None]


class ModelSource(Protocol):
    """What serving uses of ``models.cache.ModelCache``."""

    def get(self, name: str, key: str | None = None) -> LoadedModel: ...

    def challenger(self, name: str, key: str | None = None) -> LoadedModel | None: ...

    def peek(self, name: str, key: str | None = None) -> LoadedModel | None: ...


@dataclass(frozen=True)
class Served:
    """A model serving one registry key for one batch, with what its outputs need."""

    name: str
    key: str | None
    version: int  # 0 for a fallback (the contracts' convention)
    model: Model
    spec: FeatureSpec
    step_seconds: float | None = None  # sampling step of the training data
    horizon: int = 1  # readings ahead that ``Scores.value`` forecasts

    @property
    def fallback(self) -> bool:
        return self.version == 0

    @property
    def label(self) -> str:
        key = "" if self.key is None else f"/{self.key}"
        return f"{self.name}{key} v{self.version}" if self.version else f"{self.name}{key} fallback"


@dataclass(frozen=True)
class _Facts:
    """What a version's metadata says; kept without the model so the cache may evict it."""

    version: int
    spec: FeatureSpec
    step_seconds: float | None
    horizon: int


class Serving:
    """Resolves registry model keys to champions or fallbacks."""

    def __init__(
        self,
        store: ModelStore,
        cache: ModelSource,
        routes: ModelRoutes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routes = routes
        self._store = store
        self._cache = cache
        self._clock = clock
        self._blocked: dict[ModelKey, float] = {}
        self._facts: dict[ModelKey, _Facts] = {}
        self._challenger_facts: dict[ModelKey, _Facts] = {}
        self._fallbacks: OrderedDict[tuple[Any, ...], Served] = OrderedDict()
        self._needed: dict[StreamKind, int] = dict.fromkeys(STREAMS, routes.min_history)
        self._note("sensor", routes.zscore_window)
        self._note("demand", self.demand_fallback().spec.history_needed)
        self._keys = {name: self._list_keys(name) for name in routes.names}
        for name, keys in self._keys.items():
            for key in keys:
                self._prime(name, key)

    def keys(self, name: str) -> frozenset[str | None]:
        """Registry keys of ``name`` known to exist (None: the unkeyed model)."""
        return frozenset(self._keys.get(name, ()))

    def needed(self, stream: StreamKind) -> int:
        """Readings per entity the models serving ``stream`` need (and the minimum)."""
        return self._needed[stream]

    def champion(self, name: str, key: str | None = None) -> Served | None:
        """The champion of ``name``/``key``, or None (no champion, or it cannot be served)."""
        model_key = (name, key)
        if key not in self._keys.get(name, ()) or self._blocked_now(model_key):
            return None
        try:
            loaded = self._cache.get(name, key)
            facts = self._facts.get(model_key)
            if facts is None or facts.version != loaded.version:
                facts = self._facts[model_key] = _read_facts(loaded.version, loaded.info.metadata)
                self._note_model(name, facts)
        except (ModelNotFoundError, NoChampionError):
            self._block(model_key)
            return None
        except (ModelError, OSError) as exc:  # unloadable, corrupt, or files gone meanwhile
            log.warning(
                "%s cannot serve (%s); fallback for %.0f s", _label(model_key), exc, self._retry
            )
            self._block(model_key)
            return None
        step, horizon = facts.step_seconds, facts.horizon
        return Served(name, key, facts.version, loaded.model, facts.spec, step, horizon)

    def challenger(self, name: str, key: str | None = None) -> Served | None:
        """The challenger of ``name``/``key`` scoring in shadow, if one is loaded."""
        loaded = self._cache.challenger(name, key)
        if loaded is None:
            return None
        model_key = (name, key)
        facts = self._challenger_facts.get(model_key)
        if facts is None or facts.version != loaded.version:
            try:
                facts = _read_facts(loaded.version, loaded.info.metadata)
            except ModelError as exc:
                log.warning(
                    "%s challenger v%d cannot score: %s", _label(model_key), loaded.version, exc
                )
                return None
            self._challenger_facts[model_key] = facts
            self._note_model(name, facts)
        step, horizon = facts.step_seconds, facts.horizon
        return Served(name, key, facts.version, loaded.model, facts.spec, step, horizon)

    def refresh(self, name: str, key: str | None) -> None:
        """A model update names ``name``/``key``: serve it from the next batch on."""
        model_key = (name, key)
        self._keys.setdefault(name, set()).add(key)
        self._blocked.pop(model_key, None)
        self._facts.pop(model_key, None)
        self._prime(name, key)

    def relist(self) -> None:
        """Look the keys of every model up again, for keys whose first champion came after
        they were listed and before model updates were followed (no update announces it)."""
        for name in self.routes.names:
            known = self._keys.setdefault(name, set())
            for key in self._list_keys(name) - known:
                known.add(key)
                self._prime(name, key)

    # -- fallbacks -----------------------------------------------------------------------
    def anomaly_fallback(self, metrics: tuple[str, ...]) -> Served:
        """Robust z-score over ``metrics``: needs no training data."""
        params = {
            "metrics": metrics,
            "window": self.routes.zscore_window,
            "threshold": self.routes.zscore_threshold,
        }
        return self._fallback(self.routes.anomaly, FALLBACK_FOR["anomaly"], params)

    def demand_fallback(self) -> Served:
        """Seasonal naive demand forecast for the configured demand sampling step."""
        step = self.routes.demand_step_seconds
        params = {"target": QUANTITY, "season": season_for_step(step), "horizon": 1}
        return self._fallback(self.routes.demand, FALLBACK_FOR["demand"], params, step)

    def forecast_fallback(self, metric: str, step: float, horizon: int) -> Served:
        """Seasonal naive forecast of one metric, ``horizon`` readings of ``step`` ahead."""
        params = {"target": metric, "season": season_for_step(step), "horizon": horizon}
        return self._fallback(self.routes.sequence, FALLBACK_FOR["sequence"], params, step)

    def _fallback(
        self, name: str, family: str, params: dict[str, Any], step: float | None = None
    ) -> Served:
        memo = (name, family, tuple(sorted(params.items())))
        served = self._fallbacks.get(memo)
        if served is not None:
            self._fallbacks.move_to_end(memo)
            return served
        model = create(family, params)
        spec = spec_from_metadata(model.metadata())
        horizon = int(params.get("horizon", 1))
        served = self._fallbacks[memo] = Served(name, None, 0, model, spec, step, horizon)
        if len(self._fallbacks) > FALLBACKS_KEPT:
            self._fallbacks.popitem(last=False)
        return served

    # -- bookkeeping ---------------------------------------------------------------------
    @property
    def _retry(self) -> float:
        return self.routes.retry_seconds

    def _blocked_now(self, model_key: ModelKey) -> bool:
        until = self._blocked.get(model_key)
        if until is None:
            return False
        if self._clock() < until:
            return True
        del self._blocked[model_key]
        return False

    def _block(self, model_key: ModelKey) -> None:
        self._blocked[model_key] = self._clock() + self._retry

    def _list_keys(self, name: str) -> set[str | None]:
        try:
            return set(self._store.keys(name))
        except ModelNotFoundError:
            return set()
        except (ModelError, OSError) as exc:
            log.warning("cannot list the keys of model %r: %s", name, exc)
            return set()

    def _prime(self, name: str, key: str | None) -> None:
        """Note the windows the versions scoring ``name``/``key`` need, from metadata only.

        The champion's is the cached version's when there is one, even when the registry
        has moved on since (a rollback whose own update is still to come), else the store's
        champion's. A challenger loaded beside it in shadow needs its window too.
        """
        try:
            loaded = self._cache.peek(name, key)
            info = self._store.info(name, key) if loaded is None else loaded.info
            facts = _read_facts(info.version, info.metadata)
        except (ModelError, OSError) as exc:
            log.debug("%s: no window length from metadata: %s", _label((name, key)), exc)
        else:
            self._note_model(name, facts)
        challenger = self._cache.challenger(name, key)
        if challenger is not None:
            try:
                facts = _read_facts(challenger.version, challenger.info.metadata)
            except ModelError as exc:  # Serving.challenger says why it cannot score
                log.debug("%s: no challenger window length: %s", _label((name, key)), exc)
            else:
                self._note_model(name, facts)

    def _note_model(self, name: str, facts: _Facts) -> None:
        stream = self.routes.stream_of(name)
        if stream is not None:
            self._note(stream, facts.spec.history_needed)

    def _note(self, stream: StreamKind, length: int) -> None:
        self._needed[stream] = max(self._needed[stream], length)


def _read_facts(version: int, metadata: dict[str, Any]) -> _Facts:
    """Spec, sampling step and horizon recorded in a version's metadata."""
    spec = spec_from_metadata(metadata)
    if isinstance(spec, DemandSpec):
        return _Facts(version, spec, spec.step_seconds, spec.horizon)
    info = metadata.get("info") or {}
    step = info.get("step_seconds")
    horizon = (metadata.get("params") or {}).get("horizon", 1)
    return _Facts(version, spec, float(step) if step else None, int(horizon or 1))


def _label(model_key: ModelKey) -> str:
    name, key = model_key
    return name if key is None else f"{name}/{key}"
