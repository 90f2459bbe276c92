"""Topics of one loop run and the environment of its three services.

Every topic name carries the run's id, so runs share a broker without sharing a record.
The services keep their production code and defaults except where the scenario compresses
time (hours of readings pass in seconds) or must be deterministic; every override says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final

from events import topics

MODEL: Final = "demand"
HOUR_S: Final = 3600.0
DAY_S: Final = 24 * HOUR_S
# Shutdown bound of each service; the runner kills what is left a few seconds later.
SHUTDOWN_S: Final = 15.0


@dataclass(frozen=True)
class LoopTopics:
    """Names of every topic one run uses."""

    demand: str
    actuals: str
    predictions: str
    shadow: str
    alerts: str
    imputed: str
    pairs: str
    health: str
    requests: str
    updates: str
    dead_letters: str  # the worker's, for its input (demand)

    @classmethod
    def named(cls, run: str) -> LoopTopics:
        return cls(
            demand=f"{topics.READINGS_DEMAND}-{run}",
            actuals=f"{topics.ACTUALS}-{run}",
            predictions=f"{topics.PREDICTIONS}-{run}",
            shadow=f"{topics.PREDICTIONS_SHADOW}-{run}",
            alerts=f"{topics.ALERTS}-{run}",
            imputed=f"{topics.READINGS_IMPUTED}-{run}",
            pairs=f"{topics.MONITOR_PAIRS}-{run}",
            health=f"{topics.MODEL_HEALTH}-{run}",
            requests=f"{topics.RETRAIN_REQUESTS}-{run}",
            updates=f"{topics.MODEL_UPDATES}-{run}",
            dead_letters=topics.dlq_topic(f"{topics.READINGS_DEMAND}-{run}"),
        )

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]


@dataclass(frozen=True)
class Tuning:
    """Monitor and trainer settings of a run (the test and the benchmark share them)."""

    # 400 pairs = 80 hours of five products: a rolling MAE steady enough that the
    # undrifted stream never reaches a warning, judged every 25 pairs, three times in a row.
    count_window: int = 400
    min_pairs: int = 200
    evaluate_every_pairs: int = 25
    hysteresis_evaluations: int = 3
    # Wall clock: one request per run (the scenario lasts well under an hour).
    cooldown_s: float = HOUR_S
    # The retrain window: the week of readings streamed since the onset (event time).
    window_days: float = 7.0
    holdout_fraction: float = 0.2
    forecast_margin: float = 0.02
    shadow: bool = False
    shadow_min_pairs: int = 100


@dataclass(frozen=True)
class RunPaths:
    """Where one run writes: the model store, the trainer's state and the logs."""

    root: Path

    @property
    def store(self) -> Path:
        return self.root / "model-store"

    @property
    def trainer_state(self) -> Path:
        return self.root / "trainer-state"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def common_env(bootstrap: str, paths: RunPaths) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MODEL_STORE": str(paths.store),
        "PYTHONUNBUFFERED": "1",  # log lines reach the log files as they happen
    }


def worker_env(run: str, port: int, names: LoopTopics, paths: RunPaths) -> dict[str, str]:
    return {
        "WORKER_INPUT_TOPICS": json.dumps([names.demand]),
        "WORKER_STREAMS": json.dumps({names.demand: "demand"}),
        "WORKER_PREDICTIONS_TOPIC": names.predictions,
        "WORKER_SHADOW_TOPIC": names.shadow,
        "WORKER_ALERTS_TOPIC": names.alerts,
        "WORKER_IMPUTED_TOPIC": names.imputed,
        "WORKER_UPDATES_TOPIC": names.updates,
        "WORKER_GROUP_ID": f"loop-worker-{run}",
        "WORKER_MODEL_STORE": str(paths.store),
        "WORKER_HTTP_PORT": str(port),
        # Score what is streamed once the worker is ready; the history already in the topic
        # warms the per-product windows on assignment (the weekly lag needs 168 readings).
        "WORKER_AUTO_OFFSET_RESET": "latest",
        "WORKER_PRELOAD_MODELS": json.dumps([MODEL]),
        # A rejected challenger stops shadow scoring within a second of the scenario.
        "WORKER_ALIAS_CHECK_S": "1",
        "WORKER_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S),
    }


