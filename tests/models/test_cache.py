"""ModelCache: lazy loads, LRU eviction by bytes, make-before-break swaps, thread safety."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.base import FitReport, FloatArray, Model, Scores
from models.cache import ModelCache
from models.registry import Registry
from models.registry_errors import IntegrityError, LoadError, NoChampionError
from models.versions import LoadedModel

# Every fake model file is padded to this size so byte budgets are easy to reason about.
MODEL_BYTES = 1000


class PaddedModel(Model):
    """Test double: one JSON file of exactly MODEL_BYTES bytes holding a scale factor."""

    family = "padded"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.feature_names = ["x"]
        self.scale = float(self.params.get("scale", 1.0))

    def fit(self, history: pd.DataFrame) -> FitReport:
        raise NotImplementedError

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        raise NotImplementedError

    def predict_batch(self, features: FloatArray) -> Scores:
        self.check_features(features)
        return Scores(value=features[:, 0] * self.scale)

    def save(self, directory: Path) -> list[str]:
        (directory / "model.json").write_text(json.dumps({"scale": self.scale}).ljust(MODEL_BYTES))
        return ["model.json"]

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> PaddedModel:
        return cls(json.loads((directory / "model.json").read_text()))


class CountingLoader:
    """Family lookup that counts how often a model class is requested (one per load)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, family: str) -> type[Model]:
        with self._lock:
            self.calls += 1
        return PaddedModel


@pytest.fixture
def loader() -> CountingLoader:
    return CountingLoader()


@pytest.fixture
def registry(tmp_path: Path, loader: CountingLoader) -> Registry:
    return Registry(tmp_path / "store", loader=loader, actor="tester")


def register(registry: Registry, key: str, scale: float) -> int:
    return registry.register(PaddedModel({"scale": scale}), "demand", key).version


def champion_and_challenger(registry: Registry) -> int:
    """P-1's champion (scale 1) and a challenger (scale 3) the store names; its version."""
    register(registry, "P-1", 1.0)
    challenger = register(registry, "P-1", 3.0)
    registry.set_challenger("demand", challenger, "P-1")
    return challenger


def predict(loaded: LoadedModel) -> float:
    value = loaded.model.predict_batch(np.ones((1, 1))).value
    assert value is not None
    return float(value[0])


def test_get_loads_the_champion_lazily_once(registry: Registry, loader: CountingLoader) -> None:
    register(registry, "P-1", 2.0)
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)
    assert loader.calls == 0

    first = cache.get("demand", "P-1")
    second = cache.get("demand", "P-1")

    assert first is second
    assert predict(first) == 2.0
    assert loader.calls == 1
    assert (cache.stats.hits, cache.stats.misses, cache.stats.loads) == (1, 1, 1)
    assert cache.served() == {("demand", "P-1"): 1}
    assert cache.bytes_used == MODEL_BYTES


def test_lru_evicts_least_recently_used_within_the_byte_budget(registry: Registry) -> None:
    for key in ("A", "B", "C", "D"):
        register(registry, key, 1.0)
    cache = ModelCache(registry, budget_bytes=3 * MODEL_BYTES)

    for key in ("A", "B", "C"):
        cache.get("demand", key)
    cache.get("demand", "A")  # A becomes most recently used; B is now the oldest
    cache.get("demand", "D")

    assert set(cache.served()) == {("demand", "A"), ("demand", "C"), ("demand", "D")}
    assert cache.bytes_used == 3 * MODEL_BYTES
    assert cache.stats.evictions == 1


def test_a_model_larger_than_the_budget_is_still_served(registry: Registry) -> None:
    register(registry, "A", 1.0)
    register(registry, "B", 2.0)
    cache = ModelCache(registry, budget_bytes=MODEL_BYTES // 2)

    cache.get("demand", "A")
    loaded = cache.get("demand", "B")

    assert predict(loaded) == 2.0
    assert list(cache.served()) == [("demand", "B")]


def test_swap_serves_the_new_version_after_warming_it(registry: Registry) -> None:
    register(registry, "P-1", 1.0)
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)
    cache.get("demand", "P-1")
    register(registry, "P-1", 5.0)
    registry.promote("demand", 2, "P-1", reason="better")
    seen_while_warming: list[int | None] = []

    def warm(candidate: LoadedModel) -> None:
        predict(candidate)
        current = cache.peek("demand", "P-1")
        seen_while_warming.append(None if current is None else current.version)

    swapped = cache.swap("demand", "P-1", warmup=warm)

    assert swapped is not None and swapped.version == 2
    assert seen_while_warming == [1]  # the old version served until the new one was warm
    assert predict(cache.get("demand", "P-1")) == 5.0
    assert cache.served() == {("demand", "P-1"): 2}
    assert cache.bytes_used == MODEL_BYTES


