"""The trainer killed during promotion: the registry stays consistent, the request runs once.

Two kill points, both with SIGKILL (no cleanup code runs):

* **while announcing** - the trainer has promoted its candidate in the registry and waits
  for the broker to take the ``model.updates`` record (the updates topic does not exist
  yet, so the write waits; the test creates it after the kill). The restarted trainer
  finds its version promoted, announces it once and records one decision.
* **inside the registry's promote** - a process is killed at each step of
  ``Registry.promote`` (before the new aliases file replaces the old one, after it, and
  after the history line): the champion is the old or the new version, complete and
  verified, never a half-written file.

tests/trainer/test_fault.py covers the kill during training (the fit).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from driftline.generator import generate_products
from driftline.publish import demand_messages
from events import RetrainRequest, codec_for, topics
from events.settings import KafkaSettings
from models.families import create
from models.history import champion_stack
from models.registry import Registry
from models.versions import verify_files

pytestmark = pytest.mark.fault

DRIFTLINE = Path(sys.executable).with_name("driftline")
WAIT_S = 120.0  # process start (imports) plus fits on a shared machine
TINY = {"iterations": 40, "depth": 3, "thread_count": 1}
KEEP = {"retention.ms": "-1"}


def history() -> pd.DataFrame:
    """Two products, 200 days of daily demand (2026-03-01 to 2026-09-16)."""
    return generate_products(entities=2, periods=200, seed=3, start="2026-03-01T00:00:00Z")


def read_state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return {}


def updates_count(kafka: KafkaSettings, topic: str) -> int:
    consumer = Consumer({**kafka.client_config(), "group.id": f"count-{uuid.uuid4().hex}"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return int(high - low)
    finally:
        consumer.close()


@pytest.fixture
def updates_topic(kafka_settings: KafkaSettings) -> Iterator[str]:
    """The name of a model.updates topic that does not exist yet (deleted afterwards)."""
    name = f"model.updates-{uuid.uuid4().hex[:12]}"
    yield name
    AdminClient(kafka_settings.client_config()).delete_topics([name], request_timeout=30)


@pytest.fixture
def trainer_env(
    kafka_settings: KafkaSettings,
    unique_topic: Callable[..., str],
    updates_topic: str,
    tmp_path: Path,
) -> dict[str, str]:
    demand = unique_topic("readings.demand", partitions=2, config=KEEP)
    codec = codec_for(topics.READINGS_DEMAND)
    producer = Producer(kafka_settings.producer_config())
    for reading in demand_messages(history()):
        stamp = int(reading.ts.timestamp() * 1000)
        producer.produce(demand, codec.encode(reading), codec.key(reading), timestamp=stamp)
    assert producer.flush(30) == 0
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINER_", "KAFKA_"))}
    return {
        **base,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "MODEL_STORE": str(tmp_path / "store"),
        "TRAINER_REQUESTS_TOPIC": unique_topic("retrain.requests"),
        "TRAINER_UPDATES_TOPIC": updates_topic,
        "TRAINER_DEMAND_TOPIC": demand,
        "TRAINER_GROUP_ID": f"trainer-{uuid.uuid4().hex[:8]}",
        "TRAINER_CHECK_INTERVAL_S": "0",
        "TRAINER_SHADOW": "false",
        "TRAINER_PLOT": "false",
        "TRAINER_HTTP_PORT": "0",
        "TRAINER_POLL_TIMEOUT_S": "0.2",
        "TRAINER_WINDOW_DAYS": "400",  # the readings end 2026-09-16; the clock is real
    }


@pytest.fixture
def trainers(
    tmp_path: Path, trainer_env: dict[str, str]
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"trainer-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [str(DRIFTLINE), "trainer"], env=trainer_env, cwd=tmp_path, stdout=log, stderr=log
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> float:
    began = time.monotonic()
    while not condition():
        assert process.poll() is None, f"the trainer exited ({process.returncode}) before {what}"
        assert time.monotonic() - began < WAIT_S, f"timed out waiting for {what}"
        time.sleep(0.1)  # polling the state file the trainer writes
    return time.monotonic() - began


def test_a_kill_while_announcing_a_promotion_announces_once_after_the_restart(
    kafka_settings: KafkaSettings,
    trainer_env: dict[str, str],
    trainers: Callable[[], subprocess.Popen[bytes]],
    fault_report: Callable[..., Any],
) -> None:
    store = Path(trainer_env["MODEL_STORE"])
    state_file = store / ".trainer" / "state.json"
    registry = Registry(store, actor="test")
    frame = history()
    champion = create("demand", TINY)  # trained on shuffled quantities: easy to beat
    champion.fit(frame.assign(quantity=frame["quantity"].sample(frac=1.0, random_state=0).values))
    registry.register(champion, "demand")

    first = trainers()
    request = RetrainRequest(
        request_id="promote-kill-1",
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

    def announcing() -> bool:
        pending = read_state(state_file).get("pending", [])
        return any(job["stage"] == "announce" for job in pending)

    wait_for(announcing, "the announcement of the promotion", first)
    first.send_signal(signal.SIGKILL)
    first.wait(30)

    # Killed after the promotion and before its announcement was acknowledged.
    versions = registry.versions("demand")
    for info in versions:
        verify_files(info)
    assert [v.version for v in versions] == [1, 2]
    assert registry.aliases("demand").champion == 2
    [pending] = read_state(state_file)["pending"]
    assert (pending["job_id"], pending["attempts"]) == ("promote-kill-1", 1)

    admin = AdminClient(kafka_settings.client_config())
    name = trainer_env["TRAINER_UPDATES_TOPIC"]
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)  # announcing works again
    restarted = time.monotonic()
    second = trainers()

    def decided() -> list[dict[str, Any]]:
        return [
            d
            for d in read_state(state_file).get("decisions", [])
            if d["job_id"] == "promote-kill-1"
        ]

    wait_for(lambda: bool(decided()), "the retried request's decision", second)
    recovery_s = time.monotonic() - restarted
    [record] = decided()
    announced = updates_count(kafka_settings, trainer_env["TRAINER_UPDATES_TOPIC"])
    promotes = [e for e in registry.history("demand") if e.action == "promote" and e.version == 2]
    second.send_signal(signal.SIGTERM)
    assert second.wait(60) == 0
    fault_report(
        "trainer-kill-announcing",
        "Trainer SIGKILL during promotion (announcing)",
        "kill -9 of the trainer after it promoted v2 in the registry, while the "
        "model.updates record waited for the broker; then a restart",
        "no half version, v2 stays champion; the request is retried once (attempt 2), "
        "decided once, announced once",
        requests_sent=1,
        outputs=announced,
        lost=int(announced == 0),
        duplicates=max(0, announced - 1),
        recovery_s=round(recovery_s, 2),
        versions=len(registry.versions("demand")),
        attempts=record["attempts"],
        promote_events=len(promotes),
    )
    assert (record["attempts"], record["outcome"]) == (2, "promoted")
    assert read_state(state_file)["pending"] == []
    assert [v.version for v in registry.versions("demand")] == [1, 2]  # no second candidate
    assert registry.aliases("demand").champion == 2 and len(promotes) == 1
    assert announced == 1


# A process that promotes v2 and is SIGKILLed at one step of Registry.promote.
PROMOTE_AND_DIE = textwrap.dedent(
    """
    import os, signal, sys
    from models import atomic, history
    from models.registry import Registry

    store, point = sys.argv[1], sys.argv[2]
    real_replace, real_append = os.replace, history.append_event

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def replace(source, target):
        if point == "before-rename":
            die()
        real_replace(source, target)
        if point == "after-rename":
            die()

    def append_event(path, event):
        real_append(path, event)
        if point == "after-history":
            die()

    atomic.os.replace = replace
    history.append_event = append_event
    import models.registry as registry_module
    registry_module.append_event = append_event
    Registry(store, actor="crash").promote("demand", 2, reason="crash test")
    """
)


KILL_POINTS = {
    "before-rename": "before the new aliases file replaces the old one",
    "after-rename": "after the new aliases file replaced the old one, before the history line",
    "after-history": "after the history line",
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_kill_inside_the_registry_promote_leaves_a_complete_champion(
    point: str, tmp_path: Path, fault_report: Callable[..., Any]
) -> None:
    store = tmp_path / "store"
    registry = Registry(store, actor="test")
    frame = history()
    for _ in range(2):
        model = create("seasonal_naive")
        model.fit(frame)
        registry.register(model, "demand")
    process = subprocess.run(
        [sys.executable, "-c", PROMOTE_AND_DIE, str(store), point],
        capture_output=True,
        timeout=WAIT_S,
        check=False,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()

    champion = registry.aliases("demand").champion
    loaded = registry.load("demand")  # verifies every file's checksum
    events = [e.action for e in registry.history("demand")]
    leftovers = sorted(registry.paths("demand").root.glob(".*.tmp"))
    registry.gc()  # removes what a torn atomic write left behind
    fault_report(
        f"registry-kill-{point}",
        f"Registry promote killed ({point.replace('-', ' ')})",
        f"SIGKILL of a process promoting v2 over v1, {KILL_POINTS[point]}",
        "the champion is v1 or v2, complete and checksum-verified; a torn temporary file "
        "is hidden and removed by gc, which also restores a lost history line; the store "
        "stays usable",
        champion=champion or 0,
        history_events=len(events),
        temporary_files_left=len(leftovers),
    )
    assert list(registry.paths("demand").root.glob(".*.tmp")) == []
    assert champion == {"before-rename": 1, "after-rename": 2, "after-history": 2}[point]
    assert loaded.info.version == champion
    # the history names the champion: a line the kill lost was restored by gc
    assert champion_stack(registry.history("demand")) == list(range(1, champion + 1))
    assert registry.promote("demand", 1, reason="usable after the crash").version == 1
