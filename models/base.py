"""The one interface every model family implements.

A family is a small subclass of :class:`Model`. Callers (worker, trainer, CLI) only see this
interface: they never import scikit-learn, CatBoost or TensorFlow themselves.

Conventions
-----------
* ``fit`` and ``fine_tune`` take a *history frame* in the canonical layout of the family
  (see ``models.frames``) and build their own features with ``models.features``; the worker
  builds the very same feature rows incrementally from its per-entity state.
* ``predict_batch`` takes a 2-D float64 feature matrix (rows x ``feature_names``) and
  returns a :class:`Scores` of 1-D arrays, one entry per row. It never mutates its input.
* ``save`` writes files into an empty directory and returns their names; ``load`` reads
  them back. The registry checksums the files before ``load`` is ever called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Score points where anomaly severity steps up: > 0.5 flags (severity 1), > 0.75 is 2, > 0.9 is 3.
SEVERITY_CUTS: Final = (0.5, 0.75, 0.9)


def severity_of(score: FloatArray) -> IntArray:
    """Severity 0-3 of anomaly scores in [0, 1]: how many SEVERITY_CUTS a score exceeds.

    Every anomaly-type output (trained or fallback) maps its threshold to score 0.5, so a
    flag (``score > 0.5``) always comes with severity >= 1.

    >>> severity_of(np.array([0.2, 0.5, 0.6, 0.8, 0.95])).tolist()
    [0, 0, 1, 2, 3]
    """
    cuts = np.asarray(SEVERITY_CUTS, dtype=np.float64)
    exceeded = np.asarray(score, dtype=np.float64)[:, np.newaxis] > cuts
    levels: IntArray = exceeded.sum(axis=1, dtype=np.int64)
    return levels


@dataclass(frozen=True)
class Scores:
    """Batch output of a model: every array has one entry per input row.

    Families fill what they produce: forecasts fill ``value``/``lower``/``upper``; anomaly
    models fill ``score`` (in [0, 1]), ``flag`` and ``severity``; maintenance fills ``level``
    (risk 0-3), ``flag`` (urgent) and ``value`` (expected risk). ``fallback`` is True when
    the output comes from a fallback rather than a trained model.
    """

    value: FloatArray | None = None
    lower: FloatArray | None = None
    upper: FloatArray | None = None
    score: FloatArray | None = None
    flag: BoolArray | None = None
    severity: IntArray | None = None
    level: IntArray | None = None
    fallback: bool = False

    def __len__(self) -> int:
        for array in (self.value, self.score, self.level, self.flag):
            if array is not None:
                return int(array.shape[0])
        return 0


@dataclass
class FitReport:
    """What a fit or fine-tune measured: holdout metrics, sizes, timing, curves."""

    metrics: dict[str, float]
    rows: int
    seconds: float
    window: tuple[str, str] | None = None
    curve: dict[str, list[float]] = field(default_factory=dict)


class ModelError(Exception):
    """Root of the errors raised by model families."""


class FeatureMismatchError(ModelError):
    """Input columns do not match the features the model was trained on."""


class NotFittedError(ModelError):
    """predict/save called on a model that was never fitted."""


class Model(ABC):
    """Base class of every model family."""

    family: ClassVar[str]

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = dict(params or {})
        self.feature_names: list[str] = []
        self.info: dict[str, Any] = {}

    @abstractmethod
    def fit(self, history: pd.DataFrame) -> FitReport:
        """Train from scratch on a canonical history frame."""

    @abstractmethod
    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        """Continue training the current model on recent history."""

    @abstractmethod
    def predict_batch(self, features: FloatArray) -> Scores:
        """Score a feature matrix (rows x feature_names) in one call."""

    @abstractmethod
    def save(self, directory: Path) -> list[str]:
        """Write the model into ``directory``; return the file names written."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> Model:
        """Read a model written by :meth:`save` (files already verified)."""

    def metadata(self) -> dict[str, Any]:
        """Family, features, hyper-parameters and family-specific facts for metadata.json."""
        return {
            "family": self.family,
            "features": list(self.feature_names),
            "params": dict(self.params),
            "info": dict(self.info),
        }

    def check_features(self, features: FloatArray) -> None:
        """Raise FeatureMismatchError unless ``features`` has one column per feature name."""
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise FeatureMismatchError(
                f"{self.family}: expected a 2-D matrix with {len(self.feature_names)} columns "
                f"({', '.join(self.feature_names)}), got shape {features.shape}"
            )
