"""Synthetic generators and drift injection: determinism, layout, labels, gaps, drift."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from driftline.commands.generate import generate
from driftline.generator import (
    METRICS,
    POLLUTANTS,
    GeneratorError,
    generate_air,
    generate_machines,
    generate_products,
    inject_drift,
    split_labels,
)
from driftline.generator.machines import PRECURSOR_STEPS
from driftline.generator.series import recursive_filter
from models.frames import ENTITY, IS_ANOMALY, PRICE, PRODUCT, PROMO, QUANTITY, RISK, TS

Generator = Callable[..., pd.DataFrame]
GENERATORS: list[tuple[Generator, str]] = [
    (generate_machines, ENTITY),
    (generate_products, PRODUCT),
    (generate_air, ENTITY),
]


@pytest.fixture(scope="module")
def machines() -> pd.DataFrame:
    return generate_machines(entities=8, periods=1500, seed=3)


@pytest.mark.parametrize(("make", "entity"), GENERATORS)
def test_same_seed_gives_identical_frames(make: Generator, entity: str) -> None:
    first = make(entities=3, periods=200, seed=11)
    pd.testing.assert_frame_equal(first, make(entities=3, periods=200, seed=11))
    assert not first.equals(make(entities=3, periods=200, seed=12))


@pytest.mark.parametrize(("make", "entity"), GENERATORS)
def test_frames_have_the_canonical_layout(make: Generator, entity: str) -> None:
    frame = make(entities=4, periods=100, seed=0)
    assert len(frame) == 400
    assert list(frame.columns[:2]) == [entity, TS]
    assert str(frame[TS].dtype) == "datetime64[ns, UTC]"
    assert frame[TS].iloc[0] == pd.Timestamp("2026-01-01T00:00:00Z")
    ordered = frame.sort_values([entity, TS], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, ordered)
    assert frame[entity].nunique() == 4
    assert not frame.duplicated([entity, TS]).any()


def test_start_and_freq_are_honoured() -> None:
    frame = generate_air(entities=1, periods=5, freq="30min", start="2025-06-01T12:00:00+02:00")
    expected = pd.date_range("2025-06-01T10:00:00Z", periods=5, freq="30min")
    assert list(frame[TS]) == list(expected)


@pytest.mark.parametrize("phi", [0.5, 0.99, 0.9995])
def test_recursive_filter_matches_the_recursion(phi: float) -> None:
    shocks = np.random.default_rng(0).normal(size=(2, 5000))
    expected = np.zeros_like(shocks)
    state = np.zeros(2)
    for t in range(shocks.shape[1]):
        state = phi * state + shocks[:, t]
        expected[:, t] = state
    np.testing.assert_allclose(recursive_filter(shocks, phi), expected, rtol=1e-9, atol=1e-9)


def test_bad_sizes_and_freq_are_refused() -> None:
    with pytest.raises(GeneratorError, match="entities and periods"):
        generate_machines(entities=0)
    with pytest.raises(GeneratorError, match="freq"):
        generate_air(freq="fortnightish")


def test_machine_columns_and_labels(machines: pd.DataFrame) -> None:
    assert list(machines.columns) == [ENTITY, TS, *METRICS, IS_ANOMALY, RISK]
    assert set(machines[IS_ANOMALY].unique()) == {0, 1}
    assert set(machines[RISK].unique()) == {0, 1, 2, 3}
    assert (machines[list(METRICS)] >= 0).all().all()


@pytest.mark.parametrize("rate", [0.02, 0.05, 0.08])
def test_anomaly_rate_is_near_the_parameter(rate: float) -> None:
    frame = generate_machines(entities=10, periods=1500, seed=1, anomaly_rate=rate)
    assert frame[IS_ANOMALY].mean() == pytest.approx(rate, rel=0.15)


def test_zero_anomaly_rate_gives_no_labels() -> None:
    frame = generate_machines(entities=2, periods=300, anomaly_rate=0.0)
    assert frame[IS_ANOMALY].sum() == 0
    assert frame[RISK].sum() == 0


def test_too_high_anomaly_rate_is_refused() -> None:
    with pytest.raises(GeneratorError, match=r"anomaly_rate 0\.5"):
        generate_machines(entities=2, periods=100, anomaly_rate=0.5)


def test_anomalies_stand_out_from_normal_readings(machines: pd.DataFrame) -> None:
    grouped = machines.groupby(ENTITY)[list(METRICS)]
    z = ((machines[list(METRICS)] - grouped.transform("mean")) / grouped.transform("std")).abs()
    strongest = z.max(axis=1)
    anomalous = machines[IS_ANOMALY] == 1
    assert strongest[anomalous].median() > 3.0
    assert strongest[~anomalous].quantile(0.9) < 2.5


def test_risk_rises_in_the_readings_before_a_failure(machines: pd.DataFrame) -> None:
    risk = machines[RISK].to_numpy().reshape(8, 1500)
    anomaly = machines[IS_ANOMALY].to_numpy().reshape(8, 1500)
    rows, cols = np.nonzero((risk == 1) & (np.roll(risk, 1, axis=1) == 0))
    assert len(rows) > 10
    for row, col in zip(rows, cols, strict=True):
        window = risk[row, col : col + PRECURSOR_STEPS]
        assert list(window) == sorted(window)  # never falls while a failure approaches
        assert anomaly[row, col + PRECURSOR_STEPS] == 1  # and the failure follows
    normal = machines[IS_ANOMALY] == 0
    near = machines.loc[normal & (machines[RISK] == 3), "vibration"].mean()
    calm = machines.loc[normal & (machines[RISK] == 0), "vibration"].mean()
    assert near > calm + 0.3  # vibration creeps up before a failure


def test_split_labels_separates_readings_and_labels(machines: pd.DataFrame) -> None:
    sensor, labels = split_labels(machines)
    assert list(sensor.columns) == [ENTITY, TS, *METRICS]
    assert list(labels.columns) == [ENTITY, TS, IS_ANOMALY, RISK]
    assert labels[IS_ANOMALY].sum() == machines[IS_ANOMALY].sum()


def test_products_have_counts_prices_and_promotions() -> None:
    frame = generate_products(entities=6, periods=730, seed=2)
    assert list(frame.columns) == [PRODUCT, TS, QUANTITY, PRICE, PROMO]
    assert (frame[QUANTITY] >= 0).all()
    assert (frame[QUANTITY] == frame[QUANTITY].round()).all()
    assert frame[PROMO].mean() == pytest.approx(0.1, abs=0.03)
    by_promo = frame.groupby([PRODUCT, PROMO])
    assert (by_promo[PRICE].mean().unstack()[1] < by_promo[PRICE].mean().unstack()[0]).all()
    assert (by_promo[QUANTITY].mean().unstack()[1] > by_promo[QUANTITY].mean().unstack()[0]).all()
    assert frame[QUANTITY].mean() > 50  # large enough for a meaningful percentage error


def test_products_have_weekly_and_hourly_seasonality() -> None:
    daily = generate_products(entities=3, periods=364, seed=4, promo_rate=0.0)
    weekday = daily.groupby([PRODUCT, daily[TS].dt.day_of_week])[QUANTITY].mean().unstack()
    assert ((weekday.max(axis=1) / weekday.min(axis=1)) > 1.1).all()
    hourly = generate_products(entities=2, periods=24 * 28, freq="1h", seed=4, promo_rate=0.0)
    by_hour = hourly.groupby(hourly[TS].dt.hour)[QUANTITY].mean()
    assert by_hour[13] > 2 * by_hour[1]


def test_air_has_diurnal_cycles_and_correlated_pollutants() -> None:
    frame = generate_air(entities=2, periods=24 * 28, seed=5, gap_rate=0.0)
    assert list(frame.columns) == [ENTITY, TS, *POLLUTANTS]
    assert frame[list(POLLUTANTS)].notna().all().all()
    by_hour = frame.groupby(frame[TS].dt.hour)[list(POLLUTANTS)].mean()
    assert 12 <= by_hour["o3"].idxmax() <= 18
    assert by_hour.loc[8, "no2"] > 1.5 * by_hour.loc[3, "no2"]
    assert frame["pm25"].corr(frame["pm10"]) > 0.7


def test_air_gaps_include_single_pollutant_dropouts() -> None:
    frame = generate_air(entities=3, periods=24 * 60, seed=6, gap_rate=0.05)
    values = frame[list(POLLUTANTS)]
    assert values.isna().to_numpy().mean() == pytest.approx(0.05, abs=0.02)
    assert values.isna().any().all()  # every pollutant has gaps
    missing = values.isna().to_numpy()
    same_entity = (frame[ENTITY] == frame[ENTITY].shift(2)).to_numpy()
    runs = missing & np.roll(missing, 1, axis=0) & np.roll(missing, 2, axis=0)
    run_rows = np.flatnonzero(runs.any(axis=1) & same_entity)
    assert len(run_rows) > 0  # multi-hour dropouts exist
    others_present = [(~missing[row]).sum() for row in run_rows]
    assert np.median(others_present) == len(POLLUTANTS) - 1  # the others keep reporting


DRIFT_AT = "2026-01-20T00:00:00Z"


@pytest.fixture(scope="module")
def calm_machines() -> pd.DataFrame:
    return generate_machines(entities=3, periods=24 * 40, seed=8, anomaly_rate=0.0)


def _split(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    before = frame[TS] < pd.Timestamp(DRIFT_AT)
    return before, ~before


@pytest.mark.parametrize("kind", ["level", "trend", "seasonality", "variance"])
def test_drift_leaves_history_before_start_untouched(
    calm_machines: pd.DataFrame, kind: str
) -> None:
    drifted = inject_drift(calm_machines, "power", kind, DRIFT_AT, 1.5)
    before, after = _split(calm_machines)
    pd.testing.assert_frame_equal(drifted[before], calm_machines[before])
    assert not np.allclose(drifted.loc[after, "power"], calm_machines.loc[after, "power"])
    assert calm_machines.loc[after, "power"].equals(
        generate_machines(entities=3, periods=24 * 40, seed=8, anomaly_rate=0.0).loc[after, "power"]
    )  # the input frame itself is not modified


def test_level_drift_shifts_the_mean_after_start(calm_machines: pd.DataFrame) -> None:
    drifted = inject_drift(calm_machines, "temperature", "level", DRIFT_AT, 2.0)
    before, after = _split(calm_machines)
    shift = (
        drifted.loc[after, "temperature"].mean() - calm_machines.loc[after, "temperature"].mean()
    )
    sd = calm_machines[before].groupby(ENTITY)["temperature"].std().mean()
    assert shift == pytest.approx(2.0 * sd, rel=0.05)


def test_trend_drift_grows_over_time(calm_machines: pd.DataFrame) -> None:
    drifted = inject_drift(calm_machines, "power", "trend", DRIFT_AT, 3.0)
    change = (drifted["power"] - calm_machines["power"]).groupby(calm_machines[ENTITY])
    assert (change.apply(lambda c: c.iloc[-24:].mean() > c.iloc[-200:-176].mean() > 0)).all()


def test_variance_and_seasonality_drift(calm_machines: pd.DataFrame) -> None:
    _, after = _split(calm_machines)
    noisy = inject_drift(calm_machines, "vibration", "variance", DRIFT_AT, 2.0)

    def spread(frame: pd.DataFrame) -> pd.Series:
        return frame[after].groupby(ENTITY)["vibration"].std()

    assert (spread(noisy) > 1.5 * spread(calm_machines)).all()
    seasonal = inject_drift(calm_machines, "temperature", "seasonality", DRIFT_AT, 1.0)

    def amplitude(frame: pd.DataFrame) -> float:
        hourly = frame[after].groupby(frame[TS].dt.hour)["temperature"].mean()
        return float(hourly.max() - hourly.min())

    assert amplitude(seasonal) == pytest.approx(2 * amplitude(calm_machines), rel=0.2)


def test_drift_of_chosen_entities_keeps_counts_whole() -> None:
    demand = generate_products(entities=3, periods=120, seed=9)
    drifted = inject_drift(demand, QUANTITY, "variance", "2026-02-15", 3.0, ["product-001"])
    changed = drifted[QUANTITY] != demand[QUANTITY]
    assert set(drifted.loc[changed, PRODUCT]) == {"product-001"}
    assert (drifted[QUANTITY] >= 0).all()
    assert (drifted[QUANTITY] == drifted[QUANTITY].round()).all()


def test_drift_refuses_bad_requests(calm_machines: pd.DataFrame) -> None:
    with pytest.raises(GeneratorError, match="unknown drift kind"):
        inject_drift(calm_machines, "power", "wobble", DRIFT_AT, 1.0)
    with pytest.raises(GeneratorError, match="no column 'speed'"):
        inject_drift(calm_machines, "speed", "level", DRIFT_AT, 1.0)
    with pytest.raises(GeneratorError, match="machine-999"):
        inject_drift(calm_machines, "power", "level", DRIFT_AT, 1.0, ["machine-999"])
    with pytest.raises(GeneratorError, match="not a numeric metric"):
        inject_drift(calm_machines, ENTITY, "level", DRIFT_AT, 1.0)
    for outside in ("2100-01-01", "1990-01-01"):  # no readings after it, or none before
        with pytest.raises(GeneratorError, match="outside the series"):
            inject_drift(calm_machines, "power", "level", outside, 1.0)


def test_generate_command_writes_readings_and_labels(tmp_path: Path) -> None:
    out, labels = tmp_path / "machines.csv", tmp_path / "labels.csv"
    args = ["machines", "--out", str(out), "--entities", "2", "--periods", "100"]
    result = CliRunner().invoke(generate, [*args, "--labels", str(labels), "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "wrote 200 rows (2 machines x 100 periods)" in result.output
    assert "wrote 200 label rows" in result.output
    assert out.read_text().splitlines()[0] == "entity_id,ts," + ",".join(METRICS)
    assert labels.read_text().splitlines()[0] == "entity_id,ts,is_anomaly,risk"


def test_generate_command_applies_drift(tmp_path: Path) -> None:
    plain, drifted = tmp_path / "plain.csv", tmp_path / "drifted.csv"
    base = ["products", "--entities", "2", "--periods", "60"]
    drift = ["--drift", "level", "--drift-at", "2026-02-01", "--drift-magnitude", "3"]
    assert CliRunner().invoke(generate, [*base, "--out", str(plain)]).exit_code == 0
    assert CliRunner().invoke(generate, [*base, *drift, "--out", str(drifted)]).exit_code == 0
    before, after = pd.read_csv(plain), pd.read_csv(drifted)
    late = before["ts"] >= "2026-02-01"
    assert (after.loc[late, QUANTITY] > before.loc[late, QUANTITY]).all()
    assert after.loc[~late, QUANTITY].equals(before.loc[~late, QUANTITY])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["air", "--anomaly-rate", "0.1"], "--anomaly-rate applies to machines only"),
        (["products", "--labels", "l.csv"], "--labels applies to machines only"),
        (["air", "--drift", "level"], "--drift needs --drift-at"),
    ],
)
def test_generate_command_rejects_misplaced_options(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(generate, [*args, "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert message in result.output
