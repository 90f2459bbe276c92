"""The worker's metrics: latency observed per reading, in bulk, exactly as one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from models.cache import ModelCache
from models.store import ModelStore
from worker import metrics
from worker.pipeline import ScoringPipeline
from worker.records import BatchResult

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_observing_in_bulk_counts_as_observing_each_value() -> None:
    registry = CollectorRegistry()
    bulk = Histogram("bulk_seconds", "bulk", buckets=BOUNDS, registry=registry)
    single = Histogram("single_seconds", "one by one", buckets=BOUNDS, registry=registry)
    values = np.random.default_rng(0).exponential(0.08, 2_000)
    values[:6] = [0.0, 0.005, 0.01, 1.0, 1.5, 0.1]  # on and beyond the bounds
    metrics.observe_all(bulk, values)
    metrics.observe_all(bulk, values[:0])  # nothing to observe
    for value in values:
        single.observe(value)
    ones = {(name.replace("single", "bulk"), le): v for (name, le), v in _samples(single).items()}
    found = _samples(bulk)
    assert found.keys() == ones.keys()
    for key, value in ones.items():
        assert np.isclose(found[key], value), key


def test_every_reading_of_a_batch_counts_in_the_latency() -> None:
    child = metrics.END_TO_END_SECONDS.labels("readings.test")
    before = _samples(child)
    metrics.record_latency({"readings.test": [1_000] * 499 + [600]}, acknowledged_ms=1_020)
    after = _samples(child)
    count = ("driftline_worker_end_to_end_latency_seconds_count", "")
    assert after[count] - before.get(count, 0.0) == 500
    fast = ("driftline_worker_end_to_end_latency_seconds_bucket", "0.025")
    assert after[fast] - before.get(fast, 0.0) == 499  # 20 ms each; the late one is 420 ms


def test_the_entities_held_and_dropped_are_read_from_the_state(
    store_dir: Path, worker_data: Any
) -> None:
    store = ModelStore(store_dir)
    pipeline = ScoringPipeline(store, ModelCache(store, worker_data.CACHE_BYTES), max_entities=2)
    evicted = metrics.STATE_EVICTED.labels("sensor")
    before = evicted._value.get()

    def held() -> float:
        [family] = metrics.STATE_ENTITIES.collect()
        return next(s.value for s in family.samples if s.labels == {"stream": "sensor"})

    pipeline.process(worker_data.sensor_records()[:9])  # three machines
    assert held() == 2 and evicted._value.get() - before == 1
    pipeline.forget([("readings.sensor", p) for p in range(8)])
    assert held() == 0  # no batch needed: the gauge reads the state at each scrape


def test_a_batch_s_feature_and_predict_times_are_observed_per_model() -> None:
    model = "feature-time-test"

    def observed(histogram: Histogram) -> tuple[float, float]:
        """(count, sum) of ``model``'s observations."""
        samples = {
            sample.name.rpartition("_")[2]: sample.value
            for metric in histogram.collect()
            for sample in metric.samples
            if sample.labels.get("model") == model
        }
        return samples.get("count", 0.0), samples.get("sum", 0.0)

    features, predicts = observed(metrics.FEATURE_SECONDS), observed(metrics.SCORING_SECONDS)
    metrics.record_result(BatchResult(feature_seconds={model: 0.004}, model_seconds={model: 0.002}))
    assert observed(metrics.FEATURE_SECONDS) == (features[0] + 1, features[1] + 0.004)
    assert observed(metrics.SCORING_SECONDS) == (predicts[0] + 1, predicts[1] + 0.002)
