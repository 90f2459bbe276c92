"""``driftline train FAMILY --csv FILE``: train a model family on a CSV and register it.

The CSV is read in the family's canonical layout (sensor wide for anomaly, maintenance and
sequence; demand long for demand) through the column-mapping options, optionally joined
with a labels file read with the same options. Training runs ``models.training`` with a
progress bar on stderr; the result (metrics, version, time, size, plot) goes to stdout, as
JSON with ``--json``. Bad input ends with a one-line error (exit status 1).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import click
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from events import ContractError
from events.checks import check_metrics
from models.base import ModelError
from models.csvio import ReadReport, read_demand_csv, read_labels_csv, read_sensor_csv
from models.csvmapping import ColumnMapping, CsvError, column_mapping_options
from models.frames import ENTITY, metric_columns
from models.registry_errors import RegistryError

Reader = Callable[[Path, ColumnMapping, ReadReport | None], pd.DataFrame]
READERS: Final[dict[str, Reader]] = {
    "anomaly": read_sensor_csv,
    "maintenance": read_sensor_csv,
    "demand": read_demand_csv,
    "sequence": read_sensor_csv,
}
LABELLED: Final = frozenset({"anomaly", "maintenance"})  # families that learn from labels
STAGE_TEXT: Final = {
    "read": "reading the CSV",
    "fit": "fitting (features + model)",
    "validate": "validating on the holdout and plotting",
    "register": "registering the version",
}
SEQUENCE_FIT: Final = "fitting the LSTM (up to {epochs} epochs, early stopping)"
DEFAULT_EPOCHS: Final = 30  # SequenceParams.epochs, shown while no epoch callback exists
KIB: Final = 1024

store_option = click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MODEL_STORE",
    default="model-store",
    show_default=True,
    help="Model store directory [env MODEL_STORE].",
)


def clear_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Turn CSV, model and registry errors into one-line click errors (exit status 1)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except (CsvError, ModelError, RegistryError) as exc:
            raise click.ClickException(str(exc)) from exc

    return run


def read_history(
    family: str, csv_path: Path, mapping: ColumnMapping, report: ReadReport | None = None
) -> pd.DataFrame:
    """The CSV as the family's canonical history frame (what the reader did: ``report``)."""
    frame = READERS[family](csv_path, mapping, report)
    if frame.empty:
        raise CsvError(f"{csv_path}: no rows to use")
    return frame


def check_streamable(frame: pd.DataFrame, csv_path: Path) -> None:
    """A sensor frame's metrics must be names readings can carry, or a model trained on them
    could never be fed from a topic (scoring a CSV offline does not need it)."""
    if ENTITY not in frame:
        return
    try:
        check_metrics(metric_columns(frame), "columns")
    except ContractError as exc:
        raise CsvError(
            f"{csv_path}: a model trained on these columns could never be fed from a topic "
            f"({exc}); rename them with --value-col SRC=name"
        ) from exc


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs; values are JSON when they parse (``3``, ``0.1``, ``[6,24]``, ``null``).

    >>> parse_params(("epochs=2", "rolling=[6,24]", "metric=pm25"))
    {'epochs': 2, 'rolling': [6, 24], 'metric': 'pm25'}
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--param {pair!r} must look like name=value")
        try:
            params[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            params[name.strip()] = text
    return params


def metric_params(family: str, metrics: tuple[str, ...]) -> dict[str, Any]:
    """``--metric``: the sequence target, or the metrics anomaly/maintenance learn from."""
    if not metrics:
        return {}
    if family == "sequence":
        if len(metrics) > 1:
            raise click.UsageError("sequence forecasts one metric: give --metric once")
        return {"metric": metrics[0]}
    if family in LABELLED:
        return {"metrics": list(metrics)}
    raise click.UsageError("demand forecasts the quantity column: choose it with --value-col")


class StageBar:
    """A rich progress bar of the training stages (``models.training.Progress``)."""

    def __init__(self, progress: Progress, family: str, params: dict[str, Any]) -> None:
        self._progress = progress
        self._fit_text = STAGE_TEXT["fit"]
        if family == "sequence":
            self._fit_text = SEQUENCE_FIT.format(epochs=params.get("epochs", DEFAULT_EPOCHS))
        self._task = progress.add_task(f"train {family}", total=len(STAGE_TEXT))
        self._started = False

    def stage(self, name: str) -> None:
        if self._started:
            self._progress.advance(self._task)
        self._started = True
        text = self._fit_text if name == "fit" else STAGE_TEXT.get(name, name)
        self._progress.update(self._task, description=text)

    def finish(self) -> None:
        self._progress.update(self._task, completed=len(STAGE_TEXT), description="done")


@contextmanager
def stage_bar(family: str, params: dict[str, Any], enabled: bool) -> Iterator[StageBar]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<48}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
    )
    console = Console(stderr=True)
    with Progress(*columns, console=console, disable=not enabled) as progress:
        bar = StageBar(progress, family, params)
        yield bar
        bar.finish()


