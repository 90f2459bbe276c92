"""Feature code: batch rows equal the worker's incremental rows; NaN rules; specs."""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.base import FeatureMismatchError
from models.features import (
    UNKNOWN_PRODUCT,
    DemandSpec,
    EntityWindow,
    FeatureSpec,
    FeatureSpecError,
    SensorSpec,
    SeriesSpec,
    fill_missing,
    fill_values,
    frame_rows,
    infer_step_seconds,
    reading_vector,
    spec_from_dict,
    spec_from_metadata,
    stats,
    utc_naive,
)
from models.features.sensor import SENSOR_FEATURES
from models.features.stats import Z_CLIP, calendar_block, nan_median

ALL_SENSOR = SensorSpec(
    ("power", "temperature", "vibration"),
    window=12,
    lags=(1, 3),
    rolling=(3, 6),
    features=SENSOR_FEATURES,
    calendar=("hour", "dow", "dom", "month"),
)
# one spec of each kind
EVERY_KIND: list[FeatureSpec] = [
    ALL_SENSOR,
    DemandSpec.for_step(3600.0, price=True, products={"a": 1}),
    SeriesSpec("quantity", 7, entity="product_id"),
]


def with_gaps(frame: pd.DataFrame, columns: list[str], seed: int = 0) -> pd.DataFrame:
    """Missing values, missing readings, a replayed reading, and shuffled rows."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for column in columns:
        out[column] = out[column].astype(np.float64)
        out.loc[rng.random(len(out)) < 0.1, column] = np.nan
    out.loc[out.index[40:55], columns[0]] = np.nan  # a gap longer than some windows
    out = out[rng.random(len(out)) > 0.1]  # readings that never arrived
    replay = out.iloc[[5, 30]].assign(**{columns[0]: -999.0})  # same (entity, ts): ignored
    return pd.concat([out, replay]).sample(frac=1.0, random_state=seed)


def incremental(spec: FeatureSpec, history: pd.DataFrame) -> np.ndarray:
    """Rows computed the worker's way: one reading at a time through EntityWindow buffers.

    Readings arrive in time order per entity, entities interleaved; a replay arrives late.
    """
    windows: dict[str, EntityWindow] = {}
    rows: dict[tuple[str, pd.Timestamp], np.ndarray] = {}
    ordered = history.assign(_order=np.arange(len(history))).sort_values(["ts", "_order"])
    for record in ordered.to_dict("records"):
        entity = str(record[spec.entity])
        window = windows.setdefault(entity, EntityWindow.for_spec(spec))
        if not window.push(reading_vector(spec, record), record["ts"]):
            continue
        stamp = utc_naive(pd.Series([record["ts"]]))
        rows[(entity, record["ts"])] = spec.rows(window.window()[np.newaxis], stamp, [entity])[0]
    keys = frame_rows(spec, history).frame
    return np.array([rows[(e, t)] for e, t in zip(keys[spec.entity], keys["ts"], strict=True)])


@pytest.mark.parametrize("spec_name", ["sensor", "sensor_default", "demand", "series"])
def test_batch_rows_equal_incremental_rows_on_history_with_gaps(
    spec_name: str, model_data: Any
) -> None:
    if spec_name.startswith("sensor"):
        history = with_gaps(model_data.machine_history(periods=160), ["power", "temperature"])
        spec: FeatureSpec = ALL_SENSOR if spec_name == "sensor" else SensorSpec(("power",))
    elif spec_name == "series":
        history = with_gaps(model_data.demand_history(periods=90), ["quantity"])
        spec = SeriesSpec("quantity", season=7, horizon=2, entity="product_id")
    else:
        history = with_gaps(model_data.demand_history(periods=90), ["quantity", "price"])
        spec = DemandSpec.for_step(86400.0, horizon=2, price=True, promo=True)
        spec = spec.with_products(["product-1", "product-0"])  # product-2 stays unknown
    batch = frame_rows(spec, history)
    assert batch.matrix.shape == (len(batch.frame), len(spec.names()))
    assert np.isfinite(batch.matrix).any(axis=0).all()  # every feature is computed somewhere
    np.testing.assert_allclose(incremental(spec, history), batch.matrix, rtol=1e-12, atol=1e-12)


def test_frame_rows_drop_replayed_readings_keep_the_first_and_count_depth() -> None:
    spec = SensorSpec(("x",), window=3, features=("value",))
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    history = pd.DataFrame(
        {
            "entity_id": ["b", "a", "a", "a", "b"],
            "ts": [ts, ts, ts + pd.Timedelta("1h"), ts, ts + pd.Timedelta("1h")],
            "x": [10.0, 1.0, 2.0, 99.0, 20.0],
        }
    )
    before = history.copy()
    rows = frame_rows(spec, history)
    assert rows.frame["entity_id"].tolist() == ["a", "a", "b", "b"]
    assert rows.matrix[:, 0].tolist() == [1.0, 2.0, 10.0, 20.0]
    assert rows.depth.tolist() == [1, 2, 1, 2]
    assert rows.warm(2).tolist() == [False, True, False, True]
    pd.testing.assert_frame_equal(history, before)


def test_missing_values_are_carried_forward_inside_the_window_only() -> None:
    spec = SensorSpec(("x",), window=3, lags=(1,), features=("value", "lag"))
    windows = np.array([[[np.nan], [1.0], [np.nan]], [[np.nan], [np.nan], [np.nan]]])
    before = windows.copy()
    rows = spec.rows(windows, np.array(["2024-01-01"] * 2, "datetime64[ns]"), ["e", "e"])
    assert rows[0].tolist() == [1.0, 1.0]  # carried from the reading before
    assert np.isnan(rows[1]).all()  # nothing in the window: nothing carried from before it
    np.testing.assert_array_equal(windows, before)


@pytest.mark.parametrize("spec", EVERY_KIND, ids=["sensor", "demand", "series"])
def test_full_windows_are_read_in_place_and_never_written(spec: FeatureSpec) -> None:
    """Windows without gaps are not copied before the features read them (the worker's
    steady state), so no spec may write into them: read-only windows raise on a write."""
    rng = np.random.default_rng(4)
    windows = rng.uniform(1.0, 9.0, size=(6, spec.history_needed, len(spec.inputs)))
    before = windows.copy()
    windows.flags.writeable = False
    stamps = np.array(["2024-01-01"] * 6, "datetime64[ns]")
    rows = spec.rows(windows, stamps, ["a"] * 6)
    assert rows.shape == (6, len(spec.names())) and np.isfinite(rows).all()
    np.testing.assert_array_equal(windows, before)
    assert stats.forward_fill(windows) is windows
    gappy = before.copy()
    gappy[:, 1, 0] = np.nan
    filled = stats.forward_fill(gappy)
    assert filled is not gappy and np.isnan(gappy[:, 1, 0]).all()
    np.testing.assert_array_equal(filled[:, 1, 0], before[:, 0, 0])


def test_a_value_is_never_carried_beyond_the_window() -> None:
    spec = SensorSpec(("x",), window=3, features=("value",))
    window = EntityWindow.for_spec(spec)
    values = []
    for hour, x in enumerate([5.0, np.nan, np.nan, np.nan]):
        window.push([x], pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=hour))
        stamp = np.array(["2024-01-01"], "datetime64[ns]")
        values.append(spec.rows(window.window()[np.newaxis], stamp, ["e"])[0, 0])
    assert values[:3] == [5.0, 5.0, 5.0] and np.isnan(values[3])


def test_statistics_of_empty_or_thin_windows_are_nan_without_warnings() -> None:
    spec = SensorSpec(("x", "y"), window=4, rolling=(2,), features=SENSOR_FEATURES)
    windows = np.full((2, 4, 2), np.nan)
    windows[1, -1, :] = [3.0, 4.0]  # a single reading: a value and a mean, no spread
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = spec.rows(windows, np.array(["2024-01-01"] * 2, "datetime64[ns]"), ["e", "e"])
    got = dict(zip(spec.names(), rows[1], strict=True))
    assert np.isnan(rows[0]).all()
    assert got["x"] == 3.0 and got["x_mean2"] == 3.0 and got["y_lag1"] != got["y_lag1"]
    assert np.isnan([got["x_std2"], got["x_z2"], got["x_rz"], got["x_slope"]]).all()


def test_robust_z_flags_a_spike_and_ignores_an_earlier_one() -> None:
    spec = SensorSpec(("x",), window=12, rolling=(3,), features=("z", "rz"))
    rng = np.random.default_rng(0)
    base = 10.0 + rng.normal(0, 0.1, (2, 12, 1))
    base[0, -1, 0] += 5.0  # spike now
    base[1, 3, 0] += 50.0  # spike earlier in the window, normal now
    rows = spec.rows(base, np.array(["2024-01-01"] * 2, "datetime64[ns]"), ["e", "e"])
    z3, rz = rows[:, 0], rows[:, 1]
    assert rz[0] > 10 and z3[0] > 10
    assert abs(rz[1]) < 4


def test_cross_metric_deviation_separates_one_metric_from_the_whole_machine() -> None:
    spec = SensorSpec(("a", "b", "c"), window=40, features=("rz", "crz"))
    rng = np.random.default_rng(1)
    # the same history for the three metrics, so their typical level and spread agree
    windows = np.repeat(100.0 + rng.normal(0, 1.0, (2, 40, 1)), 3, axis=2)
    windows[0, -1, :] += 8.0  # everything busier together
    windows[1, -1, 0] += 8.0  # one metric alone
    rows = spec.rows(windows, np.array(["2024-01-01"] * 2, "datetime64[ns]"), ["e", "e"])
    got = [dict(zip(spec.names(), r, strict=True)) for r in rows]
    assert min(got[0]["a_rz"], got[0]["b_rz"], got[0]["c_rz"]) > 3
    assert got[0]["a_crz"] == got[0]["b_crz"] == 0.0
    assert got[1]["a_crz"] == pytest.approx(got[1]["a_rz"] - got[1]["b_rz"]) and got[1]["a_crz"] > 3


def test_a_constant_metric_gives_finite_clipped_scores() -> None:
    spec = SensorSpec(("x",), window=5, rolling=(2,), features=("z", "rz", "diff"))
    windows = np.array([[[7.0], [7.0], [7.0], [7.0], [7.0]], [[7.0], [7.0], [7.0], [7.0], [9.0]]])
    rows = spec.rows(windows, np.array(["2024-01-01"] * 2, "datetime64[ns]"), ["e", "e"])
    assert rows[0].tolist() == [0.0, 0.0, 0.0]
    assert rows[1].tolist() == [Z_CLIP, Z_CLIP, Z_CLIP]


def test_demand_features_describe_the_target_and_code_products() -> None:
    spec = DemandSpec(86400.0, lags=(1, 2), rolling=(2,), level_window=2, calendar=("dow",))
    spec = spec.with_products(["b", "a"])
    assert spec.products == {"a": 1, "b": 2}
    assert spec.with_products(["c", "a"]).products == {"a": 1, "b": 2, "c": 3}
    windows = np.array([[[10.0], [30.0]], [[10.0], [30.0]]])
    monday = np.array(["2024-01-01"] * 2, "datetime64[ns]")  # a Monday
    rows = spec.rows(windows, monday, ["b", "new"])
    got = dict(zip(spec.names(), rows[0], strict=True))
    level = np.log1p(20.0)
    assert got["level"] == pytest.approx(level)
    assert got["lag1"] == pytest.approx(np.log1p(30.0) - level)  # horizon 1: lag 1 is now
    assert got["lag2"] == pytest.approx(np.log1p(10.0) - level)
    assert got["cal_dow"] == 1.0  # the target day, Tuesday
    assert rows[:, -1].tolist() == [2.0, float(UNKNOWN_PRODUCT)]
    # entities of any type are read as their text, as a CSV's product ids are
    numbered = DemandSpec(86400.0).with_products(["7", "12"])  # codes in text order: "12" < "7"
    codes = numbered.product_codes(pd.Series([12, "7", 7.0, None]))
    assert codes.tolist() == [1.0, 2.0, float(UNKNOWN_PRODUCT), float(UNKNOWN_PRODUCT)]


def test_calendar_fields_equal_pandas_over_the_whole_time_range() -> None:
    """Hour, weekday, day and month from datetime64 units, before 1970 and for NaT too."""
    rng = np.random.default_rng(3)
    ns = rng.integers(-(2**63) + 1, 2**63 - 1, 50_000, dtype=np.int64)
    edges = ["1969-12-31T23:59:59.999999999", "1970-01-01", "2024-02-29T23:00", "1900-03-01"]
    ts = np.concatenate([ns.view("datetime64[ns]"), np.array(edges, "datetime64[ns]")])
    ts[::97] = np.datetime64("NaT")
    index = pd.DatetimeIndex(ts)
    expected = np.column_stack([index.hour, index.day_of_week, index.day, index.month])
    got = calendar_block(ts, ("hour", "dow", "dom", "month"))
    np.testing.assert_array_equal(got, expected.astype(np.float64))
    assert got[-4:].tolist() == [[23, 2, 31, 12], [0, 3, 1, 1], [23, 3, 29, 2], [0, 3, 1, 3]]
    assert calendar_block(ts, ()).shape == (len(ts), 0)


def test_promo_run_counts_readings_of_the_current_promotion() -> None:
    spec = DemandSpec(86400.0, lags=(1,), rolling=(4,), level_window=4, promo=True)
    promo = np.array([[0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=np.float64)
    windows = np.stack([np.full((3, 4), 5.0), promo], axis=2)
    rows = spec.rows(windows, np.array(["2024-01-01"] * 3, "datetime64[ns]"), ["p"] * 3)
    got = rows[:, spec.names().index("promo_run")]
    assert got.tolist() == [3.0, 4.0, 0.0]


@pytest.mark.parametrize(
    ("step", "lags", "needed"),
    [
        (3600.0, (1, 2, 3, 24, 168), 168),
        (86400.0, (1, 2, 3, 7, 14, 28), 28),
        (604800.0, (1, 2, 3, 4, 52), 52),
    ],
)
def test_demand_defaults_follow_the_sampling_step(
    step: float, lags: tuple[int, ...], needed: int
) -> None:
    spec = DemandSpec.for_step(step)
    assert spec.lags == lags
    assert spec.history_needed == needed


def test_series_spec_reads_the_seasonal_value_for_the_target() -> None:
    windows = np.arange(14, dtype=np.float64).reshape(1, 14, 1)
    ts = np.array(["2024-01-01"], "datetime64[ns]")
    one = SeriesSpec("x", season=7, horizon=1)
    assert one.history_needed == 14
    assert one.rows(windows, ts, ["e"])[0].tolist() == [7.0, 13.0, 0.0]  # 14 - 7, last, spread
    nine = SeriesSpec("x", season=7, horizon=9)  # 14 back from the target: 5 back from now
    assert nine.rows(windows, ts, ["e"])[0, 0] == 8.0


@pytest.mark.parametrize("spec", EVERY_KIND, ids=["sensor", "demand", "series"])
def test_specs_round_trip_through_json_metadata(spec: FeatureSpec) -> None:
    metadata = json.loads(json.dumps({"family": "x", "info": {"spec": spec.to_dict()}}))
    assert spec_from_metadata(metadata) == spec
    assert spec_from_dict(spec.to_dict()).names() == spec.names()


@pytest.mark.parametrize(
    "build",
    [
        lambda: SensorSpec(("x",), window=4, lags=(4,), features=("lag",)),
        lambda: SensorSpec((), window=4),
        lambda: SensorSpec(("x",), features=("bogus",)),
        lambda: DemandSpec(3600.0, horizon=2, lags=(1, 2)),
        lambda: DemandSpec(3600.0, products={"a": 0}),
        lambda: SeriesSpec("x", season=0),
        lambda: spec_from_dict({"kind": "nope"}),
        lambda: spec_from_dict({"kind": "sensor", "metrics": ["x"], "bogus": 1}),
        lambda: spec_from_metadata({"family": "x", "info": {}}),
    ],
)
def test_inconsistent_specs_raise_a_spec_error(build: Any) -> None:
    with pytest.raises(FeatureSpecError):
        build()


def test_frame_without_an_input_column_is_a_feature_mismatch() -> None:
    frame = pd.DataFrame({"entity_id": ["a"], "ts": ["2024-01-01"], "power": [1.0]})
    with pytest.raises(FeatureMismatchError, match="temperature"):
        frame_rows(SensorSpec(("power", "temperature")), frame)


def test_entity_window_keeps_the_latest_readings_in_order_and_ignores_replays() -> None:
    window = EntityWindow(length=3, width=2)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    assert window.last_ts is None and len(window) == 0
    for hour in range(4):
        assert window.push([hour, -hour], start + pd.Timedelta(hours=hour))
    assert not window.push([9.0, 9.0], start + pd.Timedelta(hours=2))  # late replay
    assert window.window().tolist() == [[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]]
    assert len(window) == 3 and window.last_ts == start + pd.Timedelta(hours=3)


def test_reading_vector_orders_inputs_and_marks_absent_values() -> None:
    spec = SensorSpec(("a", "b", "c"))
    got = reading_vector(spec, {"c": 3.0, "a": None, "zzz": 1.0})
    assert np.isnan(got[:2]).all() and got[2] == 3.0


def test_fill_values_are_column_medians_and_fill_only_gaps() -> None:
    matrix = np.array([[1.0, np.nan, np.inf], [3.0, np.nan, 2.0], [np.nan, np.nan, 4.0]])
    fill = fill_values(matrix)
    assert fill.tolist() == [2.0, 0.0, 3.0]
    filled = fill_missing(matrix, fill)
    assert filled.tolist() == [[1.0, 0.0, 3.0], [3.0, 0.0, 2.0], [2.0, 0.0, 4.0]]
    assert np.isnan(matrix[2, 0])  # the input is left alone


def test_nan_median_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(50, 9, 4))
    values[rng.random(values.shape) < 0.4] = np.nan
    values[0, :, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(values, axis=1)
    np.testing.assert_allclose(nan_median(values), expected, equal_nan=True)
    for length in (1, 8, 9, 72):  # complete windows take the partial sort: the same values
        complete = rng.normal(size=(30, length, 5))
        np.testing.assert_array_equal(nan_median(complete), np.median(complete, axis=1))


def test_infer_step_seconds_uses_the_median_spacing_within_entities() -> None:
    ts = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 03:00"], utc=True)
    frame = pd.DataFrame({"entity_id": ["a", "a", "a"], "ts": ts})
    frame = pd.concat([frame, frame.assign(entity_id="b")])
    assert infer_step_seconds(frame, "entity_id") == 5400.0  # median of 1 h, 2 h, 1 h, 2 h
    assert np.isnan(infer_step_seconds(frame.iloc[:1], "entity_id"))


@pytest.mark.parametrize("shape", [(20, 5, 1), (20, 1, 5), (20, 47, 5), (20, 48)])
def test_medians_leave_the_windows_they_read_as_they_were(shape: tuple[int, ...]) -> None:
    """The medians partition a copy: a caller's windows (crz reads the rz block, already
    contiguous) keep their order."""
    windows = np.random.default_rng(2).normal(size=shape)
    before = windows.copy()
    stats.nan_median(windows)
    stats.median_mad(windows)
    np.testing.assert_array_equal(windows, before)


def test_a_window_of_infinities_keeps_an_infinite_spread() -> None:
    """inf - inf is NaN: the MAD of deviations from an infinite median skips them."""
    window = np.array([np.inf, np.inf, np.inf, 1.0, 2.0]).reshape(1, 5, 1)
    with np.errstate(invalid="ignore"):
        center, sigma = stats.median_mad(window)
    assert center.tolist() == [[np.inf]] and sigma.tolist() == [[np.inf]]
