"""``driftline status``: probes, lag, dead letters and models, without and with the broker.

The unit tests probe an in-process :class:`worker.http.HealthServer` and parse metrics
text. The integration test runs a ``driftline worker`` subprocess on the session broker
with a pipeline defined below (the subprocess imports this module by name) that
dead-letters every record whose value is ``bad``; the status must then show the worker
ready, what it consumed, its group caught up, the dead letters, and the registry's
champion with the health the monitor last reported.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, generate_latest

from driftline.cli import main
from driftline.generator import generate_machines
from driftline.status import StatusRequest, as_json, collect, service_url
from driftline.status_kafka import LATEST, KafkaProbe
from driftline.status_models import model_statuses, registry_aliases
from driftline.status_services import (
    Endpoint,
    ServiceProbe,
    consumed_by_topic,
    probe,
    with_rates,
)
from events import ModelHealth, codec_for
from events.settings import KafkaSettings
from models.families import create
from models.registry import Registry
from worker.http import Health, HealthServer
from worker.records import BatchResult, OutRecord

HERE = Path(__file__).resolve().parent
DRIFTLINE = Path(sys.executable).with_name("driftline")
PARTITIONS = 2
GOOD, BAD = 20, 3
# Every wait is for a local broker and local processes; the deadline only catches hangs.
DEADLINE_S = 60.0


# --- the pipeline the worker subprocess runs ------------------------------------------


class DeadLettering:
    """Sends every record whose value is ``bad`` to the DLQ topic; nothing else is output."""

    def __init__(self, dlq: str) -> None:
        self.dlq = dlq

    def process(self, messages: Sequence[Any]) -> BatchResult:
        result = BatchResult()
        for message in messages:
            if message.value() == b"bad":
                result.records.append(OutRecord(self.dlq, message.key(), b"bad", "dlq"))
                where = (message.topic(), "bad")
                result.dlq_reasons[where] = result.dlq_reasons.get(where, 0) + 1
        return result

    def warm(self, messages: Sequence[Any]) -> None:
        """Stateless: nothing to rebuild."""

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Stateless: nothing to drop."""

    def history_needed(self) -> int:
        return 0


def build_pipeline(settings: Any, cache: Any) -> DeadLettering:
    """``WORKER_PIPELINE=test_status:build_pipeline`` (with this dir on PYTHONPATH)."""
    return DeadLettering(os.environ["TEST_DLQ"])


# --- helpers --------------------------------------------------------------------------


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return int(probe_socket.getsockname()[1])


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def health_record(model: str, version: int, key: str | None = None, **figures: Any) -> ModelHealth:
    defaults: dict[str, Any] = {"window": 3600, "pairs": 50, "status": "healthy"}
    when = datetime(2024, 5, 1, tzinfo=UTC)
    return ModelHealth(model=model, key=key, version=version, ts=when, **{**defaults, **figures})


def register_anomaly(store: Path) -> int:
    """One cheap model version (robust z-score), champion of ``anomaly``."""
    model = create("robust_zscore")
    report = model.fit(generate_machines(entities=1, periods=48))
    return Registry(store, actor="tests").register(model, "anomaly", fit_report=report).version


@pytest.fixture
def server() -> Iterator[tuple[Health, str]]:
    health = Health(liveness_timeout_s=60)
    running = HealthServer(health, port=0)
    running.start()
    try:
        yield health, f"http://127.0.0.1:{running.port}"
    finally:
        running.stop()


# --- unit tests -----------------------------------------------------------------------


def test_consumed_totals_are_summed_per_topic_across_services() -> None:
    registry = CollectorRegistry()
    worker = Counter("driftline_worker_records_consumed_total", "w", ["topic"], registry=registry)
    monitor = Counter("driftline_monitor_records_consumed_total", "m", ["topic"], registry=registry)
    other = Counter("driftline_worker_outputs_total", "o", ["topic"], registry=registry)
    worker.labels("a").inc(5)
    worker.labels("b").inc(2)
    monitor.labels("a").inc(1)
    other.labels("a").inc(100)
    assert consumed_by_topic(generate_latest(registry).decode()) == {"a": 6.0, "b": 2.0}