@click.command()
@click.argument("family", type=click.Choice(sorted(READERS)), metavar="FAMILY")
@click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Labels CSV (entity_id, ts, is_anomaly[, risk]) for anomaly/maintenance.",
)
@click.option("--key", default=None, help="Model key (product, metric...); sequence: the metric.")
@click.option("--model", "name", default=None, help="Model name [default: the family].")
@click.option("--metric", "metrics", multiple=True, help="Sequence target / metrics to use.")
@click.option("--param", "param_pairs", multiple=True, help="Hyper-parameter name=value.")
@click.option("--promote", is_flag=True, help="Make this version champion even if one exists.")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@column_mapping_options
@clear_errors
def train(
    family: str,
    csv_path: Path,
    labels_path: Path | None,
    key: str | None,
    name: str | None,
    metrics: tuple[str, ...],
    param_pairs: tuple[str, ...],
    promote: bool,
    store: Path,
    as_json: bool,
    mapping: ColumnMapping,
) -> None:
    """Train FAMILY on a CSV file and register the version (champion if it is the first)."""
    from models.registry import Registry
    from models.training import TrainRequest, attach_labels, train_model

    if labels_path is not None and family not in LABELLED:
        raise click.UsageError("--labels applies to the anomaly and maintenance families")
    params = {**parse_params(param_pairs), **metric_params(family, metrics)}
    request = TrainRequest(
        family, name, key, params, promote=promote, reason=f"trained on {csv_path}"
    )
    started = time.perf_counter()
    with stage_bar(family, params, enabled=not as_json) as bar:
        bar.stage("read")
        # --label-col/--risk-col name the labels file's columns when it is given apart
        readings = (
            mapping if labels_path is None else replace(mapping, label_col=None, risk_col=None)
        )
        history = read_history(family, csv_path, readings)
        check_streamable(history, csv_path)
        if labels_path is not None:
            history = attach_labels(history, read_labels_csv(labels_path, mapping))
        read_seconds = time.perf_counter() - started
        result = train_model(Registry(store), request, history, bar)
    summary = result.summary()
    summary["stage_seconds"] = {"read": read_seconds, **summary["stage_seconds"]}
    summary["total_seconds"] = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
        return
    console = Console()
    console.print(_metrics_table(summary))
    for line in _facts(summary):
        console.print(line, highlight=False, soft_wrap=True)


def _metrics_table(summary: dict[str, Any]) -> Table:
    label = summary["model"] if summary["key"] is None else f"{summary['model']}[{summary['key']}]"
    role = "champion" if summary["champion"] else "not promoted (champion unchanged)"
    table = Table(title=f"{label} v{summary['version']}: {role}", title_justify="left")
    table.add_column("holdout metric")
    table.add_column("value", justify="right")
    for metric, value in summary["metrics"].items():
        table.add_row(metric, f"{value:.4g}")
    return table


def _facts(summary: dict[str, Any]) -> list[str]:
    window = summary["window"] or {}
    return [
        f"rows       {summary['rows']:,} ({window.get('start')} .. {window.get('end')})",
        f"training   {summary['fit_seconds']:.1f} s (total {summary['total_seconds']:.1f} s)",
        f"model size {summary['model_bytes'] / KIB:,.0f} KiB",
        f"version    {summary['path']}",
        f"plot       {summary['plot']}",
    ]
