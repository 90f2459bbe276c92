"""Demand family: forecast quality, conformal interval, product codes, warm-start fine-tune."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.base import FeatureMismatchError, FitReport, ModelError
from models.demand import DemandModel
from models.features import DemandSpec, frame_rows

PARAMS = {"iterations": 100, "thread_count": 1, "fine_tune_iterations": 20}


@pytest.fixture(scope="module")
def history(model_data: Any) -> pd.DataFrame:
    frame: pd.DataFrame = model_data.demand_history(products=3, periods=200)
    return frame


@pytest.fixture(scope="module")
def trained(history: pd.DataFrame) -> tuple[DemandModel, FitReport]:
    model = DemandModel(PARAMS)
    return model, model.fit(history)


def _spec(model: DemandModel) -> DemandSpec:
    spec = model.spec
    assert isinstance(spec, DemandSpec)
    return spec


def test_forecasts_the_next_day_within_the_quality_goal(
    trained: tuple[DemandModel, FitReport],
) -> None:
    _, report = trained
    assert report.metrics["mape"] <= 12.0  # percent
    assert report.metrics["coverage"] >= 0.7  # nominal 90 %, small calibration split


def test_defaults_follow_the_daily_step_and_the_frame_columns(
    trained: tuple[DemandModel, FitReport],
) -> None:
    spec = _spec(trained[0])
    assert spec.step_seconds == 86400.0 and spec.lags == (1, 2, 3, 7, 14, 28)
    assert spec.price and spec.promo
    assert spec.products == {"product-0": 1, "product-1": 2, "product-2": 3}


def test_interval_brackets_the_forecast(
    trained: tuple[DemandModel, FitReport], history: pd.DataFrame
) -> None:
    model, _ = trained
    scores = model.predict_batch(frame_rows(model.spec, history).matrix[-50:])
    value, lower, upper = (np.asarray(a) for a in (scores.value, scores.lower, scores.upper))
    assert (lower <= value).all() and (value <= upper).all() and (lower >= 0).all()
    assert (upper > lower).all()


def test_an_unknown_product_is_forecast_with_the_reserved_code(
    trained: tuple[DemandModel, FitReport], history: pd.DataFrame
) -> None:
    model, _ = trained
    stranger = history[history["product_id"] == "product-1"].assign(product_id="new")
    rows = frame_rows(model.spec, stranger).matrix
    assert (rows[:, -1] == 0.0).all()
    assert np.isfinite(np.asarray(model.predict_batch(rows[-10:]).value)).all()


def test_the_model_reads_what_a_data_frame_with_a_product_category_gives(
    trained: tuple[DemandModel, FitReport], history: pd.DataFrame
) -> None:
    """Batches reach CatBoost without a DataFrame: the same pool, product code last."""
    from catboost import Pool

    model, _ = trained
    rows = frame_rows(model.spec, history).matrix
    rows[::7, -1] = np.nan  # no code: the reserved 0
    assert model.feature_names[-1] == "product"
    frame = pd.DataFrame(rows, columns=model.feature_names)
    frame["product"] = frame["product"].fillna(0).astype(np.int64)
    expected = model._model.predict(Pool(frame, cat_features=["product"]))  # type: ignore[union-attr]
    np.testing.assert_array_equal(model._raw(rows), expected)


def test_missing_price_is_tolerated_but_no_quantity_gives_nan(
    trained: tuple[DemandModel, FitReport], history: pd.DataFrame
) -> None:
    model, _ = trained
    rows = frame_rows(model.spec, history).matrix[-3:].copy()
    rows[0, model.feature_names.index("price_rel")] = np.nan
    rows[1, model.feature_names.index("level")] = np.nan
    value = np.asarray(model.predict_batch(rows).value)
    assert np.isfinite(value[0]) and np.isnan(value[1]) and np.isfinite(value[2])


def test_fine_tune_warm_starts_and_codes_new_products(
    trained: tuple[DemandModel, FitReport], history: pd.DataFrame
) -> None:
    model = DemandModel(PARAMS)
    model.fit(history)
    trees = model._model.tree_count_ if model._model is not None else 0
    recent = history[history["ts"] >= "2024-04-01"]
    newcomer = recent[recent["product_id"] == "product-0"].assign(product_id="product-9")
    report = model.fine_tune(pd.concat([recent, newcomer]))
    assert model._model is not None and trees < model._model.tree_count_ <= trees + 20
    assert model._model.get_params()["learning_rate"] == pytest.approx(0.05 * 0.3)
    assert _spec(model).products["product-9"] == 4
    assert _spec(model).products["product-0"] == 1
    assert report.curve["validation_rmse"] and np.isfinite(report.metrics["mape"])
    assert model.info["fine_tunes"] == 1


def test_horizon_two_forecasts_two_readings_ahead(history: pd.DataFrame) -> None:
    model = DemandModel({**PARAMS, "horizon": 2, "iterations": 30})
    report = model.fit(history)
    assert _spec(model).horizon == 2 and _spec(model).lags[0] == 2
    assert report.metrics["mape"] < 25.0


def test_frames_without_price_or_promo_train_without_those_features(
    history: pd.DataFrame,
) -> None:
    model = DemandModel({**PARAMS, "iterations": 20})
    model.fit(history.drop(columns=["price", "promo"]))
    assert not {"price_rel", "promo"} & set(model.feature_names)


@pytest.mark.parametrize(
    ("params", "error"),
    [({"lags": [0, 1]}, ModelError), ({"coverage": 1.5}, ModelError)],
)
def test_bad_parameters_are_model_errors(
    params: dict[str, Any], error: type[Exception], history: pd.DataFrame
) -> None:
    with pytest.raises(error):
        DemandModel({**PARAMS, **params}).fit(history)


def test_a_frame_without_quantity_is_a_feature_mismatch(history: pd.DataFrame) -> None:
    with pytest.raises(FeatureMismatchError, match="quantity"):
        DemandModel(PARAMS).fit(history.drop(columns=["quantity"]))
