"""``driftline train`` and ``driftline score``: round trips on small generated CSVs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from driftline.cli import main
from driftline.generator import generate_air, generate_machines, generate_products, split_labels
from models.csvio import write_demand_csv, write_labels_csv, write_sensor_csv
from models.features import frame_rows
from models.scoring import spec_model
from models.store import ModelStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAST = {
    "anomaly": ("--param", "n_estimators=30", "--param", "window=24"),
    "maintenance": ("--param", "n_estimators=10", "--param", "window=24", "--param", "rolling=[6]"),
    "demand": ("--param", "iterations=40"),
    "sequence": ("--param", "epochs=1", "--param", "seq_len=8", "--param", "units=4"),
}
OUTPUTS = {
    "anomaly": ["entity_id", "ts", "score", "flag", "severity"],
    "maintenance": ["entity_id", "ts", "risk_level", "expected_risk", "urgent", "recommendation"],
    "demand": ["product_id", "ts", "target_ts", "forecast", "lower", "upper"],
}


@pytest.fixture(scope="module")
def csvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("csv")
    machines = generate_machines(entities=2, periods=240, seed=1)
    readings, labels = split_labels(machines)
    paths = {name: root / f"{name}.csv" for name in ("machines", "readings", "labels")}
    write_sensor_csv(machines, paths["machines"])
    write_sensor_csv(readings, paths["readings"])
    write_labels_csv(labels, paths["labels"])
    paths["products"] = root / "products.csv"
    write_demand_csv(generate_products(entities=2, periods=120, seed=1), paths["products"])
    paths["air"] = root / "air.csv"
    write_sensor_csv(generate_air(entities=2, periods=200, seed=1, gap_rate=0.05), paths["air"])
    return paths


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def renamed_csv(source: Path, target: Path, columns: dict[str, str]) -> Path:
    """A copy of the CSV ``source`` at ``target`` with ``columns`` renamed."""
    pd.read_csv(source).rename(columns=columns).to_csv(target, index=False)
    return target


def train_json(store: Path, family: str, csv: Path, *extra: str) -> dict[str, Any]:
    result = invoke(
        "train", family, "--csv", csv, "--store", store, "--json", *FAST[family], *extra
    )
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def score_csv(store: Path, family: str, csv: Path, out: Path, *extra: str) -> pd.DataFrame:
    result = invoke("score", family, "--csv", csv, "--out", out, "--store", store, *extra)
    assert result.exit_code == 0, result.output
    assert "rows/s" in result.stdout
    return pd.read_csv(out)


def test_anomaly_round_trip_scores_like_predict_batch(
    tmp_path: Path, csvs: dict[str, Path]
) -> None:
    store = tmp_path / "store"
    summary = train_json(store, "anomaly", csvs["machines"])
    assert summary["champion"] and summary["version"] == 1 and summary["model"] == "anomaly"
    assert {"f1", "roc_auc"} <= set(summary["metrics"]) and summary["model_bytes"] > 0
    assert Path(summary["plot"]).read_bytes().startswith(PNG_MAGIC)
    scores = score_csv(store, "anomaly", csvs["machines"], tmp_path / "scores.csv")
    assert list(scores.columns) == OUTPUTS["anomaly"]
    champion = ModelStore(store).load("anomaly").model
    history = pd.read_csv(csvs["machines"])
    expected = champion.predict_batch(frame_rows(spec_model(champion).spec, history).matrix)
    np.testing.assert_allclose(scores["score"].to_numpy(), expected.score)
    assert scores["ts"].iloc[0] == history["ts"].iloc[0]  # ISO 8601 UTC kept as written


@pytest.mark.parametrize(("family", "csv"), [("maintenance", "machines"), ("demand", "products")])
def test_round_trip(tmp_path: Path, csvs: dict[str, Path], family: str, csv: str) -> None:
    store = tmp_path / "store"
    summary = train_json(store, family, csvs[csv])
    assert summary["family"] == family and summary["metrics"]["mae"] >= 0.0
    assert Path(summary["plot"]).stat().st_size > 0
    scores = score_csv(store, family, csvs[csv], tmp_path / "out.csv")
    assert list(scores.columns) == OUTPUTS[family]
    assert len(scores) == len(pd.read_csv(csvs[csv]))


@pytest.mark.slow
def test_sequence_round_trip_forecasts_and_fills_gaps(
    tmp_path: Path, csvs: dict[str, Path]
) -> None:
    store = tmp_path / "store"
    summary = train_json(store, "sequence", csvs["air"], "--metric", "pm25")
    assert summary["key"] == "pm25" and "impute_mae" in summary["metrics"]
    assert Path(summary["plot"]).read_bytes().startswith(PNG_MAGIC)
    scores = score_csv(store, "sequence", csvs["air"], tmp_path / "out.csv")  # key resolved
    air = pd.read_csv(csvs["air"])
    missing = air["pm25"].isna().to_numpy()
    assert missing.any()
    assert scores["imputed"].notna().to_numpy().tolist() == missing.tolist()
    assert scores["forecast"].notna().all() and scores["target_ts"].notna().all()


def test_labels_file_joins_the_readings(tmp_path: Path, csvs: dict[str, Path]) -> None:
    summary = train_json(
        tmp_path / "store", "anomaly", csvs["readings"], "--labels", str(csvs["labels"])
    )
    assert summary["metrics"]["f1"] > 0.0


def test_label_col_names_the_column_of_the_labels_file(
    tmp_path: Path, csvs: dict[str, Path]
) -> None:
    path = renamed_csv(csvs["labels"], tmp_path / "labels.csv", {"is_anomaly": "label"})
    summary = train_json(
        tmp_path / "store",
        "anomaly",
        csvs["readings"],
        "--labels",
        str(path),
        "--label-col",
        "label",
    )
    assert summary["metrics"]["f1"] > 0.0


def test_score_reads_the_file_as_train_does(tmp_path: Path, csvs: dict[str, Path]) -> None:
    spaced = tmp_path / "spaced.csv"  # a header written as "entity_id, ts, power, ..."
    lines = csvs["machines"].read_text().splitlines()
    spaced.write_text("\n".join([lines[0].replace(",", ", "), *lines[1:]]) + "\n")
    store, out = tmp_path / "store", tmp_path / "out.csv"
    train_json(store, "anomaly", spaced)
    scores = score_csv(store, "anomaly", spaced, out)
    assert len(scores) == len(lines) - 1


def test_column_mapping_names_come_back_in_the_output(
    tmp_path: Path, csvs: dict[str, Path]
) -> None:
    columns = {"entity_id": "machine", "ts": "time"}
    renamed = renamed_csv(csvs["machines"], tmp_path / "plant.csv", columns)
    store = tmp_path / "store"
    mapping = ("--entity-col", "machine", "--ts-col", "time")
    train_json(store, "anomaly", renamed, *mapping, "--model", "plant")
    out = tmp_path / "out.csv"
    scores = score_csv(store, "anomaly", renamed, out, *mapping, "--model", "plant")
    assert list(scores.columns[:2]) == ["machine", "time"]


def test_human_output_names_version_size_and_plot(tmp_path: Path, csvs: dict[str, Path]) -> None:
    result = invoke(
        "train", "anomaly", "--csv", csvs["machines"], "--store", tmp_path, *FAST["anomaly"]
    )
    assert result.exit_code == 0, result.output
    for text in ("anomaly v1: champion", "f1", "model size", "training.png"):
        assert text in result.stdout


def test_missing_column_is_a_clear_error(tmp_path: Path, csvs: dict[str, Path]) -> None:
    result = invoke("train", "demand", "--csv", csvs["machines"], "--store", tmp_path)
    assert result.exit_code == 1
    assert "column 'product_id' not found" in result.output and "--entity-col" in result.output


def test_a_metric_name_readings_cannot_carry_is_refused_before_training(
    tmp_path: Path, csvs: dict[str, Path]
) -> None:
    path = renamed_csv(csvs["machines"], tmp_path / "named.csv", {"power": "power (kW)"})
    result = invoke("train", "anomaly", "--csv", path, "--store", tmp_path / "store")
    assert result.exit_code == 1, result.output
    assert "power (kW)" in result.output and "--value-col" in result.output
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())


def test_unknown_family_is_refused(tmp_path: Path, csvs: dict[str, Path]) -> None:
    result = invoke("train", "forest", "--csv", csvs["machines"], "--store", tmp_path)
    assert result.exit_code == 2 and "'forest' is not one of" in result.output


def test_unknown_param_and_misplaced_options_are_refused(
    tmp_path: Path, csvs: dict[str, Path]
) -> None:
    unknown = invoke("train", "anomaly", "--csv", csvs["machines"], "--param", "trees=3")
    assert unknown.exit_code == 1 and "unknown parameter(s) ['trees']" in unknown.output
    labels = invoke("train", "demand", "--csv", csvs["products"], "--labels", csvs["labels"])
    assert labels.exit_code == 2 and "--labels applies to" in labels.output
    metric = invoke("train", "demand", "--csv", csvs["products"], "--metric", "quantity")
    assert metric.exit_code == 2 and "--value-col" in metric.output


def test_too_little_data_is_a_clear_error(tmp_path: Path, csvs: dict[str, Path]) -> None:
    short = tmp_path / "short.csv"
    pd.read_csv(csvs["machines"]).head(20).to_csv(short, index=False)
    result = invoke("train", "anomaly", "--csv", short, "--store", tmp_path / "store")
    assert result.exit_code == 1 and "too little data" in result.output


def test_score_without_a_champion_names_the_train_command(
    tmp_path: Path, csvs: dict[str, Path]
) -> None:
    out = tmp_path / "out.csv"
    result = invoke("score", "demand", "--csv", csvs["products"], "--out", out, "--store", tmp_path)
    assert result.exit_code == 1
    assert "driftline train demand" in result.output and not out.exists()


def test_score_refuses_a_model_of_another_family(tmp_path: Path, csvs: dict[str, Path]) -> None:
    train_json(tmp_path, "anomaly", csvs["machines"], "--model", "plant")
    out = tmp_path / "out.csv"
    args = ("--out", out, "--store", tmp_path, "--model", "plant")
    result = invoke("score", "maintenance", "--csv", csvs["machines"], *args)
    assert (
        result.exit_code == 1 and "belongs to the anomaly family, not maintenance" in result.output
    )


def test_integer_time_steps_come_back_as_integers(tmp_path: Path) -> None:
    steps = np.arange(300)
    rng = np.random.default_rng(0)
    values = np.sin(2 * np.pi * steps / 24) + rng.normal(0.0, 0.1, steps.size)
    series = tmp_path / "series.csv"
    pd.DataFrame({"timestamp": steps, "value": values}).to_csv(series, index=False)
    store, out = tmp_path / "store", tmp_path / "out.csv"
    mapping = ("--ts-col", "timestamp", "--entity", "s1")
    train_json(store, "anomaly", series, *mapping)
    scores = score_csv(store, "anomaly", series, out, *mapping)
    assert list(scores.columns) == ["timestamp", "score", "flag", "severity"]
    assert scores["timestamp"].tolist() == steps.tolist()
