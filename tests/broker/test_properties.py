"""server.properties rendering, port picking and cluster ids (no broker needed)."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest

from broker.config import (
    SINGLE_NODE_DEFAULTS,
    BrokerConfig,
    check_port_free,
    free_ports,
    new_cluster_id,
)
from broker.errors import BrokerStartError


def read_properties(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


def test_properties_file_describes_a_single_node_kraft_broker(tmp_path: Path) -> None:
    config = BrokerConfig(port=19092, controller_port=19093, log_dir=tmp_path / "kraft")

    written = read_properties(config.write(tmp_path / "server.properties"))

    assert written["process.roles"] == "broker,controller"
    assert written["node.id"] == "1"
    assert written["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert written["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert written["advertised.listeners"] == written["listeners"]
    assert written["controller.listener.names"] == "CONTROLLER"
    assert written["log.dirs"] == str(tmp_path / "kraft")
    for key, value in SINGLE_NODE_DEFAULTS.items():
        assert written[key] == value
    assert written["offsets.topic.replication.factor"] == "1"
    assert written["transaction.state.log.min.isr"] == "1"
    assert written["group.initial.rebalance.delay.ms"] == "0"
    assert written["offsets.topic.num.partitions"] == "1"
    assert written["log.cleaner.dedupe.buffer.size"] == "2097152"
    assert written["auto.create.topics.enable"] == "false"
    assert config.bootstrap_servers == "127.0.0.1:19092"


def test_extra_listener_gets_its_port_protocol_and_overrides(tmp_path: Path) -> None:
    config = BrokerConfig(
        port=1,
        controller_port=2,
        log_dir=tmp_path,
        extra_ports={"SASL": 3},
        extra_listeners={"SASL": "SASL_PLAINTEXT"},
        extra_properties={"sasl.enabled.mechanisms": "PLAIN", "num.partitions": "3"},
    )

    properties = config.properties()

    assert properties["listeners"].endswith(",SASL://127.0.0.1:3")
    assert "SASL:SASL_PLAINTEXT" in properties["listener.security.protocol.map"].split(",")
    assert properties["sasl.enabled.mechanisms"] == "PLAIN"
    assert properties["num.partitions"] == "3"
    assert config.listener_address("SASL") == "127.0.0.1:3"
    with pytest.raises(KeyError):
        config.listener_address("SSL")


def test_extra_listener_without_a_port_is_refused(tmp_path: Path) -> None:
    config = BrokerConfig(1, 2, tmp_path, extra_listeners={"SASL": "SASL_PLAINTEXT"})
    with pytest.raises(ValueError, match="same listeners"):
        config.properties()


def test_values_are_escaped_for_java_properties(tmp_path: Path) -> None:
    config = BrokerConfig(1, 2, Path("C:\\kafka"), extra_properties={"x": " padded"})
    text = config.write(tmp_path / "server.properties").read_text()
    assert "log.dirs=C:\\\\kafka\n" in text
    assert "x=\\ padded\n" in text


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(3)

    assert len(set(ports)) == 3
    for port in ports:
        check_port_free(port)


def test_port_in_use_is_reported() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(BrokerStartError, match=f"port {port} .* in use"):
            check_port_free(port)


def test_cluster_id_has_kafkas_uuid_format() -> None:
    ids = {new_cluster_id() for _ in range(50)}

    assert len(ids) == 50
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