def monitor_env(
    run: str, port: int, names: LoopTopics, paths: RunPaths, tuning: Tuning
) -> dict[str, str]:
    return {
        "MONITOR_PREDICTIONS_TOPIC": names.predictions,
        "MONITOR_SHADOW_TOPIC": names.shadow,
        "MONITOR_ACTUALS_TOPIC": names.actuals,
        "MONITOR_DEMAND_TOPIC": names.demand,
        "MONITOR_SENSOR_TOPIC": "",  # demand only
        "MONITOR_PAIRS_TOPIC": names.pairs,
        "MONITOR_HEALTH_TOPIC": names.health,
        "MONITOR_REQUESTS_TOPIC": names.requests,
        "MONITOR_ALERTS_TOPIC": names.alerts,
        "MONITOR_GROUP_ID": f"loop-monitor-{run}",
        "MONITOR_MODEL_STORE": str(paths.store),
        "MONITOR_HTTP_PORT": str(port),
        "MONITOR_COUNT_WINDOW": str(tuning.count_window),
        "MONITOR_MIN_PAIRS": str(tuning.min_pairs),
        "MONITOR_EVALUATE_EVERY_PAIRS": str(tuning.evaluate_every_pairs),
        "MONITOR_HYSTERESIS_EVALUATIONS": str(tuning.hysteresis_evaluations),
        # The last pairs of a burst are judged a second later, not a minute.
        "MONITOR_EVALUATE_INTERVAL_S": "1",
        "MONITOR_COOLDOWN_S": str(tuning.cooldown_s),
        # A burst of a week of readings reaches the monitor before the worker's
        # predictions for it: their actuals must wait for them (event time).
        "MONITOR_ACTUAL_BUFFER_S": str(10 * DAY_S),
        "MONITOR_TIME_WINDOW_S": str(DAY_S),
    }


def trainer_env(
    run: str, port: int, names: LoopTopics, paths: RunPaths, tuning: Tuning
) -> dict[str, str]:
    return {
        "TRAINER_REQUESTS_TOPIC": names.requests,
        "TRAINER_HEALTH_TOPIC": names.health,
        "TRAINER_UPDATES_TOPIC": names.updates,
        "TRAINER_DEMAND_TOPIC": names.demand,
        "TRAINER_LABELS_TOPIC": names.actuals,
        "TRAINER_GROUP_ID": f"loop-trainer-{run}",
        "TRAINER_MODEL_STORE": str(paths.store),
        "TRAINER_STATE_DIR": str(paths.trainer_state),
        "TRAINER_HTTP_PORT": str(port),
        # The readings were published in bursts: the window is the most recent week of
        # their own time, not everything produced in the last week.
        "TRAINER_WINDOW_CLOCK": "event",
        "TRAINER_WINDOW_DAYS": str(tuning.window_days),
        "TRAINER_HOLDOUT_FRACTION": str(tuning.holdout_fraction),
        "TRAINER_FORECAST_MARGIN": str(tuning.forecast_margin),
        "TRAINER_SHADOW": json.dumps(tuning.shadow),
        "TRAINER_SHADOW_MIN_PAIRS": str(tuning.shadow_min_pairs),
        # Retraining is driven by the monitor's requests only.
        "TRAINER_CHECK_INTERVAL_S": "0",
        "TRAINER_BOOTSTRAP": "false",
        "TRAINER_PLOT": "false",
        "TRAINER_POLL_TIMEOUT_S": "0.2",  # a request is picked up within 0.2 s
        "TRAINER_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S),
    }
