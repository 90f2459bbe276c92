"""A real Prometheus server scrapes a running worker, and accepts the dashboard's queries.

A ``driftline worker`` subprocess consumes a unique topic of the session broker with a
counting pipeline (defined below; the subprocess imports this module by name). Its
``/metrics`` is linted by ``promtool`` as served, then a Prometheus server (Debian's
``prometheus``, on 127.0.0.1, a free port and a temporary storage directory) scrapes it:
the test waits for the target to be up through ``/api/v1/targets`` and reads the worker's
counter back through ``/api/v1/query``. Every expression of the Grafana dashboard is then
evaluated by that server, so a query Prometheus cannot parse fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from events.settings import KafkaSettings
from worker.records import BatchResult

HERE = Path(__file__).resolve().parent
DRIFTLINE = Path(sys.executable).with_name("driftline")
DASHBOARD = HERE.parents[1] / "deploy/grafana/dashboards/driftline.json"
RULES = HERE.parents[1] / "deploy/prometheus/rules.yml"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
NO_PROMETHEUS = "prometheus not installed (Debian package `prometheus`: apt-get install prometheus)"
NO_PROMTOOL = "promtool not installed (Debian package `prometheus`: apt-get install prometheus)"
READINGS = 25
PARTITIONS = 2
# Every wait is for local processes and a local broker; the deadlines only catch hangs.
DEADLINE_S = 60.0
# Prometheus scrapes every second so that the first sample arrives without a long wait.
SCRAPE_INTERVAL = "1s"
# How Grafana's variables are filled in before Prometheus evaluates a dashboard query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$model": ".*"}


# --- the pipeline the worker subprocess runs ------------------------------------------


class Counting:
    """Consumes and acknowledges readings without producing anything."""

    def process(self, messages: Sequence[Any]) -> BatchResult:
        return BatchResult()

    def warm(self, messages: Sequence[Any]) -> None:
        """Stateless: nothing to rebuild."""

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Stateless: nothing to drop."""

    def history_needed(self) -> int:
        return 0


def build_pipeline(settings: Any, cache: Any) -> Counting:
    """``WORKER_PIPELINE=test_prometheus:build_pipeline`` (with this dir on PYTHONPATH)."""
    return Counting()


# --- helpers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""  # not listening yet


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process overruns the deadline; never leaves it running."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(DEADLINE_S)


class RunningWorker:
    """A ``driftline worker`` subprocess reading one unique topic."""

    def __init__(self, kafka: KafkaSettings, tmp: Path) -> None:
        suffix = uuid.uuid4().hex[:12]
        self.topic = f"prom-readings-{suffix}"
        self.updates = f"prom-updates-{suffix}"
        self.alerts = f"prom-alerts-{suffix}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "worker.log"
        self.kafka = kafka
        self._create_topics()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "KAFKA_"))}
        env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
                "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                "WORKER_INPUT_TOPICS": json.dumps([self.topic]),
                "WORKER_GROUP_ID": f"prom-workers-{suffix}",
                "WORKER_PIPELINE": "test_prometheus:build_pipeline",
                "WORKER_UPDATES_TOPIC": self.updates,
                "WORKER_ALERTS_TOPIC": self.alerts,
                "WORKER_MODEL_STORE": str(tmp / "store"),
                "WORKER_HTTP_PORT": str(self.port),
                "WORKER_INSTANCE_ID": f"prom-{suffix}",
                "WORKER_WARMUP_RECORDS": "0",
            }
        )
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(DRIFTLINE), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def _create_topics(self) -> None:
        admin = AdminClient(self.kafka.client_config())
        new = [
            NewTopic(self.topic, num_partitions=PARTITIONS, replication_factor=1),
            NewTopic(self.updates, num_partitions=1, replication_factor=1),
            NewTopic(self.alerts, num_partitions=1, replication_factor=1),
        ]
        for future in admin.create_topics(new, request_timeout=DEADLINE_S).values():
            future.result(timeout=DEADLINE_S)

    def delete_topics(self) -> None:
        admin = AdminClient(self.kafka.client_config())
        deleted = admin.delete_topics([self.topic, self.updates, self.alerts])
        for future in deleted.values():
            future.exception(timeout=DEADLINE_S)  # best effort: the broker is temporary

    def metrics(self) -> str:
        status, body = http_get(f"{self.url}/metrics")
        assert status == 200, f"/metrics answered {status}"
        return body.decode()

    def consumed_series(self, count: int) -> str:
        return f'driftline_worker_records_consumed_total{{topic="{self.topic}"}} {count:.1f}'

    def wait_consumed(self, count: int) -> None:
        def consumed() -> bool:
            assert self.process.poll() is None, f"worker exited:\n{self.log.read_text()}"
            return self.consumed_series(count) in http_get(f"{self.url}/metrics")[1].decode()

        wait_until(consumed, f"{count} records consumed")


