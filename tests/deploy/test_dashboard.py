"""The Grafana dashboard queries only series that driftline's services export.

Every PromQL expression of deploy/grafana/dashboards/driftline.json (panel targets and
template variable queries) is parsed for metric names and for the label names it groups
or filters by. A metric name must be a series of one of the three services' metrics
modules (histograms as ``_bucket``/``_sum``/``_count``, counters with ``_total``), and a
label must be one of those metrics' labels or one Prometheus attaches (``job``,
``instance``) or ``le``. A renamed metric or label therefore turns this test red instead
of leaving an empty panel.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/dashboards/driftline.json"
RULES = ROOT / "deploy/prometheus/rules.yml"
DATASOURCES = ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml"
PROVIDER = ROOT / "deploy/grafana/provisioning/dashboards/driftline.yml"
MODULES = ("worker.metrics", "monitor.metrics", "trainer.metrics")
# Series Prometheus writes itself for every target, and the labels it attaches.
SCRAPE_SERIES = {"up": frozenset({"job", "instance"})}
TARGET_LABELS = frozenset({"job", "instance"})

# PromQL words that look like names but are not metrics.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
KEYWORDS |= {"and", "or", "unless", "inf", "nan", "atan2", "le"}
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
RANGE = re.compile(r"\[[^\]]*\]")
MATCHERS = re.compile(r"\{([^}]*)\}")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
NAME = re.compile(r"(?<![\w$:.])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()")
LABEL_FUNCTION = re.compile(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)")


def series_labels() -> dict[str, frozenset[str]]:
    """Every series name the services export -> the label names it carries."""
    exported: dict[str, frozenset[str]] = dict(SCRAPE_SERIES)
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for metric in vars(module).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            name = str(metric.describe()[0].name)
            labels = frozenset(metric._labelnames) | TARGET_LABELS  # no public accessor
            if isinstance(metric, Counter):
                exported[f"{name}_total"] = labels
            elif isinstance(metric, Histogram):
                exported[f"{name}_bucket"] = labels | {"le"}
                exported[f"{name}_sum"] = labels
                exported[f"{name}_count"] = labels
            else:
                assert isinstance(metric, Gauge), f"{name}: unexpected metric type"
                exported[name] = labels
    return exported


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords and labels left out)."""
    text = STRING.sub('""', expr)
    text = RANGE.sub("", text)
    text = MATCHERS.sub("", text)
    text = GROUPING.sub("", text)
    return {name for name in NAME.findall(text) if name not in KEYWORDS}


def label_names(expr: str) -> set[str]:
    """Label names an expression filters or groups by."""
    text = STRING.sub('""', expr)
    labels = {
        m.split("=")[0].split("!")[0].strip() for b in MATCHERS.findall(text) for m in b.split(",")
    }
    for group in GROUPING.findall(text):
        labels |= {name.strip() for name in group.split(",")}
    return {label for label in labels if label}


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and template variable."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = LABEL_FUNCTION.fullmatch(text.strip())
        assert match, f"variable {variable['name']}: unsupported query {text!r}"
        yield f"variable {variable['name']}", f'{match.group(1)}{{{match.group(2)}!=""}}'


def rule_expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every alert rule of deploy/prometheus/rules.yml."""
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]


def test_every_alert_rule_selects_exported_series_by_their_labels(
    exported: dict[str, frozenset[str]],
) -> None:
    found = list(rule_expressions())
    assert found
    for where, expr in found:
        names = metric_names(expr)
        assert names and not names - exported.keys(), f"{where}: {sorted(names)}"
        known = frozenset().union(*(exported[name] for name in names))
        unknown = label_names(expr) - known
        assert not unknown, f"{where}: labels {sorted(unknown)} not on {sorted(names)}"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def exported() -> dict[str, frozenset[str]]:
    return series_labels()


def test_the_parser_finds_metrics_and_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, topic) (rate(a_seconds_bucket{kind="x", '
        'model=~"$model"}[$__rate_interval]))) / on(topic) group_left b_total offset 5m'
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total"}
    assert label_names(expr) == {"le", "topic", "kind", "model"}
    assert metric_names("sum(rate(c_total[5m])) and d") == {"c_total", "d"}


def test_every_expression_selects_exported_series(
    dashboard: dict[str, Any], exported: dict[str, frozenset[str]]
) -> None:
    seen = 0
    for where, expr in expressions(dashboard):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        unknown = names - exported.keys()
        assert not unknown, f"{where}: {sorted(unknown)} not exported by any service"
        seen += len(names)
    assert seen >= len(dashboard["panels"])


def test_every_label_belongs_to_the_selected_series(
    dashboard: dict[str, Any], exported: dict[str, frozenset[str]]
) -> None:
    for where, expr in expressions(dashboard):
        known = frozenset().union(*(exported[name] for name in metric_names(expr)))
        unknown = label_names(expr) - known
        assert not unknown, f"{where}: labels {sorted(unknown)} not on {sorted(metric_names(expr))}"


def test_the_dashboard_covers_the_operational_questions(dashboard: dict[str, Any]) -> None:
    every = " ".join(expr for _, expr in expressions(dashboard))
    for needed in (
        "driftline_worker_records_consumed_total",
        "driftline_worker_outputs_total",
        "histogram_quantile(0.5, sum by (le, topic) (rate(driftline_worker_end_to_end_latency",
        "histogram_quantile(0.99, sum by (le, topic) (rate(driftline_worker_end_to_end_latency",
        "driftline_worker_consumer_lag_records",
        "driftline_worker_dlq_records_total",
        'kind="alert"',
        "driftline_monitor_rolling_mae",
        "driftline_monitor_baseline_mae",
        "driftline_monitor_degradation_ratio",
        "driftline_monitor_status",
        "driftline_worker_model_version",
        "driftline_trainer_decisions_total",
        "driftline_monitor_retrain_requests_total",
        "driftline_worker_model_cache_bytes",
        "driftline_worker_batch_size_records_bucket",
        "driftline_worker_scoring_seconds_bucket",
        "driftline_worker_feature_seconds_bucket",
    ):
        assert needed in every, needed


def test_panels_are_well_formed(dashboard: dict[str, Any]) -> None:
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] and dashboard["title"]
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]  # Grafana's grid is 24 wide
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == uid, panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_grafana_provisions_the_dashboard_from_its_mounted_directory() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    provider = yaml.safe_load(PROVIDER.read_text())["providers"][0]
    host_dirs = {}
    for volume in compose["services"]["grafana"]["volumes"]:
        host, container = volume.split(":")[:2]
        host_dirs[container] = host
    host_dir = host_dirs[provider["options"]["path"]]
    assert (ROOT / host_dir).resolve() == DASHBOARD.parent
