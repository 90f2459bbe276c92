"""Every Prometheus metric of the stream worker, in one place.

Names carry their unit (``_seconds``, ``_bytes``, ``_records``, ``_total``); labels come from
one small set: ``topic``, ``partition``, ``model``, ``key``, ``version``, plus ``kind``
(output kind), ``reason`` and ``outcome``. The runtime updates them once per batch, never
per message. Each worker process serves its own ``/metrics``; Prometheus sums instances.
"""

from __future__ import annotations

import contextlib
from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Gauge, Histogram

from worker.records import BatchResult, OutRecord

PREFIX = "driftline_worker_"

# Batch sizes from a trickle (1) to the largest configurable batch (100 000).
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 100_000)
# Vectorized predicts take from tens of microseconds (trees on a few rows) to seconds (an
# LSTM on a large batch).
SCORING_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
# Reading -> acknowledged output: milliseconds when keeping up, minutes when catching up.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
# Warm-up reads back up to tens of thousands of records per partition.
WARMUP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

RECORDS_CONSUMED = Counter(
    PREFIX + "records_consumed_total", "Records consumed from input topics.", ["topic"]
)
CONSUME_ERRORS = Counter(
    PREFIX + "consume_errors_total", "Error events returned by consume().", ["reason"]
)
OUTPUTS = Counter(
    PREFIX + "outputs_total",
    "Records produced, by kind (acknowledged before their batch's offsets are stored).",
    ["topic", "kind"],
)
DLQ_RECORDS = Counter(
    PREFIX + "dlq_records_total", "Input records sent to a dead-letter topic.", ["topic", "reason"]
)
STALE_RECORDS = Counter(
    PREFIX + "stale_records_total",
    "Readings skipped as not newer than their entity's last one (replays, disorder).",
    ["topic"],
)
STATE_ENTITIES = Gauge(
    PREFIX + "state_entities",
    "Entities whose recent readings are held, by stream (read at each scrape).",
    ["stream"],
)
STATE_EVICTED = Counter(
    PREFIX + "state_evicted_total",
    "Entities dropped from state at WORKER_MAX_ENTITIES (the oldest latest readings first).",
    ["stream"],
)
BATCH_SIZE = Histogram(
    PREFIX + "batch_size_records", "Records per consumed micro-batch.", buckets=BATCH_BUCKETS
)
BATCH_SECONDS = Histogram(
    PREFIX + "batch_seconds",
    "Seconds from a batch's consume to its outputs handed to the producer (scoring included).",
    buckets=(*SCORING_BUCKETS, 5, 10, 30),
)
ACK_WAIT_SECONDS = Histogram(
    PREFIX + "ack_wait_seconds",
    "Seconds waited for a batch's outputs to be acknowledged (at least once: after the next "
    "batch is scored, so near 0 while the broker keeps up).",
    buckets=SCORING_BUCKETS,
)
SCORING_SECONDS = Histogram(
    PREFIX + "scoring_seconds",
    "Seconds of one vectorized predict of one model over a batch.",
    ["model"],
    buckets=SCORING_BUCKETS,
)
FEATURE_SECONDS = Histogram(
    PREFIX + "feature_seconds",
    "Seconds building one model's feature rows for a batch (windows cut from the state, "
    "the spec's features), before its predict.",
    ["model"],
    buckets=SCORING_BUCKETS,
)
END_TO_END_SECONDS = Histogram(
    PREFIX + "end_to_end_latency_seconds",
    "Per reading: from its broker timestamp to its batch's outputs acknowledged.",
    ["topic"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    PREFIX + "consumer_lag_records",
    "High watermark minus next offset to consume, per assigned partition.",
    ["topic", "partition"],
)
MODEL_VERSION = Gauge(PREFIX + "model_version", "Model version in service.", ["model", "key"])
CACHE_BYTES = Gauge(PREFIX + "model_cache_bytes", "Bytes of models held by the cache.")
MODEL_SWAPS = Counter(
    PREFIX + "model_swaps_total",
    "Hot swaps triggered by model.updates, by outcome (swapped, failed, not_cached, "
    "challenger, preload_failed, invalid).",
    ["model", "outcome"],
)
UPDATES_ERRORS = Counter(
    PREFIX + "model_updates_errors_total",
    "Error events polling model.updates, by reason (librdkafka's error name).",
    ["reason"],
)
REBALANCES = Counter(
    PREFIX + "rebalances_total", "Partition assignment changes, by event.", ["event"]
)
REVOKED_RECORDS = Counter(
    PREFIX + "revoked_records_total",
    "Records consume() returned for a partition it revoked in the same call: left unscored.",
)
ASSIGNED_PARTITIONS = Gauge(PREFIX + "assigned_partitions", "Input partitions assigned.")
WARMUP_SECONDS = Histogram(
    PREFIX + "warmup_seconds", "Seconds to read back history on assignment.", buckets=WARMUP_BUCKETS
)
WARMUP_RECORDS = Counter(
    PREFIX + "warmup_records_total", "Records read back and fed to state on assignment."
)
PRODUCE_BACKPRESSURE = Counter(
    PREFIX + "produce_backpressure_total",
    "Times producing waited because the producer's local queue was full.",
)
DELIVERY_FAILURES = Counter(
    PREFIX + "delivery_failures_total", "Outputs the broker did not acknowledge.", ["reason"]
)
TRANSACTIONS = Counter(
    PREFIX + "transactions_total", "exactly_once transactions by outcome.", ["outcome"]
)


def record_consumed(topic_counts: Mapping[str, int]) -> None:
    """Records of one batch per input topic, and the batch size."""
    for topic, count in topic_counts.items():
        RECORDS_CONSUMED.labels(topic).inc(count)
    BATCH_SIZE.observe(sum(topic_counts.values()))


def record_result(result: BatchResult) -> None:
    """Outputs, dead letters, scoring times and versions of one scored batch."""
    for (topic, kind), count in _by_topic_and_kind(result.records).items():
        OUTPUTS.labels(topic, kind).inc(count)
    for (topic, reason), count in result.dlq_reasons.items():
        DLQ_RECORDS.labels(topic, reason).inc(count)
    for topic, count in result.stale.items():
        STALE_RECORDS.labels(topic).inc(count)
    for model, seconds in result.model_seconds.items():
        SCORING_SECONDS.labels(model).observe(seconds)
    for model, seconds in result.feature_seconds.items():
        FEATURE_SECONDS.labels(model).observe(seconds)
    record_versions(result.versions)


def record_versions(versions: Mapping[tuple[str, str | None], int]) -> None:
    for (model, key), version in versions.items():
        MODEL_VERSION.labels(model, key or "").set(version)


def record_latency(timestamps_ms: Mapping[str, Sequence[int]], acknowledged_ms: int) -> None:
    """End-to-end latency of every reading just acknowledged, per topic (broker times, ms).

    Every reading counts, so a late catch-up batch of 500 weighs 500 times, not once.
    """
    for topic, stamps in timestamps_ms.items():
        waited = np.maximum(acknowledged_ms - np.asarray(stamps, dtype=np.int64), 0) / 1000
        observe_all(END_TO_END_SECONDS.labels(topic), waited)


def observe_all(histogram: Histogram, values: npt.NDArray[np.float64]) -> None:
    """``histogram.observe`` of every value, one increment per bucket instead of per value.

    prometheus-client keeps a child's bucket counts non-cumulative, each value counted in
    the first bucket whose upper bound is at least the value; this does the same.
    """
    if not len(values):
        return
    bounds = np.asarray(histogram._upper_bounds)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    histogram._sum.inc(float(values.sum()))
    for index in np.flatnonzero(counts):
        histogram._buckets[index].inc(int(counts[index]))


def record_lag(lags: Iterable[tuple[str, int, int]]) -> None:
    for topic, partition, lag in lags:
        CONSUMER_LAG.labels(topic, str(partition)).set(lag)


def forget_partitions(partitions: Iterable[tuple[str, int]]) -> None:
    """Drop the lag series of partitions this instance no longer owns."""
    for topic, partition in partitions:
        with contextlib.suppress(KeyError):  # never reported: no batch arrived from it
            CONSUMER_LAG.remove(topic, str(partition))


def _by_topic_and_kind(records: Iterable[OutRecord]) -> Tally[tuple[str, str]]:
    return Tally((record.topic, record.kind) for record in records)
