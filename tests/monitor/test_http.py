"""The monitor's /readyz follows recovery and assignment; /metrics exports its gauges."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from monitor import metrics
from monitor.http import HealthServer, MonitorHealth


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_readiness_follows_recovery_and_partitions() -> None:
    health = MonitorHealth(liveness_timeout_s=60)
    server = HealthServer(health)
    server.start()
    try:
        status, body = get(server.port, "/readyz")
        assert status == 503
        assert json.loads(body)["reasons"] == [
            "rebuilding state from topics",
            "no partitions assigned",
        ]
        health.set_recovered()
        health.set_partitions(4)
        assert health.ready.is_set()
        assert get(server.port, "/readyz")[0] == 200
        assert get(server.port, "/healthz")[0] == 200
        metrics.PENDING.set(17)
        status, body = get(server.port, "/metrics")
        assert status == 200 and b"driftline_monitor_pending_predictions 17.0" in body
        health.set_closing()
        assert not health.ready.is_set() and get(server.port, "/readyz")[0] == 503
    finally:
        server.stop()
    assert server.server_address[0] == "127.0.0.1"


def test_a_long_start_up_replay_is_alive_and_the_loop_is_judged_from_its_end() -> None:
    health = MonitorHealth(liveness_timeout_s=60)
    health._last_poll = time.monotonic() - 120  # the replay has run for two minutes
    assert health.liveness()[0]
    health.set_recovered()
    assert health.liveness()[0]  # the loop's clock starts when the replay ends
    health._last_poll = time.monotonic() - 120  # then a loop that stopped polling
    assert not health.liveness()[0]
