"""The contract every model family passes, run over every family ``models.families`` lists.

A family added to ``models.families.FAMILIES`` without a case here fails
``test_every_family_has_a_case``: no family is skipped silently.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.base import FeatureMismatchError, FloatArray, Model, ModelError, NotFittedError, Scores
from models.families import FAMILIES, family_names, model_class
from models.features import frame_rows, spec_from_metadata

# Keras 3 converts TensorFlow variables with np.array(x), which NumPy 2 flags; harmless.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

FIELDS = ("value", "lower", "upper", "score", "flag", "severity", "level")


def spec_rows(model: Model, history: pd.DataFrame) -> FloatArray:
    """Feature rows the way the worker builds them: the spec from JSON metadata."""
    spec = spec_from_metadata(json.loads(json.dumps(model.metadata())))
    return frame_rows(spec, history).matrix


@dataclass(frozen=True)
class Case:
    """How to exercise one family: params, data, and its documented NaN behaviour.

    ``nan_row`` is what predicting an all-NaN feature row gives: "finite" outputs, "nan"
    outputs (the value is NaN, nothing raises) or "raises" (a ModelError).
    """

    params: dict[str, Any]
    history: Callable[[Any], pd.DataFrame]  # called with the ``model_data`` builders
    too_little: Callable[[Any], pd.DataFrame]
    nan_row: str
    needs_fit: bool = True
    fallback: bool = False


CASES: dict[str, Case] = {
    "anomaly": Case(
        {"n_estimators": 20, "window": 24},
        lambda d: d.machine_history(periods=200),
        lambda d: d.machine_history(entities=1, periods=20),
        nan_row="finite",
    ),
    "maintenance": Case(
        {"n_estimators": 10, "window": 24, "rolling": [6, 12]},
        lambda d: d.machine_history(periods=200),
        lambda d: d.machine_history(entities=1, periods=20),
        nan_row="finite",
    ),
    "demand": Case(
        {"iterations": 30, "thread_count": 1},
        lambda d: d.demand_history(periods=120),
        lambda d: d.demand_history(products=1, periods=12),
        nan_row="nan",
    ),
    "sequence": Case(
        {"metric": "pm25", "seq_len": 8, "units": 4, "epochs": 2, "batch_size": 32},
        lambda d: d.station_history(periods=120),
        lambda d: d.station_history(stations=1, periods=6),
        nan_row="finite",  # NaN = a reading not made: filled with the training mean
    ),
    "seasonal_naive": Case(
        {"season": 7},
        lambda d: d.demand_history(periods=60),
        lambda d: d.demand_history(products=1, periods=1),
        nan_row="nan",
        needs_fit=False,
        fallback=True,
    ),
    "robust_zscore": Case(
        {"window": 24},
        lambda d: d.machine_history(periods=100),
        lambda d: d.machine_history(entities=1, periods=2),
        nan_row="finite",
        fallback=True,
    ),
}


@dataclass
class Subject:
    name: str
    case: Case
    model: Model
    history: pd.DataFrame
    rows: FloatArray
    history_unchanged: bool


def _case(name: str) -> Case:
    if name not in CASES:
        pytest.fail(f"family {name!r} has no contract case in tests/models/test_contract.py")
    module = FAMILIES[name].split(":")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"family {name!r}: module {module} does not exist yet")
    return CASES[name]


@pytest.fixture(scope="module", params=family_names())
def subject(request: pytest.FixtureRequest, model_data: Any) -> Subject:
    name: str = request.param
    case = _case(name)
    history = case.history(model_data)
    before = history.copy(deep=True)
    model = model_class(name)(dict(case.params))
    model.fit(history)
    unchanged = history.equals(before) and list(history.columns) == list(before.columns)
    rows = spec_rows(model, history)
    return Subject(name, case, model, history, rows[-40:], unchanged)


def _arrays(scores: Scores) -> dict[str, np.ndarray]:
    return {f: np.asarray(getattr(scores, f)) for f in FIELDS if getattr(scores, f) is not None}


def _assert_same(got: Scores, expected: Scores) -> None:
    a, b = _arrays(got), _arrays(expected)
    assert a.keys() == b.keys() and got.fallback == expected.fallback
    for field in a:
        np.testing.assert_allclose(a[field], b[field], rtol=1e-6, atol=1e-9, err_msg=field)


def test_every_family_has_a_case() -> None:
    assert set(CASES) == set(family_names())


def test_metadata_spec_rebuilds_the_models_own_features(subject: Subject) -> None:
    own = subject.model.feature_rows(subject.history)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(own.matrix[-40:], subject.rows)


def test_outputs_have_one_entry_per_row(subject: Subject) -> None:
    assert subject.rows.shape[1] == len(subject.model.feature_names)
    scores = subject.model.predict_batch(subject.rows)
    assert len(scores) == subject.rows.shape[0] > 0
    for field, values in _arrays(scores).items():
        assert values.shape == (subject.rows.shape[0],), field
    assert scores.fallback is subject.case.fallback
    assert len(subject.model.predict_batch(subject.rows[:0])) == 0


def test_save_load_round_trip_predicts_identically(subject: Subject, tmp_path: Path) -> None:
    names = subject.model.save(tmp_path)
    assert names and all((tmp_path / n).is_file() for n in names)
    metadata = json.loads(json.dumps(subject.model.metadata()))
    loaded = model_class(subject.name).load(tmp_path, metadata)
    assert loaded.feature_names == subject.model.feature_names
    expected = subject.model.predict_batch(subject.rows)
    got = loaded.predict_batch(subject.rows)
    for field, values in _arrays(expected).items():
        np.testing.assert_array_equal(_arrays(got)[field], values, err_msg=field)


@pytest.mark.parametrize("change", ["missing", "extra", "flat"])
def test_wrong_features_raise_feature_mismatch(subject: Subject, change: str) -> None:
    rows = subject.rows
    bad = {
        "missing": rows[:, :-1],
        "extra": np.hstack([rows, np.zeros((rows.shape[0], 1))]),
        "flat": rows[0],
    }[change]
    with pytest.raises(FeatureMismatchError):
        subject.model.predict_batch(bad)


def test_all_nan_row_gives_the_documented_output(subject: Subject) -> None:
    row = np.full((1, subject.rows.shape[1]), np.nan)
    if subject.case.nan_row == "raises":
        with pytest.raises(ModelError):
            subject.model.predict_batch(row)
        return
    arrays = _arrays(subject.model.predict_batch(row))
    if subject.case.nan_row == "finite":
        assert all(np.isfinite(v.astype(np.float64)).all() for v in arrays.values()), arrays
    else:
        assert np.isnan(arrays["value"]).all()


def test_a_nan_feature_affects_only_its_row(subject: Subject) -> None:
    rows = subject.rows.copy()
    rows[0, :] = np.nan
    if subject.case.nan_row == "raises":
        with pytest.raises(ModelError):
            subject.model.predict_batch(rows)
        return
    got = subject.model.predict_batch(rows)
    expected = subject.model.predict_batch(subject.rows)
    for field, values in _arrays(expected).items():
        np.testing.assert_array_equal(_arrays(got)[field][1:], values[1:], err_msg=field)


def test_inputs_are_not_mutated(subject: Subject) -> None:
    assert subject.history_unchanged, "fit changed its history frame"
    rows = subject.rows.copy()
    if subject.case.nan_row != "raises":
        rows[1, 0] = np.nan
    before = rows.copy()
    subject.model.predict_batch(rows)
    np.testing.assert_array_equal(rows, before)


def test_one_row_equals_its_row_in_a_batch(subject: Subject) -> None:
    batch = subject.model.predict_batch(subject.rows)
    for i in (0, subject.rows.shape[0] // 2, subject.rows.shape[0] - 1):
        single = subject.model.predict_batch(subject.rows[i : i + 1])
        for field, values in _arrays(batch).items():
            got = _arrays(single)[field]
            np.testing.assert_allclose(got, values[i : i + 1], rtol=1e-6, err_msg=field)


def test_metadata_is_json(subject: Subject) -> None:
    metadata = subject.model.metadata()
    again = json.loads(json.dumps(metadata, allow_nan=False))
    assert again["family"] == subject.name
    assert again["features"] == subject.model.feature_names


def test_loaded_model_fine_tunes_and_keeps_its_layout(subject: Subject, tmp_path: Path) -> None:
    subject.model.save(tmp_path)
    metadata = json.loads(json.dumps(subject.model.metadata()))
    model = model_class(subject.name).load(tmp_path, metadata)
    history = subject.history
    report = model.fine_tune(history)
    assert model.feature_names == subject.model.feature_names
    assert report.rows > 0 and report.seconds >= 0.0
    assert len(model.predict_batch(spec_rows(model, history)[-5:])) == 5


@pytest.mark.parametrize("name", family_names())
def test_fit_on_too_little_data_raises_model_error(name: str, model_data: Any) -> None:
    case = _case(name)
    with pytest.raises(ModelError, match=r"(?i)too little|not enough|at least|need"):
        model_class(name)(dict(case.params)).fit(case.too_little(model_data))


@pytest.mark.parametrize("name", family_names())
def test_predict_before_fit(name: str) -> None:
    case = _case(name)
    model = model_class(name)(dict(case.params))
    if case.needs_fit:
        with pytest.raises(NotFittedError):
            model.predict_batch(np.zeros((1, max(1, len(model.feature_names)))))
    else:
        width = len(model.feature_names)
        assert len(model.predict_batch(np.zeros((2, width)))) == 2


@pytest.mark.parametrize("name", family_names())
def test_unknown_parameter_is_a_model_error(name: str) -> None:
    _case(name)
    with pytest.raises(ModelError, match="no_such_knob"):
        model_class(name)({"no_such_knob": 1})


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("demand", {"lags": {"a": 1}}, "lags"),
        ("anomaly", {"n_estimators": "many"}, "n_estimators"),
        ("maintenance", {"max_depth": [3]}, "max_depth"),
        # values a lax reading would coerce: a bool as a lag, a float depth, text numbers
        ("demand", {"lags": [True, 7]}, r"lags\.0"),
        ("maintenance", {"max_depth": 16.5}, "max_depth"),
        ("anomaly", {"n_estimators": "200"}, "n_estimators"),
        ("demand", {"depth": True}, "depth"),
    ],
)
def test_a_parameter_of_the_wrong_type_is_a_model_error_naming_it(
    name: str, params: dict[str, object], field: str
) -> None:
    with pytest.raises(ModelError, match=rf"bad parameter value: {field}"):
        model_class(name)(params)


def test_an_int_serves_where_a_float_belongs_and_lists_read_as_tuples() -> None:
    demand = model_class("demand")({"lags": [1, 7], "learning_rate": 1})
    assert demand.params["lags"] == [1, 7] and demand.params["learning_rate"] == 1.0
