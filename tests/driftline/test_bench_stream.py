"""``driftline bench stream``: its parts on tiny numbers (figures are printed, never asserted).

Unit tests cover the generated workload, the passthrough pipeline, the span and latency
arithmetic, the report and the command's wiring (with the phases replaced by fixed
figures). One integration test runs a throughput phase and a latency phase on the real
broker with tiny models, which is every piece that talks to Kafka or to a worker process.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from driftline.benchmarks import host, jit, pipelines
from driftline.benchmarks.baseline import (
    CACHE_BYTES,
    InProcess,
    consumed,
    measure_in_process,
    score_with_library,
)
from driftline.benchmarks.cluster import Cluster, PhaseTopics, run_prefix
from driftline.benchmarks.forecasts import Forecasts
from driftline.benchmarks.latency import Latency, interleave, measure_latency
from driftline.benchmarks.report import Goals, Round, StreamFigures, checks, payload, rows
from driftline.benchmarks.throughput import Throughput, measure_throughput, steady_span
from driftline.benchmarks.usage import Usage, parse
from driftline.benchmarks.workers import WIRED_SETTINGS, Memory, WorkerSpec, process_memory
from driftline.benchmarks.workload import (
    CHAMPIONS,
    END,
    History,
    Readings,
    Sizes,
    encode,
    generate,
    train_champions,
)
from driftline.commands.bench import bench
from driftline.commands.bench_stream import worker_settings
from events import codec_for, derive_id, topics
from events.settings import KafkaSettings
from models.cache import ModelCache
from models.store import ModelStore
from worker.pipeline import ScoringPipeline
from worker.replay import Record
from worker.settings import WorkerSettings

TINY = Sizes(
    machines=4,
    products=3,
    train_machines=4,
    train_hours=150,
    train_days=90,
    params={
        "anomaly": {"n_estimators": 10},
        "maintenance": {"n_estimators": 5},
        "demand": {"iterations": 20, "thread_count": 1},
    },
)
READINGS = 300
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def history() -> History:
    return generate(READINGS, TINY)


@pytest.fixture(scope="module")
def readings(history: History) -> Readings:
    return encode(history)


@pytest.fixture(scope="module")
def store(history: History, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench") / "store"
    train_champions(root, history, TINY)
    return root


# --- workload and in-process parts ----------------------------------------------------


def test_the_workload_streams_after_the_training_history(
    history: History, readings: Readings
) -> None:
    assert len(readings) >= READINGS
    assert history.machines["ts"].min() > history.machines_train["ts"].max()
    assert history.products["ts"].min() > history.products_train["ts"].max()
    assert "is_anomaly" not in history.machines.columns  # producers send no labels
    assert history.machines["ts"].is_monotonic_increasing  # time order across entities
    head = readings.head(100)
    assert len(head) == 100 and 15 <= len(head.demand) <= 25  # about a fifth is demand
    later = readings.part(100, 50)
    assert later.sensor[0] == readings.sensor[len(head.sensor)]
    # dated before a fixed day in the past, whenever the benchmark runs
    for frame in (history.machines, history.products):
        assert frame["ts"].max() < END <= frame["ts"].max() + pd.Timedelta(days=1)


def test_passthrough_emits_one_id_per_reading_and_dead_letters_the_rest(
    readings: Readings, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase = PhaseTopics.named("t", "in", "out")
    for name, value in phase.to_env().items():
        monkeypatch.setenv(name, value)
    pipeline = pipelines.passthrough(None, None)  # type: ignore[arg-type]
    key, value = readings.sensor[0]
    records = [
        Record(phase.sensor, 0, 7, key, value),
        Record(phase.sensor, 0, 8, key, b"not json"),
        Record("elsewhere", 0, 9, key, value),
    ]
    result = pipeline.process(records)
    outputs = [r for r in result.records if r.kind == "prediction"]
    assert [(r.topic, r.value) for r in outputs] == [
        (phase.predictions, derive_id(phase.sensor, 0, 7, pipelines.PASSTHROUGH).encode())
    ]
    assert sum(r.kind == "dlq" for r in result.records) == 2


def test_per_message_and_batched_runs_time_every_reading_but_the_primers(
    readings: Readings, store: Path
) -> None:
    data = consumed(readings, sample=40, partitions=3)
    assert len(data.sample) == 40 and len(data.history) == len(readings) - 40
    # the streams are mixed evenly, each in its own order, as a worker's batches are
    demand_at = [i for i, m in enumerate(data.sample) if m.topic() == topics.READINGS_DEMAND]
    assert demand_at[0] < 8 and demand_at[-1] > 32 and len(demand_at) == 8
    order: dict[tuple[str | None, int | None], list[int | None]] = {}
    for m in data.sample:
        order.setdefault((m.topic(), m.partition()), []).append(m.offset())
    assert all(offsets == sorted(offsets) for offsets in order.values())  # type: ignore[type-var]
    single = measure_in_process(store, data, batch_size=1)
    batched = measure_in_process(store, data, batch_size=16)
    library = measure_in_process(store, data, batch_size=1, library=True)
    assert single.messages == batched.messages == library.messages == 38  # a primer a stream
    assert single.messages_per_s > 0 and batched.seconds > 0 and library.seconds > 0
    # the models' time is booked per model, features apart from the predicts
    assert set(batched.feature_seconds) == set(batched.model_seconds)
    assert set(batched.model_seconds) == {"anomaly", "maintenance", "demand"}
    assert batched.feature_us > 0 and batched.predict_us > 0
    assert 1e6 * batched.seconds / batched.messages > batched.feature_us / 2  # two threads


def test_the_library_baseline_scores_as_the_worker_does(readings: Readings, store: Path) -> None:
    """(c) pays the libraries' per-call overhead for the very same outputs."""
    data = consumed(readings, sample=40, partitions=3)
    outputs = []
    for library in (False, True):
        models = ModelStore(store)
        cache = ModelCache(models, CACHE_BYTES, score_with_library if library else None)
        pipeline = ScoringPipeline(models, cache)
        pipeline.warm(data.history)
        outputs.append([pipeline.process([m]).records for m in data.sample])
        loaded = [cache.peek(name) for name in ("anomaly", "maintenance")]
        forests = [e.model._forest for e in loaded if e is not None]  # type: ignore[attr-defined]
        scorers = [e.model._scorer for e in loaded if e is not None]  # type: ignore[attr-defined]
        assert len(forests) == 2 and (scorers == forests) is library
    assert outputs[0] == outputs[1] and sum(map(len, outputs[0])) >= 40


