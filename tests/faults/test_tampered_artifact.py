"""A model version whose files were changed after registration, seen from the command line.

The registry refuses a version whose files do not match the sha256 recorded in its
metadata.json (tests/models/test_registry.py), and a worker asked to hot-swap to one keeps
serving its champion and publishes a ``model`` alert (tests/worker/test_updates.py,
``test_updates_on_the_broker_swap_roll_back_and_refuse_a_tampered_version``). Here the
operator's view: ``models show`` says the version failed verification and names the file,
``models promote`` refuses it with a one-line error, and ``score`` refuses a tampered
champion instead of scoring with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from driftline.cli import main
from driftline.generator import generate_products
from models.families import create
from models.registry import Registry

pytestmark = pytest.mark.fault

TINY = {"iterations": 20, "depth": 3, "thread_count": 1}


def tamper(registry: Registry, version: int) -> str:
    """Flip one byte of the version's first file; the file's name."""
    info = registry.info("demand", None, version)
    name = sorted(info.files)[0]
    path = info.path / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return name


def test_a_tampered_version_is_refused_with_a_clear_error(
    tmp_path: Path, fault_report: Callable[..., Any]
) -> None:
    store = tmp_path / "store"
    registry = Registry(store, actor="tests")
    frame = generate_products(entities=1, periods=120, seed=4)
    for seed in (1, 2):
        model = create("demand", {**TINY, "seed": seed})
        model.fit(frame)
        registry.register(model, "demand")
    csv = tmp_path / "sales.csv"
    frame.to_csv(csv, index=False)
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(main, [*args], env={"MODEL_STORE": str(store)})

    tampered_file = tamper(registry, 2)
    shown = cli("models", "show", "demand", "2", "--json")
    champion_shown = cli("models", "show", "demand", "--json")
    promoted = cli("models", "promote", "demand", "2", "--reason", "tampered")
    scored_before = cli("score", "demand", "--csv", str(csv), "--out", str(tmp_path / "a.csv"))
    tamper(registry, 1)  # now the champion itself
    scored = cli("score", "demand", "--csv", str(csv), "--out", str(tmp_path / "b.csv"))
    message = promoted.output.strip().splitlines()
    fault_report(
        "tampered-artifact",
        "Tampered model artifact",
        f"one byte of {tampered_file} flipped in v2 (not serving), then in v1 (the champion)",
        "`models show` reports the failed verification and names the file; `models "
        "promote` refuses v2 with a one-line error and v1 stays champion; `score` refuses "
        "the tampered champion; the worker keeps its champion and alerts "
        "(tests/worker/test_updates.py)",
        promote_exit_code=promoted.exit_code,
        score_exit_code=scored.exit_code,
        champion_after=registry.aliases("demand").champion or 0,
    )
    assert json.loads(shown.output)["integrity"].startswith("FAILED:")
    assert tampered_file in json.loads(shown.output)["integrity"]
    assert json.loads(champion_shown.output)["integrity"] == "verified"
    assert promoted.exit_code == 1 and len(message) == 1
    assert "checksum mismatch" in message[0] and tampered_file in message[0]
    assert registry.aliases("demand").champion == 1
    assert scored_before.exit_code == 0, scored_before.output
    assert scored.exit_code == 1 and "checksum mismatch" in scored.output
    assert not (tmp_path / "b.csv").exists()
