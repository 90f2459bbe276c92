"""``driftline topics``: provision and list topics."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from events.admin import TopicError, TopicSettings, connect, ensure_topics
from events.settings import kafka_settings


@click.group()
def topics() -> None:
    """Create and list driftline's topics."""


@topics.command("create")
@click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Brokers (host:port,...).")
@click.option("--partitions", type=int, help="Partitions per topic [TOPICS_PARTITIONS, 6].")
@click.option("--replication-factor", type=int, help="Replicas [TOPICS_REPLICATION_FACTOR, 1].")
@click.option("--retention-ms", type=int, help="Retention of readings/outputs in ms.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def create(
    bootstrap: str | None,
    partitions: int | None,
    replication_factor: int | None,
    retention_ms: int | None,
    as_json: bool,
) -> None:
    """Create every driftline topic that does not exist yet (idempotent)."""
    kafka = kafka_settings(bootstrap)
    overrides = {
        "partitions": partitions,
        "replication_factor": replication_factor,
        "retention_ms": retention_ms,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    settings = TopicSettings.model_validate({**TopicSettings().model_dump(), **given})
    try:
        report = ensure_topics(kafka, settings)
    except TopicError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.__dict__, sort_keys=True))
    else:
        click.echo(
            f"created {len(report.created)} topic(s), {len(report.existing)} already existed"
        )
        for name in report.created:
            click.echo(f"  + {name} ({settings.partitions} partitions)")
    for name, count in report.mismatched.items():
        click.echo(
            f"warning: {name} has {count} partitions, expected {settings.partitions}: "
            "entity co-partitioning is broken until it is recreated",
            err=True,
        )
    if report.mismatched:
        raise SystemExit(3)


@topics.command("list")
@click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Brokers (host:port,...).")
def list_topics(bootstrap: str | None) -> None:
    """List topics with partition counts."""
    kafka = kafka_settings(bootstrap)
    try:
        _, metadata = connect(kafka, TopicSettings().timeout_s)
    except TopicError as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table("topic", "partitions")
    for name in sorted(metadata.topics):
        if not name.startswith("__"):
            table.add_row(name, str(len(metadata.topics[name].partitions)))
    Console().print(table)
