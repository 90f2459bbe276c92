"""Tiny real models for tests that serve them: a few trees, a few CatBoost iterations.

Shared by the worker tests and the fault suite (on ``sys.path`` through pytest's
``pythonpath``), so scoring stays cheap wherever a test streams readings through them.
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd

from models.families import create
from models.registry import Registry

ANOMALY: Final[dict[str, Any]] = {"n_estimators": 20, "window": 24, "rolling": [6, 12]}
MAINTENANCE: Final[dict[str, Any]] = {"n_estimators": 10, "window": 24, "rolling": [6, 12]}
DEMAND: Final[dict[str, Any]] = {"iterations": 30, "thread_count": 1}


def train(
    registry: Registry,
    name: str,
    params: dict[str, Any],
    frame: pd.DataFrame,
    key: str | None = None,
    family: str | None = None,
) -> int:
    """Fit ``family`` (default: ``name``) on ``frame`` and register it; the version."""
    model = create(family or name, params)
    report = model.fit(frame)
    return registry.register(model, name, key, fit_report=report).version
