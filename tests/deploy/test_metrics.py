"""Every service's Prometheus metrics follow the naming conventions and pass ``promtool``.

Conventions (checked here in Python, without promtool): one ``driftline_<service>_``
prefix per service; snake case; the unit in the name, in base units (``_seconds``,
``_bytes``; ``_records``, ``_ratio`` for counts and fractions); ``_total`` on counters and
only on counters; label names from one vocabulary shared by the three services, so that
``model``, ``version`` and ``topic`` mean the same thing on every dashboard.

``promtool check metrics`` then lints the text each service serves. The text is rendered
in a subprocess (every metric given one child, so labelled families have samples) to leave
this process's default registry untouched: other tests assert exact values on it.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys

import pytest
from prometheus_client import Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase

SERVICES = {
    "worker": "worker.metrics",
    "monitor": "monitor.metrics",
    "trainer": "trainer.metrics",
}
PROMTOOL = shutil.which("promtool")
NO_PROMTOOL = "promtool not installed (Debian package `prometheus`: apt-get install prometheus)"
# promtool lints a few hundred lines in milliseconds; the subprocess imports dominate.
RENDER_TIMEOUT_S = 120

# The one label vocabulary of every driftline service.
LABELS = {
    "topic",  # a Kafka topic name
    "partition",  # a partition number of that topic
    "model",  # a registry model name
    "key",  # a registry model key ("" for an unkeyed model)
    "version",  # a registry version number
    "kind",  # output kind: prediction, alert, imputed, dlq
    "reason",  # why something failed or was skipped
    "outcome",  # how an operation ended
    "event",  # a rebalance event
    "action",  # fine_tune, full_retrain, promoted, rolled_back, ...
    "window",  # the monitor's rolling window: count or time
    "metric",  # the name of a quality metric (mae, f1, ...)
    "role",  # candidate or champion
    "stream",  # an input stream of the worker: sensor or demand
}
# Synonyms that would split one dimension in two across services.
SYNONYMS = {"model_name", "model_version", "topic_name", "ver", "name", "service", "type"}
# Units that are not base units, with the base unit Prometheus expects instead.
NON_BASE_UNITS = re.compile(
    r"_(milliseconds|microseconds|nanoseconds|ms|us|minutes|hours|days|"
    r"kilobytes|megabytes|gigabytes|kb|mb|gb|bits|percent|pct)(_|$)"
)
# A histogram observes a quantity: its name must say in which unit.
HISTOGRAM_UNITS = ("_seconds", "_bytes", "_records", "_ratio")
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

RENDER = """
import importlib, sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

module = importlib.import_module(sys.argv[1])
registry = CollectorRegistry()
for metric in vars(module).values():
    if not isinstance(metric, MetricWrapperBase):
        continue
    registry.register(metric)
    names = metric._labelnames
    child = metric.labels(*["sample"] * len(names)) if names else metric
    if isinstance(metric, Counter):
        child.inc()
    elif isinstance(metric, Gauge):
        child.set(1)
    elif isinstance(metric, Histogram):
        child.observe(1)
sys.stdout.write(generate_latest(registry).decode())
"""


def service_metrics(module_name: str) -> list[MetricWrapperBase]:
    """The metric objects a service's metrics module defines (nothing is recorded)."""
    module = importlib.import_module(module_name)
    return [m for m in vars(module).values() if isinstance(m, MetricWrapperBase)]


def family_name(metric: MetricWrapperBase) -> str:
    """The name Prometheus shows (counters with their ``_total``)."""
    name = str(metric.describe()[0].name)
    return f"{name}_total" if isinstance(metric, Counter) else name


def label_names(metric: MetricWrapperBase) -> tuple[str, ...]:
    names: tuple[str, ...] = metric._labelnames  # no public accessor in prometheus_client
    return names


def render(module_name: str) -> str:
    """The module's metrics in the text format, each with one sample, from a subprocess."""
    done = subprocess.run(
        [sys.executable, "-c", RENDER, module_name],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def promtool_problems(text: str) -> str:
    """``promtool check metrics`` findings on ``text`` (empty when it has none)."""
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        check=False,
    )
    findings = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 or findings, f"promtool failed silently ({done.returncode})"
    return findings if done.returncode else ""


@pytest.fixture(scope="module", params=sorted(SERVICES))
def service(request: pytest.FixtureRequest) -> tuple[str, list[MetricWrapperBase]]:
    name: str = request.param
    return name, service_metrics(SERVICES[name])


def test_every_service_defines_metrics(service: tuple[str, list[MetricWrapperBase]]) -> None:
    name, metrics = service
    assert metrics, f"{SERVICES[name]} defines no metric"


def test_names_carry_the_service_prefix_and_are_snake_case(
    service: tuple[str, list[MetricWrapperBase]],
) -> None:
    name, metrics = service
    for metric in metrics:
        full = family_name(metric)
        assert full.startswith(f"driftline_{name}_"), full
        assert SNAKE_CASE.match(full), full


def test_units_are_base_units_in_the_name(service: tuple[str, list[MetricWrapperBase]]) -> None:
    _, metrics = service
    for metric in metrics:
        full = family_name(metric)
        assert not NON_BASE_UNITS.search(full), f"{full}: use seconds, bytes or ratios"
        if isinstance(metric, Histogram):
            assert full.endswith(HISTOGRAM_UNITS), f"{full}: histogram without a unit"


def test_total_only_on_counters(service: tuple[str, list[MetricWrapperBase]]) -> None:
    _, metrics = service
    for metric in metrics:
        counter = isinstance(metric, Counter)
        assert family_name(metric).endswith("_total") == counter, family_name(metric)


def test_labels_come_from_one_vocabulary(service: tuple[str, list[MetricWrapperBase]]) -> None:
    _, metrics = service
    for metric in metrics:
        names = set(label_names(metric))
        assert not names & SYNONYMS, f"{family_name(metric)}: {names & SYNONYMS}"
        assert names <= LABELS, f"{family_name(metric)}: unknown labels {names - LABELS}"
        assert metric.describe()[0].documentation.strip(), f"{family_name(metric)}: no help"


def test_metric_names_are_unique_across_services() -> None:
    names = [family_name(m) for module in SERVICES.values() for m in service_metrics(module)]
    assert len(names) == len(set(names))


def test_model_labels_are_ordered_alike_across_services() -> None:
    """Where a metric names a model key or version, the labels read model, key, version."""
    for module in SERVICES.values():
        for metric in service_metrics(module):
            names = [n for n in label_names(metric) if n in ("model", "key", "version")]
            assert names == [n for n in ("model", "key", "version") if n in names], family_name(
                metric
            )


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
@pytest.mark.parametrize("module_name", sorted(SERVICES.values()))
def test_promtool_accepts_the_metrics_of_every_service(module_name: str) -> None:
    text = render(module_name)
    expected = {family_name(m) for m in service_metrics(module_name)}
    assert expected <= {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert promtool_problems(text) == ""


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_flags_a_metric_against_the_conventions() -> None:
    """The linter really lints: a counter without ``_total`` and milliseconds are refused."""
    text = (
        "# HELP bad_latency_milliseconds Latency.\n# TYPE bad_latency_milliseconds gauge\n"
        "bad_latency_milliseconds 1\n# HELP bad_events Events.\n# TYPE bad_events counter\n"
        "bad_events 1\n"
    )
    problems = promtool_problems(text)
    assert "bad_events" in problems and "_total" in problems
    assert 'base unit "seconds"' in problems
