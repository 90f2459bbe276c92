"""The training service: fit, plot, register (plot inside the verified version), promote."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from models.base import ModelError
from models.registry import Registry
from models.scoring import score_history
from models.training import (
    PLOT_FILE,
    TrainRequest,
    attach_labels,
    rows_for_key,
    train_model,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAST_ANOMALY = {"n_estimators": 30, "window": 24}


class Recorder:
    def __init__(self) -> None:
        self.stages: list[str] = []

    def stage(self, name: str) -> None:
        self.stages.append(name)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "store", actor="test")


@pytest.fixture(scope="module")
def machines(model_data: SimpleNamespace) -> pd.DataFrame:
    frame: pd.DataFrame = model_data.machine_history(entities=2, periods=240)
    return frame


def test_registers_a_champion_with_its_plot_inside_the_verified_version(
    registry: Registry, machines: pd.DataFrame
) -> None:
    recorder = Recorder()
    request = TrainRequest("anomaly", params=FAST_ANOMALY)
    result = train_model(registry, request, machines, recorder)
    assert recorder.stages == ["fit", "validate", "register"]
    assert set(result.stages) == {"fit", "validate", "register"}
    assert result.champion and result.version.model == "anomaly" and result.version.key is None
    assert result.plot_path is not None and result.plot_path.read_bytes().startswith(PNG_MAGIC)
    assert PLOT_FILE in result.version.files  # checksummed with the model files
    assert 0 < result.model_bytes < result.version.size_bytes
    loaded = registry.load("anomaly")  # verifies every sha256, plot included
    assert loaded.info.family == "anomaly"
    assert "f1" in result.summary()["metrics"]


def test_loaded_version_scores_like_the_trained_model(
    registry: Registry, machines: pd.DataFrame
) -> None:
    result = train_model(registry, TrainRequest("anomaly", params=FAST_ANOMALY), machines)
    loaded = registry.load("anomaly", version=result.version.version)
    trained = score_history(result.model, machines).outputs
    served = score_history(loaded.model, machines).outputs
    pd.testing.assert_frame_equal(served, trained)


def test_second_version_becomes_champion_only_when_promoted(
    registry: Registry, machines: pd.DataFrame
) -> None:
    params = {"n_estimators": 10, "window": 24, "rolling": [6]}
    first = train_model(registry, TrainRequest("maintenance", "wear", params=params), machines)
    second = train_model(registry, TrainRequest("maintenance", "wear", params=params), machines)
    third = train_model(
        registry, TrainRequest("maintenance", "wear", params=params, promote=True), machines
    )
    assert (first.champion, second.champion, third.champion) == (True, False, True)
    assert registry.champion("wear") == third.version.version == 3


def test_without_plot_no_png_is_written(registry: Registry, machines: pd.DataFrame) -> None:
    request = TrainRequest("anomaly", params=FAST_ANOMALY, plot=False)
    result = train_model(registry, request, machines)
    assert result.plot_path is None and PLOT_FILE not in result.version.files


def test_too_little_data_is_a_model_error(registry: Registry, machines: pd.DataFrame) -> None:
    with pytest.raises(ModelError, match="too little data"):
        train_model(registry, TrainRequest("anomaly"), machines.head(20))
    assert registry.models() == []


def test_unknown_params_are_a_model_error(registry: Registry, machines: pd.DataFrame) -> None:
    with pytest.raises(ModelError, match="unknown parameter"):
        train_model(registry, TrainRequest("anomaly", params={"trees": 3}), machines)


def test_labels_join_on_entity_and_time(machines: pd.DataFrame) -> None:
    readings = machines.drop(columns=["is_anomaly", "risk"])
    labels = machines[["entity_id", "ts", "is_anomaly"]].iloc[::2]
    joined = attach_labels(readings, labels)
    assert joined["is_anomaly"].notna().sum() == len(labels)
    pd.testing.assert_series_equal(
        joined["is_anomaly"].iloc[::2].reset_index(drop=True).astype("int64"),
        labels["is_anomaly"].reset_index(drop=True),
    )


def test_labels_that_match_nothing_are_refused(machines: pd.DataFrame) -> None:
    labels = machines[["entity_id", "ts", "is_anomaly"]].assign(entity_id="elsewhere")
    with pytest.raises(ModelError, match="match none"):
        attach_labels(machines, labels)


def test_a_demand_key_selects_one_product(model_data: SimpleNamespace) -> None:
    history = model_data.demand_history(products=3, periods=20)
    chosen = rows_for_key("demand", history, "product-1")
    assert set(chosen["product_id"]) == {"product-1"} and len(chosen) == 20
    assert rows_for_key("anomaly", history, "product-1") is history
    with pytest.raises(ModelError, match="not a product"):
        rows_for_key("demand", history, "product-9")
