"""docker-compose.yml and the Prometheus/Grafana provisioning files are valid and complete."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
SERVICES_WITH_METRICS = ("worker", "monitor", "trainer")
# Services whose CLI command lands with a later capability; strict xfail turns red as soon
# as the command exists, so the marker cannot outlive the gap.
NOT_YET_COMMANDS: set[str] = set()


def load(path: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / path).read_text())
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load("docker-compose.yml")


def test_required_services_present(compose: dict[str, Any]) -> None:
    required = {"kafka", "topic-init", "worker", "monitor", "trainer", "prometheus", "grafana"}
    assert required <= set(compose["services"])


def test_kafka_is_single_node_kraft(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in (
        "KAFKA_NODE_ID",
        "KAFKA_LISTENERS",
        "KAFKA_ADVERTISED_LISTENERS",
        "KAFKA_CONTROLLER_QUORUM_VOTERS",
        "CLUSTER_ID",
    ):
        assert env.get(name), name
    for name in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert int(env[name]) == 1, name
    assert "healthcheck" in compose["services"]["kafka"]


def test_services_share_the_model_store_volume(compose: dict[str, Any]) -> None:
    assert "model-store" in compose["volumes"]
    for name in ("worker", "monitor", "trainer"):
        service = compose["services"][name]
        mounts = [str(v).split(":")[0] for v in service["volumes"]]
        assert "model-store" in mounts, name
        assert service["environment"]["MODEL_STORE"] == service["volumes"][0].split(":")[1]
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_services_wait_for_topics(compose: dict[str, Any]) -> None:
    for name in ("worker", "monitor", "trainer"):
        depends = compose["services"][name]["depends_on"]
        assert depends["topic-init"]["condition"] == "service_completed_successfully"
    assert compose["services"]["topic-init"]["depends_on"]["kafka"]["condition"] == (
        "service_healthy"
    )


def service_commands() -> list[Any]:
    services = load("docker-compose.yml")["services"]
    params = []
    for name, service in services.items():
        command = service.get("command")
        if not command or "build" not in service:
            continue
        marks = []
        if command[0] in NOT_YET_COMMANDS:
            marks.append(pytest.mark.xfail(strict=True, reason="command not implemented yet"))
        params.append(pytest.param(name, command[0], id=name, marks=marks))
    return params


@pytest.mark.parametrize(("service", "command"), service_commands())
def test_service_commands_are_driftline_commands(service: str, command: str) -> None:
    assert command in COMMANDS, f"{service} runs unknown subcommand {command!r}"


def test_prometheus_scrapes_every_service(compose: dict[str, Any]) -> None:
    prometheus = load("deploy/prometheus/prometheus.yml")
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    for name in SERVICES_WITH_METRICS:
        env = compose["services"][name]["environment"]
        port = int(env[f"{name.upper()}_HTTP_PORT"])
        assert env[f"{name.upper()}_HTTP_HOST"] == "0.0.0.0"
        job = jobs[name]
        targets = [t for c in job.get("static_configs", []) for t in c["targets"]]
        targets += [f"{n}:{c['port']}" for c in job.get("dns_sd_configs", []) for n in c["names"]]
        assert f"{name}:{port}" in targets, name
    mounted = compose["services"]["prometheus"]["volumes"][0].split(":")[0]
    assert (ROOT / mounted).resolve() == ROOT / "deploy/prometheus/prometheus.yml"


def test_grafana_provisioning_points_at_prometheus(compose: dict[str, Any]) -> None:
    datasource = load("deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    provider = load("deploy/grafana/provisioning/dashboards/driftline.yml")["providers"][0]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert provider["options"]["path"] in mounts.values()


def test_published_ports_bind_loopback(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all hosts"


def test_healthchecks_probe_healthz_on_the_service_http_port(compose: dict[str, Any]) -> None:
    for name in SERVICES_WITH_METRICS:
        service = compose["services"][name]
        port = int(service["environment"][f"{name.upper()}_HTTP_PORT"])
        command = " ".join(str(part) for part in service["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in command, f"{name}: {command}"
        assert service["healthcheck"]["start_period"], name


def test_dockerfile_copies_every_package_it_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    copied = {line.split()[1] for line in dockerfile if line.startswith("COPY ")}
    assert packages <= copied, f"not copied into the image: {packages - copied}"
    assert {"pyproject.toml", "README.md"} <= {
        word for line in dockerfile if line.startswith("COPY ") for word in line.split()[1:-1]
    }
    assert 'ENTRYPOINT ["driftline"]' in dockerfile
