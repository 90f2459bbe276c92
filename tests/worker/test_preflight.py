"""The topics a worker writes are checked before it joins its group."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from events.settings import KafkaSettings
from models.cache import ModelCache
from models.store import ModelStore
from worker.pipeline import build_pipeline
from worker.preflight import MissingTopicsError, OutputTopics, check_outputs
from worker.runner import build_runner
from worker.settings import WorkerSettings

CACHE_BYTES = 1 << 24
TopicFactory = Callable[..., str]


def settings_for(tmp_path: Path, inputs: list[str], **outputs: str) -> WorkerSettings:
    return WorkerSettings.model_validate(
        {
            "input_topics": inputs,
            "streams": {topic: "sensor" for topic in inputs},
            "model_store": tmp_path / "store",
            "http_port": 0,
            **{f"{name}_topic": topic for name, topic in outputs.items()},
        }
    )


class Declares:
    def __init__(self, outputs: OutputTopics) -> None:
        self.outputs = outputs

    def output_topics(self) -> OutputTopics:
        return self.outputs


def test_the_scoring_pipeline_writes_its_outputs_and_its_inputs_dead_letters(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, ["plant-a", "plant-b"], predictions="p", alerts="a")
    pipeline = build_pipeline(settings, ModelCache(ModelStore(settings.model_store), CACHE_BYTES))
    outputs = pipeline.output_topics()
    assert set(outputs.required) == {"p", "a", "readings.imputed", "dlq.plant-a", "dlq.plant-b"}
    assert outputs.shadow == ("predictions.shadow",)


def test_a_missing_dead_letter_topic_stops_the_worker_before_it_joins(
    kafka_settings: KafkaSettings, unique_topic: TopicFactory, tmp_path: Path
) -> None:
    source = unique_topic("plant")
    outputs = {name: unique_topic(name) for name in ("predictions", "alerts", "imputed")}
    settings = settings_for(tmp_path, [source], **outputs)
    with pytest.raises(MissingTopicsError, match=f"dlq.{source}") as refused:
        build_runner(settings, kafka_settings)
    assert "predictions" not in str(refused.value).split("do not exist")[0]
    admin = AdminClient(kafka_settings.client_config())
    admin.create_topics([NewTopic(f"dlq.{source}", 1, 1)])[f"dlq.{source}"].result(30)
    try:
        pipeline = Declares(OutputTopics((*outputs.values(), f"dlq.{source}")))
        check_outputs(pipeline, kafka_settings, 30.0)  # every topic exists now
    finally:
        admin.delete_topics([f"dlq.{source}"])[f"dlq.{source}"].result(30)


def test_a_missing_shadow_topic_only_warns(
    kafka_settings: KafkaSettings, unique_topic: TopicFactory, caplog: pytest.LogCaptureFixture
) -> None:
    present = unique_topic("out")
    pipeline = Declares(OutputTopics((present,), shadow=(f"{present}-shadow",)))
    with caplog.at_level(logging.WARNING, logger="worker.preflight"):
        check_outputs(pipeline, kafka_settings, 30.0)
    assert f"shadow topic {present}-shadow does not exist" in caplog.text


def test_an_unreachable_broker_is_left_to_the_clients(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nothing listens once the socket is closed
    pipeline = Declares(OutputTopics(("anything",)))
    with caplog.at_level(logging.WARNING, logger="worker.preflight"):
        check_outputs(pipeline, KafkaSettings(bootstrap_servers=f"127.0.0.1:{closed}"), 1.0)
    assert "could not check that the output topics exist" in caplog.text
    check_outputs(object(), KafkaSettings(bootstrap_servers=f"127.0.0.1:{closed}"), 1.0)
