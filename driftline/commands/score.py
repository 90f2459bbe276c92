"""``driftline score FAMILY --csv FILE --out FILE``: batch-score history with the champion.

A backfill: every reading of the CSV gets what the worker would have produced when it
arrived (``models.scoring``). The output keeps the input's entity and timestamp columns
(under their source names when the column mapping renamed them; timestamps as ISO 8601
UTC) followed by the family's output columns.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import click
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from driftline.commands.train import READERS, clear_errors, read_history, store_option
from models.csvio import ReadReport
from models.csvmapping import ColumnMapping, CsvError, column_mapping_options
from models.frames import ENTITY, PRODUCT, TS
from models.registry_errors import ModelNotFoundError, NoChampionError

SHOW_PROGRESS_ROWS: Final = 50_000  # smaller files score in well under a second
ISO_SECONDS: Final = "%Y-%m-%dT%H:%M:%SZ"
ISO_FRACTION: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def resolve_key(store: Path, name: str, key: str | None) -> str | None:
    """``key``, else the model's only key (a sequence model is keyed by its metric)."""
    from models.store import ModelStore

    if key is not None:
        return key
    keys = ModelStore(store).keys(name)
    if None in keys:
        return None
    if len(keys) == 1:
        return keys[0]
    listed = ", ".join(str(k) for k in keys)
    raise click.ClickException(f"model {name!r} has keys {listed}; choose one with --key")


def output_table(table: pd.DataFrame, mapping: ColumnMapping, integer_times: bool) -> pd.DataFrame:
    """Scores with the input's own key and time column names; integer times stay integers."""
    entity = ENTITY if ENTITY in table.columns else PRODUCT
    if integer_times:
        unit = pd.Timedelta(mapping.step if mapping.ts_unit == "step" else f"1{mapping.ts_unit}")
        epoch = pd.Timestamp(mapping.epoch)
        epoch = epoch.tz_localize("UTC") if epoch.tzinfo is None else epoch.tz_convert("UTC")
        for column in (TS, "target_ts"):
            if column in table.columns:
                table[column] = ((table[column] - epoch) // unit).astype("Int64")
    if mapping.entity is not None:  # one series without an entity column in the input
        table = table.drop(columns=[entity])
    renames = {entity: mapping.entity_col or entity, TS: mapping.ts_col or TS}
    return table.rename(columns=renames)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically (temporary sibling, then rename); timestamps as ISO 8601 UTC."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            stamps = out[column]
            fractional = bool((stamps.dt.microsecond != 0).any())
            out[column] = stamps.dt.strftime(ISO_FRACTION if fractional else ISO_SECONDS)
    temporary = path.with_name(f".{uuid.uuid4().hex}.tmp.{path.name}")
    try:
        out.to_csv(temporary, index=False)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise CsvError(f"cannot write {path}: {exc.strerror or exc}") from exc


@click.command()
@click.argument("family", type=click.Choice(sorted(READERS)), metavar="FAMILY")
@click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "name", default=None, help="Model name [default: the family].")
@click.option("--key", default=None, help="Model key [default: the model's only key].")
@store_option
@column_mapping_options
@clear_errors
def score(
    family: str,
    csv_path: Path,
    out_path: Path,
    name: str | None,
    key: str | None,
    store: Path,
    mapping: ColumnMapping,
) -> None:
    """Score every reading of a CSV with the champion of FAMILY and write the outputs."""
    from models.scoring import score_history
    from models.store import ModelStore
    from models.training import rows_for_key

    model_name = name or family
    try:
        loaded = ModelStore(store).load(model_name, resolve_key(store, model_name, key))
    except (ModelNotFoundError, NoChampionError) as exc:
        raise click.ClickException(
            f"no champion to score with: {exc}. Train one first: "
            f"driftline train {family} --csv FILE --store {store}"
            + (f" --model {model_name}" if name else "")
        ) from exc
    if loaded.info.family != family:
        raise click.ClickException(
            f"{loaded.info.label} belongs to the {loaded.info.family} family, not {family}"
        )
    report = ReadReport()
    history = rows_for_key(family, read_history(family, csv_path, mapping, report), loaded.info.key)
    if report.bad_rows or report.duplicates:
        click.echo(report.summary(), err=True)
    started = time.perf_counter()
    with rows_bar(len(history)) as advance:
        scored = score_history(loaded.model, history, on_rows=advance)
    write_csv(output_table(scored.table(), mapping, report.integer_times), out_path)
    seconds = time.perf_counter() - started
    rate = len(history) / seconds if seconds > 0 else float("inf")
    click.echo(
        f"scored {len(scored.inputs):,} rows with {loaded.info.label} in {seconds:.2f} s "
        f"({rate:,.0f} rows/s); wrote {out_path}"
    )


@contextmanager
def rows_bar(total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar of scored rows on stderr (large files only); yields ``advance``."""
    columns = (
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    with Progress(*columns, console=console, disable=total < SHOW_PROGRESS_ROWS) as progress:
        task = progress.add_task("scoring", total=total)
        yield lambda rows: progress.advance(task, rows)
