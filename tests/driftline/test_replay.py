"""driftline replay / produce publish readings that come back decoded and in order."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from topic_reader import read_topic

from driftline.cli import main
from driftline.generator import generate_machines, generate_products
from events import codec_for
from events.topics import READINGS_DEMAND, READINGS_SENSOR
from models.csvio import write_sensor_csv


def test_replay_sensor_csv_keeps_per_entity_order(
    kafka_bootstrap: str, unique_topic: Any, tmp_path: Path
) -> None:
    frame = generate_machines(entities=3, periods=40, seed=3)
    path = tmp_path / "machines.csv"
    write_sensor_csv(frame, path)
    topic = unique_topic("replay-sensor", partitions=3)

    result = CliRunner().invoke(
        main, ["replay", "--csv", str(path), "--topic", topic, "--bootstrap", kafka_bootstrap]
    )
    assert result.exit_code == 0, result.output
    assert "published 120 readings" in result.output

    records = read_topic(kafka_bootstrap, topic, 120)
    codec = codec_for(READINGS_SENSOR)
    per_entity: dict[str, list[Any]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in records:
        reading = codec.decode(record.value())
        per_entity[reading.entity_id].append(reading.ts)
        partitions[reading.entity_id].add(record.partition())
    assert sum(map(len, per_entity.values())) == 120
    assert all(times == sorted(times) for times in per_entity.values())
    assert all(len(p) == 1 for p in partitions.values())


def test_replay_demand_with_mapping(
    kafka_bootstrap: str, unique_topic: Any, tmp_path: Path
) -> None:
    frame = generate_products(entities=2, periods=10, seed=1)
    frame = frame.rename(columns={"product_id": "sku", "quantity": "sold"})
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    topic = unique_topic("replay-demand")
    args = ["replay", "--csv", str(path), "--topic", topic, "--format", "demand"]
    args += ["--entity-col", "sku", "--value-col", "sold", "--bootstrap", kafka_bootstrap]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    records = read_topic(kafka_bootstrap, topic, 20)
    decoded = [codec_for(READINGS_DEMAND).decode(r.value()) for r in records]
    assert sorted((d.product_id, d.quantity) for d in decoded) == sorted(
        zip(frame["sku"], frame["sold"].astype(float), strict=True)
    )


def test_replay_bad_csv_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("entity_id,ts,power\nm1,not-a-time,3.0\n")
    result = CliRunner().invoke(
        main, ["replay", "--csv", str(path), "--topic", "readings.sensor", "--bootstrap", "x:1"]
    )
    assert result.exit_code != 0
    assert "bad.csv" in result.output
    assert "ts" in result.output


def _with_a_value_the_contract_refuses(tmp_path: Path) -> Path:
    frame = generate_machines(entities=3, periods=40, seed=3)
    frame.loc[70, "power"] = 2e12  # readable, but above the contract's 1e12
    path = tmp_path / "machines.csv"
    write_sensor_csv(frame, path)
    return path


def test_a_row_the_contract_refuses_stops_the_replay_before_anything_is_published(
    tmp_path: Path,
) -> None:
    path = _with_a_value_the_contract_refuses(tmp_path)
    result = CliRunner().invoke(  # no broker listens at x:1: nothing may be produced
        main, ["replay", "--csv", str(path), "--topic", "readings.sensor", "--bootstrap", "x:1"]
    )
    assert result.exit_code == 1, result.output
    assert "1 of 120 readings break the readings.sensor contract" in result.output
    assert "nothing was published" in result.output and "Traceback" not in result.output


def test_skip_bad_rows_publishes_every_reading_the_contract_accepts(
    kafka_bootstrap: str, unique_topic: Any, tmp_path: Path
) -> None:
    path = _with_a_value_the_contract_refuses(tmp_path)
    topic = unique_topic("replay-refused")
    result = CliRunner().invoke(
        main,
        [
            *("replay", "--csv", str(path), "--topic", topic, "--bootstrap", kafka_bootstrap),
            *("--format", "sensor", "--skip-bad-rows"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "skipped 1 of 120 readings" in result.output
    assert "published 119 readings" in result.output
    assert len(read_topic(kafka_bootstrap, topic, 119)) == 119


def test_produce_reports_a_bad_start_without_a_traceback() -> None:
    result = CliRunner().invoke(main, ["produce", "--start", "notadate", "--bootstrap", "x:1"])
    assert result.exit_code == 2
    assert "is not a time" in result.output
    early = CliRunner().invoke(main, ["produce", "--start", "1990-01-01", "--bootstrap", "x:1"])
    assert early.exit_code == 1 and "nothing was published" in early.output
