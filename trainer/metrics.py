"""Every Prometheus metric of the trainer, in one place.

Names carry their unit (``_seconds``, ``_records``, ``_total``); labels come from the
project's small set (``model``, ``topic``) plus ``action``, ``outcome``, ``metric`` and
``role``. Model keys (one per product) are not a label: they would multiply the series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "driftline_trainer_"

# Jobs take from a second (a small CatBoost fit) to an hour (an LSTM on a 90-day window).
JOB_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1_200, 1_800, 3_600, 7_200)
# Replays read from a few records to millions.
REPLAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter(
    PREFIX + "requests_total",
    "Retrain requests consumed, by outcome (accepted, duplicate, invalid).",
    ["outcome"],
)
DECISIONS = Counter(
    PREFIX + "decisions_total",
    "Decisions recorded, by action taken and outcome (promoted, challenger, rejected, "
    "nothing, skipped, failed, abandoned).",
    ["model", "action", "outcome"],
)
JOBS_QUEUED = Gauge(PREFIX + "jobs_queued", "Jobs waiting or running.")
JOB_WAITS = Counter(
    PREFIX + "job_waits_total",
    "Job runs that failed because the broker or the model store could not be reached; the "
    "job runs again later without using up an attempt.",
    ["model"],
)
JOB_SECONDS = Histogram(
    PREFIX + "job_seconds",
    "Seconds one job took, from its start to its recorded decision.",
    ["model", "action"],
    buckets=JOB_BUCKETS,
)
JOB_RUNNING = Gauge(PREFIX + "job_running", "1 while a job runs, else 0.")
REPLAY_RECORDS = Counter(
    PREFIX + "replay_records_total", "Readings replayed into training frames.", ["topic"]
)
REPLAY_SECONDS = Histogram(
    PREFIX + "replay_seconds", "Seconds to replay one window.", ["topic"], buckets=REPLAY_BUCKETS
)
GATE_METRIC = Gauge(
    PREFIX + "gate_metric",
    "Last holdout figure the gate compared, by model, metric name and role (candidate, champion).",
    ["model", "metric", "role"],
)
CHECKS = Counter(PREFIX + "checks_total", "Scheduled checks run.")
LAST_CHECK = Gauge(
    PREFIX + "last_check_timestamp_seconds", "When the last scheduled check finished."
)
UPDATES = Counter(
    PREFIX + "model_updates_total", "Model updates published, by action.", ["model", "action"]
)
