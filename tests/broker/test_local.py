"""The local broker for real: records through it, clean stops, the CLI (needs Java)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from broker import BrokerStartError, LocalBroker
from broker.process import group_members, is_alive
from broker.state import BrokerState

pytestmark = pytest.mark.integration

DRIFTLINE = Path(sys.executable).with_name("driftline")
# Generous bounds for a loaded 2-core machine; the happy path takes milliseconds.
RECEIVE_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 120.0


def receive_one(bootstrap: str, topic: str) -> Message:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + RECEIVE_TIMEOUT_S
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                return message
    finally:
        consumer.close()
    raise AssertionError(f"no record on {topic} within {RECEIVE_TIMEOUT_S} s")


def test_record_round_trips_through_the_session_broker(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("round-trip", partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    producer.produce(topic, key=b"machine-7", value=b'{"temperature": 71.5}')
    assert producer.flush(RECEIVE_TIMEOUT_S) == 0

    message = receive_one(kafka_bootstrap, topic)

    assert message.key() == b"machine-7"
    assert message.value() == b'{"temperature": 71.5}'


def test_stop_leaves_no_process_and_no_temporary_dir() -> None:
    broker = LocalBroker().start()
    pid, data_dir = broker.pid, broker.data_dir
    try:
        assert is_alive(pid)
        assert BrokerState.load(data_dir) == broker.state
        assert "Kafka Server started" in broker.log_file.read_text()
    finally:
        broker.stop()  # a failed check must not leave a broker running

    assert not is_alive(pid)
    assert group_members(pid) == []
    assert not data_dir.exists()


def test_two_brokers_run_side_by_side(tmp_path: Path) -> None:
    with (
        LocalBroker(tmp_path / "a") as first,
        LocalBroker(tmp_path / "b") as second,
    ):
        assert first.bootstrap_servers != second.bootstrap_servers
        admin_a = AdminClient({"bootstrap.servers": first.bootstrap_servers})
        admin_b = AdminClient({"bootstrap.servers": second.bootstrap_servers})
        admin_a.create_topics([NewTopic("only-on-a", 1, 1)])["only-on-a"].result(timeout=30)

        assert "only-on-a" in admin_a.list_topics(timeout=10).topics
        assert "only-on-a" not in admin_b.list_topics(timeout=10).topics
        pids = (first.pid, second.pid)
    assert not any(is_alive(pid) for pid in pids)


def test_broker_that_dies_while_starting_reports_its_log(tmp_path: Path) -> None:
    broken = LocalBroker(
        tmp_path / "kafka", extra_properties={"authorizer.class.name": "no.such.Authorizer"}
    )

    with pytest.raises(BrokerStartError) as raised:
        broken.start()

    assert "exited with code" in str(raised.value)
    assert "ClassNotFoundException: no.such.Authorizer" in str(raised.value)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DRIFTLINE), "broker", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def test_cli_start_status_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli"

    started = run_cli("start", "--data-dir", str(data_dir))
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip()
    state = json.loads((data_dir / "broker.json").read_text())
    pid = state["pid"]
    try:
        assert bootstrap == f"127.0.0.1:{state['port']}"
        assert AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).brokers

        status = run_cli("status", "--data-dir", str(data_dir))
        assert status.returncode == 0
        assert f"running at {bootstrap} (pid {pid}" in status.stdout

        again = run_cli("start", "--data-dir", str(data_dir))
        assert again.returncode != 0
        assert "already runs" in again.stderr
    finally:
        stopped = run_cli("stop", "--data-dir", str(data_dir))

    assert stopped.returncode == 0, stopped.stderr
    assert f"(pid {pid}) stopped" in stopped.stdout
    assert not is_alive(pid)
    after = run_cli("status", "--data-dir", str(data_dir))
    assert after.returncode == 1
    assert after.stdout.strip() == "not running"
