"""Canonical CSV files: read any column layout into canonical frames, write canonical CSV.

Readers take a :class:`ColumnMapping` that says which source columns hold the entity id, the
timestamp and the values, so files in other shapes load without editing them. They are strict
by default: a row whose timestamp, entity or required number cannot be parsed raises
:class:`CsvError` naming the file, the line, the column and the value; with
``skip_bad_rows`` such rows are dropped and counted in a :class:`ReadReport` instead. Rows that
repeat an (entity, ts) pair keep the last one in file order, and the report counts them.

Timestamps: ISO 8601 strings (a ``Z``, ``+HH``, ``+HHMM`` or ``+HH:MM`` offset is converted to
UTC; naive times are read in ``mapping.tz``), a ``strptime`` format (aware when it holds ``%z``
or ``%Z``, else naive), or, without a format, integers (steps of ``mapping.step`` from
``mapping.epoch``, or epoch seconds/milliseconds with ``ts_unit``). A time outside the
nanosecond range (years 1677-2262) is a bad row. Entity ids are text: only an empty cell is a
missing id. Writers emit ``ts`` as ISO 8601 UTC with a ``Z`` suffix and empty cells for
missing values.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from models.csvmapping import ColumnMapping, CsvError
from models.csvtimes import all_integers, integer_times, text_times
from models.frames import (
    ENTITY,
    IS_ANOMALY,
    PRICE,
    PRODUCT,
    PROMO,
    QUANTITY,
    RISK,
    TS,
    FrameError,
    metric_columns,
    require_columns,
)

__all__ = [
    "ColumnMapping",
    "CsvError",
    "ReadReport",
    "read_demand_csv",
    "read_labels_csv",
    "read_sensor_csv",
    "write_demand_csv",
    "write_labels_csv",
    "write_sensor_csv",
]

log = logging.getLogger(__name__)

MISSING: Final = frozenset({"", "na", "n/a", "nan", "null", "none"})  # lower-cased, stripped
FLAGS: Final = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1, "0.0": 0, "1.0": 1}
EXAMPLES: Final = 5  # bad rows quoted in an error or report; the count covers all of them
_FIRST_DATA_LINE: Final = 2  # line 1 is the header
_OUT_OF_RANGE: Final = "unparseable timestamp (outside the years 1677-2262)"


@dataclass
class ReadReport:
    """What a reader did with a file: rows read, kept, skipped as bad, replaced as duplicate."""

    path: str = ""
    rows: int = 0
    kept: int = 0
    bad_rows: int = 0
    bad_lines: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    duplicates: int = 0
    integer_times: bool = False  # the time column held integers (steps or epoch units)

    def summary(self) -> str:
        text = f"{self.path}: kept {self.kept} of {self.rows} rows"
        if self.bad_rows:
            text += f"; skipped {self.bad_rows} bad row(s): {'; '.join(self.problems)}"
        if self.duplicates:
            text += f"; {self.duplicates} duplicate (entity, ts) row(s) replaced by later rows"
        return text


class _Rows:
    """Raw string cells of one file plus the problems found while parsing them."""

    def __init__(self, path: Path, raw: pd.DataFrame, mapping: ColumnMapping) -> None:
        self.path, self.raw, self.mapping = path, raw, mapping
        self.bad = np.zeros(len(raw), dtype=bool)
        self.messages = pd.Series("", index=raw.index, dtype=object)
        self.integer_times = False

    def column(self, name: str, flag: str) -> pd.Series:
        if name not in self.raw.columns:
            raise CsvError(
                f"{self.path}: column {name!r} not found (choose the column with {flag}); "
                f"columns are: {', '.join(map(str, self.raw.columns))}"
            )
        return self.raw[name].astype(str).str.strip()

    def flag_bad(self, mask: pd.Series | np.ndarray, column: str, problem: str) -> None:
        """Record ``problem`` for rows in ``mask`` (only the first problem of a row is kept)."""
        mask = np.asarray(mask, dtype=bool)
        new = mask & ~self.bad
        if new.any():
            quoted = self.raw[column].astype(str)[new].map(repr)
            self.messages[new] = f"column {column!r}: {problem} " + quoted
        self.bad |= mask

    def numbers(self, name: str, flag: str, *, required: bool) -> pd.Series:
        cells = self.column(name, flag)
        missing = cells.str.lower().isin(MISSING)
        values = pd.to_numeric(cells.mask(missing), errors="coerce").astype(np.float64)
        self.flag_bad(values.isna() & ~missing, name, "non-numeric value")
        self.flag_bad(np.isinf(values), name, "non-finite value")
        if required:
            self.flag_bad(missing, name, "missing value")
        return values

    def flags(self, name: str, flag: str) -> pd.Series:
        cells = self.column(name, flag).str.lower()
        values = cells.map(FLAGS)
        self.flag_bad(values.isna(), name, "not a 0/1 flag")
        return values.fillna(0).astype(np.int64)

    def levels(self, name: str, flag: str) -> pd.Series:
        values = self.numbers(name, flag, required=True)
        self.flag_bad(~values.isin([0.0, 1.0, 2.0, 3.0]) & values.notna(), name, "not a level 0-3")
        return values.fillna(0).astype(np.int64)

    def entities(self, canonical: str) -> pd.Series:
        if self.mapping.entity is not None:
            return pd.Series(self.mapping.entity, index=self.raw.index, dtype=str)
        name = self.mapping.entity_col or canonical
        cells = self.column(name, "--entity-col, or --entity for one series")
        # ids are text: NA (Namibia, North America) or None are ids, only an empty cell is not
        self.flag_bad(cells == "", name, "missing entity id")
        return cells.astype(str)

    def timestamps(self) -> pd.Series:
        name, m = self.mapping.ts_col or TS, self.mapping
        cells = self.column(name, "--ts-col")
        missing = cells.str.lower().isin(MISSING)
        self.flag_bad(missing, name, "missing timestamp")
        present = cells.mask(missing)
        if m.ts_format is None and all_integers(present):
            self.integer_times = True
            try:
                return integer_times(present, m)
            except CsvError as exc:
                raise CsvError(f"{self.path}: column {name!r}: {exc}") from exc
        shown = m.ts_format or "ISO 8601"
        try:
            parsed = text_times(present, m.ts_format, m.tz)
        except ValueError as exc:  # a bad format directive, or offsets pandas cannot combine
            raise CsvError(
                f"{self.path}: column {name!r}: timestamps cannot be read with format "
                f"{shown!r}: {exc}"
            ) from exc
        self.flag_bad(parsed.unclear, name, f"nonexistent or ambiguous local time in {m.tz}")
        self.flag_bad(parsed.outside, name, _OUT_OF_RANGE)
        problem = f"unparseable timestamp (format {shown})"
        self.flag_bad(parsed.times.isna() & ~missing, name, problem)
        return parsed.times

    def finish(self, frame: pd.DataFrame, entity: str, report: ReadReport | None) -> pd.DataFrame:
        """Drop or raise on bad rows, keep the last of duplicates, sort, fill the report."""
        lines = np.asarray(self.raw.index[self.bad]) + _FIRST_DATA_LINE
        examples = [
            f"line {line}: {message}"
            for line, message in zip(
                lines[:EXAMPLES], self.messages[self.bad].iloc[:EXAMPLES], strict=True
            )
        ]
        if self.bad.any() and not self.mapping.skip_bad_rows:
            raise CsvError(
                f"{self.path}: {len(lines)} bad row(s) of {len(frame)}: {'; '.join(examples)}"
                " (fix them, or skip them with --skip-bad-rows)"
            )
        good = frame.loc[~self.bad]
        unique = good.drop_duplicates([entity, TS], keep="last")
        out = unique.sort_values([entity, TS], kind="stable").reset_index(drop=True)
        result = report if report is not None else ReadReport()
        result.path, result.rows, result.kept = str(self.path), len(frame), len(out)
        result.bad_rows, result.bad_lines = len(lines), [int(n) for n in lines[:EXAMPLES]]
        result.problems, result.duplicates = examples, len(good) - len(unique)
        result.integer_times = self.integer_times
        if report is None and (result.bad_rows or result.duplicates):
            log.warning("%s", result.summary())
        return out


def _load(path: str | Path, mapping: ColumnMapping | None) -> _Rows:
    source = Path(path)
    try:
        raw = pd.read_csv(
            source, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False
        )
    except FileNotFoundError as exc:
        raise CsvError(f"{source}: file not found") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CsvError(f"{source}: not a readable CSV file: {exc}") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    # blank lines are not records; dropping them keeps the index equal to line number - 2
    blank = raw.apply(lambda cells: cells.str.strip() == "").all(axis=1)
    return _Rows(source, raw.loc[~blank], mapping or ColumnMapping())


def _optional(rows: _Rows, chosen: str | None, canonical: str) -> str | None:
    """The source column for an optional field: the chosen one, else the canonical if present."""
    if chosen is not None:
        return chosen
    return canonical if canonical in rows.raw.columns else None


def read_sensor_csv(
    path: str | Path, mapping: ColumnMapping | None = None, report: ReadReport | None = None
) -> pd.DataFrame:
    """Wide sensor frame ``entity_id, ts, <metric>...`` (+ ``is_anomaly``/``risk`` if present).

    Metrics are ``mapping.value_cols`` (``SRC`` or ``SRC=name``), else every other column.
    Empty cells and NA tokens become NaN (a missing reading); other non-numbers are bad rows.
    """
    rows = _load(path, mapping)
    m = rows.mapping
    frame = pd.DataFrame({ENTITY: rows.entities(ENTITY), TS: rows.timestamps()})
    label, risk = _optional(rows, m.label_col, IS_ANOMALY), _optional(rows, m.risk_col, RISK)
    used = {m.entity_col or ENTITY, m.ts_col or TS, label, risk}
    renames = m.value_renames() or {c: c for c in rows.raw.columns if c not in used}
    if not renames:
        raise CsvError(f"{rows.path}: no metric columns besides the entity, ts and labels")
    for source, name in renames.items():
        frame[name] = rows.numbers(source, "--value-col", required=False)
    if label is not None:
        frame[IS_ANOMALY] = rows.flags(label, "--label-col")
    if risk is not None:
        frame[RISK] = rows.levels(risk, "--risk-col")
    return rows.finish(frame, ENTITY, report)


def read_demand_csv(
    path: str | Path, mapping: ColumnMapping | None = None, report: ReadReport | None = None
) -> pd.DataFrame:
    """Long demand frame ``product_id, ts, quantity`` (+ ``price``, ``promo`` if present)."""
    rows = _load(path, mapping)
    m = rows.mapping
    sources = list(m.value_renames()) or [QUANTITY]
    if len(sources) != 1:
        raise CsvError(f"{rows.path}: demand takes one quantity column, got {', '.join(sources)}")
    frame = pd.DataFrame({PRODUCT: rows.entities(PRODUCT), TS: rows.timestamps()})
    frame[QUANTITY] = rows.numbers(sources[0], "--value-col", required=True)
    price, promo = _optional(rows, m.price_col, PRICE), _optional(rows, m.promo_col, PROMO)
    if price is not None:
        frame[PRICE] = rows.numbers(price, "--price-col", required=False)
    if promo is not None:
        frame[PROMO] = rows.flags(promo, "--promo-col")
    return rows.finish(frame, PRODUCT, report)


def read_labels_csv(
    path: str | Path, mapping: ColumnMapping | None = None, report: ReadReport | None = None
) -> pd.DataFrame:
    """Labels frame ``entity_id, ts, is_anomaly`` (+ ``risk`` if present)."""
    rows = _load(path, mapping)
    m = rows.mapping
    frame = pd.DataFrame({ENTITY: rows.entities(ENTITY), TS: rows.timestamps()})
    frame[IS_ANOMALY] = rows.flags(m.label_col or IS_ANOMALY, "--label-col")
    risk = _optional(rows, m.risk_col, RISK)
    if risk is not None:
        frame[RISK] = rows.levels(risk, "--risk-col")
    return rows.finish(frame, ENTITY, report)


def write_sensor_csv(frame: pd.DataFrame, path: str | Path) -> int:
    """Write a sensor frame (labels included if present); returns the rows written."""
    labels = [c for c in (IS_ANOMALY, RISK) if c in frame.columns]
    return _write(frame, path, [ENTITY, TS, *metric_columns(frame), *labels], "sensor")


def write_demand_csv(frame: pd.DataFrame, path: str | Path) -> int:
    """Write a demand frame; returns the rows written."""
    optional = [c for c in (PRICE, PROMO) if c in frame.columns]
    return _write(frame, path, [PRODUCT, TS, QUANTITY, *optional], "demand")


def write_labels_csv(frame: pd.DataFrame, path: str | Path) -> int:
    """Write a labels frame; returns the rows written."""
    optional = [RISK] if RISK in frame.columns else []
    return _write(frame, path, [ENTITY, TS, IS_ANOMALY, *optional], "labels")


def _write(frame: pd.DataFrame, path: str | Path, columns: list[str], what: str) -> int:
    """Write ``columns`` atomically: a temporary sibling renamed over ``path`` when complete."""
    try:
        require_columns(frame, columns, what)
    except FrameError as exc:
        raise CsvError(f"cannot write {path}: {exc}") from exc
    target = Path(path)
    ts = pd.to_datetime(frame[TS], utc=True)
    fractional = bool((ts.dt.microsecond != 0).any() or (ts.dt.nanosecond != 0).any())
    date_format = "%Y-%m-%dT%H:%M:%S.%fZ" if fractional else "%Y-%m-%dT%H:%M:%SZ"
    out = frame[columns].assign(**{TS: ts})
    # the suffixes stay last so that compression (.gz, .zst...) is inferred from them
    temporary = target.with_name(f".{uuid.uuid4().hex}.tmp.{target.name}")
    try:
        out.to_csv(temporary, index=False, date_format=date_format)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise CsvError(f"cannot write {what} CSV {target}: {exc.strerror or exc}") from exc
    return len(out)
