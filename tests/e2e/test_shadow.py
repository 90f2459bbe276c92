"""Shadow mode across the three services, on the real broker.

With ``TRAINER_SHADOW=true`` the retrained candidate becomes the challenger: the workers
score every reading with both versions (the challenger's forecasts on the shadow topic),
the monitor publishes health per version, and the trainer promotes the challenger once it
beat the champion on live pairs; then the workers serve it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from driftline.loop.environment import Tuning
from driftline.loop.figures import FIRST_VERSION
from driftline.loop.runner import LoopRunner
from events.settings import KafkaSettings

MIN_PAIRS = 100  # live pairs each version needs before the verdict


def test_a_challenger_scores_in_shadow_and_is_promoted_after_winning_live(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    tuning = Tuning(shadow=True, shadow_min_pairs=MIN_PAIRS)
    outcome = LoopRunner(kafka_settings, tmp_path, tuning=tuning).run()
    seen = outcome.snapshot
    challenger = FIRST_VERSION + 1
    assert [(u.action, u.version) for u in (s.message for s in seen.updates)] == [
        ("challenger", challenger),
        ("promoted", challenger),
    ]
    [request] = [s.message for s in seen.requests]
    retrain, verdict = outcome.decisions
    assert (retrain.job_id, retrain.outcome) == (request.request_id, "challenger")
    assert (verdict.job_id, verdict.outcome) == (f"shadow:demand:v{challenger}", "promoted")
    assert verdict.metrics["pairs"] >= MIN_PAIRS and verdict.metrics["champion_pairs"] >= MIN_PAIRS
    assert verdict.metrics["mae"] < verdict.metrics["champion_mae"]
    # the workers wrote the challenger's forecasts to the shadow topic, with their own ids
    shadow = [s.message for s in seen.shadow]
    assert shadow and {p.version for p in shadow} == {challenger}
    main_ids = {s.message.prediction_id for s in seen.predictions}
    assert not main_ids & {p.prediction_id for p in shadow}
    shadowed = {(p.entity_id, p.made_at) for p in shadow}
    champion_scored = {
        (s.message.entity_id, s.message.made_at)
        for s in seen.predictions
        if s.message.version == FIRST_VERSION
    }
    assert shadowed <= champion_scored  # the same readings the champion scored
    # the monitor measured both versions, the challenger on its own pairs
    assert {h.version for h in (s.message for s in seen.health)} == {FIRST_VERSION, challenger}
    assert max(h.pairs for h in seen.health_of(challenger)) >= MIN_PAIRS
    # promoted: the workers serve it, and shadow scoring stopped
    assert outcome.champion == challenger
    serving: dict[str, list[tuple[datetime, int]]] = {}
    for s in seen.predictions:
        serving.setdefault(s.message.entity_id, []).append((s.message.made_at, s.message.version))
    for product, served in serving.items():
        promoted_at = min(made_at for made_at, version in served if version == challenger)
        assert max(served)[1] == challenger  # its last reading was scored by the new champion
        assert all(p.made_at < promoted_at for p in shadow if p.entity_id == product)
