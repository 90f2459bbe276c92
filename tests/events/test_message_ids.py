"""Deterministic ids repeat exactly for the same record and differ for anything else."""

from __future__ import annotations

import random
import re

import pytest

from events import IdError, derive_id
from events.ids import IdDeriver


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


def random_parts(rng: random.Random) -> tuple[str, int, int, str, tuple[str | int, ...]]:
    topic = rng.choice(["readings.sensor", "readings.demand", "mesures.capteur-é", "传感器.读数"])
    model = rng.choice(["anomaly", "maintenance", "sequence", "modèle-α"])
    extra = rng.choice([(), ("risk",), ("x", "shadow"), (7,), ("h", 2**40), ("ü" * 300,)])
    offset = rng.choice([0, 1, 9, 10, rng.randrange(2**63)])
    return topic, rng.randrange(1000), offset, model, extra


def test_a_deriver_gives_exactly_the_ids_of_derive_id() -> None:
    rng = random.Random(11)
    for _ in range(200):
        topic, partition, offset, model, extra = random_parts(rng)
        deriver = IdDeriver(model, *extra)
        rows = [random_parts(rng)[:3] for _ in range(20)] + [(topic, partition, offset)]
        expected = [derive_id(t, p, o, model, *extra) for t, p, o in rows]

        assert [deriver.derive(t, p, o) for t, p, o in rows] == expected
        assert deriver.derive_all(*map(list, zip(*rows, strict=True))) == expected


def test_a_deriver_refuses_records_without_a_position() -> None:
    deriver = IdDeriver("m")
    deriver.derive("t", 0, 5)  # the partition's encoding is now reused

    with pytest.raises(IdError, match="non-negative"):
        deriver.derive("t", 0, -1)
    with pytest.raises(IdError, match="non-negative"):
        deriver.derive("t", -1, 5)
    with pytest.raises(IdError, match="non-negative"):
        deriver.derive_all(["t", "t"], [0, 0], [1, -2])
