"""The model cache's warm-up in the worker: every family scores a row as it loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftline.generator import generate_air
from models.cache import ModelCache
from models.registry import Registry
from models.registry_errors import LoadError
from models.store import ModelStore
from models.versions import LoadedModel
from worker.scoring import warm_up

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

TINY_SEQUENCE = {"metric": "pm25", "seq_len": 8, "units": 4, "epochs": 1, "batch_size": 32}


@pytest.mark.parametrize(
    ("name", "key"), [("anomaly", None), ("maintenance", None), ("demand", "product-000")]
)
def test_every_tabular_family_is_scored_once_as_it_loads(
    store_dir: Path, name: str, key: str | None
) -> None:
    widths: list[int] = []

    def watched(loaded: LoadedModel) -> None:
        predict = loaded.model.predict_batch

        def counted(features: Any) -> Any:
            widths.append(features.shape[1])
            return predict(features)

        loaded.model.predict_batch = counted  # type: ignore[method-assign]
        warm_up(loaded)

    loaded = ModelCache(ModelStore(store_dir), 1 << 28, watched).get(name, key)
    assert widths == [len(loaded.model.feature_names)]  # one row of the model's own width


def test_a_sequence_model_builds_its_graph_as_it_loads(tmp_path: Path, worker_data: Any) -> None:
    registry = Registry(tmp_path / "store", actor="tests")
    frame = generate_air(entities=2, periods=120, seed=9)
    worker_data.train(registry, "sequence", TINY_SEQUENCE, frame, key="pm25")
    cache = ModelCache(ModelStore(tmp_path / "store"), 1 << 28, warm_up)
    loaded = cache.swap("sequence", "pm25")
    assert loaded is not None
    # what the first batch would otherwise build on the hot path (about 0.1 s)
    assert loaded.model._forward is not None  # type: ignore[attr-defined]


def test_a_version_that_cannot_score_a_row_does_not_swap_in(
    store_dir: Path, registry: Registry, worker_data: Any
) -> None:
    cache = ModelCache(ModelStore(store_dir), 1 << 28, warm_up)
    serving = cache.get("anomaly")
    version = worker_data.train(registry, "anomaly", worker_data.ANOMALY, worker_data.history())
    registry.promote("anomaly", version)

    def broken(features: Any) -> Any:
        raise ValueError(f"cannot score {np.shape(features)}")

    def failing(loaded: LoadedModel) -> None:
        loaded.model.predict_batch = broken  # type: ignore[method-assign]
        warm_up(loaded)

    with pytest.raises(LoadError, match="warm-up failed"):
        cache.swap("anomaly", warmup=failing)
    assert cache.get("anomaly") is serving
