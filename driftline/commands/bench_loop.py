"""``driftline bench loop``: the closed drift -> retrain -> promote loop, timed.

Starts a local Apache Kafka broker in a temporary directory (or uses ``--bootstrap``), runs
the loop scenario of ``driftline.loop`` once - worker, monitor and trainer as subprocesses,
a level shift in hourly demand of five products - and prints what it took: labelled pairs
from the onset to the retrain request, wall seconds from the first drifted reading to the
request and to the first prediction of the new champion, and the rolling MAE before the
drift, during it and after the promotion (from ``monitor.pairs``, by target time).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from driftline.commands.bench import environment, write_json

if TYPE_CHECKING:
    from driftline.loop.figures import LoopFigures


@click.command("loop")
@click.option("--bootstrap", help="Use this broker instead of starting a local one.")
@click.option("--seed", default=7, show_default=True, help="Seed of the generated demand.")
@click.option("--shadow", is_flag=True, help="Shadow mode: promote after a live shadow run.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the run's store and service logs here (default: a temporary directory).",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
def loop(
    bootstrap: str | None, seed: int, shadow: bool, workdir: Path | None, json_path: Path | None
) -> None:
    """Drift -> monitor -> retrain -> promote -> serve, on a local broker."""
    from driftline.logs import configure_logging
    from driftline.loop.environment import Tuning
    from driftline.loop.figures import loop_figures
    from driftline.loop.runner import LoopRunner
    from driftline.loop.scenario import LoopConfig
    from events.settings import KafkaSettings

    configure_logging()
    console = Console()
    config, tuning = LoopConfig(seed=seed), Tuning(shadow=shadow)
    with _directory(workdir) as root, _broker(bootstrap, root) as servers:
        runner = LoopRunner(
            KafkaSettings(bootstrap_servers=servers),
            root,
            config,
            tuning,
            progress=lambda stage: console.print(f"[dim]loop:[/] {stage}"),
        )
        figures = loop_figures(runner.run())
    console.print(_table(figures, config.products, shadow))
    if json_path is not None:
        payload: dict[str, Any] = {
            "benchmark": "loop",
            "scenario": {
                "products": config.products,
                "step": "1h",
                "drift": config.drift,
                "magnitude_sd": config.magnitude,
                "seed": config.seed,
                "shadow": shadow,
            },
            "environment": environment(),
            "results": figures.to_dict(),
        }
        write_json(json_path, payload)
        click.echo(f"figures written to {json_path}")


@contextlib.contextmanager
def _directory(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="driftline-bench-loop-") as temporary:
        yield Path(temporary)


@contextlib.contextmanager
def _broker(bootstrap: str | None, root: Path) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    from broker import LocalBroker

    with LocalBroker(root / "kafka") as broker:
        yield broker.bootstrap_servers


def _number(value: float | int | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}{unit}"


def _table(figures: LoopFigures, products: int, shadow: bool) -> Table:
    mode = "shadow run, then promotion" if shadow else "promotion after the offline gate"
    table = Table(
        title=f"closed loop: level shift in hourly demand of {products} products ({mode})",
        caption="seconds: wall clock from publishing the first drifted reading; MAE from "
        "monitor.pairs by target time (during: old champion after the onset; after: the new "
        "champion from its first prediction on)",
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("outcome of the retrain request", figures.outcome),
        ("retrain requests", str(figures.requests)),
        ("labelled pairs from onset to request", _number(figures.pairs_to_request, digits=0)),
        ("seconds from onset to request", _seconds(figures.seconds_to_request)),
        (
            "seconds from onset to new champion serving",
            _number(figures.seconds_to_serving, " s", 2),
        ),
        ("new champion version", _number(figures.new_version, digits=0)),
        ("baseline MAE (first champion, holdout)", _number(figures.baseline_mae, digits=2)),
        ("MAE before the drift", _mae(figures.mae_before, figures.pairs_before)),
        ("MAE during the drift", _mae(figures.mae_during, figures.pairs_during)),
        ("MAE after the promotion", _mae(figures.mae_after, figures.pairs_after)),
        ("run (set-up to shutdown)", _number(figures.run_seconds, " s", 1)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _seconds(value: float | None) -> str:
    return _number(value, " s", 2)


def _mae(value: float | None, pairs: int) -> str:
    return f"{_number(value, digits=2)} ({pairs:,} pairs)"
