"""``driftline monitor``: run the drift monitor, or show model health (``status``)."""

from __future__ import annotations

import json
import signal
from types import FrameType

import click
from rich.console import Console
from rich.table import Table

from driftline.logs import configure_logging
from events import ModelHealth
from events.settings import kafka_settings

STATUS_STYLES = {"healthy": "green", "warning": "yellow", "critical": "bold red", "unknown": "dim"}


@click.group(invoke_without_command=True)
@click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Brokers (host:port,...).")
@click.pass_context
def monitor(ctx: click.Context, bootstrap: str | None) -> None:
    """Run the monitor: join predictions with actuals, track rolling error per model
    version, publish health, drift alerts and retrain requests.

    Settings come from MONITOR_* variables (see `driftline config`).
    """
    ctx.obj = bootstrap
    if ctx.invoked_subcommand is None:
        _run(bootstrap)


def _run(bootstrap: str | None) -> None:
    from monitor.errors import MonitorError
    from monitor.http import HealthServer
    from monitor.service import MonitorService
    from monitor.settings import MonitorSettings

    configure_logging()
    settings = MonitorSettings()
    service = MonitorService(settings, kafka_settings(bootstrap))

    def stop(signum: int, frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = HealthServer(service.health, settings.http_host, settings.http_port)
    server.start()
    click.echo(
        f"monitor: metrics and health on http://{settings.http_host}:{server.port}", err=True
    )
    try:
        service.run()
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        server.stop()


@monitor.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def status(bootstrap: str | None, as_json: bool) -> None:
    """Latest health of every model key, from the model.health topic."""
    from monitor import status as health_status
    from monitor.errors import StatusReadError
    from monitor.settings import MonitorSettings

    settings = MonitorSettings()
    try:
        records = health_status.latest_health(settings, kafka_settings(bootstrap))
    except StatusReadError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(health_status.as_json(records), indent=2))
        return
    if not records:
        click.echo(f"no health reported yet on {settings.health_topic}")
        return
    Console().print(_table(records))


def _table(records: list[ModelHealth]) -> Table:
    table = Table(
        *("model", "key", "version", "status", "pairs", "MAE", "baseline"),
        *("degradation", "coverage", "window end"),
        caption="every figure: driftline monitor status --json",
    )
    for h in records:
        style = STATUS_STYLES.get(h.status, "")
        table.add_row(
            h.model,
            h.key or "-",
            str(h.version),
            f"[{style}]{h.status}[/]",
            str(h.pairs),
            _figure(h.mae),
            _figure(h.baseline_mae),
            _percent(h.degradation, signed=True),
            _percent(h.label_coverage),
            h.ts.isoformat(timespec="seconds").replace("+00:00", "Z"),
        )
    return table


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1%}" if signed else f"{value:.1%}"
