"""Driftline's ML models: one interface (``models.base``), the families behind it, the
feature code shared by training and the worker (``models.features``), and the registry.

Importing this package never imports scikit-learn, CatBoost or TensorFlow: families are
looked up by name through ``models.families`` and imported on first use.
"""

from models.base import (
    FeatureMismatchError,
    FitReport,
    Model,
    ModelError,
    NotFittedError,
    Scores,
)
from models.families import FALLBACK_FOR, FAMILIES, create, family_names, load_model, model_class

__all__ = [
    "FALLBACK_FOR",
    "FAMILIES",
    "FeatureMismatchError",
    "FitReport",
    "Model",
    "ModelError",
    "NotFittedError",
    "Scores",
    "create",
    "family_names",
    "load_model",
    "model_class",
]
