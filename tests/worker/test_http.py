"""The worker's HTTP endpoints: metrics, liveness and readiness (no broker)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from worker import metrics
from worker.http import Health, HealthServer


@pytest.fixture
def served() -> Iterator[tuple[Health, str]]:
    health = Health(liveness_timeout_s=60)
    server = HealthServer(health, "127.0.0.1", 0)
    server.start()
    try:
        yield health, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    status, body, content_type = get(url)
    assert content_type == "application/json"
    return status, json.loads(body)


def test_server_binds_loopback_by_default() -> None:
    server = HealthServer(Health(60))
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_metrics_expose_the_worker_series(served: tuple[Health, str]) -> None:
    _, base = served
    metrics.RECORDS_CONSUMED.labels("readings.test-http").inc(3)
    status, body, content_type = get(base + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    text = body.decode()
    assert 'driftline_worker_records_consumed_total{topic="readings.test-http"} 3.0' in text
    assert "driftline_worker_end_to_end_latency_seconds" in text


def test_healthz_reports_a_stalled_loop(served: tuple[Health, str]) -> None:
    health, base = served
    status, body = get_json(base + "/healthz")
    assert status == 200 and body["alive"] is True
    health._last_poll = time.monotonic() - 120  # the loop has not polled for two minutes
    status, body = get_json(base + "/healthz")
    assert status == 503 and body["alive"] is False
    health.polled()
    assert get_json(base + "/healthz")[0] == 200


def test_readyz_needs_partitions_warm_state_and_models(served: tuple[Health, str]) -> None:
    health, base = served
    status, body = get_json(base + "/readyz")
    assert status == 503
    assert body["reasons"] == ["no partitions assigned", "models not loaded"]
    health.set_assigned(3)
    health.set_models_ready(True)
    health.set_warming(True)
    status, body = get_json(base + "/readyz")
    assert (status, body["reasons"]) == (503, ["warming up"])
    health.set_warming(False)
    status, body = get_json(base + "/readyz")
    assert status == 200 and body["ready"] is True and body["assigned_partitions"] == 3
    health.set_stopping()
    assert get_json(base + "/readyz") == (503, {**body, "ready": False, "reasons": ["stopping"]})


def test_unknown_paths_are_404(served: tuple[Health, str]) -> None:
    _, base = served
    assert get(base + "/nope")[0] == 404