def test_a_swap_warming_one_key_does_not_hold_up_a_load_of_another(registry: Registry) -> None:
    register(registry, "P-1", 1.0)
    register(registry, "P-2", 2.0)
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)
    cache.get("demand", "P-1")
    register(registry, "P-1", 5.0)
    registry.promote("demand", 2, "P-1", reason="better")
    warming, release = threading.Event(), threading.Event()

    def slow_warm(candidate: LoadedModel) -> None:
        warming.set()
        assert release.wait(10)

    swap = threading.Thread(target=cache.swap, args=("demand", "P-1"), kwargs={"warmup": slow_warm})
    swap.start()
    try:
        assert warming.wait(10)
        assert predict(cache.get("demand", "P-2")) == 2.0  # loaded while P-1 still warms
    finally:
        release.set()
        swap.join(10)
    assert cache.served() == {("demand", "P-1"): 2, ("demand", "P-2"): 1}


def test_wait_for_loads_returns_after_the_loads_under_way(registry: Registry) -> None:
    register(registry, "P-1", 1.0)
    warming, release = threading.Event(), threading.Event()

    def slow_warm(candidate: LoadedModel) -> None:
        warming.set()
        assert release.wait(10)

    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES, warmup=slow_warm)
    load = threading.Thread(target=cache.get, args=("demand", "P-1"))
    load.start()
    assert warming.wait(10)
    waited = threading.Thread(target=cache.wait_for_loads)
    waited.start()
    waited.join(0.2)
    assert waited.is_alive()  # the load is still warming
    release.set()
    waited.join(10)
    load.join(10)
    assert not waited.is_alive() and cache.served() == {("demand", "P-1"): 1}


def test_swap_to_a_corrupt_version_keeps_the_old_one_serving(registry: Registry) -> None:
    register(registry, "P-1", 1.0)
    register(registry, "P-1", 5.0)
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)
    old = cache.get("demand", "P-1")
    (registry.info("demand", "P-1", 2).path / "model.json").write_text('{"scale": 666}')

    with pytest.raises(IntegrityError, match=r"model\.json"):
        cache.swap("demand", "P-1", version=2)

    assert cache.get("demand", "P-1") is old
    assert cache.stats.failed_swaps == 1


def test_swap_whose_warm_up_fails_keeps_the_old_one_serving(registry: Registry) -> None:
    register(registry, "P-1", 1.0)
    register(registry, "P-1", 5.0)
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)
    old = cache.get("demand", "P-1")

    def broken(candidate: LoadedModel) -> None:
        candidate.model.predict_batch(np.ones((1, 3)))  # wrong width: FeatureMismatchError

    with pytest.raises(LoadError, match="demand\\[P-1\\] v2: warm-up failed"):
        cache.swap("demand", "P-1", version="v2", warmup=broken)

    assert cache.get("demand", "P-1") is old


def test_swap_without_cached_entry_can_defer_to_lazy_load(
    registry: Registry, loader: CountingLoader
) -> None:
    register(registry, "P-1", 1.0)
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)

    assert cache.swap("demand", "P-1", load_if_absent=False) is None
    assert loader.calls == 0
    assert cache.swap("demand", "P-1") is not None
    assert cache.served() == {("demand", "P-1"): 1}


def test_get_without_champion_raises_and_caches_nothing(registry: Registry) -> None:
    registry.register(PaddedModel(), "demand", "P-1", promote_if_first=False)
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)

    with pytest.raises(NoChampionError):
        cache.get("demand", "P-1")
    assert len(cache) == 0


def test_evict_frees_bytes(registry: Registry) -> None:
    register(registry, "P-1", 1.0)
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)
    cache.get("demand", "P-1")

    assert cache.evict("demand", "P-1") is True
    assert cache.evict("demand", "P-1") is False
    assert cache.bytes_used == 0


def test_concurrent_gets_load_each_key_once_and_respect_the_budget(
    registry: Registry, loader: CountingLoader
) -> None:
    keys = [f"P-{n}" for n in range(6)]
    for n, key in enumerate(keys):
        register(registry, key, float(n))
    cache = ModelCache(registry, budget_bytes=len(keys) * MODEL_BYTES)
    start = threading.Barrier(4)
    problems: list[str] = []

    def hammer() -> None:
        start.wait()
        for _ in range(5):
            for n, key in enumerate(keys):
                if predict(cache.get("demand", key)) != float(n):
                    problems.append(key)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert problems == []
    assert loader.calls == len(keys)  # no key was loaded twice despite the races
    assert cache.bytes_used == len(keys) * MODEL_BYTES


