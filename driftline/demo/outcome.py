"""What a run leaves behind: its facts gathered, ``summary.json`` and ``report.png``."""

from __future__ import annotations

import json
import time

import pandas as pd

from driftline.demo.environment import Layout
from driftline.demo.observer import Seen
from driftline.demo.report import ReportData, write_report
from driftline.demo.scenario import Scenario
from driftline.demo.scrape import Figures
from driftline.demo.stream import StreamStats
from driftline.demo.summary import RunFacts, Summary, rows
from driftline.demo.timeline import Timeline
from models.frames import ENTITY

DRIFT_MODEL = "demand"  # the model whose readings drift in the scenario


def gather(
    started: float,
    interrupted: bool,
    scenario: Scenario | None,
    stats: StreamStats | None,
    seen: Seen,
    figures: Figures,
) -> RunFacts:
    """Everything observed so far, copied (the producer and reader threads go on)."""
    return RunFacts(
        started_at=started,
        ended_at=time.time(),
        history_published=0 if stats is None else stats.history,
        live_published=0 if stats is None else stats.published,
        malformed=0 if stats is None else stats.malformed,
        stream_started_at=None if stats is None else stats.started_at,
        onset_at=None if stats is None else stats.onset_at,
        onset_ts=None if scenario is None else scenario.onset,
        first_score_at=seen.first_prediction_at,
        events=streamed_events(scenario, 0 if stats is None else stats.ticks),
        alerts=list(seen.alerts),
        health=list(seen.health),
        requests=list(seen.requests),
        updates=list(seen.updates),
        pairs=list(seen.pairs),
        figures=figures,
        drift_model=DRIFT_MODEL,
        interrupted=interrupted,
    )


def streamed_events(scenario: Scenario | None, ticks: int) -> pd.DataFrame:
    """Labelled anomaly events that ended within the first ``ticks`` streamed ticks."""
    if scenario is None:
        return pd.DataFrame(columns=[ENTITY, "start", "end"])
    events = scenario.labelled_events()
    streamed = pd.Timestamp(scenario.tick_time(ticks))
    return events[events["end"] < streamed].reset_index(drop=True)


def promotions(seen: Seen, started: float) -> list[tuple[float, str, int]]:
    """(seconds since the start, model[/key], version) of every promotion read."""
    return [
        (at - started, u.model if u.key is None else f"{u.model}/{u.key}", u.version)
        for at, u in list(seen.updates)
        if u.action == "promoted"
    ]


def report_data(summary: Summary, timeline: Timeline, seen: Seen, started: float) -> ReportData:
    promoted = promotions(seen, started)
    return ReportData(
        samples=timeline.samples,
        health=[(t - started, h) for t, h in seen.health],
        alerts=[(t - started, a.type) for t, a in seen.alerts],
        stream_start_s=summary.stream_start_s,
        onset_s=summary.onset_s,
        detected_s=summary.detected_s,
        promotions=promoted,
        drift_model=DRIFT_MODEL,
        title=title(summary),
        notes=notes(summary, promoted),
    )


def write(
    layout: Layout, summary: Summary, data: ReportData, problems: list[str], started: float
) -> None:
    """``summary.json`` (figures, goals, problems) and ``report.png`` into the run's dir."""
    payload = {**summary.as_dict(), "started_at": started, "problems": problems}
    layout.summary.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    write_report(data, layout.report)


def title(summary: Summary) -> str:
    goals = summary.goals
    reached = sum(goals.values())
    return f"driftline demo: {summary.seconds:.0f} s, {reached} of {len(goals)} goals reached"


def notes(summary: Summary, promoted: list[tuple[float, str, int]]) -> list[str]:
    """The outcome in two lines, and promotions of the other models (not marked above)."""
    figures = dict(rows(summary))
    lines = [
        f"{DRIFT_MODEL} MAE: before the drift {figures['MAE before drift']}, during it "
        f"{figures['MAE during drift']}, after the retrain {figures['MAE after retrain']}",
        f"drift detected at {figures['drift detected at']};  retrain promoted: "
        f"{figures['retrain promoted']};  p99 end-to-end latency "
        f"{figures['p99 end-to-end latency']};  anomalies alerted: "
        f"{figures['anomalies alerted']}",
    ]
    others = [f"{m} v{v} at {t:.0f} s" for t, m, v in promoted if m != DRIFT_MODEL]
    if others:
        lines.append(f"other promotions: {', '.join(others)}")
    return lines


__all__ = ["gather", "notes", "promotions", "report_data", "title", "write"]
