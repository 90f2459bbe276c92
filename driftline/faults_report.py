"""Figures of the fault-injection suite: recorded by the tests, rendered as docs/reliability.md.

Every fault test calls :func:`record` with what it measured (readings sent, outputs,
lost, duplicates, recovery time and its own figures). When ``DRIFTLINE_FAULT_REPORT``
names a file, each call appends one JSON line to it; otherwise nothing is written. The
report shows the last record of every fault, so a file that several runs appended to
still renders the latest figures::

    DRIFTLINE_FAULT_REPORT=/tmp/faults.jsonl .venv/bin/pytest tests/faults tests/security
    .venv/bin/python -m driftline.faults_report /tmp/faults.jsonl > docs/reliability.md
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import click

REPORT_ENV: Final = "DRIFTLINE_FAULT_REPORT"
REGENERATE: Final = (
    f"{REPORT_ENV}=/tmp/faults.jsonl .venv/bin/pytest tests/faults tests/security\n"
    ".venv/bin/python -m driftline.faults_report /tmp/faults.jsonl > docs/reliability.md"
)
# The columns of the summary table: what every fault about a stream reports.
SUMMARY: Final = (
    ("readings_sent", "readings sent"),
    ("outputs", "outputs"),
    ("lost", "lost"),
    ("duplicates", "duplicates"),
    ("recovery_s", "recovery (s)"),
)

# The hand-written end of the page: what other suites cover, and the limits these faults
# showed. Kept here so that the page is regenerated whole by one command.
NOTES: Final = """\
## Covered by other tests

- `tests/worker/test_worker_integration.py`: a second worker of the group takes over the
  partitions of one killed with SIGKILL; exactly once after SIGKILL (passthrough pipeline);
  an output the broker refuses stops the worker without committing its batch.
- `tests/worker/test_updates.py`: a hot swap to a tampered version is refused, the previous
  champion keeps serving and a `model` alert is published; a swap that failed is tried
  again, against the store's champion of then, with growing delays; an update read
  after a rollback does not bring its version back; polling errors on
  `model.updates` are counted and a fatal one stops the worker; a partition added to
  `model.updates` while the worker runs is read from its start.
- `tests/monitor/test_service_kafka.py`: a monitor restarted after its retrain request does
  not ask again.
- `tests/trainer/test_fault.py`: the trainer killed during a fit retries the request once.
- `tests/trainer/test_service_faults.py`: a job that fails runs again after growing
  delays; one that fails because the broker or the store cannot be reached (an
  unacknowledged announcement, a replay that times out, an EIO from the store) waits
  for it without using up an attempt, for up to `TRAINER_UNAVAILABLE_WAIT_S`.
- `tests/trainer/test_outbox.py`, `test_retraining.py`, `test_shadow.py`: a promotion (by a
  job or a shadow verdict) whose `model.updates` record was refused, or cut short by a stop,
  is announced at the next start or scheduled check, and its job ends as promoted instead
  of finding its own evidence stale; a change never written, or undone since, is not
  announced. A champion the store cannot load stops the validation (the job runs again)
  instead of letting the candidate through.
- `tests/models/test_registry.py`: ENOSPC during a register (simulated), a process killed
  mid-register, concurrent writers, tampered files refused on load; a promotion made
  over a champion other than the one it was validated against is refused.
- `tests/models/test_archive.py`: archive import refuses path traversal, absolute paths,
  links out of the store, devices and tampered files. Models are loaded only from the
  registry, after every file's sha256 is checked against metadata.json.

## Limits these faults show

- At least once, a worker killed with SIGKILL scores again what it did since its last
  offset commit (`WORKER_AUTO_COMMIT_INTERVAL_MS`, 1 s of batches). The repeated outputs
  carry the same deterministic ids, so consumers that deduplicate on ids keep one each.
- Exactly once, librdkafka's `send_offsets_to_transaction` can hang when the group
  coordinator comes back after a broker restart (confluentinc/librdkafka#5456, #5511). The
  worker gives it the transaction timeout plus 5 s, then exits with status 1; restarted
  (systemd, Kubernetes, a compose restart policy), it aborts the open transaction and
  resumes with nothing lost or repeated. Without a supervisor it stays down.
- A reading dated more than `WORKER_MAX_FUTURE_S` (an hour) after its record's Kafka
  timestamp is dead-lettered (`future_timestamp`), since accepted it would move its
  entity's clock forward and have its later readings skipped as stale. A producer that
  stamps its records with the readings' own times defeats the check; so does turning it
  off (`0`, as the demo does for its simulated clock). Readings are never checked against
  the wall clock, so replays and warm-ups decide as the first pass did.
- A promotion reaches a running worker in about half a second (the new version is loaded,
  verified and warmed off the hot path); the batches scored meanwhile carry the old
  version, as their outputs say.
- A JSON object that repeats a field is decoded with the last value.
- A process killed between the registry's aliases rename and its history append leaves the
  new champion without its history line until the key's next write or
  `driftline models gc` appends it, marked recovered and dated when it was recovered
  (see the registry kill after the rename).
- A killed worker or monitor holds its partitions until its group session times out
  (`WORKER_SESSION_TIMEOUT_MS`, `MONITOR_SESSION_TIMEOUT_MS`: 45 s by default; 6 s in these
  tests), which bounds the recovery times above from below.
- The slow-downstream backlog fits in librdkafka's fetch queue (64 MiB by default, not a
  worker setting): the test shows that throttling drops nothing and that memory stays
  within the worker's buffers, not how a backlog larger than those buffers behaves.
