"""Which model serves: champions, hot swaps, failing models, fallbacks, window growth."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from events.catalog import codec_for
from models.base import FloatArray, Scores
from models.cache import ModelCache
from models.registry import Registry
from models.registry_errors import IntegrityError
from models.store import ModelStore
from worker.pipeline import ScoringPipeline
from worker.records import OutRecord
from worker.routes import ModelRoutes
from worker.serving import FALLBACKS_KEPT, Serving

SENSOR = "readings.sensor"


def decoded(records: list[OutRecord], topic: str) -> list[Any]:
    codec = codec_for(topic)
    return [codec.decode(r.value) for r in records if r.topic == topic]


def broken(features: FloatArray) -> Scores:
    raise RuntimeError("the model's framework failed")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_outputs_switch_to_the_new_champion_after_a_swap(
    pipeline: ScoringPipeline, registry: Registry, cache: ModelCache, worker_data: Any
) -> None:
    records = worker_data.sensor_records()
    half = len(records) // 2
    before = worker_data.run(pipeline, records[:half])
    history = worker_data.history(periods=200, seed=5)
    params = dict(worker_data.MAINTENANCE, seed=1)
    version = worker_data.train(registry, "maintenance", params, history)
    registry.promote("maintenance", version)
    assert pipeline.history_needed(SENSOR) == 48
    swapped = cache.swap("maintenance")
    assert swapped is not None and swapped.version == 2
    assert pipeline.refresh("maintenance", None) is False  # same window length
    after = worker_data.run(pipeline, records[half:])
    assert {p.version for p in decoded(before.records, "predictions")} == {1}
    assert {p.version for p in decoded(after.records, "predictions")} == {2}
    assert len(decoded(after.records, "predictions")) == len(records) - half
    assert after.versions[("maintenance", None)] == 2


def train_longer_anomaly(registry: Registry, worker_data: Any) -> int:
    """A new anomaly version whose window (96) is longer than the champion's (72)."""
    history = worker_data.history(periods=300, seed=5)
    return int(
        worker_data.train(registry, "anomaly", dict(worker_data.ANOMALY, window=96), history)
    )


def swap_to_longer_anomaly(
    pipeline: ScoringPipeline, registry: Registry, cache: ModelCache, worker_data: Any
) -> tuple[list[Any], int]:
    """Score 30 sensor records, then promote and swap in a longer-window anomaly model;
    the records and the new version."""
    records = worker_data.sensor_records()
    pipeline.process(records[:30])
    version = train_longer_anomaly(registry, worker_data)
    registry.promote("anomaly", version)
    cache.swap("anomaly")
    return records, version


def test_a_longer_window_after_a_swap_asks_for_history_again(
    pipeline: ScoringPipeline, registry: Registry, cache: ModelCache, worker_data: Any
) -> None:
    records, version = swap_to_longer_anomaly(pipeline, registry, cache, worker_data)
    assert pipeline.refresh("anomaly", None) is True
    assert pipeline.history_needed(SENSOR) == 96
    pipeline.forget(
        [(SENSOR, partition) for partition in range(worker_data.PARTITIONS)]
    )  # the runner re-warms
    pipeline.warm(records[:30])
    assert pipeline.sensor.state.length == 96
    result = pipeline.process(records[30:])
    assert result.versions[("anomaly", None)] == version
    assert pipeline.refresh("anomaly", None) is False


def test_a_swap_a_batch_saw_before_its_refresh_still_asks_for_history_again(
    pipeline: ScoringPipeline, registry: Registry, cache: ModelCache, worker_data: Any
) -> None:
    # The updates thread swaps the cache while the runner waits in consume(): the batch it
    # gets scores with the new version, whose window the state grows to (padded, not read
    # back), before the runner takes the refresh.
    records, _ = swap_to_longer_anomaly(pipeline, registry, cache, worker_data)
    pipeline.process(records[30:33])
    assert pipeline.sensor.state.length == 96
    assert pipeline.refresh("anomaly", None) is True
    assert pipeline.refresh("anomaly", None) is False  # asked once: the runner re-warms


