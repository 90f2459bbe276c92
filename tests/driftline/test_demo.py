"""``driftline demo``: its pure parts without a broker, and one short run end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.demo.dashboard import View, plain, render
from driftline.demo.report import ReportData, write_report
from driftline.demo.scenario import ScenarioConfig, anomaly_events, build_scenario
from driftline.demo.scrape import Figures, Samples, figures, quantile
from driftline.demo.summary import RunFacts, alerted_events, recovered, rows, summarize
from driftline.demo.timeline import Timeline
from events import Alert, ModelHealth, ModelUpdate, MonitorPair, RetrainRequest
from models.frames import ENTITY, IS_ANOMALY, TS

T0 = datetime(2026, 3, 1, tzinfo=UTC)  # simulated time of the first streamed reading
START = 1_000.0  # wall clock of the run's start
ONSET = START + 60.0  # wall clock of the first drifted reading
ONSET_TS = T0 + timedelta(hours=100)


def alert(kind: str, entity: str, hours: float, n: int = 0) -> Alert:
    return Alert(
        alert_id=f"a-{kind}-{entity}-{hours}-{n}",
        type=kind,  # type: ignore[arg-type]
        entity_id=entity,
        ts=T0 + timedelta(hours=hours),
        score=0.9,
        threshold=0.5,
        severity="high",
        model="anomaly" if kind == "anomaly" else "demand",
        version=1,
    )


def health(version: int, mae: float, status: str = "healthy") -> ModelHealth:
    return ModelHealth(
        model="demand",
        version=version,
        ts=T0,
        window=3600.0,
        pairs=300,
        mae=mae,
        baseline_mae=20.0,
        degradation=mae / 20.0 - 1.0,
        status=status,  # type: ignore[arg-type]
    )


def pairs(version: int, error: float, first_hour: int, count: int) -> list[MonitorPair]:
    return [
        MonitorPair(
            prediction_id=f"p-{version}-{first_hour + i}",
            model="demand",
            version=version,
            entity_id="product-000",
            metric="quantity",
            target_ts=T0 + timedelta(hours=first_hour + i),
            predicted=100.0 + error,
            actual=100.0,
            error=error,
        )
        for i in range(count)
    ]


def update(version: int) -> ModelUpdate:
    return ModelUpdate(model="demand", version=version, action="promoted", ts=T0)


def request() -> RetrainRequest:
    return RetrainRequest(
        request_id="r-1",
        model="demand",
        action="full_retrain",
        reason="critical",
        requested_at=T0,
    )


EVENTS = pd.DataFrame(
    {
        ENTITY: ["machine-000", "machine-001", "machine-002"],
        "start": pd.to_datetime([T0 + timedelta(hours=h) for h in (5, 10, 20)], utc=True),
        "end": pd.to_datetime([T0 + timedelta(hours=h) for h in (7, 10, 22)], utc=True),
    }
)


def successful_run() -> RunFacts:
    """A run in which every goal was reached: two of three anomaly events alerted, a drift
    detected 3 s after its onset, v3 promoted 30 s after it and the error back down."""
    return RunFacts(
        started_at=START,
        ended_at=START + 180.0,
        history_published=1_000,
        live_published=5_000,
        malformed=4,
        stream_started_at=START + 20.0,
        onset_at=ONSET,
        onset_ts=ONSET_TS,
        first_score_at=START + 21.5,
        events=EVENTS,
        alerts=[
            (START + 30, alert("anomaly", "machine-000", 6)),
            (START + 31, alert("anomaly", "machine-001", 10)),
            (START + 32, alert("anomaly", "machine-002", 30)),  # outside its event
            (START + 33, alert("maintenance", "machine-002", 21)),
            (ONSET + 3, alert("drift", "demand", 101)),
        ],
        health=[
            (START + 40, health(1, 19.0)),
            (ONSET + 3, health(1, 60.0, "critical")),
            (ONSET + 31, health(3, 30.0)),
        ],
        requests=[(ONSET + 3, request())],
        updates=[(ONSET + 30, update(3))],
        pairs=[*pairs(1, 20.0, 0, 100), *pairs(1, 110.0, 100, 50), *pairs(3, -30.0, 150, 50)],
        figures=Figures(
            outputs={"prediction": 4_000.0, "alert": 300.0},
            dlq={"invalid_value": 4.0},
            latency={0.1: 90.0, 0.25: 100.0, float("inf"): 100.0},
            decisions={"demand": {"rejected": 1, "promoted": 1}},
        ),
    )


# --- summary ---------------------------------------------------------------------------


def test_a_successful_run_reaches_every_goal() -> None:
    summary = summarize(successful_run())
    assert summary.goals == {
        "anomalies alerted": True,
        "drift detected": True,
        "retrain promoted": True,
        "MAE recovered": True,
    }
    assert summary.achieved
    assert summary.readings == 6_000
    assert summary.predictions == 4_000
    assert summary.alerts == {"anomaly": 3, "maintenance": 1, "drift": 1}
    assert (summary.anomaly_events, summary.anomaly_events_alerted) == (3, 2)
    assert summary.first_score_s == pytest.approx(21.5)
    assert summary.detected_s == pytest.approx(63.0)
    assert summary.promoted_version == 3
    assert summary.promoted_s == pytest.approx(90.0)
    assert (summary.mae_before, summary.mae_during, summary.mae_after) == (20.0, 110.0, 30.0)
    assert summary.rejected == 1
    assert summary.dlq == {"invalid_value": 4}
    assert summary.p99_s == pytest.approx(0.235)


def test_a_run_without_a_promotion_says_which_goals_it_missed() -> None:
    facts = successful_run()
    stalled = RunFacts(**{**facts.__dict__, "updates": [], "alerts": facts.alerts[:1]})
    summary = summarize(stalled)
    assert summary.goals == {
        "anomalies alerted": False,  # one of three events
        "drift detected": True,  # the health report and the request still count
        "retrain promoted": False,
        "MAE recovered": False,
    }
    assert not summary.achieved
    printed = dict(rows(summary))
    assert printed["retrain promoted"] == "-"
    assert printed["anomalies alerted"] == "1 of 3 labelled events"


def test_a_degraded_report_before_the_onset_is_no_detection() -> None:
    facts = successful_run()
    early = RunFacts(
        **{
            **facts.__dict__,
            "health": [(ONSET - 5, health(1, 50.0, "warning"))],
            "requests": [],
            "alerts": [],
        }
    )
    assert summarize(early).detected_s is None


def test_alerted_events_count_each_event_once() -> None:
    alerts = [
        alert("anomaly", "machine-000", 5),
        alert("anomaly", "machine-000", 6, 1),  # same event again
        alert("anomaly", "machine-001", 11),  # one hour after its event ended
        alert("maintenance", "machine-002", 21),  # not an anomaly alert
    ]
    assert alerted_events(EVENTS, alerts) == 1


@pytest.mark.parametrize(
    ("before", "during", "after", "expected"),
    [(20.0, 120.0, 60.0, True), (20.0, 120.0, 80.0, False), (20.0, 15.0, 10.0, False)],
)
def test_recovery_means_halfway_back_from_the_drift(
    before: float, during: float, after: float, expected: bool
) -> None:
    assert recovered(before, during, after) is expected


# --- metrics ---------------------------------------------------------------------------

WORKER_METRICS = """\
# TYPE driftline_worker_records_consumed_total counter
driftline_worker_records_consumed_total{topic="readings.sensor"} 300.0
driftline_worker_records_consumed_total{topic="readings.demand"} 100.0
# TYPE driftline_worker_outputs_total counter
driftline_worker_outputs_total{kind="prediction",topic="predictions"} 250.0
driftline_worker_outputs_total{kind="alert",topic="alerts"} 7.0
# TYPE driftline_worker_dlq_records_total counter
driftline_worker_dlq_records_total{reason="invalid_value",topic="dlq.readings.sensor"} 2.0
# TYPE driftline_worker_end_to_end_latency_seconds histogram
driftline_worker_end_to_end_latency_seconds_bucket{le="0.1",topic="readings.sensor"} 8.0
driftline_worker_end_to_end_latency_seconds_bucket{le="0.25",topic="readings.sensor"} 10.0
driftline_worker_end_to_end_latency_seconds_bucket{le="+Inf",topic="readings.sensor"} 10.0
driftline_worker_end_to_end_latency_seconds_count{topic="readings.sensor"} 10.0
driftline_worker_end_to_end_latency_seconds_sum{topic="readings.sensor"} 1.0
# TYPE driftline_worker_model_version gauge
driftline_worker_model_version{key="",model="demand"} 4.0
driftline_worker_model_version{key="pm25",model="sequence"} 1.0
"""
TRAINER_METRICS = """\
# TYPE driftline_trainer_decisions_total counter
driftline_trainer_decisions_total{action="full_retrain",model="demand",outcome="rejected"} 2.0
driftline_trainer_decisions_total{action="full_retrain",model="demand",outcome="promoted"} 1.0
# TYPE driftline_trainer_job_running gauge
driftline_trainer_job_running 1.0
"""


def test_scraped_metrics_become_the_dashboard_figures() -> None:
    found = figures(WORKER_METRICS, None, TRAINER_METRICS)
    assert found.consumed == 400.0
    assert found.outputs == {"prediction": 250.0, "alert": 7.0}
    assert found.dlq == {"invalid_value": 2.0}
    assert found.serving == {"demand": 4, "sequence/pm25": 1}
    assert found.decisions == {"demand": {"rejected": 2, "promoted": 1}}
    assert found.job_running
    assert found.pairs == 0.0  # the monitor did not answer
    buckets = Samples.parse(WORKER_METRICS).buckets("driftline_worker_end_to_end_latency_seconds")
    assert quantile(0.5, buckets) == pytest.approx(0.0625)  # within the first bucket
    assert quantile(0.9, buckets) == pytest.approx(0.175)
    assert quantile(0.99, {}) is None


def test_the_timeline_reports_rates_and_recent_latency() -> None:
    timeline = Timeline()
    timeline.add(0.0, 0, Figures(consumed=0.0, latency={0.1: 0.0, float("inf"): 0.0}))
    slow = {0.1: 0.0, 1.0: 50.0, float("inf"): 50.0}
    sample = timeline.add(5.0, 500, Figures(consumed=450.0, latency=slow))
    assert sample.published_per_s == pytest.approx(100.0)
    assert sample.scored_per_s == pytest.approx(90.0)
    assert sample.p99_s is not None and 0.9 < sample.p99_s <= 1.0


# --- what a person sees ----------------------------------------------------------------


def view() -> View:
    return View(
        elapsed_s=95.0,
        duration_s=180.0,
        sim_time=T0,
        serving={"demand": 3},
        health=[health(3, 30.0)],
        alerts=Counter({"anomaly": 12, "drift": 1}),
        recent_alerts=[alert("anomaly", "machine-000", 6)],
        onset_s=60.0,
        detected_s=63.0,
        requests=2,
        decisions={"demand": {"rejected": 1, "promoted": 1}},
        promotions=[(90.0, "demand", 3)],
    )


def test_the_plain_line_carries_the_dashboard_figures() -> None:
    line = plain(view())
    assert "\n" not in line
    for expected in ("t=95s", "anomaly:12", "drift:1", "detected 3 s later", "demand=v3"):
        assert expected in line
    assert "demand=30.00/20.00(healthy)" in line
    assert "demand: promoted 1, rejected 1" in line


def test_the_dashboard_renders_without_a_terminal() -> None:
    from rich.console import Console

    console = Console(record=True, width=140, force_terminal=False)
    console.print(render(view()))
    text = console.export_text()
    assert "model error (rolling MAE)" in text
    assert "injected at 60 s, detected 3 s later" in text


def test_the_report_is_a_png(tmp_path: Path) -> None:
    from matplotlib.image import imread

    facts = successful_run()
    timeline = Timeline()
    for t in range(0, 180, 5):
        timeline.add(float(t), 85 * t, Figures(consumed=84.0 * t, latency={0.25: float(t)}))
    data = ReportData(
        samples=timeline.samples,
        health=[(at - START, h) for at, h in facts.health],
        alerts=[(at - START, a.type) for at, a in facts.alerts],
        stream_start_s=20.0,
        onset_s=60.0,
        detected_s=63.0,
        promotions=[(90.0, "demand", 3), (120.0, "sequence/pm25", 2)],
        notes=("other promotions: sequence/pm25 v2 at 120 s",),
    )
    path = write_report(data, tmp_path / "report.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = imread(path).shape[:2]
    assert width > 1000 and height > 800


# --- the generated world ---------------------------------------------------------------


def test_the_scenario_drifts_demand_only_after_the_onset() -> None:
    config = ScenarioConfig(machines=2, stations=1, products=3, history_hours=14 * 24)
    now = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    scenario = build_scenario(config, max_stream_seconds=30, now=now)
    assert scenario.start == datetime(2026, 3, 1, 9, tzinfo=UTC)  # the history ends on the hour
    assert scenario.ticks == 30 * config.tick_rate + 1
    history = scenario.history(scenario.products)
    assert history[TS].max() < pd.Timestamp(scenario.start)
    assert len(history) == 3 * 14 * 24
    drifted = scenario.with_onset(streaming_seconds=30)
    assert drifted.onset_tick == round(30 * config.drift_at * config.tick_rate)
    assert drifted.onset is not None
    before = drifted.demand[TS] < pd.Timestamp(drifted.onset)
    same = drifted.demand.loc[before, "quantity"].to_numpy()
    assert np.array_equal(same, scenario.products.loc[before, "quantity"].to_numpy())
    changed = drifted.demand.loc[~before, "quantity"].to_numpy()
    assert not np.array_equal(changed, scenario.products.loc[~before, "quantity"].to_numpy())


def test_anomaly_events_are_runs_of_labelled_readings() -> None:
    times = pd.date_range(T0, periods=6, freq="1h")
    frame = pd.DataFrame(
        {
            ENTITY: ["m-1"] * 6 + ["m-2"] * 6,
            TS: list(times) * 2,
            IS_ANOMALY: [0, 1, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1],  # m-1, then m-2
        }
    )
    events = anomaly_events(frame)
    assert events[ENTITY].tolist() == ["m-1", "m-1", "m-2", "m-2"]
    assert (events["end"] - events["start"]).dt.total_seconds().tolist() == [3600, 0, 0, 0]


# --- one short run on a local broker ---------------------------------------------------


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line or environment mention ``text`` (the run's directory)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.mark.integration
@pytest.mark.fault
def test_a_short_run_streams_scores_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    command = [
        str(Path(sys.executable).with_name("driftline")),
        "demo",
        *("--seconds", "60", "--plain", "--out", str(out)),
        *("--machines", "3", "--stations", "1", "--products", "5"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DEMO_"))}
    result = subprocess.run(
        command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
    )
    summary = json.loads((out / "summary.json").read_text())
    assert result.returncode == (0 if summary["achieved"] else 1), result.stdout + result.stderr
    assert summary["predictions"] > 0
    assert summary["first_score_s"] is not None
    assert summary["goals"]["drift detected"], result.stdout
    assert "t=" in result.stdout  # plain progress lines, no terminal needed
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("worker", "monitor", "trainer"):
        assert (out / "logs" / f"{name}.log").stat().st_size > 0
    assert _processes_mentioning(str(out)) == []
