"""The services' ``/metrics``, parsed into the figures the dashboard shows.

Samples are looked up by sample name (``..._total``, ``..._bucket``), so a counter's family
name (with or without ``_total``) does not matter. A metric that a service has not reported
yet counts as zero or as absent, never as an error.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Labels = dict[str, str]
HTTP_TIMEOUT_S = 2.0  # a scrape of a local process answers in milliseconds
WORKER = "driftline_worker_"
MONITOR = "driftline_monitor_"
TRAINER = "driftline_trainer_"


def metrics_text(port: int) -> str | None:
    """``/metrics`` of the service on 127.0.0.1:``port``; None when it does not answer."""
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


@dataclass(frozen=True)
class Samples:
    """Every sample of one scrape: name -> list of (labels, value)."""

    by_name: dict[str, list[tuple[Labels, float]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> Samples:
        found: dict[str, list[tuple[Labels, float]]] = {}
        if not text:
            return cls(found)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return cls(found)

    def rows(self, name: str) -> list[tuple[Labels, float]]:
        return self.by_name.get(name, [])

    def total(self, name: str, **match: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``match``."""
        return sum(v for labels, v in self.rows(name) if _matches(labels, match))

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        """Sum of ``name`` per value of ``label``."""
        out: dict[str, float] = {}
        for labels, value in self.rows(name):
            if _matches(labels, match):
                out[labels.get(label, "")] = out.get(labels.get(label, ""), 0.0) + value
        return out

    def buckets(self, name: str) -> dict[float, float]:
        """Cumulative counts per upper bound of histogram ``name`` (summed over labels)."""
        out: dict[float, float] = {}
        for labels, value in self.rows(f"{name}_bucket"):
            bound = float(labels.get("le", "nan"))
            out[bound] = out.get(bound, 0.0) + value
        return out


def _matches(labels: Mapping[str, str], match: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match.items())


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """``q``-quantile of a histogram's cumulative buckets, interpolated as Prometheus does.

    None without observations; the highest finite bound when the quantile falls in +Inf.
    """
    bounds = sorted(b for b in buckets if not math.isnan(b))
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            span = count - lower_count
            share = (rank - lower_count) / span if span > 0 else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def difference(now: Mapping[float, float], before: Mapping[float, float]) -> dict[float, float]:
    """Buckets of the observations made between two scrapes."""
    return {bound: count - before.get(bound, 0.0) for bound, count in now.items()}


@dataclass(frozen=True)
class Figures:
    """One scrape of the three services, reduced to what the demo shows."""

    consumed: float = 0.0
    outputs: dict[str, float] = field(default_factory=dict)  # kind -> records
    dlq: dict[str, float] = field(default_factory=dict)  # reason -> records
    latency: dict[float, float] = field(default_factory=dict)  # cumulative buckets
    serving: dict[str, int] = field(default_factory=dict)  # model[/key] -> version
    swaps: float = 0.0
    pairs: float = 0.0
    decisions: dict[str, dict[str, int]] = field(default_factory=dict)  # model -> outcome -> n
    job_running: bool = False


def figures(worker: str | None, monitor: str | None, trainer: str | None) -> Figures:
    """Reduce three ``/metrics`` texts (None: the service did not answer)."""
    w, m, t = Samples.parse(worker), Samples.parse(monitor), Samples.parse(trainer)
    return Figures(
        consumed=w.total(f"{WORKER}records_consumed_total"),
        outputs=w.by(f"{WORKER}outputs_total", "kind"),
        dlq=w.by(f"{WORKER}dlq_records_total", "reason"),
        latency=w.buckets(f"{WORKER}end_to_end_latency_seconds"),
        serving=_serving(w.rows(f"{WORKER}model_version")),
        swaps=w.total(f"{WORKER}model_swaps_total", outcome="swapped"),
        pairs=m.total(f"{MONITOR}pairs_total"),
        decisions=_decisions(t.rows(f"{TRAINER}decisions_total")),
        job_running=t.total(f"{TRAINER}job_running") > 0,
    )


def _serving(rows: Iterable[tuple[Labels, float]]) -> dict[str, int]:
    out = {}
    for labels, value in rows:
        key = labels.get("key", "")
        out[labels.get("model", "") + (f"/{key}" if key else "")] = int(value)
    return out


def _decisions(rows: Iterable[tuple[Labels, float]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for labels, value in rows:
        outcomes = out.setdefault(labels.get("model", ""), {})
        outcome = labels.get("outcome", "")
        outcomes[outcome] = outcomes.get(outcome, 0) + int(value)
    return out