def test_after_a_swap_seen_early_the_rewarmed_worker_scores_as_one_started_on_it(
    store_dir: Path, registry: Registry, cache: ModelCache, worker_data: Any
) -> None:
    records = worker_data.sensor_records(worker_data.machines(periods=200))
    live = ScoringPipeline(ModelStore(store_dir), cache)
    worker_data.run(live, records[:300])
    version = train_longer_anomaly(registry, worker_data)
    registry.promote("anomaly", version)
    cache.swap("anomaly")
    live.process(records[300:303])  # saw the new version before its refresh
    if live.refresh("anomaly", None):  # what the runner does with the answer
        live.forget([(SENSOR, partition) for partition in range(worker_data.PARTITIONS)])
        live.warm(records[:303])
    got = worker_data.run(live, records[303:])
    store = ModelStore(store_dir)
    started = ScoringPipeline(store, ModelCache(store, worker_data.CACHE_BYTES))
    started.warm(records[:303])
    expected = worker_data.run(started, records[303:])
    assert got.versions[("anomaly", None)] == version
    assert got.records and sorted(got.records) == sorted(expected.records)


def test_a_refresh_notes_the_window_of_the_version_served_not_the_registrys_latest(
    pipeline: ScoringPipeline, registry: Registry, cache: ModelCache, worker_data: Any
) -> None:
    # The update of a promotion is handled after the registry already rolled back: the
    # cache serves the promoted version until the rollback's own update arrives, so the
    # state must hold that version's window.
    pipeline.process(worker_data.sensor_records()[:30])
    version = train_longer_anomaly(registry, worker_data)
    registry.promote("anomaly", version)
    cache.swap("anomaly")
    registry.rollback("anomaly")
    assert pipeline.refresh("anomaly", None) is True
    assert pipeline.history_needed(SENSOR) == 96


def test_a_challenger_needing_a_longer_window_asks_for_history_again(
    pipeline: ScoringPipeline, registry: Registry, cache: ModelCache, worker_data: Any
) -> None:
    pipeline.process(worker_data.sensor_records()[:30])
    version = train_longer_anomaly(registry, worker_data)
    registry.set_challenger("anomaly", version)
    cache.get("anomaly")
    assert cache.sync_challengers([("anomaly", None)]).changed == {("anomaly", None): version}
    assert pipeline.refresh("anomaly", None) is True  # shadow windows must be full too
    assert pipeline.history_needed(SENSOR) == 96


def test_a_key_first_promoted_after_listing_serves_once_the_keys_are_listed_again(
    store_dir: Path, registry: Registry, worker_data: Any
) -> None:
    store = ModelStore(store_dir)
    cache = ModelCache(store, worker_data.CACHE_BYTES)
    pipeline = ScoringPipeline(store, cache)
    assert "product-009" not in pipeline.serving.keys("demand")
    history = worker_data.products()
    worker_data.train(registry, "demand", worker_data.DEMAND_PARAMS, history, key="product-009")
    assert pipeline.serving.champion("demand", "product-009") is None  # not listed yet
    assert pipeline.relist() is False  # the demand window is no longer than the state's
    served = pipeline.serving.champion("demand", "product-009")
    assert served is not None and served.version == 1


