"""``driftline bench codec`` measures every contract and writes its figures as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from driftline.commands.bench import bench
from events import CONTRACTS


def test_codec_benchmark_reports_every_contract(tmp_path: Path) -> None:
    out = tmp_path / "figures" / "codec.json"

    result = CliRunner().invoke(
        bench,
        ["codec", "--messages", "20", "--repeats", "1", "--batch-size", "8", "--json", str(out)],
    )

    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    types = {c.type.__name__ for c in CONTRACTS.values()}
    assert {r["message_type"] for r in figures["results"]} == types
    for row in figures["results"]:
        assert row["messages"] == 20
        assert row["decode_per_s"] > 0
        assert row["batch_decode_mb_per_s"] > 0
    assert "SensorReading" in result.output


def test_bench_group_lists_codec() -> None:
    result = CliRunner().invoke(bench, ["--help"])

    assert result.exit_code == 0
    assert "codec" in result.output
