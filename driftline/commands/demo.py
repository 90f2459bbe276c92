"""``driftline demo``: readings through a real local Kafka broker, end to end."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from typing import Any

import click
from confluent_kafka import Consumer, Producer
from rich.console import Console
from rich.table import Table

from broker import BrokerError, LocalBroker
from driftline.generator import generate_machines, generate_products
from driftline.publish import demand_messages, publish, sensor_messages
from events import codec_for
from events.admin import TopicSettings, ensure_topics
from events.settings import KafkaSettings
from events.topics import READINGS_DEMAND, READINGS_SENSOR
from models.frames import metric_columns

# Bound on how long reading back may take: a few thousand records arrive in well under a
# second from a local broker; a minute means something is broken.
READ_BACK_TIMEOUT_S = 60.0


@click.command()
@click.option("--machines", default=3, show_default=True, help="Machines to simulate.")
@click.option("--hours", default=48, show_default=True, help="Hours of machine readings.")
@click.option("--products", default=3, show_default=True, help="Products to simulate.")
@click.option("--days", default=28, show_default=True, help="Days of product demand.")
@click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Use this broker instead.")
def demo(machines: int, hours: int, products: int, days: int, bootstrap: str | None) -> None:
    """Start a local broker, create the topics, publish readings and read them back."""
    console = Console()
    if bootstrap:
        _run(console, KafkaSettings(bootstrap_servers=bootstrap), machines, hours, products, days)
        return
    try:
        with console.status("starting a local Apache Kafka broker"):
            broker = LocalBroker().start()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        console.print(f"broker up at [bold]{broker.bootstrap_servers}[/] (pid {broker.pid})")
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        _run(console, kafka, machines, hours, products, days)
    finally:
        broker.stop()
        console.print("broker stopped")


def _run(
    console: Console, kafka: KafkaSettings, machines: int, hours: int, products: int, days: int
) -> None:
    report = ensure_topics(kafka, TopicSettings())
    console.print(f"topics: {len(report.created)} created, {len(report.existing)} existed")

    sensor = generate_machines(entities=machines, periods=hours, seed=1)
    demand = generate_products(entities=products, periods=days, seed=1)
    sensor = sensor[["entity_id", "ts", *metric_columns(sensor)]]
    producer = Producer(kafka.producer_config(**{"linger.ms": 5}))
    started = time.perf_counter()
    sent = publish(producer, READINGS_SENSOR, sensor_messages(sensor, "machine"))
    sent += publish(producer, READINGS_DEMAND, demand_messages(demand))
    console.print(f"published {sent} readings in {time.perf_counter() - started:.2f} s")

    counts, latest = _read_back(kafka, sent)
    table = Table("topic", "readings read back", "entities", title="Through Kafka")
    for topic in (READINGS_SENSOR, READINGS_DEMAND):
        table.add_row(topic, str(counts[topic]), str(len(latest[topic])))
    console.print(table)
    sample = Table("entity", "ts", "values", title="Latest sensor reading per machine")
    for entity, reading in sorted(latest[READINGS_SENSOR].items()):
        values = ", ".join(f"{k}={v}" for k, v in reading.values.items())
        sample.add_row(entity, reading.ts.isoformat(), values)
    console.print(sample)
    if sum(counts.values()) != sent:
        raise click.ClickException(f"read back {sum(counts.values())} of {sent} readings")


def _read_back(
    kafka: KafkaSettings, expected: int
) -> tuple[Counter[str], dict[str, dict[str, Any]]]:
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"driftline-demo-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([READINGS_SENSOR, READINGS_DEMAND])
    counts: Counter[str] = Counter()
    latest: dict[str, dict[str, Any]] = {READINGS_SENSOR: {}, READINGS_DEMAND: {}}
    deadline = time.monotonic() + READ_BACK_TIMEOUT_S
    try:
        while sum(counts.values()) < expected and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1.0):
                topic, key = message.topic(), message.key()
                if message.error() is not None or topic is None or key is None:
                    continue
                decoded = codec_for(topic).decode(message.value())
                counts[topic] += 1
                latest[topic][key.decode()] = decoded
    finally:
        consumer.close()
    return counts, latest
