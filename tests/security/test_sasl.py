"""The services against a broker that demands a SASL login (PLAIN over SASL_PLAINTEXT).

With the ``KAFKA_SECURITY_PROTOCOL``/``KAFKA_SASL_*`` settings every client logs in:
``driftline topics create`` provisions the topics, and a worker, a monitor and a trainer
become ready (they joined their groups) and the worker streams readings to outputs. The
password appears in none of their logs or metrics, and their HTTP endpoints listen on
127.0.0.1 only. A wrong password or none at all is refused with an error that says so,
in bounded time.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from pydantic import SecretStr

from driftline.faults_report import record
from events import SensorReading, codec_for, topics
from events.settings import KafkaSettings

pytestmark = pytest.mark.integration

DRIFTLINE = Path(sys.executable).with_name("driftline")
# Bounds that only catch hangs on a shared 2-core machine.
DEADLINE_S = 90.0
# A refused login must be reported within the admin timeout given below, plus start-up.
ADMIN_TIMEOUT_S = 5
STATIONS, STEPS = 3, 10
LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it


def http_status(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening_hosts(port: int) -> set[str]:
    """Local addresses (hex, as the kernel writes them) with a socket listening on ``port``."""
    hosts = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                hosts.add(address)
    return hosts


def wait_until(condition: Any, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < DEADLINE_S, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - began


class Service:
    """A driftline service subprocess logging to a file, with its HTTP port."""

    def __init__(self, args: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port, self.log = port, log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(DRIFTLINE), *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        return http_status(self.port, "/readyz")[0] == 200


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()


def sasl_settings(broker: Any) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username=broker.username,
        sasl_password=SecretStr(broker.password),
    )


def air_readings() -> list[SensorReading]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        SensorReading(
            entity_id=f"station-{s}",
            kind="air",
            ts=start + timedelta(minutes=step),
            values={"pm25": None if step % 2 else 10.0, "no2": 20.0 if step % 2 else None},
        )
        for step in range(STEPS)
        for s in range(STATIONS)
    ]


def count_records(kafka: KafkaSettings, topic: str, at_least: int) -> int:
    consumer = Consumer({**kafka.client_config(), "group.id": f"count-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        seen = 0
        deadline = time.monotonic() + DEADLINE_S
        while seen < at_least and time.monotonic() < deadline:
            seen += sum(m.error() is None for m in consumer.consume(1_000, 0.5))
        return seen
    finally:
        consumer.close()


def test_services_log_in_with_credentials_and_never_reveal_them(
    sasl_broker: Any, services: list[Service], tmp_path: Path
) -> None:
    broker = sasl_broker
    created = subprocess.run(
        [str(DRIFTLINE), "topics", "create", "--partitions", "3"],
        env=broker.env(),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    kafka = sasl_settings(broker)
    codec = codec_for(topics.READINGS_SENSOR)
    producer = Producer(kafka.producer_config())
    for reading in air_readings():
        producer.produce(topics.READINGS_SENSOR, codec.encode(reading), codec.key(reading))
    assert producer.flush(DEADLINE_S) == 0

    ports = {name: free_port() for name in ("worker", "monitor", "trainer")}
    store = str(tmp_path / "store")
    envs = {
        "worker": broker.env(WORKER_HTTP_PORT=str(ports["worker"]), WORKER_MODEL_STORE=store),
        "monitor": broker.env(MONITOR_HTTP_PORT=str(ports["monitor"]), MONITOR_MODEL_STORE=store),
        "trainer": broker.env(
            TRAINER_HTTP_PORT=str(ports["trainer"]), MODEL_STORE=store, TRAINER_CHECK_INTERVAL_S="0"
        ),
    }
    for name, env in envs.items():
        services.append(Service([name], env, ports[name], tmp_path / f"{name}.log"))
    ready_s = wait_until(lambda: all(s.ready() for s in services), "every service to be ready")
    imputed = count_records(kafka, topics.READINGS_IMPUTED, STATIONS * (STEPS - 1))
    metrics = {s.log.stem: http_status(s.port, "/metrics")[1] for s in services}
    hosts = {s.log.stem: listening_hosts(s.port) for s in services}
    for service in services:
        service.process.send_signal(signal.SIGTERM)
    exits = {s.log.stem: s.process.wait(DEADLINE_S) for s in services}
    logs = {s.log.stem: s.log.read_text() for s in services}
    leaks = [f"{n} log" for n, t in logs.items() if broker.password in t]
    leaks += [f"{n} /metrics" for n, t in metrics.items() if broker.password in t]
    leaks += ["topics create output"] * (broker.password in created.stdout + created.stderr)
    record(
        "sasl-login",
        "SASL login (PLAIN over SASL_PLAINTEXT)",
        "a broker whose client listener demands a SASL login; topics create, a worker, a "
        "monitor and a trainer configured with KAFKA_SASL_* settings",
        "every client logs in (the services become ready, the worker streams readings to "
        "outputs); the password is in no log, no /metrics page and no CLI output; the "
        "HTTP endpoints listen on 127.0.0.1 only",
        {
            "services_ready_s": round(ready_s, 2),
            "imputed_outputs": imputed,
            "password_leaks": len(leaks),
            "non_loopback_listeners": sum(h != {LOOPBACK} for h in hosts.values()),
        },
        section="security",
    )
    assert imputed == STATIONS * (STEPS - 1)
    assert exits == {"worker": 0, "monitor": 0, "trainer": 0}
    assert leaks == []
    assert hosts == {"worker": {LOOPBACK}, "monitor": {LOOPBACK}, "trainer": {LOOPBACK}}


def test_a_wrong_password_or_none_is_refused_clearly(
    sasl_broker: Any, services: list[Service], tmp_path: Path
) -> None:
    broker = sasl_broker
    wrong = f"wrong-{uuid.uuid4().hex}"

    def topics_create(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
        began = time.monotonic()
        done = subprocess.run(
            [str(DRIFTLINE), "topics", "create"],
            env={**env, "TOPICS_TIMEOUT_S": str(ADMIN_TIMEOUT_S)},
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
            check=False,
        )
        return done, time.monotonic() - began

    refused, refused_s = topics_create(broker.env(password=wrong))
    anonymous, anonymous_s = topics_create(broker.env(KAFKA_SECURITY_PROTOCOL="PLAINTEXT"))

    port = free_port()
    worker = Service(
        ["worker"],
        broker.env(
            password=wrong, WORKER_HTTP_PORT=str(port), WORKER_MODEL_STORE=str(tmp_path / "s")
        ),
        port,
        tmp_path / "worker.log",
    )
    services.append(worker)
    reported_s = wait_until(
        lambda: "Authentication failed" in worker.log.read_text(), "the worker's login error"
    )
    assert not worker.ready()  # alive, not ready: it owns no partitions
    worker.process.send_signal(signal.SIGTERM)
    worker.process.wait(DEADLINE_S)
    outputs = refused.stdout + refused.stderr + anonymous.stdout + anonymous.stderr
    outputs += worker.log.read_text()
    record(
        "sasl-refused",
        "SASL login refused (wrong password, no login)",
        "topics create and a worker with a wrong password; topics create without SASL",
        "exit status 1 with an error naming the failed authentication (or the closed "
        f"connection) within the {ADMIN_TIMEOUT_S} s admin timeout; the worker logs the "
        "refused login and stays unready; no password is printed",
        {
            "wrong_password_exit": refused.returncode,
            "wrong_password_s": round(refused_s, 2),
            "no_login_exit": anonymous.returncode,
            "no_login_s": round(anonymous_s, 2),
            "worker_reported_s": round(reported_s, 2),
        },
        section="security",
    )
    error = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 1 and "Authentication failed" in error
    assert anonymous.returncode == 1 and "cannot reach" in anonymous.stderr
    assert wrong not in outputs and broker.password not in outputs
