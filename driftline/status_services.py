"""Probes of the services' HTTP endpoints: liveness, readiness and records consumed.

Every driftline service serves ``/healthz``, ``/readyz`` and ``/metrics`` (see
:mod:`worker.http`). A probe asks all three of one instance; a service that does not
answer is reported as down with the reason, never raised, so one status call shows every
instance. Throughput comes from the ``*_records_consumed_total`` counters of ``/metrics``;
two probes some seconds apart give rates.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client.parser import text_string_to_metric_families

# The counter every service keeps of the records it consumed, per topic.
CONSUMED_SUFFIX: Final = "_records_consumed"
# A probe reads a few KB from a local or in-cluster service.
DEFAULT_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True)
class Endpoint:
    """One service instance to probe: ``service`` (worker, monitor, trainer) at ``url``."""

    service: str
    url: str


@dataclass
class ServiceProbe:
    """What one instance answered. ``live``/``ready`` are None when it did not answer."""

    service: str
    url: str
    live: bool | None = None
    ready: bool | None = None
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    consumed: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] | None = None
    scraped_at: float = 0.0

    @property
    def state(self) -> str:
        """down, unhealthy, not ready, or ready."""
        if self.live is None:
            return "down"
        if not self.live:
            return "unhealthy"
        return "ready" if self.ready else "not ready"


def probe(endpoint: Endpoint, timeout_s: float = DEFAULT_TIMEOUT_S) -> ServiceProbe:
    """Ask one instance for its liveness, readiness and consumed-record counters."""
    result = ServiceProbe(endpoint.service, endpoint.url)
    base = endpoint.url.rstrip("/")
    try:
        live_status, _ = _get(f"{base}/healthz", timeout_s)
        ready_status, ready_body = _get(f"{base}/readyz", timeout_s)
        metrics_status, metrics_body = _get(f"{base}/metrics", timeout_s)
    except OSError as exc:
        result.error = f"no answer: {_reason(exc)}"
        return result
    result.live = live_status == 200
    result.ready = ready_status == 200
    result.reasons = _readiness_reasons(ready_body)
    if metrics_status == 200:
        result.consumed = consumed_by_topic(metrics_body.decode("utf-8", "replace"))
        result.scraped_at = time.monotonic()
    else:
        result.error = f"{base}/metrics answered {metrics_status}"
    return result


def consumed_by_topic(text: str) -> dict[str, float]:
    """Records consumed per topic, summed over every ``*_records_consumed`` counter."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.type != "counter" or not family.name.endswith(CONSUMED_SUFFIX):
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                topic = sample.labels.get("topic", "")
                totals[topic] = totals.get(topic, 0.0) + sample.value
    return totals


def with_rates(first: ServiceProbe, second: ServiceProbe) -> ServiceProbe:
    """``second`` with per-topic rates (records/s) since ``first`` of the same instance.

    A counter that went down means the process restarted between the probes: its rate is
    then counted from zero.
    """
    elapsed = second.scraped_at - first.scraped_at
    if second.live is None or first.live is None or elapsed <= 0:
        return second
    rates = {}
    for topic, total in second.consumed.items():
        before = first.consumed.get(topic, 0.0)
        rates[topic] = (total - before if total >= before else total) / elapsed
    second.rates = rates
    return second


def _get(url: str, timeout_s: float) -> tuple[int, bytes]:
    """Status and body; HTTP error statuses (503 from /readyz) are answers, not errors."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def _readiness_reasons(body: bytes) -> list[str]:
    try:
        detail: Any = json.loads(body)
    except ValueError:
        return []
    reasons = detail.get("reasons", []) if isinstance(detail, dict) else []
    return [str(reason) for reason in reasons]


def _reason(exc: OSError) -> str:
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
