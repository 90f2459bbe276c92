"""The monitor killed (SIGKILL) in the middle of a drift, before it asked for a retrain.

A ``driftline monitor`` process pairs forecasts of one product with their labels; the
errors are 40 % above the version's baseline (critical). It is killed after two of the
three critical evaluations its hysteresis needs, restarted, and fed the rest. What must
hold: the rolling state is rebuilt from its own topics (the pairs it published), the
drift is detected exactly once, at the pair an uninterrupted monitor would have asked at,
and no pair is published twice.

tests/monitor/test_service_kafka.py covers the graceful restart *after* the request was
made (no second request); this is the crash before it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from driftline.generator import generate_products
from events import Actual, Message, Prediction, codec_for, topics
from events.settings import KafkaSettings
from models.base import FitReport
from models.families import create
from models.registry import Registry

pytestmark = pytest.mark.fault

DRIFTLINE = Path(sys.executable).with_name("driftline")
T0 = datetime(2025, 3, 1, tzinfo=UTC)
BASELINE_MAE = 2.0
DRIFTED_MAE = BASELINE_MAE * 1.4  # 40 % degradation: critical (>= 25 %)
MIN_PAIRS, EVERY, HYSTERESIS = 50, 10, 3
# Killed after the evaluations at 50 and 60 pairs (two critical of the three needed).
KILLED_AT = MIN_PAIRS + (HYSTERESIS - 2) * EVERY
# An uninterrupted monitor asks after its third critical evaluation.
ASKS_AT = MIN_PAIRS + (HYSTERESIS - 1) * EVERY
TOTAL = 160
SESSION_TIMEOUT_MS = 6_000


def forecast(n: int) -> Prediction:
    target = T0 + timedelta(hours=n)
    return Prediction(
        prediction_id=f"demand-sku-1-{n}",
        model="demand",
        version=1,
        key="sku",
        entity_id="sku",
        made_at=target - timedelta(hours=1),
        target_ts=target,
        value=100.0 + (DRIFTED_MAE if n % 2 else -DRIFTED_MAE),
        kind="forecast",
        metric="quantity",
        fallback=False,
    )


def label(n: int) -> Actual:
    return Actual(entity_id="sku", ts=T0 + timedelta(hours=n), metric="quantity", value=100.0)


def produce(kafka: KafkaSettings, topic: str, contract: str, messages: list[Message]) -> None:
    codec = codec_for(contract)
    producer = Producer(kafka.producer_config())
    for message in messages:
        producer.produce(topic, codec.encode(message), codec.key(message))
    assert producer.flush(30) == 0


@pytest.fixture
def monitor_env(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], tmp_path: Path, faults: Any
) -> dict[str, str]:
    store = tmp_path / "store"
    model = create("seasonal_naive")
    model.fit(generate_products(entities=1, periods=40, seed=1))
    report = FitReport(metrics={"mae": BASELINE_MAE}, rows=40, seconds=0.0)
    Registry(store, actor="tests").register(model, "demand", "sku", fit_report=report)
    entity = {name: unique_topic(name, partitions=2) for name in ("predictions", "actuals")}
    single = {name: unique_topic(name) for name in ("pairs", "health", "requests", "alerts")}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "KAFKA_"))}
    return {
        **base,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "MONITOR_PREDICTIONS_TOPIC": entity["predictions"],
        "MONITOR_ACTUALS_TOPIC": entity["actuals"],
        "MONITOR_SHADOW_TOPIC": "",
        "MONITOR_SENSOR_TOPIC": "",
        "MONITOR_DEMAND_TOPIC": "",
        "MONITOR_PAIRS_TOPIC": single["pairs"],
        "MONITOR_HEALTH_TOPIC": single["health"],
        "MONITOR_REQUESTS_TOPIC": single["requests"],
        "MONITOR_ALERTS_TOPIC": single["alerts"],
        "MONITOR_GROUP_ID": f"monitor-{uuid.uuid4().hex[:8]}",
        "MONITOR_LATENESS_S": "600",
        "MONITOR_COUNT_WINDOW": "100",
        "MONITOR_MIN_PAIRS": str(MIN_PAIRS),
        "MONITOR_EVALUATE_EVERY_PAIRS": str(EVERY),
        "MONITOR_HYSTERESIS_EVALUATIONS": str(HYSTERESIS),
        "MONITOR_RECOVERY_HORIZON_S": "3600",
        "MONITOR_BATCH_MAX_WAIT_S": "0.05",
        # The killed member holds its partitions until its session times out: the broker's
        # smallest allowed timeout keeps the restart quick.
        "MONITOR_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        "MONITOR_MODEL_STORE": str(store),
        "MONITOR_INSTANCE_ID": "crash",
        "MONITOR_HTTP_PORT": str(faults.free_port()),
    }


@pytest.fixture
def monitors(monitor_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], Any]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"monitor-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [str(DRIFTLINE), "monitor"], env=monitor_env, stdout=log, stderr=subprocess.STDOUT
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_monitor_killed_mid_drift_recovers_and_asks_once(
    kafka_settings: KafkaSettings,
    monitor_env: dict[str, str],
    monitors: Callable[[], subprocess.Popen[bytes]],
    fault_report: Callable[..., Any],
    faults: Any,
) -> None:
    env, port = monitor_env, int(monitor_env["MONITOR_HTTP_PORT"])
    pairs = faults.Tail(kafka_settings, env["MONITOR_PAIRS_TOPIC"])
    health = faults.Tail(kafka_settings, env["MONITOR_HEALTH_TOPIC"])
    requests = faults.Tail(kafka_settings, env["MONITOR_REQUESTS_TOPIC"])
    health_codec = codec_for(topics.MODEL_HEALTH)

    def ready(process: subprocess.Popen[bytes]) -> Callable[[], bool]:
        def check() -> bool:
            assert process.poll() is None, f"the monitor exited with {process.returncode}"
            return faults.http_get(port, "/readyz")[0] == 200

        return check

    try:
        first = monitors()
        faults.wait_until(ready(first), "the monitor to be ready")
        produce(kafka_settings, env["MONITOR_PREDICTIONS_TOPIC"], topics.PREDICTIONS,
                [forecast(n) for n in range(TOTAL)])  # fmt: skip
        produce(kafka_settings, env["MONITOR_ACTUALS_TOPIC"], topics.ACTUALS,
                [label(n) for n in range(KILLED_AT)])  # fmt: skip

        def evaluated_at_kill_point() -> bool:
            records = [health_codec.decode(m.value()) for m in health.read()]
            return any(h.pairs >= KILLED_AT for h in records)

        faults.wait_until(evaluated_at_kill_point, f"the evaluation at {KILLED_AT} pairs")
        judged = [h for h in map(health_codec.decode, (m.value() for m in health.read()))
                  if h.pairs >= MIN_PAIRS]  # fmt: skip
        # Two evaluations found the drift; the hysteresis has not raised the status yet.
        assert [round(h.degradation or 0, 2) for h in judged] == [0.4] * (HYSTERESIS - 1)
        assert all(h.status != "critical" for h in judged) and requests.read() == []
        first.send_signal(signal.SIGKILL)
        first.wait(30)

        restarted = time.monotonic()
        second = monitors()
        faults.wait_until(ready(second), "the restarted monitor to be ready")
        recovery_s = time.monotonic() - restarted
        recovered = faults.metric(port, "driftline_monitor_recovered_pairs")
        produce(kafka_settings, env["MONITOR_ACTUALS_TOPIC"], topics.ACTUALS,
                [label(n) for n in range(KILLED_AT, TOTAL)])  # fmt: skip
        faults.wait_until(lambda: len({m.value() for m in pairs.read()}) >= TOTAL, "every pair")
        faults.wait_until(lambda: len(requests.read()) >= 1, "the retrain request")
        time.sleep(1.0)  # anything more would be a second request: give it a moment to show
        found = requests.read()
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
        request = codec_for(topics.RETRAIN_REQUESTS).decode(found[0].value())
        pair_ids = [codec_for(topics.MONITOR_PAIRS).decode(m.value()).prediction_id
                    for m in pairs.read()]  # fmt: skip
    finally:
        for tail in (pairs, health, requests):
            tail.close()
    fault_report(
        "monitor-sigkill",
        "Monitor SIGKILL mid-drift",
        f"kill -9 of the monitor after {KILLED_AT} labelled forecasts 40 % off, two of the "
        f"{HYSTERESIS} critical evaluations a retrain request needs; then a restart "
        f"(group session timeout {SESSION_TIMEOUT_MS / 1000:.0f} s)",
        "the restart rebuilds the rolling windows from the pairs topic; the drift is "
        f"detected once, at pair {ASKS_AT} as without the crash; no pair is published twice",
        readings_sent=TOTAL,
        outputs=len(pair_ids),
        lost=TOTAL - len(set(pair_ids)),
        duplicates=len(pair_ids) - len(set(pair_ids)),
        recovery_s=round(recovery_s, 2),
        pairs_recovered=int(recovered),
        retrain_requests=len(found),
        requested_at_pair=int(request.evidence["pairs"]),
    )
    assert recovered == KILLED_AT
    assert len(found) == 1 and request.action == "full_retrain" and request.key == "sku"
    assert request.evidence["pairs"] == ASKS_AT
    assert sorted(pair_ids) == sorted({p.prediction_id for p in map(forecast, range(TOTAL))})
