"""Where a demo run writes, and the settings (environment) of its three services.

The services run with their production code and defaults except where the demo compresses
time: one simulated hour passes every quarter second, so windows, cooldowns and lateness
that are measured in hours in production are set here to what the same number of readings
spans in the demo. Every override says why.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from driftline.demo.bootstrap import CHAMPIONS

DAY_S: Final = 86_400.0
HOUR_S: Final = 3_600.0
# Each service's own graceful-shutdown bound; the demo kills what is left a little later.
SHUTDOWN_S: Final = 15.0
KILL_MARGIN_S: Final = 5.0


@dataclass(frozen=True)
class Layout:
    """Files of one run under ``out`` (cleared at start: each run begins from nothing)."""

    out: Path

    @property
    def store(self) -> Path:
        return self.out / "model-store"

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    @property
    def trainer_state(self) -> Path:
        return self.out / "trainer-state"

    @property
    def broker_dir(self) -> Path:
        return self.out / "kafka"

    @property
    def report(self) -> Path:
        return self.out / "report.png"

    @property
    def summary(self) -> Path:
        return self.out / "summary.json"

    def prepare(self) -> Layout:
        for directory in (self.store, self.logs, self.trainer_state, self.broker_dir):
            shutil.rmtree(directory, ignore_errors=True)
        for path in (self.report, self.summary):
            path.unlink(missing_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        return self


@dataclass(frozen=True)
class Tuning:
    """The time-compressed settings of one run."""

    # Wall seconds of live readings a retrain replays: long enough for a few thousand rows,
    # short enough that, soon after a drift, the drifted readings are a good share of it.
    retrain_window_s: float = 30.0
    # Wall seconds between retrain requests for one model: a rejected candidate (too little
    # drifted data yet) is followed by another attempt within the demo.
    cooldown_s: float = 10.0
    # Degradation (rolling MAE / baseline - 1) that means warning (fine-tune) and critical
    # (full retrain). The demo's champions learn from three weeks of history with few
    # trees and epochs, and a 300-pair window of three stations spans only four simulated
    # days: their error wanders up to 50 % around the holdout figure without any drift. These
    # bounds keep that noise from retraining them while the injected drift (+400 %) is
    # caught at once.
    warning: float = 0.75
    critical: float = 1.0
    # How much lower a candidate's holdout MAE must be than the champion's. Against a
    # champion drifted by +400 %, a candidate trained a few seconds after the onset, on
    # mostly older readings, wins by a few percent and then serves at nearly the drifted
    # error, within the loose bounds above, so nothing asks again. A quarter lower waits
    # for a candidate that learnt the new regime (the next request, ten seconds on).
    forecast_margin: float = 0.25


def common_env(bootstrap: str, layout: Layout) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MODEL_STORE": str(layout.store),
        "PYTHONUNBUFFERED": "1",  # log lines reach the log files as they happen
        "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's start-up chatter hides the worker's log
    }


def preloaded() -> list[str]:
    """Champions the worker loads before it reports ready ("model" or "model/key")."""
    return [family if key is None else f"{family}/{key}" for family, key, _ in CHAMPIONS]


def worker_env(run: str, port: int, layout: Layout) -> dict[str, str]:
    return {
        "WORKER_MODEL_STORE": str(layout.store),
        "WORKER_HTTP_PORT": str(port),
        "WORKER_GROUP_ID": f"demo-worker-{run}",
        "WORKER_INSTANCE_ID": "demo-worker-1",
        # Score the live stream only; the history already in the topics warms the per-entity
        # windows on assignment (lags up to a week of hourly readings).
        "WORKER_AUTO_OFFSET_RESET": "latest",
        # Simulated time runs hours ahead of the wall clock that stamps the records.
        "WORKER_MAX_FUTURE_S": "0",
        "WORKER_PRELOAD_MODELS": json.dumps(preloaded()),
        "WORKER_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S),
    }


def monitor_env(run: str, port: int, layout: Layout, tuning: Tuning) -> dict[str, str]:
    return {
        "MONITOR_MODEL_STORE": str(layout.store),
        "MONITOR_HTTP_PORT": str(port),
        "MONITOR_GROUP_ID": f"demo-monitor-{run}",
        # 300 pairs = 7.5 simulated hours of ten products: the judged MAE follows a drift
        # within seconds instead of a minute.
        "MONITOR_COUNT_WINDOW": "300",
        "MONITOR_EVALUATE_EVERY_PAIRS": "25",
        "MONITOR_EVALUATE_INTERVAL_S": "5",
        # Event time is simulated: a day of it passes in a few wall seconds.
        "MONITOR_TIME_WINDOW_S": str(24 * HOUR_S),
        "MONITOR_LATENESS_S": str(2 * HOUR_S),
        "MONITOR_ACTUAL_BUFFER_S": str(48 * HOUR_S),
        # Wall clock: one hour in production is a few hundred simulated hours here.
        "MONITOR_COOLDOWN_S": str(tuning.cooldown_s),
        "MONITOR_WARNING_DEGRADATION": str(tuning.warning),
        "MONITOR_CRITICAL_DEGRADATION": str(tuning.critical),
    }


def trainer_env(run: str, port: int, layout: Layout, tuning: Tuning) -> dict[str, str]:
    return {
        "TRAINER_MODEL_STORE": str(layout.store),
        "TRAINER_HTTP_PORT": str(port),
        "TRAINER_GROUP_ID": f"demo-trainer-{run}",
        "TRAINER_STATE_DIR": str(layout.trainer_state),
        # By Kafka timestamp (wall clock): the recent live readings, not the history.
        "TRAINER_WINDOW_DAYS": f"{tuning.retrain_window_s / DAY_S:.9f}",
        # The demo trained every champion already; retraining is driven by drift requests.
        "TRAINER_BOOTSTRAP": "false",
        # The same bounds as the monitor's, so a request's evidence is read alike.
        "TRAINER_MODERATE_DEGRADATION": str(tuning.warning),
        "TRAINER_CRITICAL_DEGRADATION": str(tuning.critical),
        "TRAINER_FORECAST_MARGIN": str(tuning.forecast_margin),
        "TRAINER_CHECK_INTERVAL_S": "0",
        "TRAINER_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S),
    }


def describe(env: Mapping[str, str]) -> str:
    """The service-specific settings, one per line (written next to each log)."""
    return "\n".join(f"{k}={v}" for k, v in sorted(env.items()))
