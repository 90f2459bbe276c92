"""Judging rules: thresholds, hysteresis, cooldown, deterministic ids."""

from __future__ import annotations

import pytest

from monitor.health import Cooldowns, Hysteresis, Thresholds, evidence_id


@pytest.mark.parametrize(
    ("degradation", "pairs", "level"),
    [
        (0.10, 100, 0),
        (0.15, 100, 1),
        (0.249, 100, 1),
        (0.25, 100, 2),
        (-0.5, 100, 0),
        (0.9, 99, None),
        (None, 500, None),
    ],
)
def test_thresholds(degradation: float | None, pairs: int, level: int | None) -> None:
    assert Thresholds(0.15, 0.25, min_pairs=100).level(degradation, pairs) == level


def test_hysteresis_needs_k_consecutive_evaluations_to_rise() -> None:
    h = Hysteresis(3)
    statuses = [h.observe(level) for level in (0, 0, 0, 2, 2, 1, 2, 2, 2)]
    assert statuses == [
        "unknown", "unknown", "healthy",
        "healthy", "healthy", "warning",  # the last three were all >= warning
        "warning", "warning", "critical",
    ]  # fmt: skip


def test_hysteresis_needs_k_consecutive_evaluations_to_fall() -> None:
    h = Hysteresis(2)
    for level in (2, 2):
        h.observe(level)
    assert [h.observe(level) for level in (0, 2, 0, 1, 0, 0)] == [
        "critical", "critical", "critical", "warning", "warning", "healthy",
    ]  # fmt: skip


def test_hysteresis_resets_without_evidence() -> None:
    h = Hysteresis(2)
    h.observe(2)
    h.observe(2)
    assert h.observe(None) == "unknown"
    assert h.observe(2) == "unknown"


def test_cooldown_allows_one_request_per_period() -> None:
    cooldowns = Cooldowns(3600)
    key = ("demand", "sku-1")
    assert cooldowns.allows(key, "fine_tune", 0)
    cooldowns.record(key, "fine_tune", 0)
    assert not cooldowns.allows(key, "fine_tune", 3599)
    assert cooldowns.allows(key, "fine_tune", 3600)
    assert cooldowns.allows(("demand", "sku-2"), "fine_tune", 10)


def test_cooldown_allows_one_escalation_to_full_retrain() -> None:
    cooldowns = Cooldowns(3600)
    key = ("demand", None)
    cooldowns.record(key, "fine_tune", 0)
    assert cooldowns.allows(key, "full_retrain", 100)
    cooldowns.record(key, "full_retrain", 100)
    assert not cooldowns.allows(key, "full_retrain", 200)
    assert not cooldowns.allows(key, "fine_tune", 200)


def test_cooldown_read_back_out_of_order_keeps_the_latest_and_strongest() -> None:
    cooldowns = Cooldowns(3600)
    key = ("demand", None)
    cooldowns.record(key, "full_retrain", 500)
    cooldowns.record(key, "fine_tune", 100)
    last = cooldowns.last(key)
    assert last is not None and (last.at_s, last.action) == (500, "full_retrain")


def test_evidence_id_is_deterministic_and_tells_evidence_apart() -> None:
    base = evidence_id("demand", "sku-1", 3, 400, "full_retrain")
    assert base == evidence_id("demand", "sku-1", 3, 400, "full_retrain")
    variants = {
        evidence_id("demand", "sku-2", 3, 400, "full_retrain"),
        evidence_id("demand", None, 3, 400, "full_retrain"),
        evidence_id("demand", "sku-1", 4, 400, "full_retrain"),
        evidence_id("demand", "sku-1", 3, 450, "full_retrain"),
        evidence_id("demand", "sku-1", 3, 400, "fine_tune"),
        evidence_id("demand/sku-1", None, 3, 400, "full_retrain"),
    }
    assert base not in variants and len(variants) == 6
    assert len(base) == 32 and int(base, 16) >= 0
