"""Tests of the sequence family (Keras LSTM forecaster and gap filler).

Tests marked ``slow`` train a tiny network (a few seconds each on a small CPU); the others
exercise the windowing, scaling and data code without TensorFlow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import sequence_data as data
from models.base import FeatureMismatchError, FitReport, ModelError, NotFittedError
from models.features import EntityWindow
from models.sequence import SequenceModel
from models.sequence_window import ChannelScaler, SequenceSpec

# Keras 3 converts TensorFlow variables with np.array(x), which NumPy 2 flags; harmless.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

METRICS = ["pm25", "pm10", "o3"]
HORIZON = 2
# Tiny and quick: short windows, a few units, three epochs.
TINY = {
    "metric": "pm25",
    "seq_len": 8,
    "horizon": HORIZON,
    "units": 8,
    "epochs": 3,
    "batch_size": 32,
    "patience": 2,
}


def diurnal_frame(stations: int = 2, days: int = 12, seed: int = 0) -> pd.DataFrame:
    """Hourly air-quality readings: a daily cycle plus smoothed noise, with random gaps."""
    rng = np.random.default_rng(seed)
    hours = days * 24
    t = np.arange(hours)
    frames = []
    for station in range(stations):
        phase = rng.uniform(0, 2 * np.pi)
        noise = np.convolve(rng.normal(0, 2, hours + 3), np.ones(4) / 4, mode="valid")
        pm25 = 30 + 12 * np.sin(2 * np.pi * t / 24 + phase) + noise
        frame = pd.DataFrame(
            {
                "entity_id": f"station-{station}",
                "ts": pd.date_range("2024-03-01", periods=hours, freq="h", tz="UTC"),
                "pm25": pm25,
                "pm10": 1.6 * pm25 + rng.normal(0, 1, hours),
                "o3": 40 - 8 * np.sin(2 * np.pi * t / 24 + phase) + rng.normal(0, 1, hours),
            }
        )
        for metric in METRICS:
            frame.loc[rng.random(hours) < 0.05, metric] = np.nan
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return diurnal_frame()


@pytest.fixture(scope="module")
def trained(history: pd.DataFrame) -> tuple[SequenceModel, FitReport]:
    model = SequenceModel(TINY)
    return model, model.fit(history)


@pytest.fixture(scope="module")
def fitted(trained: tuple[SequenceModel, FitReport]) -> SequenceModel:
    return trained[0]


@pytest.fixture(scope="module")
def features(fitted: SequenceModel, history: pd.DataFrame) -> np.ndarray:
    return fitted.feature_rows(history).matrix


# -- no TensorFlow ---------------------------------------------------------------------------
def test_importing_the_module_does_not_import_tensorflow() -> None:
    code = (
        "import sys, models.sequence, models.sequence_net; "
        "sys.exit(int(any(m in sys.modules for m in ('tensorflow', 'keras'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2])
    assert result.returncode == 0


def test_rows_carry_the_last_reading_forward_and_mask_gaps() -> None:
    spec = SequenceSpec(("a", "b"), seq_len=3)
    window = np.array([[[np.nan, 1.0], [12.0, np.nan], [np.nan, np.nan]]])
    before = window.copy()
    got = dict(zip(spec.names(), spec.rows(window)[0].tolist(), strict=True))
    assert np.isnan(got["a_t-2"]) and got["mask_a_t-2"] == 0.0  # nothing read yet
    assert got["a_t-1"] == 12.0 and got["mask_a_t-1"] == 1.0
    assert got["a_t-0"] == 12.0 and got["mask_a_t-0"] == 0.0  # carried forward
    assert got["b_t-2"] == got["b_t-0"] == 1.0 and got["mask_b_t-0"] == 0.0
    np.testing.assert_array_equal(window, before)


def test_network_input_scales_values_and_fills_gaps_with_the_mean() -> None:
    spec = SequenceSpec(("a",), seq_len=2)
    scaler = ChannelScaler(("a",), mean=np.array([10.0]), std=np.array([2.0]))
    rows = spec.rows(np.array([[[np.nan], [14.0]]]))
    x = scaler.network_input(rows, spec.seq_len)
    np.testing.assert_array_equal(x[0], [[0.0, 0.0], [2.0, 1.0]])  # (value, mask) per step


def test_hiding_the_present_target_equals_a_missing_reading() -> None:
    spec = SequenceSpec(("a", "b"), seq_len=4)
    windows = np.random.default_rng(0).normal(size=(20, 4, 2))
    windows[::3, 1, 0] = np.nan
    windows[::4, :3, 0] = np.nan  # no earlier target reading at all in some windows
    missing = windows.copy()
    missing[:, -1, 0] = np.nan
    np.testing.assert_array_equal(spec.hide_present_target(spec.rows(windows)), spec.rows(missing))


def test_rows_reject_windows_of_the_wrong_shape() -> None:
    spec = SequenceSpec(("a",), seq_len=4)
    with pytest.raises(FeatureMismatchError):
        spec.rows(np.zeros((2, 4, 2)))
    with pytest.raises(FeatureMismatchError):
        spec.rows(np.zeros((2, 5, 1)))


def test_scaler_round_trips_through_json() -> None:
    values = np.array([[1.0, np.nan], [3.0, 5.0], [np.nan, 5.0]])
    scaler = ChannelScaler.fit(["a", "b"], values)
    again = ChannelScaler.from_json(json.loads(json.dumps(scaler.to_json())))
    assert again.metrics == ("a", "b")
    np.testing.assert_array_equal(again.mean, [2.0, 5.0])
    np.testing.assert_array_equal(again.std, [1.0, 1.0])  # constant metric scales by 1


def test_unknown_or_bad_parameters_are_refused() -> None:
    with pytest.raises(ModelError, match="unknown"):
        SequenceModel({"seq_length": 24})
    with pytest.raises(ModelError, match="horizon"):
        SequenceModel({"horizon": 0})


def test_labels_stay_inside_one_entity_and_never_reach_validation() -> None:
    ts = pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC")
    frame = pd.DataFrame(
        {
            "entity_id": np.repeat(["a", "b"], 10),
            "ts": np.tile(ts, 2),
            "pm25": np.concatenate([np.arange(10.0), 100 + np.arange(10.0)]),
        }
    )
    targets = data.labels(frame, "pm25", horizon=2)
    np.testing.assert_array_equal(targets[8], [8.0, 9.0, np.nan])  # a's end, not b's start
    val = data.time_split(frame, targets, val_fraction=0.2)
    assert list(frame.loc[val, "ts"].dt.hour) == [8, 9, 8, 9]
    train_labels = targets[~val]
    assert not np.isin(train_labels, [8.0, 9.0, 108.0, 109.0]).any()


def test_gap_examples_keep_the_present_label_only_when_hidden() -> None:
    spec = SequenceSpec(("a",), seq_len=4)
    windows = np.arange(40.0).reshape(10, 4, 1)
    examples = data.Examples(spec.rows(windows), np.arange(30.0).reshape(10, 3))
    out = data.with_gap_examples(examples, spec, fraction=0.5, seed=1)
    hidden = out.features[:, -1] == 0.0  # the last column is mask_a_t-0
    assert hidden.any() and (~hidden).any()
    assert np.all(np.isfinite(out.labels[hidden, 0]))
    assert np.all(np.isnan(out.labels[~hidden, 0]))


def test_predict_before_fit_raises() -> None:
    with pytest.raises(NotFittedError):
        SequenceModel(TINY).predict_batch(np.zeros((1, 48)))


# -- trained network -------------------------------------------------------------------------
@pytest.mark.slow
def test_fit_reports_holdout_metrics_curve_and_log(
    trained: tuple[SequenceModel, FitReport],
) -> None:
    fitted, report = trained
    for key in ("mae", "rmse", "r2", "mape", "impute_mae", "impute_r2"):
        assert np.isfinite(report.metrics[key]), key
    assert len(report.curve["loss"]) == len(report.curve["val_loss"]) >= 1
    assert 0 < report.rows < 2 * 12 * 24  # the validation tail is not trained on
    assert fitted.training_log.splitlines()[0].split(",") == ["epoch", "loss", "val_loss"]
    assert len(fitted.training_log.splitlines()) == fitted.info["epochs_run"] + 1


@pytest.mark.slow
def test_forecast_has_one_ordered_interval_per_row(
    fitted: SequenceModel, features: np.ndarray
) -> None:
    scores = fitted.predict_batch(features)
    path = fitted.forecast_path(features)
    assert len(scores) == features.shape[0]
    assert scores.lower is not None and scores.upper is not None and scores.value is not None
    assert np.all(scores.lower <= scores.value) and np.all(scores.value <= scores.upper)
    assert path.value.shape == (features.shape[0], HORIZON)
    np.testing.assert_array_equal(path.value[:, -1], scores.value)
    assert np.all(path.lower <= path.upper)


@pytest.mark.slow
def test_nan_means_not_read_and_still_scores(fitted: SequenceModel, features: np.ndarray) -> None:
    rows = np.vstack([features[:3], np.full((1, features.shape[1]), np.nan)])
    scores = fitted.predict_batch(rows)
    alone = fitted.predict_batch(features[:3]).value
    assert scores.value is not None and alone is not None
    assert np.isfinite(scores.value).all()
    np.testing.assert_allclose(scores.value[:3], alone, rtol=1e-6)


@pytest.mark.slow
def test_one_row_scores_like_its_row_in_a_batch(
    fitted: SequenceModel, features: np.ndarray
) -> None:
    batch = fitted.predict_batch(features[:64])
    single = fitted.predict_batch(features[17:18])
    assert batch.value is not None and single.value is not None
    np.testing.assert_allclose(single.value[0], batch.value[17], rtol=1e-5)


@pytest.mark.slow
def test_missing_or_extra_features_are_refused(fitted: SequenceModel, features: np.ndarray) -> None:
    with pytest.raises(FeatureMismatchError):
        fitted.predict_batch(features[:, :-1])
    with pytest.raises(FeatureMismatchError):
        fitted.predict_batch(np.hstack([features, features[:, :1]]))
    with pytest.raises(FeatureMismatchError):
        fitted.impute(np.zeros((3, 8, 2)))


def station_windows(frame: pd.DataFrame, metrics: list[str], seq_len: int) -> np.ndarray:
    """Raw windows of station-0 as the worker's ring buffer holds them, one per reading."""
    buffer = EntityWindow(seq_len, len(metrics))
    windows = []
    for reading in frame[frame["entity_id"] == "station-0"].itertuples(index=False):
        buffer.push([getattr(reading, m) for m in metrics], reading.ts)
        windows.append(buffer.window())
    return np.stack(windows)


