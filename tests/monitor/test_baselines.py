"""Baselines from the registry: the version's own MAE, cached, retried when missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.base import FitReport, FloatArray, Model, Scores
from models.registry import Registry
from models.store import ModelStore
from monitor.baselines import RegistryBaselines


class Constant(Model):
    """Test double: predicts one number; saved as one small JSON file."""

    family = "constant"

    def fit(self, history: pd.DataFrame) -> FitReport:
        return FitReport(metrics={}, rows=len(history), seconds=0.0)

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        return self.fit(history)

    def predict_batch(self, features: FloatArray) -> Scores:
        return Scores(value=np.zeros(len(features)))

    def save(self, directory: Path) -> list[str]:
        (directory / "params.json").write_text(json.dumps(self.params))
        return ["params.json"]

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> Constant:
        return cls(json.loads((directory / "params.json").read_text()))


def register(root: Path, name: str, key: str | None, metrics: dict[str, float]) -> int:
    registry = Registry(root, loader=lambda family: Constant, actor="tester")
    report = FitReport(metrics=metrics, rows=10, seconds=0.0)
    return registry.register(Constant(), name, key, fit_report=report).version


def test_baseline_is_the_versions_mae(tmp_path: Path) -> None:
    first = register(tmp_path, "demand", "sku-1", {"mae": 2.5, "rmse": 3.0})
    second = register(tmp_path, "demand", "sku-1", {"mae": 1.5})
    baselines = RegistryBaselines(ModelStore(tmp_path))
    assert baselines("demand", "sku-1", first) == 2.5
    assert baselines("demand", "sku-1", second) == 1.5
    assert baselines("demand", "sku-1", 0) is None  # fallbacks have none
    assert RegistryBaselines(ModelStore(tmp_path), metric="rmse")("demand", "sku-1", 1) == 3.0


def test_missing_baselines_are_asked_again_only_after_the_retry_period(tmp_path: Path) -> None:
    now = [0.0]
    baselines = RegistryBaselines(ModelStore(tmp_path), retry_s=300, clock=lambda: now[0])
    assert baselines("demand", None, 1) is None  # no such model yet
    register(tmp_path, "demand", None, {"mae": 4.0})
    now[0] = 299.0
    assert baselines("demand", None, 1) is None  # cached miss
    now[0] = 300.0
    assert baselines("demand", None, 1) == 4.0


def test_found_baselines_are_cached(tmp_path: Path) -> None:
    register(tmp_path, "seq", None, {"mae": 0.7})
    baselines = RegistryBaselines(ModelStore(tmp_path))
    assert baselines("seq", None, 1) == 0.7
    for path in sorted(tmp_path.rglob("metadata.json")):
        path.unlink()
    assert baselines("seq", None, 1) == 0.7


def test_a_version_without_the_metric_has_no_baseline(tmp_path: Path) -> None:
    register(tmp_path, "anomaly", None, {"f1": 0.9})
    assert RegistryBaselines(ModelStore(tmp_path))("anomaly", None, 1) is None
