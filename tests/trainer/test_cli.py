"""``driftline trainer status`` and ``driftline retrain``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from confluent_kafka import Consumer, TopicPartition

from driftline.cli import main
from events import codec_for, topics
from events.settings import KafkaSettings
from models.base import Model
from models.registry import Registry
from trainer.settings import TrainerSettings
from trainer.state import DecisionRecord, Job, TrainerState


def test_status_shows_queue_decisions_and_versions(
    tmp_path: Path, demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    store = tmp_path / "store"
    registry = Registry(store, actor="test")
    registry.register(fit_demand(demand_history), "demand")
    registry.register(fit_demand(demand_history), "demand", parent=1, promote_if_first=False)
    state = TrainerState(TrainerSettings(model_store=store).state_path)
    state.enqueue(Job("r-2", "demand", None, "request", "fine_tune", "drift"))
    state.enqueue(Job("r-1", "demand", None, "request", "full_retrain", "asked"))
    reason = "rejected: not better: candidate mae 12 vs champion 10"
    state.finish(
        DecisionRecord(
            "r-1", "demand", None, "request", "full_retrain", "rejected", reason, version=2
        )
    )

    result = CliRunner().invoke(main, ["trainer", "status", "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [job["job_id"] for job in report["queue"]] == ["r-2"]
    [decision] = report["decisions"]
    assert (decision["outcome"], decision["reason"]) == ("rejected", reason)
    [row] = report["models"]
    assert (row["model"], row["champion"], row["latest"], row["versions"]) == ("demand", 1, 2, 2)
    assert (row["last_decision"], row["fine_tunes_since_full"]) == ("rejected", 0)

    text = CliRunner().invoke(main, ["trainer", "status", "--store", str(store)])
    assert text.exit_code == 0, text.output
    assert "queue" in text.output and "r-2" in text.output and "rejected" in text.output


def test_status_of_an_empty_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["trainer", "status", "--store", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "queue: none" in result.output and "models: none" in result.output


def test_retrain_refuses_a_bad_model_name() -> None:
    result = CliRunner().invoke(main, ["retrain", "bad name!", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "model" in result.output


def test_retrain_publishes_a_fresh_request(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("retrain.requests")
    base = ["retrain", "demand", "--topic", topic, "--bootstrap", kafka_settings.bootstrap_servers]
    first = CliRunner().invoke(
        main, [*base, "--key", "p-1", "--full", "--reason", "new promo", "--json"]
    )
    second = CliRunner().invoke(main, base)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert second.output.startswith("published request ") and "fine_tune demand" in second.output

    consumer = Consumer({**kafka_settings.client_config(), "group.id": f"t-{uuid.uuid4().hex}"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        records = [consumer.poll(10) for _ in range(2)]
    finally:
        consumer.close()
    codec = codec_for(topics.RETRAIN_REQUESTS)
    full, fine = (codec.decode(r.value()) for r in records if r is not None)
    assert (full.model, full.key, full.action, full.reason) == (
        "demand",
        "p-1",
        "full_retrain",
        "new promo",
    )
    assert records[0] is not None and records[0].key() == b"demand/p-1"
    assert (fine.key, fine.action) == (None, "fine_tune")
    assert full.request_id != fine.request_id and len(full.request_id) == 32
    assert json.loads(first.output)["request_id"] == full.request_id