@pytest.mark.slow
def test_worker_ring_buffer_rows_equal_history_rows(
    fitted: SequenceModel, history: pd.DataFrame, features: np.ndarray
) -> None:
    windows = station_windows(history, fitted.metrics, fitted.config.seq_len)
    np.testing.assert_array_equal(fitted.features_from_windows(windows), features[:288])
    imputed = fitted.impute(windows[100:140]).value
    np.testing.assert_array_equal(imputed, fitted.impute_rows(features[100:140]).value)


@pytest.mark.slow
def test_inputs_are_not_mutated(fitted: SequenceModel, history: pd.DataFrame) -> None:
    before = history.copy()
    features = fitted.feature_rows(history).matrix
    features_before = features.copy()
    windows = station_windows(history, fitted.metrics, fitted.config.seq_len)
    windows_before = windows.copy()
    fitted.predict_batch(features)
    fitted.forecast_path(features)
    fitted.impute_rows(features)
    fitted.impute(windows)
    np.testing.assert_array_equal(windows, windows_before)
    np.testing.assert_array_equal(features, features_before)
    pd.testing.assert_frame_equal(history, before)


@pytest.mark.slow
def test_imputation_uses_only_the_past_and_present_covariates(
    fitted: SequenceModel, history: pd.DataFrame
) -> None:
    row = 100  # a reading of station-0, the first of the two stations
    frame = history.copy()
    frame.loc[row, METRICS] = [30.0, 48.0, 40.0]

    def imputed(changed: pd.DataFrame) -> float:
        value = fitted.impute_rows(fitted.feature_rows(changed).matrix[row : row + 1]).value
        assert value is not None
        return float(value[0])

    base = imputed(frame)
    future = frame.copy()
    future.loc[row + 1 : 287, METRICS] = 999.0  # everything after t at this station
    future.loc[row, "pm25"] = -500.0  # the target at t itself
    assert imputed(future) == base
    covariate = frame.copy()
    covariate.loc[row, "pm10"] = 200.0
    assert imputed(covariate) != base


