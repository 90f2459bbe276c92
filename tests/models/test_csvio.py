"""Canonical CSV reading and writing, column mapping, bad rows and duplicates."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from driftline.generator import generate_air, generate_machines, generate_products, split_labels
from models.csvio import (
    ColumnMapping,
    CsvError,
    ReadReport,
    read_demand_csv,
    read_labels_csv,
    read_sensor_csv,
    write_demand_csv,
    write_labels_csv,
    write_sensor_csv,
)
from models.csvmapping import column_mapping_options
from models.frames import ENTITY, IS_ANOMALY, PRODUCT, QUANTITY, TS


def _write(tmp_path: Path, text: str, name: str = "input.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sensor_round_trip_keeps_labels_and_dtypes(tmp_path: Path) -> None:
    frame = generate_machines(entities=3, periods=120, seed=1)
    assert write_sensor_csv(frame, tmp_path / "m.csv") == 360
    pd.testing.assert_frame_equal(read_sensor_csv(tmp_path / "m.csv"), frame)


def test_sensor_round_trip_keeps_gaps_as_nan(tmp_path: Path) -> None:
    frame = generate_air(entities=2, periods=200, seed=2, gap_rate=0.1)
    write_sensor_csv(frame, tmp_path / "air.csv.gz")  # compression follows the suffix
    back = read_sensor_csv(tmp_path / "air.csv.gz")
    pd.testing.assert_frame_equal(back, frame)
    assert back.isna().to_numpy().sum() > 0


def test_demand_and_labels_round_trip(tmp_path: Path) -> None:
    demand = generate_products(entities=3, periods=60, seed=3)
    write_demand_csv(demand, tmp_path / "d.csv")
    pd.testing.assert_frame_equal(read_demand_csv(tmp_path / "d.csv"), demand)
    _, labels = split_labels(generate_machines(entities=2, periods=100, seed=3))
    write_labels_csv(labels, tmp_path / "l.csv")
    pd.testing.assert_frame_equal(read_labels_csv(tmp_path / "l.csv"), labels)


def test_writer_names_missing_columns(tmp_path: Path) -> None:
    frame = generate_products(entities=1, periods=5).drop(columns=[QUANTITY])
    with pytest.raises(CsvError, match=r"missing column.*quantity"):
        write_demand_csv(frame, tmp_path / "d.csv")
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind


PARKING = """SystemCodeNumber,Capacity,Occupancy,LastUpdated
BHMBCCMKT01,577,61,2016-10-04 07:59:42
BHMBCCMKT01,577,64,2016-10-04 08:25:42
Shopping,1920,1321,2016-10-04 08:03:35
BHMBCCMKT01,577,70,2016-10-04 08:25:42
"""


def test_parking_shape_loads_as_demand_and_keeps_the_last_duplicate(tmp_path: Path) -> None:
    mapping = ColumnMapping(
        entity_col="SystemCodeNumber", ts_col="LastUpdated", value_cols=("Occupancy",)
    )
    report = ReadReport()
    frame = read_demand_csv(_write(tmp_path, PARKING), mapping, report)
    assert list(frame.columns) == [PRODUCT, TS, QUANTITY]
    assert list(frame[PRODUCT]) == ["BHMBCCMKT01", "BHMBCCMKT01", "Shopping"]
    assert list(frame[QUANTITY]) == [61.0, 70.0, 1321.0]  # 64 replaced by the later 70
    assert frame[TS].iloc[0] == pd.Timestamp("2016-10-04T07:59:42Z")
    assert (report.rows, report.kept, report.duplicates) == (4, 3, 1)
    assert "1 duplicate" in report.summary()


def test_duplicates_are_logged_without_a_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mapping = ColumnMapping(entity_col="SystemCodeNumber", ts_col="LastUpdated")
    with caplog.at_level(logging.WARNING, logger="models.csvio"):
        frame = read_sensor_csv(_write(tmp_path, PARKING), mapping)
    assert list(frame.columns) == [ENTITY, TS, "Capacity", "Occupancy"]
    assert "1 duplicate" in caplog.text


def test_single_series_gets_a_constant_entity_and_renamed_metric(tmp_path: Path) -> None:
    text = "ds,y\n2012-01-01 00:00:00,7926.5\n2012-01-01 01:00:00,7901.8\n"
    mapping = ColumnMapping(ts_col="ds", value_cols=("y=load",), entity="victoria")
    frame = read_sensor_csv(_write(tmp_path, text), mapping)
    assert list(frame.columns) == [ENTITY, TS, "load"]
    assert list(frame[ENTITY]) == ["victoria", "victoria"]
    assert list(frame["load"]) == [7926.5, 7901.8]


def test_integer_timestamps_are_steps_from_an_epoch(tmp_path: Path) -> None:
    text = "timestamp,value,is_anomaly\n0,63.7,0\n1,63.3,1\n2,63.0,0\n"
    path = _write(tmp_path, text)
    mapping = ColumnMapping(ts_col="timestamp", entity="ucr", step="1min", epoch="2026-01-01")
    frame = read_sensor_csv(path, mapping)
    assert list(frame.columns) == [ENTITY, TS, "value", IS_ANOMALY]
    assert list(frame[TS]) == list(pd.date_range("2026-01-01", periods=3, freq="1min", tz="UTC"))
    labels = read_labels_csv(path, mapping)
    assert list(labels[IS_ANOMALY]) == [0, 1, 0]
    seconds = read_sensor_csv(path, ColumnMapping(ts_col="timestamp", entity="u", ts_unit="s"))
    assert seconds[TS].iloc[2] == pd.Timestamp("1970-01-01T00:00:02Z")


def test_integer_timestamps_out_of_range_are_explained(tmp_path: Path) -> None:
    path = _write(tmp_path, "timestamp,value\n1700000000,1.0\n")
    with pytest.raises(CsvError, match="out of range; use --ts-unit s"):
        read_sensor_csv(path, ColumnMapping(ts_col="timestamp", entity="u"))


def test_changing_utc_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    text = (
        "Time,Water flow [l/s]\n"
        "2022-03-27T00:00:00+01:00,100.5\n"
        "2022-03-27T01:00:00+01:00,100.9\n"
        "2022-03-27T03:00:00+02:00,101.3\n"
    )
    mapping = ColumnMapping(ts_col="Time", value_cols=("Water flow [l/s]=flow",), entity="pipe")
    frame = read_sensor_csv(_write(tmp_path, text), mapping)
    assert str(frame[TS].dtype) == "datetime64[ns, UTC]"
    assert list(frame[TS]) == list(pd.date_range("2022-03-26T23:00Z", periods=3, freq="1h"))


def test_naive_local_times_are_read_in_the_given_zone(tmp_path: Path) -> None:
    text = (
        "entity_id,ts,v\na,2022-03-27 00:30:00,1\na,2022-03-27 01:30:00,2\na,2022-07-01 12:00,3\n"
    )
    path = _write(tmp_path, text)
    with pytest.raises(CsvError, match="line 3: column 'ts': nonexistent or ambiguous local"):
        read_sensor_csv(path, ColumnMapping(tz="Europe/London"))
    frame = read_sensor_csv(path, ColumnMapping(tz="Europe/London", skip_bad_rows=True))
    assert list(frame[TS]) == [
        pd.Timestamp("2022-03-27T00:30Z"),
        pd.Timestamp("2022-07-01T11:00Z"),
    ]


def test_custom_timestamp_format(tmp_path: Path) -> None:
    path = _write(tmp_path, "entity_id,ts,v\na,04/10/2016 07:59,1\n")
    frame = read_sensor_csv(path, ColumnMapping(ts_format="%d/%m/%Y %H:%M"))
    assert frame[TS].iloc[0] == pd.Timestamp("2016-10-04T07:59Z")


def test_missing_column_error_names_file_column_and_choices(tmp_path: Path) -> None:
    path = _write(tmp_path, "ds,y\n2012-01-01,1\n")
    with pytest.raises(CsvError) as error:
        read_sensor_csv(path, ColumnMapping(entity="x"))
    message = str(error.value)
    assert str(path) in message and "'ts' not found" in message
    assert "--ts-col" in message and "columns are: ds, y" in message
    with pytest.raises(CsvError, match=r"'entity_id' not found.*--entity-col"):
        read_sensor_csv(path, ColumnMapping(ts_col="ds"))


BAD = """entity_id,ts,power,temperature
m1,2026-01-01T00:00:00Z,1.5,20
m1,not a time,1.6,21
m1,2026-01-01T02:00:00Z,high,22
m1,2026-01-01T03:00:00Z,,23
m1,,1.7,24
"""


def test_bad_rows_raise_with_line_column_and_value(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD)
    with pytest.raises(CsvError) as error:
        read_sensor_csv(path)
    message = str(error.value)
    assert message.startswith(f"{path}: 3 bad row(s) of 5")
    assert "line 3: column 'ts': unparseable timestamp (format ISO 8601) 'not a time'" in message
    assert "line 4: column 'power': non-numeric value 'high'" in message
    assert "line 6: column 'ts': missing timestamp ''" in message
    assert "--skip-bad-rows" in message


def test_skipping_bad_rows_reports_them(tmp_path: Path) -> None:
    report = ReadReport()
    frame = read_sensor_csv(_write(tmp_path, BAD), ColumnMapping(skip_bad_rows=True), report)
    assert len(frame) == 2  # the empty power cell is a missing reading, not a bad row
    assert frame["power"].isna().sum() == 1
    assert (report.rows, report.kept, report.bad_rows) == (5, 2, 3)
    assert report.bad_lines == [3, 4, 6]
    assert "skipped 3 bad row(s)" in report.summary()


def test_blank_lines_are_not_rows_and_line_numbers_stay_true(tmp_path: Path) -> None:
    path = _write(tmp_path, "entity_id,ts,v\na,2026-01-01,1\n\na,2026-01-02,x\n\n")
    with pytest.raises(CsvError, match="1 bad row\\(s\\) of 2: line 4: column 'v'"):
        read_sensor_csv(path)


def test_demand_needs_a_quantity_and_valid_flags(tmp_path: Path) -> None:
    text = "product_id,ts,quantity,promo\np,2026-01-01,5,1\np,2026-01-02,,0\np,2026-01-03,7,maybe\n"
    with pytest.raises(CsvError) as error:
        read_demand_csv(_write(tmp_path, text))
    assert "line 3: column 'quantity': missing value" in str(error.value)
    assert "line 4: column 'promo': not a 0/1 flag 'maybe'" in str(error.value)


def test_labels_check_levels(tmp_path: Path) -> None:
    text = "entity_id,ts,is_anomaly,risk\nm,2026-01-01,0,2\nm,2026-01-02,1,7\n"
    with pytest.raises(CsvError, match="line 3: column 'risk': not a level 0-3 '7'"):
        read_labels_csv(_write(tmp_path, text))


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(CsvError, match="file not found"):
        read_sensor_csv(tmp_path / "absent.csv")
    with pytest.raises(CsvError, match="not a readable CSV"):
        read_sensor_csv(_write(tmp_path, ""))
    with pytest.raises(CsvError, match="no metric columns"):
        read_sensor_csv(_write(tmp_path, "entity_id,ts\na,2026-01-01\n"))
    with pytest.raises(CsvError, match="one quantity column"):
        read_demand_csv(_write(tmp_path, PARKING), ColumnMapping(value_cols=("a", "b")))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"entity_col": "a", "entity": "b"}, "not both"),
        ({"ts_unit": "days"}, "ts unit"),
        ({"step": "soon"}, "bad step"),
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"value_cols": ("=x",)}, "SRC or SRC=name"),
        ({"value_cols": ("y=ts",)}, "may not be named ts"),
    ],
)
def test_mapping_refuses_contradictions(options: dict[str, object], message: str) -> None:
    with pytest.raises(CsvError, match=message):
        ColumnMapping(**options)  # type: ignore[arg-type]


def test_click_options_build_the_mapping() -> None:
    seen: list[ColumnMapping] = []

    @click.command()
    @column_mapping_options
    def command(mapping: ColumnMapping) -> None:
        seen.append(mapping)

    args = ["--ts-col", "ds", "--value-col", "y=load", "--entity", "v", "--skip-bad-rows"]
    assert CliRunner().invoke(command, args).exit_code == 0
    assert seen == [
        ColumnMapping(ts_col="ds", value_cols=("y=load",), entity="v", skip_bad_rows=True)
    ]
    clash = CliRunner().invoke(command, ["--entity", "v", "--entity-col", "c"])
    assert clash.exit_code == 2
    assert "not both" in clash.output


FAR = """entity_id,ts,v
a,2024-01-01T00:00:00Z,1
a,9999-12-31T00:00:00Z,2
a,0001-01-01,3
a,2300-01-01 00:00:00,4
"""


def test_timestamps_beyond_the_nanosecond_range_are_bad_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, FAR)
    with pytest.raises(CsvError) as error:
        read_sensor_csv(path, ColumnMapping(tz="America/New_York"))
    message = str(error.value)
    assert message.startswith(f"{path}: 3 bad row(s) of 4")
    assert "line 3: column 'ts': unparseable timestamp" in message
    assert "'9999-12-31T00:00:00Z'" in message and "'2300-01-01 00:00:00'" in message
    report = ReadReport()
    frame = read_sensor_csv(path, ColumnMapping(skip_bad_rows=True), report)
    assert list(frame[TS]) == [pd.Timestamp("2024-01-01T00:00Z")]
    assert str(frame[TS].dtype) == "datetime64[ns, UTC]"
    assert (report.rows, report.kept, report.bad_rows, report.bad_lines) == (4, 1, 3, [3, 4, 5])


def test_hour_only_and_compact_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    text = (  # PostgreSQL writes timestamptz as +01; a bare date must stay a local time
        "entity_id,ts,v\n"
        "a,2024-03-31 00:00:00+01,1\n"
        "a,2024-03-31 01:00:00+01,2\n"
        "a,2024-03-31 03:00:00+02,3\n"
        "a,2024-03-31T04:00:00+0200,4\n"
        "a,2024-03-31T05:00:00+02:00,5\n"
        "a,2024-03-31T04:00:00Z,6\n"
        "a,2024-03-31 07:00:00,7\n"
        "a,2024-04-01,8\n"
    )
    frame = read_sensor_csv(_write(tmp_path, text), ColumnMapping(tz="Europe/Berlin"))
    hourly = list(pd.date_range("2024-03-30T23:00Z", periods=7, freq="1h"))
    assert list(frame[TS]) == [*hourly, pd.Timestamp("2024-03-31T22:00Z")]
    assert list(frame["v"]) == [float(n) for n in range(1, 9)]


def test_timestamp_errors_from_pandas_are_csv_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "entity_id,ts,v\na,2024-01-01,1\n")
    with pytest.raises(CsvError, match=r"column 'ts'.*format '%Q'.*bad directive"):
        read_sensor_csv(path, ColumnMapping(ts_format="%Q"))


def test_ts_format_applies_to_all_digit_timestamps(tmp_path: Path) -> None:
    path = _write(tmp_path, "product_id,ts,quantity\na,20240101,3\na,20240102,6\n")
    frame = read_demand_csv(path, ColumnMapping(ts_format="%Y%m%d"))
    assert list(frame[TS]) == list(pd.date_range("2024-01-01", periods=2, freq="1D", tz="UTC"))


def test_ts_format_decides_whether_times_carry_an_offset(tmp_path: Path) -> None:
    dates = _write(tmp_path, "product_id,ts,quantity\na,15-01-2024,1\n", "dates.csv")
    naive = ColumnMapping(ts_format="%d-%m-%Y", tz="America/New_York")
    assert read_demand_csv(dates, naive)[TS].iloc[0] == pd.Timestamp("2024-01-15T05:00Z")
    text = "product_id,ts,quantity\na,15-01-2024 10:00 +0100,1\na,15-01-2024 10:00,2\n"
    aware = ColumnMapping(ts_format="%d-%m-%Y %H:%M %z", tz="America/New_York")
    with pytest.raises(CsvError, match="line 3: column 'ts': unparseable timestamp"):
        read_demand_csv(_write(tmp_path, text, "offsets.csv"), aware)
    frame = read_demand_csv(tmp_path / "offsets.csv", replace(aware, skip_bad_rows=True))
    assert list(frame[TS]) == [pd.Timestamp("2024-01-15T09:00Z")]


def test_entity_ids_are_text_and_only_an_empty_cell_is_missing(tmp_path: Path) -> None:
    text = (
        "product_id,ts,quantity\n"
        "NA,2024-01-01,1\nNone,2024-01-01,2\n"
        "null,2024-01-01,3\n,2024-01-01,4\n"
    )
    report = ReadReport()
    frame = read_demand_csv(_write(tmp_path, text), ColumnMapping(skip_bad_rows=True), report)
    assert list(frame[PRODUCT]) == ["NA", "None", "null"]
    assert report.bad_lines == [5]
    assert "missing entity id" in report.problems[0]
    sensor = read_sensor_csv(_write(tmp_path, "entity_id,ts,v\nNA,2024-01-01,1\n", "s.csv"))
    assert list(sensor[ENTITY]) == ["NA"]
