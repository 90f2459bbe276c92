"""Which source columns of a CSV file hold the canonical fields, and the CLI options for it.

Commands that read CSV (``train``, ``score``...) decorate themselves with
:func:`column_mapping_options` and receive one ``mapping: ColumnMapping`` argument:

>>> ColumnMapping.from_options(ts_col="ds", value_col=("y",), entity="victoria").entity
'victoria'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import click
import pandas as pd

from models.frames import ENTITY, IS_ANOMALY, PRODUCT, RISK, TS

TS_UNITS: Final = ("step", "s", "ms", "us", "ns")
RESERVED: Final = frozenset({ENTITY, PRODUCT, TS, IS_ANOMALY, RISK})  # not metric names
F = TypeVar("F", bound=Callable[..., Any])


class CsvError(ValueError):
    """A CSV file cannot be read or written as a canonical frame; the message names the file."""


@dataclass(frozen=True)
class ColumnMapping:
    """Source column names for the canonical fields; ``None`` means the canonical name.

    ``value_cols`` entries are ``SRC`` or ``SRC=name`` (sensor metrics are renamed to
    ``name``; demand takes exactly one, the quantity). ``entity`` gives every row one constant
    entity id, for files that hold a single series. Integer timestamps are ``ts_unit`` units
    after ``epoch``: ``step`` means steps of ``step`` (``1h``), else ``s``/``ms``/``us``/``ns``.
    Naive text timestamps are local times in ``tz``. ``skip_bad_rows`` drops (and reports)
    rows that cannot be parsed instead of failing.
    """

    entity_col: str | None = None
    entity: str | None = None
    ts_col: str | None = None
    value_cols: tuple[str, ...] = ()
    price_col: str | None = None
    promo_col: str | None = None
    label_col: str | None = None
    risk_col: str | None = None
    tz: str = "UTC"
    ts_format: str | None = None
    ts_unit: str = "step"
    epoch: str = "1970-01-01T00:00:00Z"
    step: str = "1h"
    skip_bad_rows: bool = False

    def __post_init__(self) -> None:
        if self.entity_col is not None and self.entity is not None:
            raise CsvError("give either an entity column or a constant entity id, not both")
        if self.ts_unit not in TS_UNITS:
            raise CsvError(f"ts unit {self.ts_unit!r} is not one of {', '.join(TS_UNITS)}")
        try:
            step = pd.Timedelta(self.step)
            pd.Timestamp(self.epoch)
        except ValueError as exc:
            raise CsvError(f"bad step {self.step!r} or epoch {self.epoch!r}: {exc}") from exc
        try:
            pd.Timestamp("2000-01-01").tz_localize(self.tz)
        except (KeyError, ValueError) as exc:
            raise CsvError(f"unknown time zone {self.tz!r}") from exc
        if step <= pd.Timedelta(0):
            raise CsvError(f"step {self.step!r} must be a positive duration")
        for entry in self.value_cols:
            if not entry.partition("=")[0].strip() or entry.endswith("="):
                raise CsvError(f"value column {entry!r} must be SRC or SRC=name")
        clashes = sorted(RESERVED & set(self.value_renames().values()))
        if clashes:
            raise CsvError(f"a value column may not be named {', '.join(clashes)}")

    def value_renames(self) -> dict[str, str]:
        """Source column -> canonical metric name for every ``value_cols`` entry."""
        pairs = (entry.partition("=") for entry in self.value_cols)
        return {src.strip(): (name or src).strip() for src, _, name in pairs}

    @classmethod
    def from_options(
        cls,
        *,
        entity_col: str | None = None,
        entity: str | None = None,
        ts_col: str | None = None,
        value_col: tuple[str, ...] = (),
        price_col: str | None = None,
        promo_col: str | None = None,
        label_col: str | None = None,
        risk_col: str | None = None,
        tz: str = "UTC",
        ts_format: str | None = None,
        ts_unit: str = "step",
        ts_epoch: str = "1970-01-01T00:00:00Z",
        ts_step: str = "1h",
        skip_bad_rows: bool = False,
    ) -> ColumnMapping:
        """Build a mapping from the values of the options :func:`column_mapping_options` adds."""
        return cls(
            entity_col=entity_col,
            entity=entity,
            ts_col=ts_col,
            value_cols=tuple(value_col),
            price_col=price_col,
            promo_col=promo_col,
            label_col=label_col,
            risk_col=risk_col,
            tz=tz,
            ts_format=ts_format,
            ts_unit=ts_unit,
            epoch=ts_epoch,
            step=ts_step,
            skip_bad_rows=skip_bad_rows,
        )


_OPTIONS: Final = (
    click.option("--entity-col", help="Column holding the entity/product id."),
    click.option("--entity", help="Constant entity id for a file holding one series."),
    click.option("--ts-col", help="Column holding the timestamp (default ts)."),
    click.option(
        "--value-col",
        multiple=True,
        help="Value column, SRC or SRC=name; repeat for several metrics (demand: the quantity).",
    ),
    click.option("--price-col", help="Demand price column (default price, if present)."),
    click.option("--promo-col", help="Demand promotion flag column (default promo, if present)."),
    click.option("--label-col", help="Anomaly label column (default is_anomaly, if present)."),
    click.option("--risk-col", help="Maintenance risk column (default risk, if present)."),
    click.option("--tz", default="UTC", show_default=True, help="Zone of naive timestamps."),
    click.option("--ts-format", help="strptime format of the timestamps (default ISO 8601)."),
    click.option(
        "--ts-unit",
        type=click.Choice(TS_UNITS),
        default="step",
        show_default=True,
        help="Integer timestamps: steps of --ts-step, or epoch s/ms/us/ns.",
    ),
    click.option("--ts-epoch", default="1970-01-01T00:00:00Z", show_default=True),
    click.option("--ts-step", default="1h", show_default=True, help="Length of one step."),
    click.option("--skip-bad-rows", is_flag=True, help="Drop and report unparseable rows."),
)
_NAMES: Final = (
    "entity_col",
    "entity",
    "ts_col",
    "value_col",
    "price_col",
    "promo_col",
    "label_col",
    "risk_col",
    "tz",
    "ts_format",
    "ts_unit",
    "ts_epoch",
    "ts_step",
    "skip_bad_rows",
)


def column_mapping_options(command: F) -> F:
    """Add the column-mapping options to a click command; it receives ``mapping=``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _NAMES}
        try:
            kwargs["mapping"] = ColumnMapping.from_options(**values)
        except CsvError as exc:
            raise click.UsageError(str(exc)) from exc
        return command(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return cast(F, decorated)
