"""Batch scoring: the same outputs as predict_batch on frame_rows, chunked or not, past only."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models import create
from models.base import Model
from models.features import frame_rows
from models.maintenance import RECOMMENDATIONS
from models.scoring import actual_ahead, score_history, spec_model, target_times


@pytest.fixture(scope="module")
def machines() -> pd.DataFrame:
    from driftline.generator import generate_machines

    return generate_machines(entities=2, periods=240, seed=3)


@pytest.fixture(scope="module")
def anomaly(machines: pd.DataFrame) -> Model:
    model = create("anomaly", {"n_estimators": 30, "window": 24})
    model.fit(machines)
    return model


def test_anomaly_scores_equal_predict_batch_on_frame_rows(
    anomaly: Model, machines: pd.DataFrame
) -> None:
    scored = score_history(anomaly, machines, chunk_rows=37)
    expected = anomaly.predict_batch(frame_rows(spec_model(anomaly).spec, machines).matrix)
    assert list(scored.outputs.columns) == ["score", "flag", "severity"]
    np.testing.assert_array_equal(scored.outputs["score"].to_numpy(), expected.score)
    np.testing.assert_array_equal(scored.outputs["flag"].to_numpy(), expected.flag)
    np.testing.assert_array_equal(scored.outputs["severity"].to_numpy(), expected.severity)


def test_chunks_report_every_row_and_change_nothing(anomaly: Model, machines: pd.DataFrame) -> None:
    told: list[int] = []
    chunked = score_history(anomaly, machines, chunk_rows=50, on_rows=told.append)
    whole = score_history(anomaly, machines)
    assert sum(told) == len(machines) and len(told) == -(-len(machines) // 50)
    pd.testing.assert_frame_equal(chunked.table(), whole.table())


def test_table_keeps_keys_and_rows_in_entity_time_order(
    anomaly: Model, machines: pd.DataFrame
) -> None:
    shuffled = machines.sample(frac=1.0, random_state=0)
    table = score_history(anomaly, shuffled).table()
    assert list(table.columns[:2]) == ["entity_id", "ts"]
    expected = machines.sort_values(["entity_id", "ts"])[["entity_id", "ts"]]
    pd.testing.assert_frame_equal(table[["entity_id", "ts"]], expected.reset_index(drop=True))


def test_maintenance_outputs_risk_urgency_and_recommendation(machines: pd.DataFrame) -> None:
    model = create("maintenance", {"n_estimators": 20, "window": 24, "rolling": [6]})
    model.fit(machines)
    out = score_history(model, machines).outputs
    expected = model.predict_batch(frame_rows(spec_model(model).spec, machines).matrix)
    np.testing.assert_array_equal(out["risk_level"].to_numpy(), expected.level)
    np.testing.assert_array_equal(out["urgent"].to_numpy(), expected.flag)
    texts = [RECOMMENDATIONS[level] for level in out["risk_level"]]
    assert out["recommendation"].tolist() == texts


def test_demand_forecasts_the_next_period(model_data: SimpleNamespace) -> None:
    history = model_data.demand_history(products=2, periods=120)
    model = create("demand", {"iterations": 40})
    model.fit(history)
    scored = score_history(model, history)
    expected = model.predict_batch(frame_rows(spec_model(model).spec, history).matrix)
    np.testing.assert_allclose(scored.outputs["forecast"].to_numpy(), expected.value)
    step = scored.outputs["target_ts"] - scored.inputs["ts"]
    assert (step == pd.Timedelta(days=1)).all()
    assert (scored.outputs["lower"] <= scored.outputs["forecast"]).all()


def test_actual_ahead_stays_inside_each_entity() -> None:
    frame = pd.DataFrame({"entity_id": ["a", "a", "b", "b"], "x": [1.0, 2.0, 3.0, 4.0]})
    ahead = actual_ahead(frame, "entity_id", "x", 1)
    np.testing.assert_array_equal(ahead, [2.0, np.nan, 4.0, np.nan])


@pytest.fixture(scope="module")
def sequence(model_data: SimpleNamespace) -> tuple[Model, pd.DataFrame]:
    """One tiny LSTM (one epoch) shared by the sequence tests."""
    history = model_data.station_history(stations=2, periods=200)
    model = create("sequence", {"epochs": 1, "seq_len": 8, "units": 4, "batch_size": 32})
    model.fit(history)
    return model, history


@pytest.mark.slow
class TestSequence:
    def test_forecasts_and_imputes_missing_targets_only(
        self, sequence: tuple[Model, pd.DataFrame]
    ) -> None:
        model, history = sequence
        scored = score_history(model, history, chunk_rows=64)
        rows = spec_model(model).feature_rows(history)
        forecast = model.predict_batch(rows.matrix)
        np.testing.assert_allclose(scored.outputs["forecast"].to_numpy(), forecast.value)
        missing = scored.inputs["pm25"].isna().to_numpy()
        assert missing.any()
        imputed = scored.outputs["imputed"].to_numpy()
        assert np.isfinite(imputed[missing]).all() and np.isnan(imputed[~missing]).all()
        expected = model.impute_rows(rows.matrix[missing])
        np.testing.assert_allclose(imputed[missing], expected.value)
        step = scored.outputs["target_ts"] - scored.inputs["ts"]
        assert (step == pd.Timedelta(hours=1)).all()

    def test_imputation_uses_only_the_past(self, sequence: tuple[Model, pd.DataFrame]) -> None:
        model, history = sequence
        first = score_history(model, history)
        gap = int(np.flatnonzero(first.inputs["pm25"].isna())[0])
        changed = first.inputs.copy()
        later = (changed["entity_id"] == changed.at[gap, "entity_id"]) & (
            changed["ts"] > changed.at[gap, "ts"]
        )
        changed.loc[later, ["pm25", "pm10"]] *= 10.0
        second = score_history(model, changed)
        assert second.outputs.at[gap, "imputed"] == pytest.approx(first.outputs.at[gap, "imputed"])
        assert second.outputs.at[gap, "forecast"] == pytest.approx(
            first.outputs.at[gap, "forecast"]
        )

    def test_target_times_use_the_saved_step(self, sequence: tuple[Model, pd.DataFrame]) -> None:
        model, history = sequence
        frame = spec_model(model).feature_rows(history).frame
        stamps = target_times(model, frame, history.iloc[:0])  # nothing to infer a step from
        assert (stamps - frame["ts"] == pd.Timedelta(hours=1)).all()
