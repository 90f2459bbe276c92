"""Every Kafka client driftline builds carries the SASL and TLS settings of ``KAFKA_*``.

Two checks: each service's config builders keep every security property of
``KafkaSettings.client_config()`` (none overridden, none dropped), and no client in the
service and CLI packages is built from a hand-written config (a dict literal naming
``bootstrap.servers``), which would bypass those settings. The local broker's own
readiness probe (``broker/``) talks PLAINTEXT to the broker it started, by design.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from events.settings import KafkaSettings, kafka_settings
from monitor.settings import MonitorSettings
from trainer.settings import TrainerSettings
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("driftline", "events", "models", "worker", "monitor", "trainer")
CLIENTS = {"Consumer", "Producer", "AdminClient"}

SECURE = KafkaSettings(
    bootstrap_servers="kafka-1:9093,kafka-2:9093",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-256",
    sasl_username="driftline",
    sasl_password=SecretStr("pw-never-printed"),
    ssl_ca_location=Path("/etc/kafka/ca.pem"),
    ssl_certificate_location=Path("/etc/kafka/client.pem"),
    ssl_key_location=Path("/etc/kafka/client.key"),
    ssl_key_password=SecretStr("key-pw-never-printed"),
)
SECURITY_KEYS = (
    "bootstrap.servers",
    "security.protocol",
    "sasl.mechanism",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
)


def builders() -> dict[str, dict[str, Any]]:
    worker = WorkerSettings(input_topics=["readings.sensor"], instance_id="w-0")
    exactly_once = WorkerSettings(
        input_topics=["readings.sensor"], instance_id="w-1", processing_guarantee="exactly_once"
    )
    monitor, trainer = MonitorSettings(), TrainerSettings()
    return {
        "worker consumer": worker.consumer_config(SECURE),
        "worker producer": worker.producer_config(SECURE),
        "worker transactional producer": exactly_once.producer_config(SECURE),
        "worker reader": worker.reader_config(SECURE, "warmup"),
        "monitor consumer": monitor.consumer_config(SECURE),
        "monitor producer": monitor.producer_config(SECURE),
        "monitor reader": monitor.reader_config(SECURE, "recover"),
        "trainer consumer": trainer.consumer_config(SECURE),
        "trainer reader": trainer.reader_config(SECURE),
        "shared producer": SECURE.producer_config(),
    }


@pytest.mark.parametrize("client", sorted(builders()))
def test_every_client_config_keeps_the_security_settings(client: str) -> None:
    expected = SECURE.client_config()
    config = builders()[client]
    assert {key: config.get(key) for key in SECURITY_KEYS} == {
        key: expected[key] for key in SECURITY_KEYS
    }


def test_a_bootstrap_override_from_the_command_line_keeps_the_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "driftline",
        "KAFKA_SASL_PASSWORD": "pw-never-printed",
    }.items():
        monkeypatch.setenv(key, value)
    config = kafka_settings("elsewhere:9092").client_config()  # what --bootstrap does
    assert config["bootstrap.servers"] == "elsewhere:9092"
    assert (config["sasl.username"], config["sasl.password"]) == ("driftline", "pw-never-printed")


def hand_built_clients(path: Path) -> list[str]:
    """``Consumer({... "bootstrap.servers": ...})`` and the like in one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        config = node.args[0]
        if name in CLIENTS and isinstance(config, ast.Dict):
            keys = {k.value for k in config.keys if isinstance(k, ast.Constant)}
            if "bootstrap.servers" in keys:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_client_is_built_from_a_hand_written_config() -> None:
    sources = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(sources) > 50
    assert [spot for path in sources for spot in hand_built_clients(path)] == []
