"""``driftline demo``: the end-to-end demonstration on a local broker.

Starts Apache Kafka, trains the first champions on generated history, runs worker, monitor
and trainer as separate processes and streams machines, air-quality stations and products
with anomalies, gaps and a demand drift, with a live dashboard, until ``--seconds`` pass or
Ctrl-C. Then it prints a summary and writes ``report.png`` and ``summary.json`` into
``--out``. Exit status 0 only when the run reached its goals: anomalies alerted, drift
detected, a retrain promoted and the error recovered.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

# A few minutes: enough for the drift to be detected, retrained, promoted and recovered.
DEFAULT_SECONDS = 180


@click.command()
@click.option(
    "--seconds",
    type=click.FloatRange(min=30),
    envvar="DEMO_SECONDS",
    default=DEFAULT_SECONDS,
    show_default=True,
    help="How long the run lasts, start-up included [env DEMO_SECONDS].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default="demo-output",
    show_default=True,
    help="Directory of the report, summary, logs and model store (cleared first).",
)
@click.option("--machines", default=8, show_default=True, help="Machines streaming telemetry.")
@click.option("--stations", default=3, show_default=True, help="Air-quality stations.")
@click.option("--products", default=10, show_default=True, help="Products selling.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0.5, max=50),
    default=4.0,
    show_default=True,
    help="Simulated hours per second (every entity reports once an hour).",
)
@click.option("--seed", default=7, show_default=True, help="Seed of the generated world.")
@click.option(
    "--live/--plain",
    default=None,
    help="Rich dashboard or log lines [default: dashboard on a terminal].",
)
@click.option("--bootstrap", help="Use this broker (host:port) instead of a local one.")
def demo(
    seconds: float,
    out: Path,
    machines: int,
    stations: int,
    products: int,
    rate: float,
    seed: int,
    live: bool | None,
    bootstrap: str | None,
) -> None:
    """Run the end-to-end demo: stream, detect drift, retrain, promote, recover."""
    from driftline.demo.run import Demo, DemoOptions
    from driftline.demo.scenario import ScenarioConfig
    from driftline.demo.summary import rows

    console = Console()
    try:
        scenario = ScenarioConfig(
            machines=machines, stations=stations, products=products, tick_rate=rate, seed=seed
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    options = DemoOptions(seconds, out, scenario, bootstrap=bootstrap, live=live)
    runner = Demo(options, console)
    summary = runner.run()
    table = Table(title="driftline demo: summary", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows(summary):
        table.add_row(label, value)
    console.print(table)
    for problem in runner.problems:
        console.print(f"[red]problem:[/] {problem}", soft_wrap=True)
    for goal, reached in summary.goals.items():
        mark = "[green]achieved[/]" if reached else "[red]NOT achieved[/]"
        console.print(f"  {goal}: {mark}")
    console.print(f"report: {options.out / 'report.png'}  summary: {options.out / 'summary.json'}")
    if not summary.achieved:
        raise SystemExit(1)