def test_budget_must_be_positive(registry: Registry) -> None:
    with pytest.raises(ValueError, match="positive"):
        ModelCache(registry, budget_bytes=0)


def test_a_challenger_is_held_beside_the_champion_until_the_store_stops_naming_it(
    registry: Registry,
) -> None:
    register(registry, "P-1", 1.0)
    challenger = register(registry, "P-1", 3.0)
    cache = ModelCache(registry, budget_bytes=MODEL_BYTES)  # room for the champion only
    cache.get("demand", "P-1")
    assert cache.sync_challengers([("demand", "P-1")]).changed == {}  # no alias yet

    registry.set_challenger("demand", challenger, "P-1")
    sync = cache.sync_challengers([("demand", "P-1")])
    assert sync.changed == {("demand", "P-1"): challenger} and sync.failed == {}
    loaded = cache.challenger("demand", "P-1")
    assert loaded is not None and predict(loaded) == 3.0
    assert predict(cache.get("demand", "P-1")) == 1.0  # the champion still serves
    assert cache.served() == {("demand", "P-1"): 1}  # the newest champion is never evicted
    assert cache.bytes_used == 2 * MODEL_BYTES  # the challenger counts against the budget
    assert cache.sync_challengers().changed == {}  # nothing changed in the store

    registry.reject("demand", challenger, "P-1", reason="lost the shadow run")
    assert cache.sync_challengers().changed == {("demand", "P-1"): None}
    assert cache.challenger("demand", "P-1") is None and cache.challengers() == {}
    assert cache.bytes_used == MODEL_BYTES


def test_a_challenger_is_loaded_only_beside_a_champion_this_cache_serves(
    registry: Registry,
) -> None:
    challenger = champion_and_challenger(registry)
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)
    assert cache.sync_challengers([("demand", "P-1")]).changed == {}  # not served here
    assert cache.challengers() == {} and cache.bytes_used == 0
    assert cache.load_challenger("demand", "P-1", challenger) is None

    cache.get("demand", "P-1")  # first used during the shadow run: joins it at the next sync
    assert cache.sync_challengers().changed == {("demand", "P-1"): challenger}
    assert cache.bytes_used == 2 * MODEL_BYTES
    assert cache.sync_challengers().changed == {}  # its alias was read once

    assert cache.evict("demand", "P-1")  # the partition was revoked
    assert cache.challengers() == {} and cache.bytes_used == 0


def test_evicting_a_champion_for_room_drops_its_challenger(registry: Registry) -> None:
    challenger = champion_and_challenger(registry)
    register(registry, "P-2", 1.0)
    cache = ModelCache(registry, budget_bytes=3 * MODEL_BYTES)
    cache.get("demand", "P-1")
    cache.sync_challengers()
    cache.get("demand", "P-2")  # 3 * MODEL_BYTES: within the budget
    assert cache.challengers() == {("demand", "P-1"): challenger}
    register(registry, "P-3", 1.0)
    cache.get("demand", "P-3")  # P-1 is the least recently used: it goes with its challenger
    assert set(cache.served()) == {("demand", "P-2"), ("demand", "P-3")}
    assert cache.challengers() == {} and cache.bytes_used == 2 * MODEL_BYTES


def test_a_store_failure_during_a_sync_leaves_new_champions_to_the_next_one(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    challenger = champion_and_challenger(registry)
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)
    cache.get("demand", "P-1")
    with monkeypatch.context() as patch:
        patch.setattr(registry, "aliases", _unreadable)
        with pytest.raises(OSError, match="stale file handle"):
            cache.sync_challengers()
    assert cache.sync_challengers().changed == {("demand", "P-1"): challenger}


def _unreadable(*args: Any) -> Any:
    raise OSError("stale file handle")


def test_a_challenger_that_cannot_be_loaded_is_reported_and_not_held(
    registry: Registry,
) -> None:
    challenger = champion_and_challenger(registry)
    info = registry.info("demand", "P-1", challenger)
    (info.path / "model.json").write_text("{}")  # checksum mismatch
    cache = ModelCache(registry, budget_bytes=10 * MODEL_BYTES)
    cache.get("demand", "P-1")
    sync = cache.sync_challengers([("demand", "P-1")])
    assert sync.changed == {} and isinstance(sync.failed[("demand", "P-1")], IntegrityError)
    assert cache.challenger("demand", "P-1") is None
