"""Every Prometheus metric of the monitor, in one place.

Names carry their unit (``_total``, ``_seconds``, ``_ratio``); labels come from one small
set: ``topic``, ``model``, ``key`` (empty for an unkeyed model), ``version``, plus
``window`` (count, time), ``reason`` and ``action``. A figure that cannot be computed yet
(no pairs, no baseline) is exported as NaN, which Prometheus stores and graphs as a gap.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from typing import Final

from prometheus_client import Counter, Gauge, Histogram

from events import MonitorPair
from monitor.health import STATUS_NUMBERS
from monitor.join import JoinOutput
from monitor.reports import Evaluation
from monitor.windows import WindowStats

PREFIX: Final = "driftline_monitor_"
MODEL_LABELS: Final = ("model", "key", "version")
WINDOW_LABELS: Final = (*MODEL_LABELS, "window")
# A batch of the monitor takes milliseconds; a start-up replay of hours of pairs, seconds.
BATCH_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

RECORDS_CONSUMED = Counter(
    PREFIX + "records_consumed_total", "Records consumed from input topics.", ["topic"]
)
DECODE_FAILURES = Counter(
    PREFIX + "decode_failures_total",
    "Input records refused by their contract (actuals go to the DLQ; others are skipped).",
    ["topic", "reason"],
)
DLQ_RECORDS = Counter(
    PREFIX + "dlq_records_total",
    "Actuals refused by their contract and copied to their dead-letter topic.",
    ["topic", "reason"],
)
PAIRS = Counter(PREFIX + "pairs_total", "Predictions matched with their actual.", MODEL_LABELS)
EXPIRED = Counter(
    PREFIX + "expired_predictions_total",
    "Predictions that never found their actual (late: lateness passed; idle: its entity went "
    "quiet; *_cap: evicted).",
    [*MODEL_LABELS, "reason"],
)
DUPLICATES = Counter(
    PREFIX + "duplicate_predictions_total", "Predictions skipped: already matched or waiting."
)
IGNORED = Counter(
    PREFIX + "ignored_predictions_total", "Predictions not monitored, by reason.", ["reason"]
)
DROPPED_ACTUALS = Counter(
    PREFIX + "dropped_actuals_total", "Buffered actuals evicted by a cap.", ["reason"]
)
PENDING = Gauge(PREFIX + "pending_predictions", "Predictions waiting for their actual.")
BUFFERED = Gauge(PREFIX + "buffered_actuals", "Actuals buffered for late predictions.")

ROLLING_MAE = Gauge(PREFIX + "rolling_mae", "Rolling mean absolute error.", WINDOW_LABELS)
ROLLING_RMSE = Gauge(PREFIX + "rolling_rmse", "Rolling root mean squared error.", WINDOW_LABELS)
ROLLING_MAPE = Gauge(
    PREFIX + "rolling_mape_ratio", "Rolling mean absolute percentage error.", WINDOW_LABELS
)
ROLLING_BIAS = Gauge(
    PREFIX + "rolling_bias", "Rolling mean error (predicted - actual).", WINDOW_LABELS
)
WINDOW_PAIRS = Gauge(PREFIX + "window_pairs", "Pairs in the rolling window.", WINDOW_LABELS)
BASELINE_MAE = Gauge(PREFIX + "baseline_mae", "MAE of the version at training.", MODEL_LABELS)
DEGRADATION = Gauge(
    PREFIX + "degradation_ratio", "Rolling MAE / baseline MAE - 1 (judged window).", MODEL_LABELS
)
COVERAGE = Gauge(
    PREFIX + "label_coverage_ratio", "Matched / (matched + expired), time window.", MODEL_LABELS
)
STATUS = Gauge(PREFIX + "status", "-1 unknown, 0 healthy, 1 warning, 2 critical.", MODEL_LABELS)
SERVING = Gauge(
    PREFIX + "serving",
    "1 for the version of a model key that serves now (its predictions are the newest on the "
    "main topic), 0 for the others still measured (a challenger, the version it replaced).",
    MODEL_LABELS,
)
REQUESTS = Counter(
    PREFIX + "retrain_requests_total", "Retrain requests published.", ["model", "key", "action"]
)
ALERTS = Counter(PREFIX + "drift_alerts_total", "Drift alerts published.", ["model", "key"])
BATCH_SECONDS = Histogram(
    PREFIX + "batch_seconds",
    "Seconds from a batch consumed to its outputs acknowledged and offsets committed.",
    buckets=BATCH_BUCKETS,
)
RECOVERY_SECONDS = Gauge(PREFIX + "recovery_seconds", "Seconds the start-up replay took.")
RECOVERED_PAIRS = Gauge(PREFIX + "recovered_pairs", "Pairs read back at start-up.")

_WINDOWED: Final = (ROLLING_MAE, ROLLING_RMSE, ROLLING_MAPE, ROLLING_BIAS, WINDOW_PAIRS)
_PER_VERSION: Final = (BASELINE_MAE, DEGRADATION, COVERAGE, STATUS, SERVING)


def _labels(model: str, key: str | None, version: int) -> tuple[str, str, str]:
    return model, key or "", str(version)


def _number(value: float | None) -> float:
    return math.nan if value is None else value


def record_join(out: JoinOutput, pending: int, buffered: int) -> None:
    """Counters of one batch of the join."""
    for pair in out.pairs:
        PAIRS.labels(*_pair_labels(pair)).inc()
    for expired in out.expired:
        p = expired.prediction
        EXPIRED.labels(*_labels(p.model, p.key, p.version), expired.reason).inc()
    DUPLICATES.inc(out.duplicates)
    for reason, count in out.ignored.items():
        IGNORED.labels(reason).inc(count)
    for reason, count in out.dropped_actuals.items():
        DROPPED_ACTUALS.labels(reason).inc(count)
    PENDING.set(pending)
    BUFFERED.set(buffered)


def _pair_labels(pair: MonitorPair) -> tuple[str, str, str]:
    return _labels(pair.model, pair.key, pair.version)


def record_evaluation(evaluation: Evaluation) -> None:
    """Gauges of one evaluated version."""
    labels = _labels(evaluation.model, evaluation.key, evaluation.version)
    _record_window(labels, "count", evaluation.count)
    _record_window(labels, "time", evaluation.time)
    BASELINE_MAE.labels(*labels).set(_number(evaluation.baseline_mae))
    DEGRADATION.labels(*labels).set(_number(evaluation.degradation))
    COVERAGE.labels(*labels).set(_number(evaluation.coverage))
    STATUS.labels(*labels).set(STATUS_NUMBERS[evaluation.status])


def record_serving(serving: Mapping[tuple[str, str | None, int], bool]) -> None:
    """Which tracked version of each model key serves now."""
    for (model, key, version), now in serving.items():
        SERVING.labels(*_labels(model, key, version)).set(1 if now else 0)


def _record_window(labels: tuple[str, str, str], window: str, stats: WindowStats) -> None:
    ROLLING_MAE.labels(*labels, window).set(_number(stats.mae))
    ROLLING_RMSE.labels(*labels, window).set(_number(stats.rmse))
    ROLLING_MAPE.labels(*labels, window).set(_number(stats.mape))
    ROLLING_BIAS.labels(*labels, window).set(_number(stats.bias))
    WINDOW_PAIRS.labels(*labels, window).set(stats.pairs)


def retire(versions: Iterable[tuple[str, str | None, int]]) -> None:
    """Remove the gauges of versions no longer tracked (bounded label cardinality)."""
    for model, key, version in versions:
        labels = _labels(model, key, version)
        for gauge in _PER_VERSION:
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
        for windowed in _WINDOWED:
            for window in ("count", "time"):
                with contextlib.suppress(KeyError):
                    windowed.remove(*labels, window)
