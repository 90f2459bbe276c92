"""Fault figures: recorded as JSON lines, rendered as docs/reliability.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from driftline.faults_report import REPORT_ENV, ReportError, load, main, record, render


def test_record_appends_only_when_a_file_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "out" / "faults.jsonl"
    monkeypatch.delenv(REPORT_ENV, raising=False)
    record("f", "F", "did", "saw", {"lost": 0})
    assert not results.exists()
    monkeypatch.setenv(REPORT_ENV, str(results))
    record("f", "F", "did", "saw", {"lost": 0})
    record("g", "G", "did", "saw", {"lost": 1}, section="security")
    [first, second] = load(results)
    assert (first.fault, first.figures, first.section) == ("f", {"lost": 0}, "fault")
    assert (second.fault, second.section) == ("g", "security")
    assert first.recorded_at.endswith("+00:00")


def test_render_shows_the_last_record_of_each_fault(tmp_path: Path) -> None:
    path = tmp_path / "faults.jsonl"
    record("kill", "Worker kill", "kill -9", "0 lost", {"lost": 3}, path=path)
    record("disk", "Full disk", "filled it", "clear error", {"error": "No space | left"}, path=path)
    record("kill", "Worker kill", "kill -9", "0 lost", {"lost": 0, "recovery_s": 6.5}, path=path)
    record("sasl", "SASL", "login", "works", {"leaks": 0}, section="security", path=path)
    text = render(load(path))
    assert text.startswith("# Reliability\n")
    assert "| Worker kill | - | - | 0 | - | 6.50 |" in text  # the latest record only
    assert "| lost | 3 |" not in text
    assert "| recovery (s) | 6.50 |" in text  # units read in the labels
    assert "Full disk |" not in text.split("## Faults")[0]  # no stream figures: no summary row
    assert "| error | No space \\| left |" in text  # table cells stay intact
    assert text.index("## Faults") < text.index("### Full disk") < text.index("## Security")
    assert "python -m driftline.faults_report" in text


def test_the_command_prints_the_report_and_refuses_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "faults.jsonl"
    record("kill", "Worker kill", "kill -9", "0 lost", {"lost": 0}, path=path)
    printed = CliRunner().invoke(main, [str(path)])
    assert printed.exit_code == 0 and "### Worker kill" in printed.output
    path.write_text(path.read_text() + "not json\n")
    refused = CliRunner().invoke(main, [str(path)])
    assert refused.exit_code == 1 and "faults.jsonl:2 is not a fault record" in refused.output
    with pytest.raises(ReportError, match="no fault records"):
        render([])
