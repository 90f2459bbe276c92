"""Benchmark helpers: goals, time split, ranks (the benchmark itself prints figures)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.quality import Goal, best_rank, split_time


def test_goals_compare_and_refuse_nan() -> None:
    assert Goal(">=", 0.85).met(0.9) and not Goal(">=", 0.85).met(0.8)
    assert Goal("<=", 0.5).met(0.5) and Goal("<", 10.0).met(9.9) and not Goal("<", 10.0).met(10)
    assert not Goal(">=", 0.0).met(float("nan"))
    assert str(Goal("<=", 10.0)) == "<= 10"


def test_split_keeps_the_earlier_part_of_every_entity() -> None:
    ts = pd.date_range("2026-01-01", periods=10, freq="h", tz="UTC")
    frame = pd.DataFrame({"entity_id": ["a"] * 10 + ["b"] * 10, "ts": list(ts) * 2})
    train, cut = split_time(frame, 0.2)
    assert (train["ts"] <= cut).all() and len(train) == 16
    assert set(train["entity_id"]) == {"a", "b"}


def test_best_rank_counts_ties_pessimistically() -> None:
    score = np.array([0.9, 0.5, 0.7, 0.7, 0.1])
    labels = np.array([0.0, 0.0, 0.0, 1.0, 0.0])
    assert best_rank(score, labels) == 3
    assert best_rank(score, np.array([1.0, 0, 0, 1, 0])) == 1
    with pytest.raises(ValueError, match="no labelled point"):
        best_rank(score, np.zeros(5))
