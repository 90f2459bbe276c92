"""In-process cache of loaded models: lazy loads, an LRU byte budget, make-before-break swaps.

One model per product for thousands of products must not exhaust memory, so the cache holds
entries up to ``budget_bytes`` and evicts the least recently used. An entry's size is the
size of its version's files on disk (recorded in metadata.json): serialised tree ensembles,
CatBoost models and Keras weights are close to their in-memory footprint, and the number is
known before anything is loaded. A single model larger than the whole budget is still served
(the newest entry is never evicted), it just pushes everything else out.

``swap`` loads, verifies and warms the new version while the old one keeps serving, then
replaces the entry in one step under the lock; if anything fails the old entry stays and the
error is raised. Callers holding the old model (a batch in flight) finish with it.

The cache never polls the store: a promotion or rollback reaches it through ``swap`` (the
worker calls it for every ``model.updates`` message); until then the cached version serves.

Challengers (shadow mode) sit beside the champions: at most one per model key, loaded by
version with ``load_challenger`` and only beside a cached champion - an instance shadows the
keys it serves, not every key a shadow run names. Their bytes count against the budget, and
evicting a champion drops its challenger. One is dropped with ``drop_challenger`` too, or
when ``sync_challengers`` finds that the store's ``challenger`` alias no longer names it
(the trainer rejected or promoted it). A champion loaded since the last sync (a first use,
a swap) has its alias read at the next one, so a key first served during a shadow run
joins it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from models.layout import parse_version
from models.registry_errors import LoadError, RegistryError
from models.store import ModelStore
from models.versions import LoadedModel

CacheKey = tuple[str, str | None]
Warmup = Callable[[LoadedModel], object]


@dataclass
class CacheStats:
    """Counters for metrics; read them under no lock (they only grow)."""

    hits: int = 0
    misses: int = 0
    loads: int = 0
    evictions: int = 0
    swaps: int = 0
    failed_swaps: int = 0


@dataclass
class ChallengerSync:
    """What :meth:`ModelCache.sync_challengers` changed: the version now loaded per model
    key (None: dropped), and the keys that failed."""

    changed: dict[CacheKey, int | None] = field(default_factory=dict)
    failed: dict[CacheKey, RegistryError] = field(default_factory=dict)


class ModelCache:
    """Thread-safe LRU of loaded models keyed by (model name, key)."""

    def __init__(self, store: ModelStore, budget_bytes: int, warmup: Warmup | None = None) -> None:
        if budget_bytes <= 0:
            raise ValueError(f"budget_bytes must be positive, got {budget_bytes}")
        self.budget_bytes = budget_bytes
        self.stats = CacheStats()
        self._store = store
        self._warmup = warmup
        self._entries: OrderedDict[CacheKey, LoadedModel] = OrderedDict()
        self._challengers: dict[CacheKey, LoadedModel] = {}
        # Champions installed since their challenger alias was last read.
        self._unchecked: set[CacheKey] = set()
        self._bytes = 0
        self._lock = threading.Lock()
        # Loads are serialised per model key: a slow load of one key (a promotion's, on the
        # updates thread) never holds up a load of another (a cache miss on the hot path).
        self._load_locks: dict[CacheKey, threading.Lock] = {}

    def get(self, name: str, key: str | None = None) -> LoadedModel:
        """The cached model, else the champion loaded (verified and warmed) from the store."""
        entry = self._lookup((name, key), count=True)
        if entry is not None:
            return entry
        with self._load_lock((name, key)):
            entry = self._lookup((name, key), count=False)  # loaded while we waited
            if entry is not None:
                return entry
            loaded = self._store.load(name, key)
            self._warm(loaded, self._warmup)
            self._install((name, key), loaded)
            return loaded

    def swap(
        self,
        name: str,
        key: str | None = None,
        version: int | str | None = None,
        warmup: Warmup | None = None,
        *,
        load_if_absent: bool = True,
    ) -> LoadedModel | None:
        """Serve ``version`` (default: the current champion), make-before-break.

        Returns the entry now served, or None when the key is not cached and
        ``load_if_absent`` is False (a later ``get`` loads the champion lazily). Raises the
        load, integrity or warm-up error and keeps serving the old entry if the new one fails.
        """
        with self._load_lock((name, key)):
            current = self.peek(name, key)
            if current is None and not load_if_absent:
                return None
            try:
                number = (
                    self._store.champion(name, key) if version is None else parse_version(version)
                )
                if current is not None and current.version == number:
                    return current
                loaded = self._store.load(name, key, number)
                self._warm(loaded, warmup or self._warmup)
            except RegistryError:
                with self._lock:
                    self.stats.failed_swaps += 1
                raise
            self._install((name, key), loaded)
            with self._lock:
                self.stats.swaps += 1
            return loaded

    def load_challenger(
        self, name: str, key: str | None, version: int | str, warmup: Warmup | None = None
    ) -> LoadedModel | None:
        """Load (verify, warm) ``version`` as the challenger of the cached ``name``/``key``.

        Returns None, holding nothing, when the champion is not cached (or is evicted while
        the challenger loads). The challenger it replaces keeps scoring until the new one is
        ready; an error is raised and nothing changes if the version cannot be loaded.
        """
        number = parse_version(version)
        current = self.challenger(name, key)
        if current is not None and current.version == number:
            return current
        if self.peek(name, key) is None:
            return None
        loaded = self._store.load(name, key, number)
        self._warm(loaded, warmup or self._warmup)
        with self._lock:
            if (name, key) not in self._entries:
                return None
            self._drop_challenger((name, key))
            self._challengers[(name, key)] = loaded
            self._bytes += loaded.info.size_bytes
            self._entries.move_to_end((name, key))  # the pair is the newest use
            self._evict_over_budget()
        return loaded

    def challenger(self, name: str, key: str | None = None) -> LoadedModel | None:
        """The loaded challenger of ``name``/``key``, if any."""
        with self._lock:
            return self._challengers.get((name, key))

    def challengers(self) -> dict[CacheKey, int]:
        """Version of every loaded challenger."""
        with self._lock:
            return {cache_key: entry.version for cache_key, entry in self._challengers.items()}

    def drop_challenger(self, name: str, key: str | None = None) -> bool:
        """Stop holding the challenger of ``name``/``key``; True if there was one."""
        with self._lock:
            return self._drop_challenger((name, key))

    def sync_challengers(self, keys: Iterable[CacheKey] = ()) -> ChallengerSync:
        """Match the loaded challengers to the store's ``challenger`` aliases.

        Looks at every loaded challenger, at ``keys`` (model keys an update named) and at
        the champions installed since the last sync: a challenger the alias no longer names
        is dropped, one it names is loaded beside a cached champion. A key whose aliases or
        version cannot be read is reported and holds no challenger. One small file read per
        cached key looked at: cheap enough to run every few seconds.
        """
        with self._lock:
            unchecked, self._unchecked = self._unchecked, set()
        sync = ChallengerSync()
        try:
            for cache_key in {*self.challengers(), *keys, *unchecked}:
                self._sync_challenger(cache_key, sync)
        except BaseException:  # the store failed otherwise: look at them all again next time
            with self._lock:
                self._unchecked |= unchecked
            raise
        return sync

    def _sync_challenger(self, cache_key: CacheKey, sync: ChallengerSync) -> None:
        name, key = cache_key
        loaded = self.challenger(name, key)
        wanted = None
        try:
            if self.peek(name, key) is not None:
                wanted = self._store.aliases(name, key).challenger
            if wanted is not None and (loaded is None or loaded.version != wanted):
                now = self.load_challenger(name, key, wanted)
                if now is None:
                    wanted = None  # the champion was evicted meanwhile
                else:
                    sync.changed[cache_key] = now.version
        except RegistryError as exc:
            sync.failed[cache_key] = exc
            wanted = None
        if wanted is None and self.drop_challenger(name, key):
            sync.changed[cache_key] = None

    def wait_for_loads(self) -> None:
        """Return once every load or swap under way when called has finished."""
        with self._lock:
            locks = list(self._load_locks.values())
        for lock in locks:
            with lock:
                pass

    def peek(self, name: str, key: str | None = None) -> LoadedModel | None:
        """The cached entry without loading or touching its LRU position."""
        with self._lock:
            return self._entries.get((name, key))

    def evict(self, name: str, key: str | None = None) -> bool:
        """Drop an entry and its challenger (e.g. when a partition is revoked); True if it
        was cached."""
        with self._lock:
            entry = self._entries.pop((name, key), None)
            if entry is not None:
                self._bytes -= entry.info.size_bytes
                self._drop_challenger((name, key))
            return entry is not None

    def served(self) -> dict[CacheKey, int]:
        """Version served per (model, key), for metrics and health output."""
        with self._lock:
            return {cache_key: entry.version for cache_key, entry in self._entries.items()}

    @property
    def bytes_used(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _lookup(self, cache_key: CacheKey, *, count: bool) -> LoadedModel | None:
        with self._lock:
            entry = self._entries.get(cache_key)
            if entry is not None:
                self._entries.move_to_end(cache_key)
            if count:
                if entry is None:
                    self.stats.misses += 1
                else:
                    self.stats.hits += 1
            return entry

    def _install(self, cache_key: CacheKey, loaded: LoadedModel) -> None:
        with self._lock:
            old = self._entries.pop(cache_key, None)
            if old is not None:
                self._bytes -= old.info.size_bytes
            self._entries[cache_key] = loaded
            self._bytes += loaded.info.size_bytes
            self._unchecked.add(cache_key)
            self.stats.loads += 1
            self._evict_over_budget()

    def _evict_over_budget(self) -> None:
        """Evict least recently used champions, with their challengers; under the lock."""
        while self._bytes > self.budget_bytes and len(self._entries) > 1:
            evicted_key, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.info.size_bytes
            self._drop_challenger(evicted_key)
            self.stats.evictions += 1

    def _drop_challenger(self, cache_key: CacheKey) -> bool:
        """Forget the challenger of ``cache_key``; under the lock."""
        challenger = self._challengers.pop(cache_key, None)
        if challenger is not None:
            self._bytes -= challenger.info.size_bytes
        return challenger is not None

    def _load_lock(self, cache_key: CacheKey) -> threading.Lock:
        with self._lock:
            return self._load_locks.setdefault(cache_key, threading.Lock())

    @staticmethod
    def _warm(loaded: LoadedModel, warmup: Warmup | None) -> None:
        if warmup is None:
            return
        try:
            warmup(loaded)
        except RegistryError:
            raise
        except Exception as exc:
            raise LoadError(f"{loaded.info.label}: warm-up failed: {exc}") from exc
