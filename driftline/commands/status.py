"""``driftline status``: services, consumer lag, throughput, dead letters and models at once.

Defaults come from the services' settings (``WORKER_HTTP_PORT``, ``WORKER_GROUP_ID``,
``MODEL_STORE``, ...); options override them. ``--worker-url`` may be repeated (one per
worker process). ``--interval 5`` scrapes twice, five seconds apart, to show rates.
``--json`` prints every figure for scripts (``.healthy`` is true when every service is
ready and every part could be read).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console, Group
from rich.table import Table

from driftline.status import (
    StatusRequest,
    SystemStatus,
    as_json,
    collect,
    default_endpoints,
    default_groups,
    default_health_topic,
)
from driftline.status_services import Endpoint
from events.settings import kafka_settings
from models.store import default_store

STATE_STYLES = {"ready": "green", "not ready": "yellow", "unhealthy": "bold red", "down": "red"}
HEALTH_STYLES = {"healthy": "green", "warning": "yellow", "critical": "bold red", "unknown": "dim"}


@click.command()
@click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Brokers (host:port,...).")
@click.option("--worker-url", "worker_urls", multiple=True, help="Worker HTTP URL (repeatable).")
@click.option("--monitor-url", "monitor_urls", multiple=True, help="Monitor HTTP URL.")
@click.option("--trainer-url", "trainer_urls", multiple=True, help="Trainer HTTP URL.")
@click.option("--group", "groups", multiple=True, help="Consumer group (repeatable).")
@click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=Path),
    help="Model store directory [env MODEL_STORE].",
)
@click.option("--health-topic", help="Topic of model health [MONITOR_HEALTH_TOPIC].")
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds between two scrapes of /metrics to compute rates (0: totals only).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Longest wait (s) for one broker request.",
)
@click.option("--json", "as_json_output", is_flag=True, help="Print JSON instead of tables.")
def status(
    bootstrap: str | None,
    worker_urls: Sequence[str],
    monitor_urls: Sequence[str],
    trainer_urls: Sequence[str],
    groups: Sequence[str],
    store: Path | None,
    health_topic: str | None,
    interval: float,
    timeout: float,
    as_json_output: bool,
) -> None:
    """Show the running system: services up, consumer lag, throughput, DLQ and models."""
    defaults = default_endpoints()
    given = {"worker": worker_urls, "monitor": monitor_urls, "trainer": trainer_urls}
    endpoints = [
        Endpoint(service, url)
        for service, urls in given.items()
        for url in (urls or [defaults[service]])
    ]
    request = StatusRequest(
        endpoints=endpoints,
        groups=list(groups) or default_groups(),
        store=store or default_store(),
        health_topic=health_topic or default_health_topic(),
        interval_s=interval,
        timeout_s=timeout,
    )
    found = collect(request, kafka_settings(bootstrap))
    if as_json_output:
        click.echo(json.dumps(as_json(found), indent=2, sort_keys=True))
        return
    Console().print(render(found))


def render(found: SystemStatus) -> Group:
    """The tables of every section, then what could not be read."""
    unread = "not read (see kafka below)" if "kafka" in found.errors else ""
    sections = [
        (_services(found), "no service to probe"),
        (_throughput(found), "no records consumed reported"),
        (_lag(found), unread or "no consumer group asked for"),
        (_dead_letters(found), unread or "no dead-letter topic"),
        (_models(found), "no model in the store or on the health topic"),
    ]
    parts: list[Table | str] = [
        table if table.row_count else f"[bold]{table.title}[/]: [dim]{empty}[/]"
        for table, empty in sections
    ]
    parts += [f"[red]{part}: {reason}[/]" for part, reason in sorted(found.errors.items())]
    return Group(*parts)


def _services(found: SystemStatus) -> Table:
    table = Table("service", "url", "state", "detail", title="Services", title_justify="left")
    for probe in found.services:
        style = STATE_STYLES[probe.state]
        detail = probe.error or ", ".join(probe.reasons) or "-"
        table.add_row(probe.service, probe.url, f"[{style}]{probe.state}[/]", detail)
    return table


def _throughput(found: SystemStatus) -> Table:
    columns = ["service", "url", "topic", "records consumed"]
    columns += [f"per s ({found.interval_s:g} s)"] if found.interval_s > 0 else []
    table = Table(*columns, title="Throughput", title_justify="left")
    for probe in found.services:
        for topic, total in sorted(probe.consumed.items()):
            row = [probe.service, probe.url, topic or "-", f"{total:,.0f}"]
            if found.interval_s > 0:
                rate = (probe.rates or {}).get(topic)
                row.append("-" if rate is None else f"{rate:,.1f}")
            table.add_row(*row)
    return table


def _lag(found: SystemStatus) -> Table:
    table = Table("group", "state", "topic", "lag", title="Consumer lag", title_justify="left")
    for group in found.groups:
        if not group.lag:
            table.add_row(group.group, group.state, "-", "-")
        for topic, lag in sorted(group.lag.items()):
            table.add_row(group.group, group.state, topic, f"{lag:,}")
    return table


def _dead_letters(found: SystemStatus) -> Table:
    table = Table("topic", "records", title="Dead letters", title_justify="left")
    for dlq in found.dead_letters:
        table.add_row(dlq.topic, f"[{'red' if dlq.records else 'green'}]{dlq.records:,}[/]")
    return table


def _models(found: SystemStatus) -> Table:
    table = Table(
        *("model", "key", "champion", "challenger", "measured", "status"),
        *("MAE", "baseline", "degradation", "reported"),
        title="Models",
        title_justify="left",
    )
    for m in found.models:
        health = m.status or "-"
        table.add_row(
            m.model,
            m.key or "-",
            _version(m.champion),
            _version(m.challenger),
            _version(m.measured),
            f"[{HEALTH_STYLES.get(health, 'dim')}]{health}[/]",
            _figure(m.mae),
            _figure(m.baseline_mae),
            "-" if m.degradation is None else f"{m.degradation:+.1%}",
            _timestamp(m.reported_at),
        )
    return table


def _version(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _timestamp(when: datetime | None) -> str:
    return "-" if when is None else when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
