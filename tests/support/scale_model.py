"""A test double of a model family: its one feature times a scale kept in one JSON file.

Small enough to register, archive, tamper with and hot-swap in tests without training;
``FILE`` is the artifact's name, which tests that tamper with it write to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import pandas as pd

from models.base import FitReport, FloatArray, Model, Scores

FILE: Final = "model.json"


class ScaleModel(Model):
    """``predict_batch`` returns feature ``x`` times ``params["scale"]``."""

    family = "scale"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.feature_names = ["x"]

    def fit(self, history: pd.DataFrame) -> FitReport:
        raise NotImplementedError

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        raise NotImplementedError

    def predict_batch(self, features: FloatArray) -> Scores:
        return Scores(value=features[:, 0] * float(self.params["scale"]))

    def save(self, directory: Path) -> list[str]:
        (directory / FILE).write_text(json.dumps(self.params))
        return [FILE]

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> ScaleModel:
        return cls(json.loads((directory / FILE).read_text()))