def test_rates_come_from_two_scrapes_and_survive_a_restart() -> None:
    first = ServiceProbe("worker", "u", live=True, consumed={"a": 100, "b": 50}, scraped_at=10)
    second = ServiceProbe("worker", "u", live=True, consumed={"a": 140, "b": 5}, scraped_at=12)
    assert with_rates(first, second).rates == {"a": 20.0, "b": 2.5}  # b: restarted from 0
    down = ServiceProbe("worker", "u", scraped_at=12)
    assert with_rates(first, down).rates is None


def test_probe_reports_readiness_reasons_then_ready(server: tuple[Health, str]) -> None:
    health, url = server
    found = probe(Endpoint("worker", url))
    assert (found.live, found.ready, found.state) == (True, False, "not ready")
    assert "no partitions assigned" in found.reasons
    health.set_assigned(2)
    health.set_models_ready(True)
    found = probe(Endpoint("worker", url))
    assert (found.state, found.reasons, found.error) == ("ready", [], None)


def test_probe_of_a_silent_port_reports_the_service_down() -> None:
    found = probe(Endpoint("monitor", f"http://127.0.0.1:{closed_port()}"), timeout_s=1)
    assert found.state == "down"
    assert found.error is not None and "refused" in found.error.lower()


def test_wildcard_bind_addresses_are_probed_on_loopback() -> None:
    assert service_url("0.0.0.0", 9400) == "http://127.0.0.1:9400"
    assert service_url("worker", 8000) == "http://worker:8000"


def test_models_join_registry_aliases_with_the_latest_health(tmp_path: Path) -> None:
    assert registry_aliases(tmp_path / "missing") == {}
    version = register_anomaly(tmp_path / "store")
    aliases = registry_aliases(tmp_path / "store")
    assert aliases == {("anomaly", None): (version, None)}
    health = [
        health_record("anomaly", version, mae=1.5, degradation=0.2, status="warning"),
        health_record("demand", 3, key="product-1"),
    ]
    rows = model_statuses(aliases, health)
    assert [(r.model, r.key, r.champion, r.measured, r.status) for r in rows] == [
        ("anomaly", None, version, version, "warning"),
        ("demand", "product-1", None, 3, "healthy"),
    ]
    assert rows[0].mae == 1.5 and rows[0].degradation == 0.2


def test_status_of_a_system_that_is_down_says_what_is_missing(tmp_path: Path) -> None:
    args = ["status", "--json", "--timeout", "1", "--store", str(tmp_path)]
    args += ["--bootstrap", f"127.0.0.1:{closed_port()}"]
    for service in ("worker", "monitor", "trainer"):
        args += [f"--{service}-url", f"http://127.0.0.1:{closed_port()}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["healthy"] is False
    assert [s["state"] for s in answer["services"]] == ["down", "down", "down"]
    assert "cannot query" in answer["errors"]["kafka"]
    assert answer["models"] == [] and answer["groups"] == []


def test_status_is_a_listed_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "status" in result.output


# --- integration ----------------------------------------------------------------------


class StatusWorld:
    """Topics, a model store, a health record and a worker subprocess of one test."""

    def __init__(self, kafka: KafkaSettings, make_topic: Callable[..., str], tmp: Path) -> None:
        self.kafka = kafka
        self.input = make_topic("status-readings", partitions=PARTITIONS)
        self.dlq = make_topic("dlq.status", partitions=PARTITIONS)
        self.health = make_topic("status-health", config={"cleanup.policy": "compact"})
        self.updates = make_topic("status-updates")
        self.alerts = make_topic("status-alerts")
        self.group = f"status-workers-{self.input.rsplit('-', 1)[1]}"
        self.store = tmp / "store"
        self.version = register_anomaly(self.store)
        self.port = closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "worker.log"

    def start_worker(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "KAFKA_"))}
        env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
                "WORKER_INPUT_TOPICS": json.dumps([self.input]),
                "WORKER_GROUP_ID": self.group,
                "WORKER_PIPELINE": "test_status:build_pipeline",
                "WORKER_UPDATES_TOPIC": self.updates,
                "WORKER_ALERTS_TOPIC": self.alerts,
                "WORKER_MODEL_STORE": str(self.store),
                "WORKER_HTTP_PORT": str(self.port),
                "WORKER_INSTANCE_ID": self.group,
                "WORKER_WARMUP_RECORDS": "0",
                "TEST_DLQ": self.dlq,
            }
        )
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [str(DRIFTLINE), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def produce(self) -> None:
        producer = Producer(self.kafka.client_config())
        for i in range(GOOD + BAD):
            producer.produce(self.input, b"good" if i < GOOD else b"bad", f"m-{i}".encode())
        codec = codec_for("model.health")
        report = health_record("anomaly", self.version, mae=2.0, baseline_mae=1.6)
        producer.produce(self.health, codec.encode(report), codec.key(report))
        assert producer.flush(DEADLINE_S) == 0

    def request(self, interval_s: float = 0.0) -> StatusRequest:
        return StatusRequest(
            endpoints=[Endpoint("worker", self.url)],
            groups=[self.group, f"{self.group}-absent"],
            store=self.store,
            health_topic=self.health,
            interval_s=interval_s,
        )

    def caught_up(self) -> bool:
        """Every partition of the input committed at its end."""
        (lag,) = KafkaProbe(self.kafka).group_lags([self.group])
        return lag.partitions == PARTITIONS and lag.total == 0


@pytest.fixture
def world(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], tmp_path: Path
) -> Iterator[StatusWorld]:
    built = StatusWorld(kafka_settings, unique_topic, tmp_path)
    worker = built.start_worker()
    try:
        built.produce()
        yield built
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(DEADLINE_S) == 0, built.log.read_text()


