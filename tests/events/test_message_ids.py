"""Deterministic ids repeat exactly for the same record and differ for anything else."""

from __future__ import annotations

import re

import pytest

from events import IdError, derive_id


def test_same_inputs_give_the_same_id() -> None:
    first = derive_id("readings.sensor", 3, 1042, "anomaly", 7)

    assert derive_id("readings.sensor", 3, 1042, "anomaly", 7) == first
    assert re.fullmatch(r"[0-9a-f]{32}", first)


def test_ids_are_stable_across_releases() -> None:
    # Changing the derivation would duplicate every event replayed after an upgrade.
    assert derive_id("readings.sensor", 3, 1042, "anomaly") == "be4d147221c96d8821d63bb153d7f0c6"


@pytest.mark.parametrize(
    "other",
    [
        ("readings.demand", 3, 1042, "anomaly"),
        ("readings.sensor", 4, 1042, "anomaly"),
        ("readings.sensor", 3, 1043, "anomaly"),
        ("readings.sensor", 3, 1042, "maintenance"),
        ("readings.sensor", 3, 1042, "anomaly", 1),
    ],
)
def test_every_input_changes_the_id(other: tuple[str, int, int, str]) -> None:
    assert derive_id(*other) != derive_id("readings.sensor", 3, 1042, "anomaly")


def test_parts_cannot_run_into_each_other() -> None:
    assert derive_id("t", 0, 1, "ab", "c") != derive_id("t", 0, 1, "a", "bc")
    assert derive_id("t", 1, 11, "m") != derive_id("t", 11, 1, "m")


def test_an_int_extra_equals_its_decimal_string() -> None:
    assert derive_id("t", 0, 1, "m", 3) == derive_id("t", 0, 1, "m", "3")


@pytest.mark.parametrize(("partition", "offset"), [(-1, 0), (0, -1001)])
def test_records_without_a_position_are_refused(partition: int, offset: int) -> None:
    with pytest.raises(IdError, match="non-negative"):
        derive_id("t", partition, offset, "m")
