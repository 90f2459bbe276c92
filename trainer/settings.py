"""Settings of the trainer service (env prefix ``TRAINER_``).

Kafka connection properties come from :class:`events.settings.KafkaSettings` (prefix
``KAFKA_``). Dict and list fields are JSON in the environment:
``TRAINER_BOOTSTRAP_PARAMS='{"demand": {"iterations": 200}}'``.

>>> settings = TrainerSettings(model_store="/tmp/store")
>>> str(settings.state_path)
'/tmp/store/.trainer/state.json'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import topics
from events.settings import KafkaSettings
from models.store import default_store

DetectionMetric = Literal["f1", "roc_auc"]
WindowClock = Literal["record", "event"]
SensorKind = Literal["machine", "air"]
DEFAULT_KINDS: dict[str, SensorKind] = {
    "anomaly": "machine",
    "maintenance": "machine",
    "sequence": "air",
}
# The state directory starts with "." so the registry never lists it as a model.
STATE_DIR = ".trainer"


class TrainerSettings(BaseSettings):
    """What the trainer reads, how it decides, validates and promotes (env prefix ``TRAINER_``)."""

    model_config = SettingsConfigDict(env_prefix="TRAINER_", extra="ignore")

    # Topics and group.
    requests_topic: str = Field(
        topics.RETRAIN_REQUESTS, description="Topic of retrain requests (monitor, operators)."
    )
    health_topic: str = Field(
        topics.MODEL_HEALTH, description="Topic of per-version rolling error (shadow mode)."
    )
    updates_topic: str = Field(
        topics.MODEL_UPDATES, description="Topic where promotions and challengers are announced."
    )
    sensor_topic: str = Field(
        topics.READINGS_SENSOR, description="Sensor readings replayed for training."
    )
    demand_topic: str = Field(
        topics.READINGS_DEMAND, description="Demand readings replayed for training."
    )
    labels_topic: str = Field(
        topics.ACTUALS,
        description="Labels (is_anomaly, risk) joined to sensor readings for the anomaly and "
        "maintenance families.",
    )
    group_id: str = Field(
        "driftline-trainer", min_length=1, description="Consumer group of the trainer."
    )

    # Where models and the trainer's own state live.
    model_store: Path = Field(
        default_factory=default_store, description="Model store directory (MODEL_STORE)."
    )
    state_dir: Path | None = Field(
        None, description="Directory of the trainer's state file (default <store>/.trainer)."
    )

    # Scheduled checks.
    check_interval_s: float = Field(
        3600.0,
        ge=0,
        description="Seconds between scheduled checks of every model (time rules and "
        "bootstrap); 0 disables them.",
    )
    retry_after_hours: float = Field(
        24.0,
        ge=0,
        description="A scheduled check does not start another job for a model key within "
        "this many hours of its last attempt (a rejected candidate is not retrained hourly).",
    )

    # Decision rules.
    critical_degradation: float = Field(
        0.25, gt=0, description="MAE degradation (fraction) at or above which: full retrain."
    )
    moderate_degradation: float = Field(
        0.15, gt=0, description="MAE degradation (fraction) at or above which: fine-tune."
    )
    full_retrain_days: float = Field(
        90.0, gt=0, description="Days since the last full retrain after which: full retrain."
    )
    max_fine_tunes: int = Field(
        5, ge=1, description="Fine-tunes since the last full retrain after which: full retrain."
    )
    update_days: float = Field(
        7.0, gt=0, description="Days since the champion last changed after which: fine-tune."
    )

    # Training data.
    window_days: float = Field(
        90.0,
        gt=0,
        description="Days of readings replayed for training and validation (see window_clock).",
    )
    window_clock: WindowClock = Field(
        "record",
        description="record: the window is by Kafka record timestamp (when readings were "
        "produced), ending now; event: the readings produced in that window are cut to the "
        "last window_days of their own ts, ending at the newest reading. The same for a live "
        "stream; event keeps a window of recent readings when history was published in a "
        "burst (a backfill, a catch-up after an outage), where record would keep it all.",
    )
    fine_tune_days: float = Field(
        60.0,
        gt=0,
        description="Most recent days (before the holdout) a fine-tune continues training on. "
        "A family's fine-tune keeps its own validation share (demand: the last 10 %, at least "
        "10 readings), so a window of few daily series must be long enough for it.",
    )
    holdout_fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Most recent share of the window, by time, held out to compare candidate "
        "and champion; never used to train the candidate.",
    )
    min_samples: int = Field(
        60,
        ge=1,
        description="Fewest readings of a model key in the window before the holdout: below "
        "it the job is skipped ('too little data') and no model is bootstrapped.",
    )
    min_holdout: int = Field(
        10, ge=1, description="Fewest readings in the holdout for a comparison to count."
    )
    demand_csv: Path | None = Field(
        None, description="Imported demand CSV used instead of replaying the demand topic."
    )
    sensor_csv: Path | None = Field(
        None, description="Imported sensor CSV used instead of replaying the sensor topic."
    )
    labels_csv: Path | None = Field(
        None, description="Imported labels CSV used instead of replaying the labels topic."
    )
    replay_timeout_s: float = Field(
        300.0, gt=0, description="Longest replay of one topic window before the job fails."
    )
    family_kinds: dict[str, SensorKind] = Field(
        default_factory=lambda: dict(DEFAULT_KINDS),
        description="Which sensor feed (SensorReading.kind) each sensor family trains on.",
    )

    # Validation gate.
    forecast_margin: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="Forecasts (and risk): the candidate's holdout MAE must be at least this "
        "fraction lower than the champion's.",
    )
    detection_metric: DetectionMetric = Field(
        "f1", description="Anomaly models are compared on this holdout metric (higher wins)."
    )
    detection_margin: float = Field(
        0.02,
        ge=0,
        description="Anomaly: the candidate's metric must be at least this fraction higher.",
    )
    promote_unlabelled: bool = Field(
        False,
        description="Anomaly without labels in the holdout: promote on the infra check alone "
        "(else the candidate is rejected as not comparable).",
    )
    infra_rows: int = Field(
        64, ge=1, description="Holdout rows the loaded candidate must predict finitely."
    )
    plot: bool = Field(True, description="Save a training.png holdout plot with each version.")

    # Shadow mode.
    shadow: bool = Field(
        False,
        description="A candidate that passes the gate becomes the challenger; it is promoted "
        "only after beating the champion on live pairs (model.health).",
    )
    shadow_min_pairs: int = Field(
        100, ge=1, description="Live pairs each version needs before the shadow verdict."
    )
    shadow_margin: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="The challenger's live MAE must be at least this fraction lower.",
    )

    # Bootstrap of models that have no version yet.
    bootstrap: bool = Field(
        True, description="Train the first version of models (keys) that have none yet."
    )
    bootstrap_models: dict[str, str] = Field(
        default_factory=lambda: {"demand": "demand"},
        description="Model name -> family trained from scratch when readings arrive and the "
        "registry has no version (sequence models get one key per metric).",
    )
    bootstrap_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Family -> hyper-parameters of bootstrapped models."
    )
    per_product_models: bool = Field(
        False,
        description="Demand: also bootstrap one model per product (key = product id), after "
        "the global model.",
    )

    # Jobs and idempotency.
    max_attempts: int = Field(
        2,
        ge=1,
        description="Runs of one job before it is given up (2: a job interrupted by a crash "
        "is retried once on restart).",
    )
    retry_delay_s: float = Field(
        30.0,
        ge=0,
        description="Wait before a job that failed (store or broker unreachable) runs again; "
        "doubled for each further attempt.",
    )
    unavailable_wait_s: float = Field(
        3600.0,
        ge=0,
        description="How long a job whose broker or model store cannot be reached waits for "
        "it (running again with growing delays, at most 10 min apart) before the failure "
        "counts as an attempt; 0: such failures count at once.",
    )
    processed_kept: int = Field(
        10_000, ge=100, description="Handled request ids remembered for deduplication."
    )
    decisions_kept: int = Field(
        500, ge=10, description="Decisions kept in the state file for `trainer status`."
    )

    # Kafka consumer.
    poll_timeout_s: float = Field(
        1.0, gt=0, le=10, description="Longest wait of one poll; also the loop's tick."
    )
    session_timeout_ms: int = Field(
        45_000, ge=6_000, description="Group session timeout (a dead instance is noticed)."
    )
    max_poll_interval_ms: int = Field(
        300_000,
        ge=10_000,
        description="Longest gap between polls; training runs off the polling thread, so "
        "the loop polls every poll_timeout_s however long a job takes.",
    )
    publish_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait for a model update to be acknowledged."
    )

    # HTTP and shutdown.
    http_host: str = Field(
        "127.0.0.1", description="Bind address of /metrics, /healthz and /readyz."
    )
    http_port: int = Field(
        9402, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz (0 = any free)."
    )
    liveness_timeout_s: float = Field(
        60.0, gt=0, description="/healthz fails when the loop has not polled for this long."
    )
    shutdown_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Wait for the job in flight at shutdown; an unfinished job is resumed "
        "at the next start without counting as an attempt.",
    )

    @property
    def state_path(self) -> Path:
        return (self.state_dir or self.model_store / STATE_DIR) / "state.json"

    def consumer_config(self, kafka: KafkaSettings) -> dict[str, Any]:
        """The group consumer of retrain requests and model health.

        Offsets are committed by hand, after a request is safely in the state file.
        """
        return {
            **kafka.client_config(),
            "client.id": f"{kafka.client_id}-trainer",
            "group.id": self.group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "session.timeout.ms": self.session_timeout_ms,
            "max.poll.interval.ms": self.max_poll_interval_ms,
            "enable.partition.eof": False,
        }

    def reader_config(self, kafka: KafkaSettings) -> dict[str, Any]:
        """A consumer outside the group for replays: assign() only, never commits."""
        return kafka.reader_config(f"{kafka.client_id}-trainer-replay", f"{self.group_id}.replay")