def test_status_shows_the_running_worker_its_lag_dead_letters_and_models(
    world: StatusWorld,
) -> None:
    def consumed_everything() -> bool:
        expected = f'records_consumed_total{{topic="{world.input}"}} {GOOD + BAD:.1f}'
        try:
            with urllib.request.urlopen(f"{world.url}/metrics", timeout=2) as response:
                return expected in response.read().decode()
        except OSError:
            return False  # not listening yet

    wait_until(consumed_everything, "the worker to consume every record")
    wait_until(world.caught_up, "the worker's offsets to be committed")

    found = collect(world.request(interval_s=0.5), world.kafka)
    (service,) = found.services
    assert service.state == "ready"
    assert service.consumed == {world.input: GOOD + BAD}
    assert service.rates == {world.input: 0.0}  # caught up: nothing consumed between scrapes
    lag, absent = found.groups
    assert (lag.group, lag.state, lag.lag) == (world.group, "stable", {world.input: 0})
    assert (absent.state, absent.lag) == ("absent", {})
    assert {d.topic: d.records for d in found.dead_letters}[world.dlq] == BAD
    (model,) = found.models
    assert (model.model, model.champion, model.measured) == (
        "anomaly",
        world.version,
        world.version,
    )
    assert (model.status, model.mae, model.baseline_mae) == ("healthy", 2.0, 1.6)
    assert found.errors == {}
    assert as_json(found)["healthy"] is True


def test_status_command_prints_tables_and_json(world: StatusWorld) -> None:
    wait_until(world.caught_up, "the worker's offsets to be committed")
    args = ["status", "--worker-url", world.url, "--group", world.group, "--store"]
    args += [str(world.store), "--health-topic", world.health]
    args += ["--bootstrap", world.kafka.bootstrap_servers]
    for service in ("monitor", "trainer"):
        args += [f"--{service}-url", f"http://127.0.0.1:{closed_port()}"]
    runner = CliRunner()
    table = runner.invoke(main, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    for shown in ("Services", "ready", world.group, world.dlq, "anomaly", f"v{world.version}"):
        assert shown in table.output, shown
    answer = json.loads(runner.invoke(main, [*args, "--json"]).output)
    assert [s["state"] for s in answer["services"]] == ["ready", "down", "down"]
    assert answer["healthy"] is False  # the monitor and trainer are not running
    dead = {d["topic"]: d["records"] for d in answer["dead_letters"]}
    assert dead[world.dlq] == BAD
    assert answer["groups"][0]["total"] == 0


def test_a_topic_gone_since_it_was_listed_is_left_out(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    kept = unique_topic("status-kept")
    producer = Producer(kafka_settings.client_config())
    for value in (b"a", b"b"):
        producer.produce(kept, value)
    assert producer.flush(DEADLINE_S) == 0
    asked = [TopicPartition(kept, 0), TopicPartition(f"{kept}-gone", 0)]
    offsets = KafkaProbe(kafka_settings)._offsets(asked, LATEST)  # the shared offset reader
    assert [(tp.topic, end) for tp, end in offsets.items()] == [(kept, 2)]
