"""A framework's own error while saving a version is a StoreWriteError; nothing is left.

CatBoost reports a full disk as CatBoostError, not OSError (tests/faults/test_store_disk.py
shows it on a real full tmpfs); the registry must still say "cannot write" and clean up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models.base import FitReport, FloatArray, Model, ModelError, Scores
from models.registry import Registry
from models.registry_errors import StoreWriteError


class FrameworkError(Exception):
    """What a framework raises instead of OSError."""


class FailingModel(Model):
    """A model whose save fails with ``error`` after writing part of a file."""

    family = "failing"

    def __init__(self, error: Exception) -> None:
        super().__init__({})
        self.error = error

    def fit(self, history: pd.DataFrame) -> FitReport:
        return FitReport(metrics={}, rows=0, seconds=0.0)

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        return self.fit(history)

    def predict_batch(self, features: FloatArray) -> Scores:
        raise NotImplementedError

    def save(self, directory: Path) -> list[str]:
        (directory / "model.bin").write_bytes(b"half")
        raise self.error

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> FailingModel:
        raise NotImplementedError


def test_a_framework_error_while_saving_is_a_store_write_error(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "store", actor="tests")
    full = FrameworkError("(Error 28: No space left on device) can't write 8 bytes")
    with pytest.raises(StoreWriteError, match=r"cannot write demand model files at .*Error 28"):
        registry.register(FailingModel(full), "demand")
    paths = registry.paths("demand")
    assert registry.versions("demand") == [] and paths.scratch_dirs() == []


def test_a_model_error_while_saving_stays_a_model_error(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "store", actor="tests")
    with pytest.raises(ModelError, match="not fitted") as raised:
        registry.register(FailingModel(ModelError("not fitted")), "demand")
    assert not isinstance(raised.value, StoreWriteError)
