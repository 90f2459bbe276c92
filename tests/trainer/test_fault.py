"""Killing the trainer mid-training: the registry stays consistent, the request runs once more.

The trainer runs as its own process (``driftline trainer``) and is killed with SIGKILL
while it fits a candidate: no cleanup code runs. Then:

* the registry holds no half version (only complete, checksum-verified versions are
  listed) and the champion is the one it was;
* the request is in the state file as pending with one attempt;
* a restarted trainer runs it a second time, decides once, and announces at most once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from driftline.publish import demand_messages
from events import RetrainRequest, codec_for, topics
from events.settings import KafkaSettings
from models.families import create
from models.registry import Registry
from models.versions import verify_files

pytestmark = pytest.mark.fault

KEEP = {"retention.ms": "-1"}
WAIT_S = 120.0  # process start (imports) plus two slow fits on a shared machine
# Enough trees that one fit takes seconds: the kill lands while the candidate is fitted.
SLOW_PARAMS = {"iterations": 3000, "depth": 6, "thread_count": 1}


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the trainer exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling the state file the trainer writes


def read_state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return {}


@pytest.fixture
def trainer_env(
    kafka_settings: KafkaSettings,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    demand_history: pd.DataFrame,
) -> dict[str, str]:
    demand = unique_topic("readings.demand", partitions=2, config=KEEP)
    codec = codec_for(topics.READINGS_DEMAND)
    producer = Producer(kafka_settings.producer_config())
    for reading in demand_messages(demand_history):
        stamp = int(reading.ts.timestamp() * 1000)
        producer.produce(demand, codec.encode(reading), codec.key(reading), timestamp=stamp)
    assert producer.flush(30) == 0
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "MODEL_STORE": str(tmp_path / "store"),
        "TRAINER_REQUESTS_TOPIC": unique_topic("retrain.requests"),
        "TRAINER_UPDATES_TOPIC": unique_topic("model.updates"),
        "TRAINER_DEMAND_TOPIC": demand,
        "TRAINER_GROUP_ID": f"trainer-{uuid.uuid4().hex[:8]}",
        "TRAINER_CHECK_INTERVAL_S": "0",
        "TRAINER_PLOT": "false",
        "TRAINER_HTTP_PORT": "0",
        "TRAINER_POLL_TIMEOUT_S": "0.2",
        "TRAINER_WINDOW_DAYS": "400",  # the readings end 2026-09-16; the clock is real
    }


@pytest.fixture
def spawn(
    tmp_path: Path, trainer_env: dict[str, str]
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    command = [str(Path(sys.executable).with_name("driftline")), "trainer"]

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"trainer-{len(processes)}.log").open("wb")
        process = subprocess.Popen(command, env=trainer_env, cwd=tmp_path, stdout=log, stderr=log)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def updates_count(kafka: KafkaSettings, topic: str) -> int:
    consumer = Consumer({**kafka.client_config(), "group.id": f"count-{uuid.uuid4().hex}"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return int(high - low)
    finally:
        consumer.close()


def test_a_kill_during_training_leaves_the_registry_consistent_and_retries_once(
    trainer_env: dict[str, str],
    spawn: Callable[[], subprocess.Popen[bytes]],
    kafka_settings: KafkaSettings,
    demand_history: pd.DataFrame,
) -> None:
    store = Path(trainer_env["MODEL_STORE"])
    state_file = store / ".trainer" / "state.json"
    registry = Registry(store, actor="test")
    champion = create("demand", SLOW_PARAMS)
    champion.fit(
        demand_history.assign(
            quantity=demand_history["quantity"].sample(frac=1.0, random_state=0).to_numpy()
        )
    )
    registry.register(champion, "demand")

    first = spawn()
    request = RetrainRequest(
        request_id="kill-1",
        model="demand",
        action="full_retrain",
        reason="fault test",
        requested_at=datetime.now(UTC),
    )
    codec = codec_for(topics.RETRAIN_REQUESTS)
    producer = Producer(kafka_settings.producer_config())
    producer.produce(
        trainer_env["TRAINER_REQUESTS_TOPIC"], codec.encode(request), codec.key(request)
    )
    assert producer.flush(30) == 0

    def fitting() -> bool:
        pending = read_state(state_file).get("pending", [])
        return any(job["job_id"] == "kill-1" and job["stage"] == "fit" for job in pending)

    wait_for(fitting, "the candidate's fit to start", first)
    first.send_signal(signal.SIGKILL)
    first.wait(30)

    # the registry: complete, verified versions only; the champion untouched
    versions = registry.versions("demand")
    for info in versions:
        verify_files(info)
    assert registry.aliases("demand").champion == 1
    assert [v.version for v in versions] == [1], "the fit was expected to be cut short"
    [pending] = read_state(state_file)["pending"]
    assert (pending["job_id"], pending["attempts"]) == ("kill-1", 1)

    second = spawn()

    def decided() -> list[dict[str, Any]]:
        return [d for d in read_state(state_file).get("decisions", []) if d["job_id"] == "kill-1"]

    wait_for(lambda: bool(decided()), "the retried request's decision", second)
    [record] = decided()
    assert record["attempts"] == 2
    assert record["outcome"] in ("promoted", "rejected")
    assert read_state(state_file)["pending"] == []
    assert [v.version for v in registry.versions("demand")] == [1, 2]  # one candidate, not two
    promoted = record["outcome"] == "promoted"
    assert registry.aliases("demand").champion == (2 if promoted else 1)
    assert updates_count(kafka_settings, trainer_env["TRAINER_UPDATES_TOPIC"]) == int(promoted)

    second.send_signal(signal.SIGTERM)
    assert second.wait(60) == 0
