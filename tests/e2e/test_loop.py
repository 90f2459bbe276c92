"""The closed loop across the three services, on the real broker.

Worker, monitor and trainer run as ``driftline <service>`` subprocesses configured through
their environment (``driftline.loop``): a demand champion serves hourly readings of five
products, a level shift starts at the onset, the monitor asks for a retrain, the trainer
retrains on the replayed recent week, validates and promotes, and the workers serve the new
version. Every wait is on a signal (``/readyz``, records on the output topics, the trainer's
state file) with a deadline; the scenario's data is generated with a fixed seed.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from driftline.loop.environment import MODEL, Tuning
from driftline.loop.figures import FIRST_VERSION, loop_figures
from driftline.loop.runner import LoopOutcome, LoopRunner
from driftline.loop.scenario import STEP, LoopConfig
from events.settings import KafkaSettings
from models.store import ModelStore

# The monitor must notice the drift within this many labelled pairs after the onset.
DETECTION_PAIRS = 1_000
# After the promotion the rolling MAE is back within this of the pre-drift one.
RECOVERY = 1.10


def run_loop(
    kafka: KafkaSettings,
    tmp_path: Path,
    config: LoopConfig | None = None,
    tuning: Tuning | None = None,
) -> LoopOutcome:
    return LoopRunner(kafka, tmp_path, config, tuning).run()


def versions_served(outcome: LoopOutcome) -> set[int]:
    return {seen.message.version for seen in outcome.snapshot.predictions}


def test_drift_is_retrained_validated_promoted_and_served(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    outcome = run_loop(kafka_settings, tmp_path)
    figures = loop_figures(outcome)
    [request] = [seen.message for seen in outcome.snapshot.requests]
    assert request.action == "full_retrain" and request.evidence["version"] == FIRST_VERSION
    assert figures.pairs_to_request is not None
    assert 0 < figures.pairs_to_request <= DETECTION_PAIRS
    [update] = outcome.snapshot.updates_of("promoted")
    assert update.version == FIRST_VERSION + 1 == outcome.champion
    [decision] = outcome.decisions
    assert (decision.job_id, decision.outcome) == (request.request_id, "promoted")
    assert decision.metrics["mae"] < decision.metrics["champion_mae"]
    # trained on the replayed recent week of readings: the new regime only
    info = ModelStore(outcome.paths.store).info(MODEL, None, update.version)
    window = info.metadata["training"]["window"]
    assert pd.Timestamp(window["start"]) >= outcome.data.onset - STEP
    # the workers serve it: no product goes back to the old version once the new one served
    by_product: dict[str, list[tuple[datetime, int]]] = {}
    for seen in outcome.snapshot.predictions:
        by_product.setdefault(seen.message.entity_id, []).append(
            (seen.message.made_at, seen.message.version)
        )
    for served in by_product.values():
        versions = [version for _, version in sorted(served)]
        assert versions == sorted(versions) and versions[-1] == update.version
    assert figures.mae_before is not None and figures.mae_during is not None
    assert figures.mae_during > 1.5 * figures.mae_before  # the drift hurt the old champion
    assert figures.mae_after is not None and figures.mae_after <= RECOVERY * figures.mae_before
    assert figures.pairs_after >= 300  # three days of five products, less the last hour


def test_without_drift_nothing_is_requested(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    outcome = run_loop(kafka_settings, tmp_path, LoopConfig(drift=None, after_hours=6))
    assert outcome.snapshot.requests == [] and outcome.decisions == []
    assert outcome.snapshot.updates == [] and versions_served(outcome) == {FIRST_VERSION}
    health = outcome.snapshot.health_of(FIRST_VERSION)
    assert {h.status for h in health} <= {"unknown", "healthy"}  # unknown: too few pairs yet
    assert health[-1].status == "healthy" and health[-1].pairs == Tuning().count_window
    assert outcome.champion == FIRST_VERSION


def test_a_candidate_that_does_not_beat_the_champion_is_rejected(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    # an impossible margin: the candidate's holdout MAE would have to be 99 % lower
    outcome = run_loop(
        kafka_settings, tmp_path, LoopConfig(after_hours=6), Tuning(forecast_margin=0.99)
    )
    [request] = [seen.message for seen in outcome.snapshot.requests]
    [decision] = outcome.decisions
    assert (decision.job_id, decision.outcome) == (request.request_id, "rejected")
    assert "not better" in decision.reason
    assert outcome.snapshot.updates == [] and outcome.champion == FIRST_VERSION
    rejected = [e for e in outcome.history if e.action == "reject"]
    assert [e.version for e in rejected] == [FIRST_VERSION + 1]
    assert versions_served(outcome) == {FIRST_VERSION}