"""

Section = Literal["fault", "security"]
Figure = int | float | str
SECTION_TITLES: Final[dict[Section, str]] = {"fault": "Faults", "security": "Security"}


class ReportError(Exception):
    """A results file that cannot be read or rendered."""


@dataclass(frozen=True)
class FaultRecord:
    """What one fault test injected, what it checked and what it measured."""

    fault: str
    title: str
    injected: str
    checked: str
    figures: dict[str, Figure] = field(default_factory=dict)
    section: Section = "fault"
    recorded_at: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> FaultRecord:
        document = json.loads(line)
        if not isinstance(document, dict):
            raise ValueError("a record is a JSON object")
        return cls(**document)


def record(
    fault: str,
    title: str,
    injected: str,
    checked: str,
    figures: Mapping[str, Figure],
    *,
    section: Section = "fault",
    path: Path | None = None,
) -> FaultRecord:
    """Build the record and append it to ``path`` (default: ``$DRIFTLINE_FAULT_REPORT``)."""
    entry = FaultRecord(
        fault=fault,
        title=title,
        injected=injected,
        checked=checked,
        figures=dict(figures),
        section=section,
        recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    target = path or _configured_path()
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as out:
            out.write(entry.to_json() + "\n")
    return entry


def _configured_path() -> Path | None:
    configured = os.environ.get(REPORT_ENV)
    return Path(configured) if configured else None


def load(path: Path) -> list[FaultRecord]:
    """Every record of a results file, in the order they were written."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from exc
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(FaultRecord.from_json(line))
        except (ValueError, TypeError) as exc:
            raise ReportError(f"{path}:{number} is not a fault record: {exc}") from exc
    return records


def latest(records: Iterable[FaultRecord]) -> list[FaultRecord]:
    """The last record of every fault, in the order the faults first appear."""
    last: dict[str, FaultRecord] = {}
    for entry in records:
        last[entry.fault] = entry
    return list(last.values())


def render(records: Iterable[FaultRecord]) -> str:
    """docs/reliability.md: a summary table, then one section per fault."""
    chosen = latest(records)
    if not chosen:
        raise ReportError("no fault records to report")
    run = max(entry.recorded_at for entry in chosen).replace("T", " ").replace("+00:00", "")
    lines = [
        "# Reliability",
        "",
        "<!-- Generated by `python -m driftline.faults_report`; do not edit by hand. -->",
        "",
        "Each fault below is injected by a test in `tests/faults` (marked `fault`, run by",
        "`make test`) against a real Apache Kafka broker and real driftline processes, and",
        "each security check by a test in `tests/security`. The figures are those the tests",
        f"measured in their last run (latest record: {run} UTC). Regenerate with:",
        "",
        "```sh",
        REGENERATE,
        "```",
        "",
    ]
    streams = [e for e in chosen if e.section == "fault" and _has_summary(e)]
    if streams:
        lines += _summary(streams)
    for section, title in SECTION_TITLES.items():
        entries = [e for e in chosen if e.section == section]
        if entries:
            lines += [f"## {title}", ""]
            for entry in entries:
                lines += _detail(entry)
    return "\n".join(lines).rstrip() + "\n\n" + NOTES


def _has_summary(entry: FaultRecord) -> bool:
    return any(name in entry.figures for name, _ in SUMMARY)


def _summary(entries: list[FaultRecord]) -> list[str]:
    header = ["fault", *(label for _, label in SUMMARY)]
    lines = [
        "## Summary",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for entry in entries:
        cells = [_cell(entry.figures.get(name)) for name, _ in SUMMARY]
        lines.append(f"| {entry.title} | " + " | ".join(cells) + " |")
    note = "A dash: the figure does not apply. Faults without stream figures are listed below."
    return [*lines, "", note, ""]


def _detail(entry: FaultRecord) -> list[str]:
    lines = [
        f"### {entry.title}",
        "",
        f"- **Injected:** {entry.injected}",
        f"- **Checked:** {entry.checked}",
        "",
    ]
    if entry.figures:
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {_label(name)} | {_cell(v)} |" for name, v in entry.figures.items()]
        lines.append("")
    return lines


def _label(name: str) -> str:
    """A figure's name for people: ``recovery_s`` -> ``recovery (s)``."""
    for suffix, unit in (("_per_s", " per second"), ("_s", " (s)"), ("_mib", " (MiB)")):
        if name.endswith(suffix):
            name = name[: -len(suffix)] + unit
            break
    return name.replace("_", " ")


def _cell(value: Figure | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return value.replace("|", "\\|")


@click.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
def main(results: Path) -> None:
    """Print docs/reliability.md rendered from the fault suite's RESULTS file (JSON lines)."""
    try:
        sys.stdout.write(render(load(results)))
    except ReportError as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    main()
