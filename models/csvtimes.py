"""Timestamps of CSV history: integer steps or epochs, ISO 8601 or ``strptime`` text, to UTC.

:func:`text_times` reads text cells: a cell with a UTC offset (``Z``, ``+HH``, ``+HHMM`` or
``+HH:MM`` after a time of day) is converted from its own offset, so a file whose offset
changes with daylight saving is a regular UTC series; naive cells are local times in the
mapping's zone. With a ``strptime`` format the format decides (aware only with ``%z`` or
``%Z``). Times beyond the nanosecond range (years 1677-2262) are reported, not wrapped.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import pandas as pd

from models.csvmapping import ColumnMapping, CsvError

ISO_FORMAT: Final = "ISO8601"
# an ISO 8601 offset (Z, +HH, +HHMM, +HH:MM) after a time of day: a bare date such as
# 2024-04-01 also ends in "-01", so the offset only counts when a time precedes it
ISO_OFFSET: Final = r"(?:Z|[T ]\d\d(?::?\d\d){0,2}(?:[.,]\d+)?\s*[+-]\d\d(?::?\d\d)?)$"
# datetime64[ns] spans 1677-09-21..2262-04-11; pandas parses text at coarser units that reach
# further, so later or earlier times are refused before converting them to nanoseconds
FIRST_NS: Final = pd.Timestamp.min.tz_localize("UTC")
LAST_NS: Final = pd.Timestamp.max.tz_localize("UTC")


def integer_times(cells: pd.Series, mapping: ColumnMapping) -> pd.Series:
    """Integer cells as ``epoch + n * unit``: steps of ``mapping.step``, or s/ms/us/ns."""
    step = mapping.step if mapping.ts_unit == "step" else f"1{mapping.ts_unit}"
    unit_ns = pd.Timedelta(step).value
    numbers = pd.to_numeric(cells, errors="coerce")
    epoch = pd.Timestamp(mapping.epoch)
    epoch = epoch.tz_localize("UTC") if epoch.tzinfo is None else epoch.tz_convert("UTC")
    largest = float(numbers.abs().max())
    # int64 nanoseconds end in 2262: refuse before the arithmetic silently wraps around
    if largest * unit_ns + abs(epoch.as_unit("ns").value) >= 2**63:
        raise CsvError(
            f"integer timestamps up to {largest:.0f} in steps of {step} from {mapping.epoch} are "
            "out of range; use --ts-unit s or ms for epoch seconds or milliseconds"
        )
    offsets = pd.to_timedelta(numbers.astype("Int64") * unit_ns, unit="ns")
    return (epoch.as_unit("ns") + offsets).astype("datetime64[ns, UTC]")


def all_integers(cells: pd.Series) -> bool:
    """Whether every present cell is an integer (and at least one is present)."""
    return bool(cells.notna().any() and cells.dropna().str.fullmatch(r"-?\d+").all())


class Times(NamedTuple):
    """Parsed timestamps with the masks of the cells that parse but cannot be used."""

    times: pd.Series  # datetime64[ns, UTC]; NaT where a cell is missing or unusable
    unclear: pd.Series  # local times that do not exist, or exist twice, in the zone
    outside: pd.Series  # times beyond the nanosecond range


def text_times(cells: pd.Series, fmt: str | None, tz: str) -> Times:
    """Parse text timestamps (``fmt``, default ISO 8601) to UTC at nanosecond resolution.

    Cells with a UTC offset are converted from their own offset (offsets may change from row
    to row, as with daylight saving); naive cells are local times in ``tz``.
    """
    aware = aware_cells(cells, fmt)
    naive = cells.notna() & ~aware
    form = fmt or ISO_FORMAT
    parts: list[tuple[pd.Series, pd.Series]] = []
    unclear = pd.Series(False, index=cells.index)
    if aware.any():
        parts.append((aware, pd.to_datetime(cells[aware], errors="coerce", utc=True, format=form)))
    if naive.any():
        local = pd.to_datetime(cells[naive], errors="coerce", format=form)
        if local.dt.tz is None:
            zoned = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
            unclear[naive] = zoned.isna() & local.notna()
            local = zoned
        parts.append((naive, local.dt.tz_convert("UTC")))
    times = pd.Series(pd.NaT, index=cells.index, dtype="datetime64[ns, UTC]")
    outside = pd.Series(False, index=cells.index)
    for rows, utc in parts:
        beyond = (utc < FIRST_NS) | (utc > LAST_NS)
        outside[rows] = beyond
        times[rows] = utc.mask(beyond).dt.as_unit("ns")
    return Times(times, unclear, outside)


def aware_cells(cells: pd.Series, fmt: str | None) -> pd.Series:
    """Mask of the cells that carry a UTC offset or zone.

    A given format decides for every cell (the text of ``15-01-2024`` ends like an offset);
    ISO 8601 text decides cell by cell.
    """
    if fmt is None:
        return cells.str.contains(ISO_OFFSET, na=False)
    zoned = any(directive in fmt.replace("%%", "") for directive in ("%z", "%Z"))
    return cells.notna() & zoned
