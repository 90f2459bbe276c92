"""``driftline trainer``: run the trainer service; ``driftline trainer status``: its report.

``driftline trainer`` reads every setting from the environment (``TRAINER_*``, ``KAFKA_*``,
``MODEL_STORE``; see ``driftline config``); the options override the most common ones.
SIGTERM or Ctrl-C stop it gracefully: the job in flight gets ``TRAINER_SHUTDOWN_TIMEOUT_S``
to finish, and an unfinished one runs again at the next start.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from driftline.logs import configure_logging
from events.settings import kafka_settings

STORE_HELP = "Model store directory [env MODEL_STORE]."
CSV = click.Path(exists=True, dir_okay=False, path_type=Path)
# Reasons are cut to this width in the status tables; --json has them whole.
REASON_WIDTH = 90


def _settings(**overrides: Any) -> Any:
    from trainer.settings import TrainerSettings

    given = {name: value for name, value in overrides.items() if value is not None}
    return TrainerSettings(**given)


@click.group(invoke_without_command=True)
@click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Brokers (host:port,...).")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), help=STORE_HELP)
@click.option("--demand-csv", type=CSV, help="Train demand models from this CSV, not Kafka.")
@click.option("--sensor-csv", type=CSV, help="Train sensor models from this CSV, not Kafka.")
@click.option("--labels-csv", type=CSV, help="Labels (is_anomaly, risk) for the sensor CSV.")
@click.option("--shadow/--no-shadow", default=None, help="Shadow mode [env TRAINER_SHADOW].")
@click.pass_context
def trainer(
    ctx: click.Context,
    bootstrap: str | None,
    store: Path | None,
    demand_csv: Path | None,
    sensor_csv: Path | None,
    labels_csv: Path | None,
    shadow: bool | None,
) -> None:
    """Run the trainer: retrain requests and scheduled checks -> validated promotions."""
    if ctx.invoked_subcommand is not None:
        return
    from trainer.service import TrainerService

    configure_logging()
    settings = _settings(
        model_store=store,
        demand_csv=demand_csv,
        sensor_csv=sensor_csv,
        labels_csv=labels_csv,
        shadow=shadow,
    )
    service = TrainerService(settings, kafka_settings(bootstrap))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: service.stop())
    try:
        service.run()
    except Exception as exc:
        raise click.ClickException(str(exc)) from exc


@trainer.command("status")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), help=STORE_HELP)
@click.option("--decisions", default=20, show_default=True, help="Recent decisions to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def status(store: Path | None, decisions: int, as_json: bool) -> None:
    """Last decisions and their reasons, the queue, and every model's versions."""
    from trainer.errors import TrainerError
    from trainer.status import trainer_status

    try:
        report = trainer_status(_settings(model_store=store), decisions)
    except TrainerError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True, default=str))
        return
    console = Console()
    console.print(f"state: {report['state_file']}  handled requests: {report['handled_requests']}")
    console.print(_table("queue", report["queue"], QUEUE_COLUMNS))
    console.print(_table("decisions", report["decisions"], DECISION_COLUMNS))
    console.print(_table("models", report["models"], MODEL_COLUMNS))


QUEUE_COLUMNS = ("job_id", "model", "key", "trigger", "action", "attempts", "stage", "enqueued_at")
DECISION_COLUMNS = ("ts", "model", "key", "trigger", "action", "outcome", "version", "reason")
MODEL_COLUMNS = (
    "model",
    "key",
    "champion",
    "challenger",
    "latest",
    "last_full_retrain",
    "last_update",
    "fine_tunes_since_full",
    "last_decision",
)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    text = str(value)
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 1] + "…"


def _table(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Table | str:
    if not rows:
        return f"{title}: none"
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    return table
