"""``driftline replay`` and ``driftline produce``: readings from a CSV or the generator."""

from __future__ import annotations

import click
import pandas as pd
from confluent_kafka import Producer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from driftline.generator import generate_air, generate_machines, generate_products, inject_drift
from driftline.generator.drift import DRIFT_KINDS
from driftline.generator.series import GeneratorError
from driftline.publish import PublishError, encode_checked, publish_records
from events.readings import SensorKind
from events.settings import kafka_settings
from events.topics import READINGS_DEMAND, READINGS_SENSOR
from models.csvio import read_demand_csv, read_sensor_csv
from models.csvmapping import ColumnMapping, CsvError, column_mapping_options
from models.frames import ENTITY, PRODUCT, TS

FAMILIES = ("machines", "products", "air")
# Refused rows named in an error message; the count says how many there are.
MAX_NAMED = 3


def _time_ordered(frame: pd.DataFrame, entity: str) -> pd.DataFrame:
    """Interleave entities by time; each entity's readings stay in order."""
    return frame.sort_values([TS, entity], kind="stable").reset_index(drop=True)


def _records(
    frame: pd.DataFrame, contract: str, kind: SensorKind, skip_refused: bool
) -> list[tuple[bytes, bytes]]:
    """The frame's readings encoded in time order; rows the contract refuses are an error
    (nothing is published) or, with ``skip_refused``, dropped and reported."""
    entity = PRODUCT if contract == READINGS_DEMAND else ENTITY
    checked = encode_checked(_time_ordered(frame, entity), contract, kind)
    if checked.refused:
        first = "; ".join(str(r) for r in checked.refused[:MAX_NAMED])
        summary = f"{len(checked.refused)} of {len(frame)} readings break the {contract} contract"
        if not skip_refused:
            raise click.ClickException(
                f"{summary}, nothing was published (first: {first}). Fix the values or "
                "the mapping (--ts-epoch, --value-col SRC=name), or pass --skip-bad-rows"
            )
        click.echo(f"skipped {summary} (first: {first})", err=True)
    return checked.records


def _send(
    bootstrap: str | None,
    topic: str,
    records: list[tuple[bytes, bytes]],
    rate: float | None,
) -> int:
    producer = Producer(kafka_settings(bootstrap).producer_config(**{"linger.ms": 20}))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(f"publishing to {topic}", total=len(records))
        try:
            return publish_records(
                producer,
                topic,
                records,
                rate=rate,
                progress=lambda n: progress.advance(task, n),
            )
        except PublishError as exc:
            raise click.ClickException(str(exc)) from exc


@click.command()
@click.option("--csv", "path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--topic", required=True, help="Topic to publish to (readings.sensor, ...).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["sensor", "demand"]),
    help="CSV layout [default: demand for topics named *demand*, else sensor].",
)
@click.option(
    "--kind",
    type=click.Choice(["machine", "air"]),
    default="machine",
    show_default=True,
    help="Sensor kind of the readings (readings.sensor).",
)
@click.option("--rate", type=float, help="Readings per second (default: as fast as possible).")
@click.option("--max", "as_fast", is_flag=True, help="As fast as possible (the default).")
@click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Brokers (host:port,...).")
@column_mapping_options
def replay(
    path: str,
    topic: str,
    fmt: str | None,
    kind: SensorKind,
    rate: float | None,
    as_fast: bool,
    bootstrap: str | None,
    mapping: ColumnMapping,
) -> None:
    """Publish a CSV (canonical format, or mapped) as readings, in time order per entity."""
    if rate is not None and as_fast:
        raise click.UsageError("--rate and --max exclude each other")
    fmt = fmt or ("demand" if "demand" in topic else "sensor")
    contract = READINGS_DEMAND if fmt == "demand" else READINGS_SENSOR
    try:
        reader = read_demand_csv if fmt == "demand" else read_sensor_csv
        frame = reader(path, mapping)
    except CsvError as exc:
        raise click.ClickException(str(exc)) from exc
    records = _records(frame, contract, kind, mapping.skip_bad_rows)
    sent = _send(bootstrap, topic, records, rate)
    click.echo(f"published {sent} readings from {path} to {topic}")


@click.command()
@click.option("--family", type=click.Choice(FAMILIES), default="machines", show_default=True)
@click.option("--entities", default=5, show_default=True, help="Machines/products/stations.")
@click.option("--periods", default=720, show_default=True, help="Readings per entity.")
@click.option("--rate", type=float, help="Readings per second (default: as fast as possible).")
@click.option("--seed", default=0, show_default=True)
@click.option("--start", default=None, help="Time of the first reading (default: now - periods).")
@click.option("--drift", type=click.Choice(DRIFT_KINDS), help="Inject drift of this kind.")
@click.option(
    "--drift-at",
    type=float,
    default=0.5,
    show_default=True,
    help="Where the drift starts, as a fraction of the periods.",
)
@click.option(
    "--drift-magnitude",
    type=float,
    default=3.0,
    show_default=True,
    help="Drift size in standard deviations of the series before it.",
)
@click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Brokers (host:port,...).")
def produce(
    family: str,
    entities: int,
    periods: int,
    rate: float | None,
    seed: int,
    start: str | None,
    drift: str | None,
    drift_at: float,
    drift_magnitude: float,
    bootstrap: str | None,
) -> None:
    """Drive the synthetic generator into Kafka at a given rate."""
    step = pd.Timedelta("1D" if family == "products" else "1h")
    try:
        first = (
            pd.Timestamp(start) if start else pd.Timestamp.now("UTC").floor(step) - step * periods
        )
    except ValueError as exc:
        raise click.BadParameter(f"{start!r} is not a time: {exc}", param_hint="--start") from exc
    origin = str(first)
    topic: str = READINGS_SENSOR
    kind: SensorKind = "machine"
    try:
        if family == "products":
            frame = generate_products(entities, periods, "1D", seed, origin)
            topic, column = READINGS_DEMAND, "quantity"
        elif family == "air":
            frame, column, kind = generate_air(entities, periods, "1h", seed, origin), "pm25", "air"
        else:
            frame, column = generate_machines(entities, periods, "1h", seed, origin), "power"
        if drift:
            onset = first + step * int(periods * drift_at)
            frame = inject_drift(frame, column, drift, onset, drift_magnitude)
    except GeneratorError as exc:
        raise click.ClickException(str(exc)) from exc
    sent = _send(bootstrap, topic, _records(frame, topic, kind, skip_refused=False), rate)
    click.echo(f"published {sent} {family} readings to {topic}")
