"""The HTTP endpoints (/metrics, /healthz, /readyz) bind to 127.0.0.1 unless told otherwise.

Settings defaults of all three services, read with no ``*_HTTP_HOST`` in the environment;
test_sasl.py checks the listening sockets of the running services.
"""

from __future__ import annotations

from typing import Any

import pytest

from monitor.settings import MonitorSettings
from trainer.settings import TrainerSettings
from worker.settings import WorkerSettings

SERVICES: dict[str, Any] = {
    "WORKER_": WorkerSettings,
    "MONITOR_": MonitorSettings,
    "TRAINER_": TrainerSettings,
}


@pytest.mark.parametrize("prefix", sorted(SERVICES))
def test_http_binds_to_loopback_by_default(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(f"{prefix}HTTP_HOST", raising=False)
    settings = SERVICES[prefix]()
    assert settings.http_host == "127.0.0.1"
    monkeypatch.setenv(f"{prefix}HTTP_HOST", "0.0.0.0")  # exposing it is a choice
    assert SERVICES[prefix]().http_host == "0.0.0.0"
