"""One view of the running system, for ``driftline status``.

:func:`collect` gathers five sections: the services' liveness and readiness, consumer lag
of driftline's groups, records consumed (and rates, given an interval), dead-letter counts
and every model key's serving version and health. A section that cannot be read (broker
down, store missing) is reported with the reason and the others are still shown, so the
command is useful exactly when something is broken.

Defaults come from the services' own settings (``WORKER_HTTP_PORT``, ``MONITOR_GROUP_ID``,
``MODEL_STORE``, ...), so on a host configured for driftline it needs no options.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from driftline.status_kafka import DeadLetters, GroupLag, KafkaProbe, KafkaStatusError
from driftline.status_models import (
    ModelStatus,
    ModelStatusError,
    model_statuses,
    registry_aliases,
)
from driftline.status_services import Endpoint, ServiceProbe, probe, with_rates
from events import ModelHealth
from events.settings import KafkaSettings

SERVICES: Final = ("worker", "monitor", "trainer")
# A service bound to every interface is probed on the loopback address.
WILDCARD_HOSTS: Final = frozenset({"0.0.0.0", "::", ""})


@dataclass
class StatusRequest:
    """What to ask: service URLs, consumer groups, model store, health topic, interval."""

    endpoints: list[Endpoint]
    groups: list[str]
    store: Path
    health_topic: str
    interval_s: float = 0.0
    timeout_s: float = 10.0


@dataclass
class SystemStatus:
    """The answers; ``errors`` maps what could not be read (kafka, models, health) to why."""

    services: list[ServiceProbe] = field(default_factory=list)
    groups: list[GroupLag] = field(default_factory=list)
    dead_letters: list[DeadLetters] = field(default_factory=list)
    models: list[ModelStatus] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    interval_s: float = 0.0

    @property
    def healthy(self) -> bool:
        """Every probed service ready and every section read."""
        return not self.errors and all(s.state == "ready" for s in self.services)


def service_url(host: str, port: int) -> str:
    return f"http://{'127.0.0.1' if host in WILDCARD_HOSTS else host}:{port}"


def default_endpoints() -> dict[str, str]:
    """Service -> URL from each service's HTTP settings (environment or defaults)."""
    from monitor.settings import MonitorSettings
    from trainer.settings import TrainerSettings
    from worker.settings import WorkerSettings

    worker, monitor, trainer = WorkerSettings(), MonitorSettings(), TrainerSettings()
    return {
        "worker": service_url(worker.http_host, worker.http_port),
        "monitor": service_url(monitor.http_host, monitor.http_port),
        "trainer": service_url(trainer.http_host, trainer.http_port),
    }


def default_groups() -> list[str]:
    """The consumer groups of the worker, monitor and trainer as configured."""
    from monitor.settings import MonitorSettings
    from trainer.settings import TrainerSettings
    from worker.settings import WorkerSettings

    return [WorkerSettings().group_id, MonitorSettings().group_id, TrainerSettings().group_id]


def default_health_topic() -> str:
    from monitor.settings import MonitorSettings

    return MonitorSettings().health_topic


def collect(request: StatusRequest, kafka: KafkaSettings) -> SystemStatus:
    """Probe services, broker and store; never raises for a part that cannot be read."""
    status = SystemStatus(interval_s=request.interval_s)
    probe_timeout = min(request.timeout_s, 2.0)  # an HTTP probe is local: 2 s is generous
    status.services = [probe(e, probe_timeout) for e in request.endpoints]
    if request.interval_s > 0:
        time.sleep(request.interval_s)  # the second scrape of the rate
        status.services = [
            with_rates(first, probe(e, probe_timeout))
            for first, e in zip(status.services, request.endpoints, strict=True)
        ]
    broker = KafkaProbe(kafka, request.timeout_s)
    try:
        # Topics first: an unreachable broker is found by one request, not three timeouts.
        status.dead_letters = broker.dead_letters()
        status.groups = broker.group_lags(request.groups)
    except KafkaStatusError as exc:
        status.errors["kafka"] = str(exc)
    try:
        aliases = registry_aliases(request.store)
    except ModelStatusError as exc:
        status.errors["models"] = str(exc)
        aliases = {}
    health = [] if "kafka" in status.errors else _health(request, kafka, status.errors)
    status.models = model_statuses(aliases, health)
    return status


def _health(
    request: StatusRequest, kafka: KafkaSettings, errors: dict[str, str]
) -> list[ModelHealth]:
    """The latest model.health record of every model key (the monitor's own reader)."""
    from monitor.errors import StatusReadError
    from monitor.settings import MonitorSettings
    from monitor.status import latest_health

    try:
        settings = MonitorSettings(health_topic=request.health_topic)
        return latest_health(settings, kafka, request.timeout_s)
    except StatusReadError as exc:
        errors["health"] = str(exc)
        return []


def as_json(status: SystemStatus) -> dict[str, Any]:
    """JSON-ready dict: every section, per-service state, totals, timestamps as text."""
    data = asdict(status)
    for probed, row in zip(status.services, data["services"], strict=True):
        row["state"] = probed.state
        row.pop("scraped_at")
    for lag, row in zip(status.groups, data["groups"], strict=True):
        row["total"] = lag.total
    for model in data["models"]:
        if model["reported_at"] is not None:
            model["reported_at"] = model["reported_at"].isoformat()
    data["healthy"] = status.healthy
    return data