def test_free_sensor_models_cost_nothing_and_change_only_their_scores(
    readings: Readings, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same records as the scoring pipeline's, ids and versions alike; risks are 0,
    no sensor alert is raised, and demand is scored by its champion as in (b)."""
    phase = PhaseTopics.named("t", "in", "free")
    for name, value in phase.to_env().items():
        monkeypatch.setenv(name, value)
    sensor, demand = (
        [Record(topic, 0, offset, k, v) for offset, (k, v) in enumerate(encoded)]
        for topic, encoded in ((phase.sensor, readings.sensor), (phase.demand, readings.demand))
    )
    history, batch = sensor[:180] + demand[:40], sensor[180:240] + demand[40:60]
    settings = WorkerSettings(model_store=store)
    outputs, pipelines_used = {}, []
    for factory in (pipelines.scoring, pipelines.free_sensor_models):
        pipeline = factory(settings, ModelCache(ModelStore(store), CACHE_BYTES))
        pipeline.warm(history)
        outputs[factory] = pipeline.process(batch).records
        pipeline.close()
        pipelines_used.append(pipeline)
    codec = codec_for(topics.PREDICTIONS)

    def predictions(factory: Any) -> dict[str, list[tuple[bytes | None, Any]]]:
        """Prediction records and messages by model."""
        out: dict[str, list[tuple[bytes | None, Any]]] = {}
        for record in outputs[factory]:
            if record.kind == "prediction":
                message = codec.decode(record.value)
                out.setdefault(message.model, []).append((record.value, message))
        return out

    free, scored = predictions(pipelines.free_sensor_models), predictions(pipelines.scoring)
    assert sorted(free) == sorted(scored) == ["demand", "maintenance"]
    assert len(free["maintenance"]) == len(scored["maintenance"]) == 60
    assert len(free["demand"]) == 20
    free_risks = [message for _, message in free["maintenance"]]
    scored_risks = [message for _, message in scored["maintenance"]]
    assert [p.prediction_id for p in free_risks] == [p.prediction_id for p in scored_risks]
    assert {(p.version, p.fallback) for p in free_risks} == {(1, False)}
    assert {p.value for p in free_risks} == {0.0} != {p.value for p in scored_risks}
    assert free["demand"] == scored["demand"]  # byte for byte
    assert not any(r.kind == "alert" for r in outputs[pipelines.free_sensor_models])
    servings = [p.serving for p in pipelines_used]
    real, free_anomaly = (serving.champion("anomaly") for serving in servings)
    assert real is not None and free_anomaly is not None
    assert isinstance(free_anomaly.model, pipelines.ConstantScores)
    spec = free_anomaly.spec  # the champion's window, no features
    assert (spec.inputs, spec.history_needed) == (real.spec.inputs, real.spec.history_needed)
    windows = np.zeros((3, spec.history_needed, len(spec.inputs)))
    assert spec.rows(windows, np.zeros(3, dtype="datetime64[ns]"), ["m"] * 3).shape == (3, 0)
    with pytest.raises(TypeError, match="stand-in"):
        pipelines.ConstantScores().fit(pd.DataFrame())


def test_steady_span_leaves_out_the_start() -> None:
    stamps = [1_000, 1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000, 9_000]
    assert steady_span(stamps, 0.2) == (8, 7.0)
    assert steady_span([], 0.1)[0] == 0


def test_interleave_spreads_both_streams_over_the_run(readings: Readings) -> None:
    phase = PhaseTopics.named("t", "in", "out")
    order = [topic for topic, _, _ in interleave(readings.head(50), phase)]
    demand_at = [i for i, topic in enumerate(order) if topic == phase.demand]
    assert len(order) == 50 and demand_at[0] < 10 and demand_at[-1] > 40


def test_the_doctests_of_the_benchmark_modules() -> None:
    import doctest

    from driftline.benchmarks import latency, throughput, usage, workload

    for module in (host, jit, latency, throughput, usage, workload):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_compiler_seconds_add_up_the_jvm_compiler_threads_only(tmp_path: Path) -> None:
    def task(tid: int, comm: str, utime: int, stime: int) -> None:
        folder = tmp_path / "77" / "task" / str(tid)
        folder.mkdir(parents=True)
        (folder / "comm").write_text(comm + "\n")
        # pid (comm) state, then fields 4..13, utime (14), stime (15), more
        rest = " ".join(["1"] * 10 + [str(utime), str(stime)] + ["0"] * 5)
        (folder / "stat").write_text(f"{tid} ({comm[:15]}) S {rest}\n")

    task(1, "java", 5_000, 100)
    task(2, "C2 CompilerThre", 300, 20)
    task(3, "C1 CompilerThre", 40, 0)
    task(4, "data-plane-kafk", 900, 90)
    ticks = jit.TICKS_PER_S
    assert jit.compiler_seconds(77, tmp_path) == pytest.approx(360 / ticks)
    assert jit.compiler_seconds(78, tmp_path) is None


def test_host_busy_time_leaves_out_idle_and_waiting_cores(tmp_path: Path) -> None:
    #                      user nice system idle   iowait irq softirq steal guest guest_nice
    (tmp_path / "stat").write_text("cpu  4000 100 900 50000 700 20 30 50 300 0\ncpu0 1 2 3\n")
    assert host.busy_seconds(tmp_path) == pytest.approx(5100 / jit.TICKS_PER_S)
    (tmp_path / "stat").write_text("intr 1 2 3\n")
    assert host.busy_seconds(tmp_path) is None
    assert host.busy_seconds(tmp_path / "absent") is None
    assert host.cores_between(10.0, 13.0, 0.0) is None


def test_process_memory_reads_proc() -> None:
    memory = process_memory(os.getpid())
    assert memory.peak_bytes >= memory.now_bytes > MIB


# --- report and command -------------------------------------------------------------


def throughputs(passthrough_per_s: float, scoring_per_s: float, outputs: int = 1000) -> Round:
    """(a) and (b) over 1,000 readings, timed over 900 outputs at the given rates."""
    memory = Memory(300 * MIB, 250 * MIB)
    usage = Usage(seconds=1.0, cpu_seconds=0.5, batches=10, records=1000, ack_wait_seconds=0.0)
    return Round(
        Throughput("passthrough", 1000, 1000, 1000, 900, 900 / passthrough_per_s, memory, usage),
        Throughput("scoring", 1000, outputs, 1100, 900, 900 / scoring_per_s, memory, usage),
    )


def figures(scoring_per_s: float = 30_000.0, p99_ms: float = 50.0) -> StreamFigures:
    memory = Memory(300 * MIB, 250 * MIB)
    usage = Usage(seconds=1.0, cpu_seconds=0.5, batches=10, records=1000, ack_wait_seconds=0.0)
    return StreamFigures(
        rounds=(throughputs(50_000.0, scoring_per_s),),
        batched=InProcess(500, 500, 500 / 40_000),
        small_batches=InProcess(500, 100, 500 / 20_000),
        per_message=InProcess(100, 1, 100 / 200),
        own_per_message=InProcess(100, 1, 100 / 1_000),
        latency=Latency(5000.0, 4990.0, 5000, 5000, 20.0, p99_ms, 80.0, memory, usage, [p99_ms]),
        forecasts=Forecasts(1000, 500, 0.1, 1.0),
    )


def test_usage_is_read_from_the_worker_metrics_and_priced_per_record() -> None:
    text = (
        "process_cpu_seconds_total 12.5\n"
        "driftline_worker_batch_size_records_count 40.0\n"
        "driftline_worker_batch_size_records_sum 4000.0\n"
        "driftline_worker_ack_wait_seconds_sum 0.25\n"
        'driftline_worker_outputs_total{topic="p",kind="prediction"} 9.0\n'
    )
    before = parse("process_cpu_seconds_total 2.5\n")
    usage = Usage.between(before, parse(text), seconds=20.0)
    assert (usage.batches, usage.records, usage.ack_wait_seconds) == (40, 4000, 0.25)
    assert usage.cpu_us_per_record == pytest.approx(2_500.0)  # 10 s over 4,000 records
    assert usage.cores == pytest.approx(0.5) and usage.mean_batch == 100.0
    assert math.isnan(Usage.between(before, before, 1.0).cpu_us_per_record)


def test_the_settings_a_phase_wires_are_the_ones_extra_settings_may_not_change(
    tmp_path: Path,
) -> None:
    phase = PhaseTopics.named("run", "input", "scoring")
    spec = WorkerSpec("b", "m:f", phase, "g", tmp_path, "u", ("anomaly",))
    env = spec.environment(KafkaSettings(bootstrap_servers="127.0.0.1:9"), 1234)
    assert {k for k in env if k.startswith("WORKER_")} <= WIRED_SETTINGS


def test_worker_settings_must_be_worker_variables() -> None:
    assert worker_settings(("WORKER_BATCH_MAX_WAIT_S=0.01",)) == {"WORKER_BATCH_MAX_WAIT_S": "0.01"}
    for bad in ("BATCH_MAX_WAIT_S=0.01", "WORKER_BATCH_MAX_WAIT_S", "WORKER_PIPELINE=x:y"):
        with pytest.raises(click.BadParameter):
            worker_settings((bad,))


def test_goals_are_checked_against_the_ceiling_and_the_baseline() -> None:
    passed = checks(figures(), Goals())
    assert all(check.passed for check in passed.values())
    missed = checks(figures(scoring_per_s=20_000.0, p99_ms=150.0), Goals())
    assert not missed["b"].passed and missed["c"].passed  # 40% of (a), still 100x (c)
    assert not missed["p99"].passed and missed["forecasts"].passed
    assert [row.label for row in rows(figures())][:5] == ["(a)", "(b)", "", "", "(c)"]
    # 50 µs a reading in batches of 100, 25 µs in batches of 500: 3.125 ms a batch
    assert figures().batch_cost_ms == pytest.approx(3.125)
    small = next(row for row in rows(figures()) if "batches of 100" in row.measures)
    assert small.value == 20_000 and "a batch costs 3.1 ms" in small.note
    large = next(row for row in rows(figures()) if "batches of 500" in row.measures)
    assert large.note == "500 readings, no broker"  # no model time booked
    booked = replace(figures().batched, feature_seconds={"a": 0.002}, model_seconds={"a": 0.001})
    large = next(row for row in rows(replace(figures(), batched=booked)) if row.value == 40_000)
    assert large.note.endswith("features 4.0 µs, predicts 2.0 µs (on either scoring thread)")
    own = next(row for row in rows(figures()) if "driftline's scorers" in row.measures)
    assert own.value == 1_000 and own.note.startswith("(b) = 30x")  # 30,000 msg/s over 1,000
    json.dumps(payload(figures(), Goals()))  # JSON-ready


def test_the_round_with_the_median_share_of_the_ceiling_is_reported() -> None:
    # (b)/(a) of 40 %, 60 % and 50 %: the third round is the median one
    rounds = (
        throughputs(50_000.0, 20_000.0),
        throughputs(30_000.0, 18_000.0),
        throughputs(40_000.0, 20_000.0),
    )
    three = replace(figures(), rounds=rounds)
    assert three.median_round is rounds[2]
    assert three.passthrough.messages_per_s == pytest.approx(40_000.0)
    assert three.share_of_ceiling == pytest.approx(0.5)
    assert checks(three, Goals())["b"].passed
    scoring = next(row for row in rows(three) if row.check == "b")
    assert scoring.note.endswith("(b)/(a) by round 40%, 60%, 50%: round 3, the median, shown")
    assert [r["share_of_ceiling"] for r in payload(three, Goals())["rounds"]] == pytest.approx(
        [0.4, 0.6, 0.5]
    )
    # an even count reports the lower middle; one round's note names no rounds
    assert replace(three, rounds=rounds[:2]).median_round is rounds[0]
    assert "by round" not in next(row for row in rows(figures()) if row.check == "b").note
    # a round that lost outputs fails the goal whichever round is shown
    lost = throughputs(30_000.0, 18_000.0, outputs=999)  # 60 %: not the median round
    lossy = replace(three, rounds=(lost, rounds[0], rounds[2]))
    assert not checks(lossy, Goals())["b"].passed
    note = next(row for row in rows(lossy) if row.check == "b").note
    assert note.endswith("round 3, the median, shown; INCOMPLETE (b) in round 1")


def test_the_free_sensor_models_row_follows_b_when_they_were_run() -> None:
    assert not any("answering constants" in row.measures for row in rows(figures()))
    assert "free_sensor_models" not in payload(figures(), Goals())
    base = throughputs(50_000.0, 20_000.0)
    free = replace(base.scoring, pipeline="free", seconds=900 / 30_000.0)
    rounds = (
        replace(base, free=free),
        replace(throughputs(40_000.0, 20_000.0), free=free),  # the median: 50 % of (a)
        replace(throughputs(30_000.0, 18_000.0), free=free),
    )
    three = replace(figures(), rounds=rounds)
    labels = [row.label or row.measures for row in rows(three)]
    shown = labels.index("(b)") + 1
    assert labels[shown] == "scoring worker, anomaly + maintenance answering constants"
    row = rows(three)[shown]
    assert row.value == pytest.approx(30_000.0)
    assert row.note.startswith("75% of (a) in the same round (by round 60%, 75%, 100%)")
    written = payload(three, Goals())
    assert written["free_sensor_models"]["per_s"] == pytest.approx(30_000.0)
    assert [r["free_share"] for r in written["rounds"]] == pytest.approx([0.6, 0.75, 1.0])
    assert checks(three, Goals())["b"].passed  # the goal is (b)'s alone


def test_throughput_notes_show_the_worker_s_and_the_host_s_cores() -> None:
    def notes(figures: StreamFigures) -> list[str]:
        return [row.note for row in rows(figures) if row.label in ("(a)", "(b)")]

    # the usage of figures(): 0.5 CPU seconds over 1 s for 1,000 readings
    assert all("500 µs CPU a reading, worker at 0.50 cores" in n for n in notes(figures()))
    assert not any("host" in n for n in notes(figures()))
    busy = replace(figures().rounds[0].scoring, host_cores=1.3)
    measured = replace(figures(), rounds=(replace(figures().rounds[0], scoring=busy),))
    assert "worker at 0.50 cores, host at 1.30" in notes(measured)[1]
    assert payload(measured, Goals())["scoring"]["host_cores"] == 1.3
    # a phase of several processes: their CPU added up, and how many they were
    pair = replace(busy, processes=2, usage=Usage.total([busy.usage, busy.usage]))
    both = replace(figures(), rounds=(replace(figures().rounds[0], scoring=pair),))
    assert "500 µs CPU a reading, 2 worker processes at 1.00 cores" in notes(both)[1]
    assert payload(both, Goals())["scoring"]["processes"] == 2


def test_the_broker_compilers_show_beside_the_latency_when_known() -> None:
    def p99_note(figures: StreamFigures) -> str:
        return next(row.note for row in rows(figures) if row.check == "p99")

    assert "JIT" not in p99_note(figures())
    compiling = replace(figures(), latency=replace(figures().latency, broker_jit_cores=0.42))
    assert p99_note(compiling).endswith("broker JIT compilers at 0.42 of a core")


def test_bench_alone_runs_the_stream_benchmark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import driftline.commands.bench_stream as command

    plans: list[Any] = []

    def run(plan: Any, work: Path, bootstrap: str | None) -> StreamFigures:
        assert plan.messages == 100_000 and plan.paced == 100_000 and work.is_dir()
        plans.append(plan)
        return figures()

    monkeypatch.setattr(command, "run", run)
    target = tmp_path / "stream.json"
    result = CliRunner().invoke(bench, ["--help"])
    assert "stream" in result.output
    result = CliRunner().invoke(bench, [], catch_exceptions=False)
    assert result.exit_code == 0 and "scoring worker" in result.output
    result = CliRunner().invoke(bench, ["stream", "--json", str(target)])
    assert result.exit_code == 0
    written = json.loads(target.read_text())
    assert written["passed"] is True and written["settings"]["rate"] == 5000.0
    assert [plan.free_models for plan in plans] == [False, False]
    result = CliRunner().invoke(bench, ["stream", "--free-models"])
    assert result.exit_code == 0 and plans[-1].free_models
    assert [plan.processes for plan in plans] == [1, 1, 1]
    result = CliRunner().invoke(bench, ["stream", "--processes", "2"])
    assert result.exit_code == 0 and plans[-1].processes == 2
    assert "(2 worker processes each)" in result.output
    result = CliRunner().invoke(bench, ["stream", "--processes", "7", "--partitions", "6"])
    assert result.exit_code == 2 and "cannot all take a partition of 6" in result.output
    assert len(plans) == 4  # refused before running
    monkeypatch.setattr(command, "run", lambda *args: figures(p99_ms=500.0))
    result = CliRunner().invoke(bench, ["stream"])
    assert result.exit_code == 1 and "goal missed: p99" in result.output


# --- on the broker --------------------------------------------------------------------


def test_throughput_and_latency_phases_on_the_broker(
    kafka_settings: KafkaSettings, readings: Readings, store: Path, tmp_path: Path
) -> None:
    cluster = Cluster(kafka_settings, partitions=2)
    prefix = run_prefix()
    ceiling = PhaseTopics.named(prefix, "input", "passthrough")
    paced = PhaseTopics.named(prefix, "paced", "latency")
    updates = f"{prefix}.model.updates"
    try:
        made = [*ceiling.inputs, *ceiling.outputs, *paced.inputs, *paced.outputs, updates]
        cluster.create([*made, *ceiling.dead_letters, *paced.dead_letters])
        inputs = readings.head(120)
        cluster.publish(ceiling.sensor, inputs.sensor)
        cluster.publish(ceiling.demand, inputs.demand)
        spec = WorkerSpec(
            "passthrough", f"{pipelines.__name__}:passthrough", ceiling, f"{prefix}-a", store,
            updates,
        )  # fmt: skip
        run = measure_throughput(cluster, spec, len(inputs), tmp_path / "a.log", 120.0)
        assert run.complete and run.outputs == run.all_outputs == 120
        assert run.memory.peak_bytes > MIB
        # From readiness on: the first batches may come before it.
        assert run.usage.records <= 120 and run.usage.cpu_seconds >= 0
        assert run.host_cores is not None and run.host_cores >= 0  # this is Linux

        # the free sensor models in a worker process: one output per reading, no alert
        free = PhaseTopics.named(prefix, "input", "free")
        cluster.create(list(free.outputs))
        spec = WorkerSpec(
            "free", f"{pipelines.__name__}:free_sensor_models", free, f"{prefix}-f", store,
            updates, CHAMPIONS,
        )  # fmt: skip
        run = measure_throughput(cluster, spec, len(inputs), tmp_path / "f.log", 120.0)
        assert run.complete and run.outputs == run.all_outputs == 120

        # two passthrough processes in one group: each takes a partition (readiness), and
        # the readings are passed once between them
        pair = PhaseTopics.named(prefix, "input", "pair")
        cluster.create(list(pair.outputs))
        spec = WorkerSpec(
            "pair", f"{pipelines.__name__}:passthrough", pair, f"{prefix}-p", store, updates
        )
        run = measure_throughput(cluster, spec, len(inputs), tmp_path / "p.log", 120.0, 2)
        assert run.processes == 2 and run.complete and run.outputs == run.all_outputs == 120
        assert run.usage.records <= 120 and run.usage.cpu_seconds >= 0  # may end before ready
        with pytest.raises(ValueError, match="at least one worker process"):
            measure_throughput(cluster, spec, len(inputs), tmp_path / "p.log", 120.0, 0)

        spec = WorkerSpec(
            "latency", f"{pipelines.__name__}:scoring", paced, f"{prefix}-l", store, updates,
            CHAMPIONS,
        )  # fmt: skip
        history, primer = readings.head(100), readings.part(100, 10)
        offered = readings.part(110, 50)
        latency = measure_latency(
            cluster, spec, history, primer, offered, 200.0, tmp_path / "l.log", 120.0
        )
        # Neither the history nor the warm-up counts.
        assert latency.readings == latency.matched == 50
        assert 0 <= latency.p50_ms <= latency.p99_ms <= latency.max_ms
        assert latency.usage.records == 50 and latency.usage.batches >= 1
        assert latency.p99_by_second and max(latency.p99_by_second) <= latency.max_ms
    finally:
        cluster.close()