@pytest.mark.slow
def test_save_load_predicts_identically(
    fitted: SequenceModel, features: np.ndarray, tmp_path: Path
) -> None:
    names = fitted.save(tmp_path)
    assert sorted(names) == sorted(p.name for p in tmp_path.iterdir())
    assert "training_log.csv" in names and any(n.endswith(".keras") for n in names)
    loaded = SequenceModel.load(tmp_path, fitted.metadata())
    assert loaded.feature_names == fitted.feature_names
    assert loaded.metadata()["info"]["spec"] == fitted.metadata()["info"]["spec"]
    np.testing.assert_array_equal(
        loaded.predict_batch(features).value, fitted.predict_batch(features).value
    )
    np.testing.assert_array_equal(
        loaded.impute_rows(features).value, fitted.impute_rows(features).value
    )
    assert loaded.training_log == fitted.training_log


@pytest.mark.slow
def test_fine_tune_changes_weights_and_keeps_the_scaler(
    fitted: SequenceModel, history: pd.DataFrame, features: np.ndarray, tmp_path: Path
) -> None:
    fitted.save(tmp_path)
    copy = SequenceModel.load(tmp_path, fitted.metadata())
    shifted = history.copy()
    shifted[METRICS] = shifted[METRICS] + 15.0  # a level shift the network must adapt to
    report = copy.fine_tune(shifted)
    assert report.curve["val_loss"]
    assert copy.info["fine_tunes"] == 1 and copy.info["trained_by"] == "fine_tune"
    tuned = tmp_path / "tuned"
    tuned.mkdir()
    copy.save(tuned)
    assert (tuned / "scaler.json").read_text() == (tmp_path / "scaler.json").read_text()
    before, after = fitted.predict_batch(features).value, copy.predict_batch(features).value
    assert before is not None and after is not None
    assert not np.allclose(before, after)


@pytest.mark.slow
def test_scoring_works_when_a_covariate_column_is_absent(
    fitted: SequenceModel, history: pd.DataFrame
) -> None:
    rows = fitted.feature_rows(history.drop(columns=["o3"]))
    assert len(rows.frame) == len(history)
    o3 = [i for i, name in enumerate(fitted.feature_names) if name.startswith("o3_")]
    assert np.isnan(rows.matrix[:, o3]).all()
    scores = fitted.predict_batch(rows.matrix)
    assert scores.value is not None and np.isfinite(scores.value).all()