def test_a_model_failing_on_a_batch_falls_back_for_that_batch(
    pipeline: ScoringPipeline,
    cache: ModelCache,
    worker_data: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(cache.get("anomaly").model, "predict_batch", broken)
    monkeypatch.setattr(cache.get("demand", "product-000").model, "predict_batch", broken)
    frame = worker_data.machines()
    frame.loc[frame.index[200], "power"] *= 4  # one reading any fallback flags
    records = worker_data.sensor_records(frame) + worker_data.demand_records()
    with caplog.at_level(logging.WARNING, logger="worker.scoring"):
        result = pipeline.process(records)
    failures = [r for r in caplog.records if "failed on" in r.getMessage()]
    assert len(failures) == 2  # once per failing model per batch, not per message
    alerts = decoded(result.records, "alerts")
    assert {a.version for a in alerts if a.type == "anomaly"} == {0}
    forecasts = decoded(result.records, "predictions")
    demand = [f for f in forecasts if f.metric == "quantity"]
    assert len(demand) == len(worker_data.demand_records())
    own = {(f.key, f.version, f.fallback) for f in demand if f.entity_id == "product-000"}
    assert own == {(None, 0, True)}
    others = {(f.key, f.version) for f in demand if f.entity_id != "product-000"}
    assert others == {(None, 1)}
    risks = [f for f in forecasts if f.metric == "risk"]
    assert len(risks) == len(worker_data.sensor_records(frame))
    assert result.versions[("anomaly", None)] == 0
    assert result.versions[("maintenance", None)] == 1


def test_an_unloadable_champion_is_retried_only_after_a_while_or_a_refresh(
    store_dir: Path, worker_data: Any
) -> None:
    class FlakyCache:
        def __init__(self) -> None:
            self.calls = 0
            self.failing = True
            self.real = ModelCache(ModelStore(store_dir), worker_data.CACHE_BYTES)

        def get(self, name: str, key: str | None = None) -> Any:
            self.calls += 1
            if self.failing:
                raise IntegrityError("checksum mismatch")
            return self.real.get(name, key)

        def peek(self, name: str, key: str | None = None) -> Any:
            return self.real.peek(name, key)

        def challenger(self, name: str, key: str | None = None) -> Any:
            return self.real.challenger(name, key)

    clock, flaky = Clock(), FlakyCache()
    serving = Serving(ModelStore(store_dir), flaky, ModelRoutes(retry_seconds=30.0), clock)
    assert serving.champion("anomaly") is None
    assert serving.champion("anomaly") is None and flaky.calls == 1
    clock.now = 29.0
    assert serving.champion("anomaly") is None and flaky.calls == 1
    clock.now = 31.0
    assert serving.champion("anomaly") is None and flaky.calls == 2  # tried again: fails
    flaky.failing = False
    serving.refresh("anomaly", None)  # an update names the key: no waiting
    served = serving.champion("anomaly")
    assert served is not None and served.version == 1 and flaky.calls == 3


def test_a_key_first_promoted_after_start_serves_once_refreshed(
    store_dir: Path, registry: Registry, worker_data: Any
) -> None:
    store = ModelStore(store_dir)
    serving = Serving(store, ModelCache(store, worker_data.CACHE_BYTES), ModelRoutes())
    assert serving.champion("demand", "product-001") is None
    sales = worker_data.products(periods=90)
    single = sales[sales["product_id"] == "product-001"]
    worker_data.train(registry, "demand", worker_data.DEMAND_PARAMS, single, key="product-001")
    assert serving.champion("demand", "product-001") is None  # no update seen yet
    serving.refresh("demand", "product-001")
    served = serving.champion("demand", "product-001")
    assert served is not None and (served.key, served.version) == ("product-001", 1)
    assert served.step_seconds == 86_400.0


def test_fallbacks_are_version_0_and_need_no_training(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "empty")
    serving = Serving(store, ModelCache(store, 1024), ModelRoutes(zscore_window=12))
    anomaly = serving.anomaly_fallback(("power", "temperature"))
    assert (anomaly.version, anomaly.fallback, anomaly.spec.inputs) == (
        0,
        True,
        ("power", "temperature"),
    )
    assert anomaly.spec.history_needed == 12
    windows = np.random.default_rng(0).normal(size=(4, 12, 2))
    scores = anomaly.model.predict_batch(anomaly.spec.rows(windows, np.array([]), []))
    assert scores.fallback and len(scores) == 4
    demand = serving.demand_fallback()
    assert (demand.step_seconds, demand.spec.inputs) == (86_400.0, ("quantity",))
    assert serving.needed("demand") == 48 and serving.needed("sensor") == 48
    assert serving.champion("anomaly") is None
    assert serving.anomaly_fallback(("power", "temperature")) is anomaly  # built once


def test_fallbacks_built_for_ever_new_metric_sets_stay_bounded(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "empty")
    serving = Serving(store, ModelCache(store, 1024), ModelRoutes())
    first = serving.anomaly_fallback(("power", "m0"))
    for n in range(1, FALLBACKS_KEPT + 50):  # a fleet of varied metric sets
        serving.anomaly_fallback(("power", f"m{n}"))
        assert serving.anomaly_fallback(("power", "m0")) is first  # in use: kept
    assert len(serving._fallbacks) == FALLBACKS_KEPT
    assert serving.anomaly_fallback(("power", "m1")).spec.inputs == ("power", "m1")  # rebuilt
