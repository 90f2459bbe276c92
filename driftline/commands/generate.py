"""``driftline generate``: write synthetic history as canonical CSV.

Machines files carry their labels as ``is_anomaly`` and ``risk`` columns; with ``--labels``
the labels go to that separate file instead (as if they arrived from elsewhere) and the
machines file holds the readings only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import click
import pandas as pd

from driftline.generator import (
    DEFAULT_START,
    DRIFT_KINDS,
    GeneratorError,
    generate_air,
    generate_machines,
    generate_products,
    inject_drift,
    split_labels,
)
from driftline.generator.air import GAP_RATE
from driftline.generator.machines import ANOMALY_RATE
from driftline.generator.products import PROMO_RATE
from models.csvio import CsvError, write_demand_csv, write_labels_csv, write_sensor_csv


@dataclass(frozen=True)
class Size:
    """How much history to generate, and from which seed."""

    entities: int
    periods: int
    freq: str
    start: str
    seed: int


def _machines(size: Size, rate: float | None) -> pd.DataFrame:
    anomaly_rate = ANOMALY_RATE if rate is None else rate
    return generate_machines(
        size.entities, size.periods, size.freq, size.seed, size.start, anomaly_rate
    )


def _products(size: Size, rate: float | None) -> pd.DataFrame:
    promo_rate = PROMO_RATE if rate is None else rate
    return generate_products(
        size.entities, size.periods, size.freq, size.seed, size.start, promo_rate
    )


def _air(size: Size, rate: float | None) -> pd.DataFrame:
    gap_rate = GAP_RATE if rate is None else rate
    return generate_air(size.entities, size.periods, size.freq, size.seed, size.start, gap_rate)


@dataclass(frozen=True)
class Family:
    """Defaults of one generated family, its builder, its rate option and its writer."""

    noun: str
    entities: int
    periods: int
    freq: str
    drift_column: str
    rate_option: str
    build: Callable[[Size, float | None], pd.DataFrame]
    write: Callable[[pd.DataFrame, Path], int]


FAMILIES: Final = {
    # 30 days of hourly readings from 5 machines
    "machines": Family(
        "machines", 5, 720, "1h", "temperature", "anomaly_rate", _machines, write_sensor_csv
    ),
    # two years of daily demand for 10 products: room for weekly lags and a holdout
    "products": Family(
        "products", 10, 730, "1D", "quantity", "promo_rate", _products, write_demand_csv
    ),
    # 30 days of hourly readings from 3 stations
    "air": Family("stations", 3, 720, "1h", "pm25", "gap_rate", _air, write_sensor_csv),
}


@click.command()
@click.argument("kind", type=click.Choice(list(FAMILIES)))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--entities", type=click.IntRange(min=1), help="Machines, products or stations.")
@click.option("--periods", type=click.IntRange(min=1), help="Readings per entity.")
@click.option("--freq", help="Period length such as 1h or 1D (machines/air 1h, products 1D).")
@click.option("--start", default=DEFAULT_START, show_default=True, help="First timestamp.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--anomaly-rate", type=click.FloatRange(0, 0.5), help="machines: anomalous share.")
@click.option("--gap-rate", type=click.FloatRange(0, 0.5), help="air: missing-value share.")
@click.option("--promo-rate", type=click.FloatRange(0, 0.5), help="products: promotion share.")
@click.option("--drift", type=click.Choice(DRIFT_KINDS), help="Inject drift of this kind.")
@click.option("--drift-at", help="Timestamp the drift starts at (needed with --drift).")
@click.option("--drift-magnitude", type=float, default=1.0, show_default=True)
@click.option("--drift-column", help="Column to drift (default temperature, quantity, pm25).")
@click.option("--drift-entity", multiple=True, help="Drift only this entity (repeatable).")
@click.option(
    "--labels",
    type=click.Path(dir_okay=False, path_type=Path),
    help="machines: write is_anomaly/risk to this file instead of the readings file.",
)
def generate(
    kind: str,
    out: Path,
    entities: int | None,
    periods: int | None,
    freq: str | None,
    start: str,
    seed: int,
    anomaly_rate: float | None,
    gap_rate: float | None,
    promo_rate: float | None,
    drift: str | None,
    drift_at: str | None,
    drift_magnitude: float,
    drift_column: str | None,
    drift_entity: tuple[str, ...],
    labels: Path | None,
) -> None:
    """Write synthetic KIND history (machines, products or air) to a canonical CSV file."""
    family = FAMILIES[kind]
    rates = {"anomaly_rate": anomaly_rate, "gap_rate": gap_rate, "promo_rate": promo_rate}
    _check_applicable(kind, family, rates, labels)
    if drift is not None and drift_at is None:
        raise click.UsageError("--drift needs --drift-at (the timestamp the drift starts at)")
    size = Size(
        entities or family.entities, periods or family.periods, freq or family.freq, start, seed
    )
    try:
        frame = family.build(size, rates[family.rate_option])
        if drift is not None and drift_at is not None:
            column = drift_column or family.drift_column
            chosen = drift_entity or None
            frame = inject_drift(frame, column, drift, drift_at, drift_magnitude, chosen, seed)
        if labels is not None:
            frame, label_frame = split_labels(frame)
            click.echo(f"wrote {write_labels_csv(label_frame, labels)} label rows to {labels}")
        written = family.write(frame, out)
    except (GeneratorError, CsvError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"wrote {written} rows ({size.entities} {family.noun} x {size.periods} periods) to {out}"
    )


def _check_applicable(
    kind: str, family: Family, rates: dict[str, float | None], labels: Path | None
) -> None:
    for name, value in rates.items():
        if value is not None and name != family.rate_option:
            owner = next(k for k, f in FAMILIES.items() if f.rate_option == name)
            raise click.UsageError(f"--{name.replace('_', '-')} applies to {owner} only")
    if labels is not None and kind != "machines":
        raise click.UsageError("--labels applies to machines only")
