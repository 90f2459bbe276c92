"""The validation gate: better, worse, margin, infra failures."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.base import FloatArray, Model, ModelError, Scores
from models.demand import DemandModel
from models.frames import TS
from models.registry import Registry
from models.registry_errors import IntegrityError
from trainer.errors import InfraCheckError
from trainer.gate import GateRule, infra_check, judge, validate

MAE = GateRule("mae", higher_is_better=False, margin=0.02)
F1 = GateRule("f1", higher_is_better=True, margin=0.02)


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Timestamp]:
    cutoff = frame[TS].quantile(0.8)
    return frame[frame[TS] <= cutoff], cutoff


def test_judge_lower_is_better_with_margin() -> None:
    assert judge(MAE, {"mae": 9.7}, {"mae": 10.0})[0]
    passed, reason = judge(MAE, {"mae": 9.9}, {"mae": 10.0})  # 1 % better: below the margin
    assert not passed
    assert reason == (
        "not better: candidate mae 9.9 vs champion 10 (needs <= 9.8: mae at least 2.0% lower)"
    )
    assert not judge(MAE, {"mae": 12.0}, {"mae": 10.0})[0]
    assert not judge(GateRule("mae", False, 0.0), {"mae": 10.0}, {"mae": 10.0})[0]  # a tie


def test_judge_higher_is_better() -> None:
    assert judge(F1, {"f1": 0.9}, {"f1": 0.8})[0]
    assert not judge(F1, {"f1": 0.81}, {"f1": 0.8})[0]
    assert judge(F1, {"f1": 0.2}, {"f1": 0.0})[0]


def test_judge_unmeasurable_figures() -> None:
    passed, reason = judge(MAE, {"mae": math.nan}, {"mae": 1.0})
    assert not passed and "cannot be measured" in reason
    assert judge(MAE, {"mae": 3.0}, {"mae": math.nan})[0]  # a champion that cannot score
    assert judge(MAE, {"mae": 3.0}, None)[1].startswith("first version")


def test_a_better_candidate_passes(
    demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    train, cutoff = split(demand_history)
    good, bad = fit_demand(train), fit_demand(train, shuffled=True)
    verdict = validate(MAE, good, lambda: bad, demand_history, cutoff, min_rows=10)
    assert verdict.passed, verdict.reason
    assert verdict.champion is not None
    assert verdict.candidate["mae"] < verdict.champion["mae"] * 0.98
    # 2 products x the 40 holdout days, minus each product's last day (no actual after it)
    assert verdict.rows == 2 * 39


def test_a_worse_candidate_fails(
    demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    train, cutoff = split(demand_history)
    good, bad = fit_demand(train), fit_demand(train, shuffled=True)
    verdict = validate(MAE, bad, lambda: good, demand_history, cutoff, min_rows=10)
    assert not verdict.passed
    assert verdict.reason.startswith("not better: candidate mae")


def test_an_impossible_margin_fails_a_better_candidate(
    demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    train, cutoff = split(demand_history)
    good, bad = fit_demand(train), fit_demand(train, shuffled=True)
    rule = GateRule("mae", higher_is_better=False, margin=0.99)
    verdict = validate(rule, good, lambda: bad, demand_history, cutoff, min_rows=10)
    assert not verdict.passed and "mae at least 99.0% lower" in verdict.reason


def test_too_small_a_holdout_fails(
    demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    train, cutoff = split(demand_history)
    good, bad = fit_demand(train), fit_demand(train, shuffled=True)
    verdict = validate(MAE, good, lambda: bad, demand_history, cutoff, min_rows=1000)
    assert not verdict.passed and verdict.reason == "too few holdout rows to compare: 78 < 1000"


def test_a_champion_the_store_cannot_load_stops_the_validation(
    demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    # EIO while listing the files reads as a missing file: it may pass, so the job retries
    # rather than promote a candidate nothing was compared with.
    train, cutoff = split(demand_history)

    def unreadable() -> Model:
        raise IntegrityError("demand v1: file model.cbm is missing")

    with pytest.raises(IntegrityError, match=r"model\.cbm is missing"):
        validate(MAE, fit_demand(train), unreadable, demand_history, cutoff, min_rows=10)


def test_a_champion_that_cannot_score_the_window_is_no_obstacle(
    demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    train, cutoff = split(demand_history)
    champion = fit_demand(train)

    def broken(features: Any) -> Any:
        raise ModelError("the framework refused the rows")

    champion.predict_batch = broken  # type: ignore[method-assign]
    verdict = validate(MAE, fit_demand(train), lambda: champion, demand_history, cutoff, 10)
    assert verdict.passed and "champion cannot score the window" in verdict.reason


class NaNModel(DemandModel):
    """A demand model whose forecasts are all NaN (a broken artefact)."""

    def predict_batch(self, features: FloatArray) -> Scores:
        scores = super().predict_batch(features)
        return Scores(value=np.full(len(scores), np.nan), lower=scores.lower, upper=scores.upper)


def test_infra_check_passes_a_sound_model(
    demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    train, cutoff = split(demand_history)
    infra_check(fit_demand(train), demand_history, cutoff, rows=16)


def test_infra_check_refuses_non_finite_outputs(
    demand_history: pd.DataFrame, tiny_params: dict[str, Any]
) -> None:
    train, cutoff = split(demand_history)
    model = NaNModel(tiny_params)
    model.fit(train)
    with pytest.raises(InfraCheckError, match="16 non-finite output"):
        infra_check(model, demand_history, cutoff, rows=16)


def test_infra_check_refuses_a_model_that_cannot_predict(demand_history: pd.DataFrame) -> None:
    _, cutoff = split(demand_history)
    with pytest.raises(InfraCheckError, match="cannot predict"):
        infra_check(DemandModel(), demand_history, cutoff, rows=16)  # never fitted


def test_a_corrupted_candidate_fails_to_load(
    tmp_path: Path, demand_history: pd.DataFrame, fit_demand: Callable[..., Model]
) -> None:
    train, _ = split(demand_history)
    registry = Registry(tmp_path)
    info = registry.register(fit_demand(train), "demand", promote_if_first=False)
    (info.path / "model.cbm").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        registry.load("demand", None, info.version)
