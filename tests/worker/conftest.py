"""Fixtures of the scoring pipeline tests: a model store with small real models, and
generated readings as consumed records (no broker).

The store is trained once per session into a template directory; every test gets its own
copy, so promoting or registering versions in one test never leaks into another. Models
stay tiny (a few trees, a few CatBoost iterations) to keep the suite fast.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from tiny_models import ANOMALY, MAINTENANCE, train
from tiny_models import DEMAND as DEMAND_PARAMS

from driftline.generator import generate_machines, generate_products
from events.dlq import KafkaMessage
from models.cache import ModelCache
from models.registry import Registry
from models.store import ModelStore
from worker.pipeline import ScoringPipeline
from worker.records import BatchResult, add_seconds
from worker.replay import frame_records

SENSOR = "readings.sensor"
DEMAND = "readings.demand"
PARTITIONS = 3
CACHE_BYTES = 256 * 1024 * 1024  # every test model fits many times over


def machines(periods: int = 96, seed: int = 11) -> pd.DataFrame:
    """Hourly telemetry of three machines (labels dropped: producers do not send them)."""
    frame = generate_machines(entities=3, periods=periods, seed=seed)
    return frame.drop(columns=["is_anomaly", "risk"])


def history(periods: int = 240, seed: int = 3) -> pd.DataFrame:
    """Labelled machine history to train anomaly and maintenance models on."""
    return generate_machines(entities=3, periods=periods, seed=seed)


def products(periods: int = 60, seed: int = 11) -> pd.DataFrame:
    """Daily sales of three products."""
    return generate_products(entities=3, periods=periods, seed=seed)


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """anomaly v1, maintenance v1, demand v1 (global) and demand/product-000 v1."""
    root = tmp_path_factory.mktemp("worker-models") / "store"
    registry = Registry(root, actor="tests")
    labelled = history()
    sales = generate_products(entities=3, periods=120, seed=3)
    train(registry, "anomaly", ANOMALY, labelled)
    train(registry, "maintenance", MAINTENANCE, labelled)
    train(registry, "demand", DEMAND_PARAMS, sales)
    single = sales[sales["product_id"] == "product-000"]
    train(registry, "demand", DEMAND_PARAMS, single, key="product-000")
    return root


@pytest.fixture
def store_dir(store_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(store_template, target)
    return target


@pytest.fixture
def registry(store_dir: Path) -> Registry:
    return Registry(store_dir, actor="tests")


@pytest.fixture
def cache(store_dir: Path) -> ModelCache:
    return ModelCache(ModelStore(store_dir), CACHE_BYTES)


@pytest.fixture
def pipeline(store_dir: Path, cache: ModelCache) -> ScoringPipeline:
    return ScoringPipeline(ModelStore(store_dir), cache)


@pytest.fixture
def empty_pipeline(tmp_path: Path) -> Iterator[ScoringPipeline]:
    store = ModelStore(tmp_path / "empty-store")
    yield ScoringPipeline(store, ModelCache(store, CACHE_BYTES))


def run(pipeline: ScoringPipeline, records: list[Any], batch: int = 100) -> BatchResult:
    """Process ``records`` in batches of ``batch``; one result holding every output."""
    total = BatchResult()
    for start in range(0, len(records), batch):
        result = pipeline.process(records[start : start + batch])
        total.records += result.records
        for (topic, reason), count in result.dlq_reasons.items():
            total.dlq_reasons[(topic, reason)] = total.dlq_reasons.get((topic, reason), 0) + count
        for topic, count in result.stale.items():
            total.stale[topic] = total.stale.get(topic, 0) + count
        total.versions.update(result.versions)
        add_seconds(total.model_seconds, result.model_seconds)
        add_seconds(total.feature_seconds, result.feature_seconds)
    return total


@pytest.fixture(scope="session")
def worker_data() -> SimpleNamespace:
    """Builders shared by the worker tests (test modules cannot import each other)."""

    def sensor_records(frame: pd.DataFrame | None = None, **kwargs: Any) -> list[KafkaMessage]:
        return list(
            frame_records(
                machines() if frame is None else frame, SENSOR, partitions=PARTITIONS, **kwargs
            )
        )

    def demand_records(frame: pd.DataFrame | None = None, **kwargs: Any) -> list[KafkaMessage]:
        return list(
            frame_records(
                products() if frame is None else frame, DEMAND, partitions=PARTITIONS, **kwargs
            )
        )

    return SimpleNamespace(
        machines=machines,
        history=history,
        products=products,
        sensor_records=sensor_records,
        demand_records=demand_records,
        train=train,
        run=run,
        ANOMALY=ANOMALY,
        MAINTENANCE=MAINTENANCE,
        DEMAND_PARAMS=DEMAND_PARAMS,
        CACHE_BYTES=CACHE_BYTES,
        PARTITIONS=PARTITIONS,
    )
