"""The family lookup: names to classes, lazily, without importing frameworks early."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.base import Model, ModelError
from models.families import FALLBACK_FOR, FAMILIES, create, family_names, load_model, model_class


def test_every_family_names_a_model_class_of_that_family() -> None:
    for name in family_names():
        if name == "sequence":
            continue  # imports TensorFlow lazily, checked by its own tests and the contract
        cls = model_class(name)
        assert issubclass(cls, Model) and cls.family == name
    assert set(FALLBACK_FOR.values()) <= set(FAMILIES)


def test_unknown_family_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="unknown model family 'nope'"):
        model_class("nope")


def test_create_and_load_model_by_name(tmp_path: Path) -> None:
    model = create("robust_zscore", {"metrics": ["a"]})
    model.save(tmp_path)
    loaded = load_model(tmp_path, json.loads(json.dumps(model.metadata())))
    assert type(loaded) is type(model) and loaded.feature_names == ["a_rz"]
    with pytest.raises(ModelError, match="names no model family"):
        load_model(tmp_path, {})


def test_importing_the_package_and_fallbacks_loads_no_ml_framework() -> None:
    code = (
        "import sys, models, models.features, models.fallback, models.families\n"
        "models.families.model_class('seasonal_naive')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sklearn', 'catboost', 'tensorflow', 'keras'))\n"
        "print(heavy)\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    assert result.stdout.strip() == "[]"