class RunningPrometheus:
    """A Prometheus server on 127.0.0.1 scraping one worker, with temporary storage."""

    def __init__(self, target_port: int, tmp: Path) -> None:
        assert PROMETHEUS is not None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "prometheus.log"
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "worker",
                    "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                }
            ],
        }
        config_file = tmp / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        command = [
            PROMETHEUS,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = http_get(f"{self.url}/api/v1/{path}{query}")
        assert status == 200, f"/api/v1/{path}{query} answered {status}: {body[:300]!r}"
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.process.poll() is None, f"prometheus exited:\n{self.log.read_text()}"
            return http_get(f"{self.url}/-/ready")[0] == 200

        wait_until(ready, "prometheus /-/ready")

    def targets_up(self) -> bool:
        targets = self.api("targets", state="active")["activeTargets"]
        return bool(targets) and all(target["health"] == "up" for target in targets)


@pytest.fixture(scope="module")
def worker(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningWorker]:
    """A ready worker that has consumed ``READINGS`` records."""
    running = RunningWorker(kafka_settings, tmp_path_factory.mktemp("prom-worker"))
    try:
        producer = Producer(kafka_settings.client_config())
        for i in range(READINGS):
            producer.produce(running.topic, b"{}", f"machine-{i}".encode())
        assert producer.flush(DEADLINE_S) == 0
        running.wait_consumed(READINGS)
        yield running
    finally:
        stop(running.process)
        running.delete_topics()
    assert running.process.returncode == 0, running.log.read_text()


@pytest.fixture
def prometheus(worker: RunningWorker, tmp_path: Path) -> Iterator[RunningPrometheus]:
    server = RunningPrometheus(worker.port, tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        stop(server.process)
    assert server.process.poll() is not None


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_accepts_a_running_workers_metrics(worker: RunningWorker) -> None:
    assert PROMTOOL is not None
    text = worker.metrics()
    assert worker.consumed_series(READINGS) in text
    linted = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.skipif(PROMETHEUS is None, reason=NO_PROMETHEUS)
def test_prometheus_scrapes_the_worker_and_answers_queries(
    worker: RunningWorker, prometheus: RunningPrometheus
) -> None:
    wait_until(prometheus.targets_up, "the worker target to be up")
    target = prometheus.api("targets", state="active")["activeTargets"][0]
    assert target["labels"]["job"] == "worker"
    assert target["scrapeUrl"] == f"{worker.url}/metrics"

    query = f'driftline_worker_records_consumed_total{{topic="{worker.topic}"}}'

    def sampled() -> bool:
        return bool(prometheus.api("query", query=query)["result"])

    wait_until(sampled, "the first sample of the worker's counter")
    (series,) = prometheus.api("query", query=query)["result"]
    assert series["metric"]["job"] == "worker"
    assert series["metric"]["instance"] == f"127.0.0.1:{worker.port}"
    assert float(series["value"][1]) == READINGS
    up = prometheus.api("query", query='up{job="worker"}')["result"]
    assert [float(s["value"][1]) for s in up] == [1.0]


@pytest.mark.skipif(PROMETHEUS is None, reason=NO_PROMETHEUS)
def test_prometheus_evaluates_every_dashboard_query(prometheus: RunningPrometheus) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    for expr in exprs:
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unfilled Grafana variable in {expr!r}"
        prometheus.api("query", query=expr)  # a parse error answers 400


@pytest.mark.skipif(PROMETHEUS is None, reason=NO_PROMETHEUS)
def test_prometheus_evaluates_every_alert_rule(prometheus: RunningPrometheus) -> None:
    def rules() -> list[dict[str, Any]]:
        groups = prometheus.api("rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def evaluated() -> bool:
        found = rules()
        return bool(found) and all(rule["health"] != "unknown" for rule in found)

    wait_until(evaluated, "every alert rule evaluated once")
    failing = {rule["name"]: rule.get("lastError") for rule in rules() if rule["health"] != "ok"}
    assert not failing
    assert len(rules()) == len(yaml.safe_load(RULES.read_text())["groups"][0]["rules"])


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_accepts_the_alert_rules() -> None:
    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_accepts_the_deployed_scrape_config() -> None:
    assert PROMTOOL is not None
    config = HERE.parents[1] / "deploy/prometheus/prometheus.yml"
    checked = subprocess.run(
        [PROMTOOL, "check", "config", "--syntax-only", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
