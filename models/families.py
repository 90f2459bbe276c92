"""Family name -> model class, imported on first use.

Nothing here imports scikit-learn, CatBoost or TensorFlow: a family's module (and with it
its framework) is imported only when that family is asked for, so a worker that serves
only tabular models never loads TensorFlow.

>>> family_names()[:3]
['anomaly', 'maintenance', 'demand']
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Final

from models.base import Model, ModelError

# family -> "module:class"
FAMILIES: Final[dict[str, str]] = {
    "anomaly": "models.anomaly:AnomalyModel",
    "maintenance": "models.maintenance:MaintenanceModel",
    "demand": "models.demand:DemandModel",
    "sequence": "models.sequence:SequenceModel",
    "seasonal_naive": "models.fallback:SeasonalNaive",
    "robust_zscore": "models.fallback:RobustZScore",
}

# the fallback that serves a family until its first version is promoted
FALLBACK_FOR: Final[dict[str, str]] = {
    "anomaly": "robust_zscore",
    "demand": "seasonal_naive",
    "sequence": "seasonal_naive",
}


def family_names() -> list[str]:
    """Every family, trained ones first, in a stable order."""
    return list(FAMILIES)


def model_class(name: str) -> type[Model]:
    """The Model subclass of ``name`` (imports its module, and framework, on first call)."""
    try:
        module_name, attribute = FAMILIES[name].split(":")
    except KeyError as exc:
        raise ModelError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from exc
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"model family {name!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ModelError(f"{FAMILIES[name]} is not a Model subclass")
    return cls


def create(name: str, params: dict[str, Any] | None = None) -> Model:
    """A new, unfitted model of family ``name``."""
    return model_class(name)(params)


def load_model(directory: Path, metadata: dict[str, Any]) -> Model:
    """Load a verified version directory with the family its metadata names."""
    family = metadata.get("family")
    if not isinstance(family, str):
        raise ModelError(f"metadata of {directory} names no model family")
    return model_class(family).load(directory, metadata)
