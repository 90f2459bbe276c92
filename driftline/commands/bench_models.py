"""``driftline bench models``: model quality against goals and baselines (``models.quality``).

Generated data comes from ``driftline.generator`` with ``--seed``; the real files are read
from ``--data-dir`` (default ``../shared/data`` beside the repository) and skipped with a
note when absent. Prints a table, optionally writes the figures as JSON, and exits with
status 1 when a check misses its goal.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
from rich.console import Console
from rich.table import Table

from driftline.commands.bench import environment, write_json

if TYPE_CHECKING:
    from models.quality import Check, Generated

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR: Final = REPO_ROOT.parent / "shared" / "data"
KIB: Final = 1024
PIPED_WIDTH: Final = 120


@dataclass(frozen=True)
class Size:
    """Generated history sizes: (entities, periods) per generator."""

    machines: tuple[int, int]
    products: tuple[int, int]
    air: tuple[int, int]


# full: the sizes docs/data.md measured on (10 machines x 2,000 h, two years of 20 products)
# and three months of hourly air quality from three stations
FULL: Final = Size(machines=(10, 2000), products=(20, 730), air=(3, 2160))
# quick: a third of the time; the LSTM still needs two months of two stations for R² 0.9
QUICK: Final = Size(machines=(5, 720), products=(10, 365), air=(2, 1440))


def generated_data(size: Size, seed: int) -> Generated:
    from driftline.generator import generate_air, generate_machines, generate_products
    from models.quality import Generated

    return Generated(
        machines=generate_machines(*size.machines, seed=seed),
        products=generate_products(*size.products, seed=seed),
        air=generate_air(*size.air, seed=seed),
        seed=seed,
    )


@click.command("models")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, type=int, help="Generator and model seed.")
@click.option("--quick", is_flag=True, help="Smaller generated data and fewer LSTM epochs.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default="../shared/data beside the repository",
    help="Directory of the real data files.",
)
def models(json_path: Path | None, seed: int, quick: bool, data_dir: Path) -> None:
    """Quality of every model family on held-out data, against goals and baselines."""
    from models.quality import generated_checks
    from models.quality_real import real_checks

    size = QUICK if quick else FULL
    console = Console(stderr=True)
    started = time.perf_counter()
    with console.status("generating data") as status:
        update = status.update
        checks = generated_checks(generated_data(size, seed), update)
        real, skipped = real_checks(data_dir, update, {}, seed)
    checks += real
    seconds = time.perf_counter() - started
    # the table needs ~110 columns: keep it whole when piped (rich assumes 80 there)
    out = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    out.print(_table(checks, quick, seed, seconds))
    for number, check in enumerate(checks, start=1):
        for note in check.notes:
            out.print(f"[{number}] {note}", highlight=False, soft_wrap=True)
    for note in skipped:
        out.print(f"skipped real data: {note}", highlight=False)
    missed = [c for c in checks if c.passed is False]
    if json_path is not None:
        payload = {
            "benchmark": "models",
            "seed": seed,
            "quick": quick,
            "seconds": seconds,
            "data_dir": str(data_dir),
            "environment": environment(),
            "passed": not missed,
            "skipped": skipped,
            "results": [c.to_dict() for c in checks],
        }
        write_json(json_path, payload)
        out.print(f"figures written to {json_path}", highlight=False)
    if missed:
        names = ", ".join(f"{c.family} {c.metric} on {c.data}" for c in missed)
        raise click.ClickException(f"goal missed: {names}")


def _table(checks: list[Check], quick: bool, seed: int, seconds: float) -> Table:
    table = Table(
        title=f"model quality on held-out data (seed {seed}{', quick' if quick else ''})",
        caption=f"latest 20% of each history held out by time; naive = seasonal naive on the "
        f"same readings; {seconds:,.0f} s in all",
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("#", justify="right")
    for header in ("family", "data", "metric", "value", "goal", "pass", "baseline"):
        table.add_column(header, justify="right" if header == "value" else "left")
    table.add_column("train s", justify="right")
    table.add_column("KiB", justify="right")
    for number, c in enumerate(checks, start=1):
        table.add_row(
            str(number),
            c.family,
            c.data,
            c.metric,
            f"{c.value:,.4g}" if abs(c.value) < 1000 else f"{c.value:,.0f}",
            c.goal or "",
            "" if c.passed is None else ("yes" if c.passed else "NO"),
            c.baseline or "",
            "" if c.train_seconds is None else f"{c.train_seconds:.1f}",
            "" if c.model_bytes is None else f"{c.model_bytes / KIB:,.0f}",
        )
    return table
