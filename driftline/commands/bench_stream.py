"""``driftline bench stream`` (also plain ``driftline bench``): the worker's speed goals.

One run, on the local broker it starts (or ``--bootstrap`` / ``KAFKA_BOOTSTRAP_SERVERS``):
generate readings, train the champions on the history before them, then measure

* (a) the passthrough ceiling and (b) the scoring worker, both real ``driftline worker``
  processes over the same pre-published readings (``driftline.benchmarks.throughput``),
  in alternating rounds, (a) then (b) each time; the round with the median (b)/(a) is
  reported;
* end-to-end latency of the scoring worker at a paced offered load, and its memory
  (``driftline.benchmarks.latency``);
* after the broker stopped, in-process: the scoring pipeline per message (c) and in
  batches, and sequence forecasts per second (``baseline``, ``forecasts``).

Prints a table, optionally writes the figures as JSON, and exits with status 1 when a goal
is missed. docs/performance.md describes the method and the last run.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
from rich.console import Console

from driftline.commands.bench import environment, write_json

if TYPE_CHECKING:  # imported when the benchmark runs (`bench --help` lists it without them)
    from driftline.benchmarks.cluster import Cluster
    from driftline.benchmarks.latency import Latency
    from driftline.benchmarks.report import Round, StreamFigures
    from driftline.benchmarks.workload import Readings, Sizes
    from events.settings import KafkaSettings

PIPELINES: Final = "driftline.benchmarks.pipelines"
# Rows per in-process batch and per forecast call: the worker's default micro-batch.
BATCH: Final = 500
# The in-process rows' small batches: about what a worker consumes at 5,000 readings/s.
SMALL_BATCH: Final = 100
# The batched in-process rows score at most this many readings (a few seconds).
IN_PROCESS_READINGS: Final = 20_000
# Readings of (c): through scikit-learn a machine reading takes ~30 ms on two cores.
LIBRARY_SAMPLE: Final = 250
# The table needs ~150 columns: keep it whole when piped (rich assumes 80 there).
PIPED_WIDTH: Final = 160
# Readings in state before the paced run: 80 per machine (the anomaly window is 72).
WARM_READINGS: Final = 10_000
# The latency run's unmeasured warm-up at the offered rate: clients fetch their metadata
# and ids, and a fresh broker JVM compiles the paths of small paced requests. On two
# 2.4 GHz EPYC cores its compilers still took 0.41 of a core through a run after 15 s
# of warm-up (p99 315 ms), and 0.03 after 30 s (p99 102 ms); the table shows the share.
WARMUP_S: Final = 30.0
# Rounds of (a) then (b): the median of three ratios shrugs off one round that a busy
# moment of the host slowed on one side only.
ROUNDS: Final = 3
# A phase that has not committed its readings by (readings / this) seconds is stuck.
SLOWEST_RATE: Final = 100.0
MIN_DEADLINE_S: Final = 120.0
# With several worker processes a phase, the local broker holds a new group's first
# rebalance this long (Kafka's default; the project's brokers use 0 for fast tests), so the
# processes, started together, share the partitions from the first fetch on.
GROUP_JOIN_DELAY_MS: Final = 3_000


@dataclass(frozen=True)
class Plan:
    """The options of one run."""

    messages: int
    seconds: float
    rate: float
    sample: int
    partitions: int
    sizes: Sizes
    warmup_s: float = WARMUP_S
    worker: Mapping[str, str] = field(default_factory=dict)  # extra WORKER_* settings
    warm: int = WARM_READINGS
    library_sample: int = LIBRARY_SAMPLE
    rounds: int = ROUNDS
    free_models: bool = False  # each round also runs (b) with constant sensor models
    processes: int = 1  # worker processes in each throughput phase's group

    @property
    def primer(self) -> int:
        """Readings offered in the latency run's warm-up, before the measured ones."""
        return math.ceil(self.rate * self.warmup_s)

    @property
    def paced(self) -> int:
        return math.ceil(self.rate * self.seconds)

    @property
    def readings(self) -> int:
        """Readings to generate: the throughput input, or what the latency run offers after
        the history in state."""
        return max(self.messages, self.warm + self.primer + self.paced)

    def deadline_s(self, readings: int) -> float:
        return max(MIN_DEADLINE_S, readings / SLOWEST_RATE)


@click.command("stream")
@click.option(
    "--messages",
    default=100_000,
    show_default=True,
    type=click.IntRange(100),
    help="Readings pre-published for the throughput rows (a) and (b).",
)
@click.option(
    "--seconds",
    default=20.0,
    show_default=True,
    type=click.FloatRange(1.0),
    help="Length of the paced latency run.",
)
@click.option(
    "--warmup",
    "warmup_s",
    default=WARMUP_S,
    show_default=True,
    type=click.FloatRange(0.0),
    help="Unmeasured seconds at the offered load before the latency run.",
)
@click.option(
    "--rate",
    default=5_000.0,
    show_default=True,
    type=click.FloatRange(1.0),
    help="Offered load of the latency run (readings/s).",
)
@click.option(
    "--sample",
    default=2_000,
    show_default=True,
    type=click.IntRange(10),
    help="Readings of the in-process per-message run through driftline's scorers.",
)
@click.option(
    "--library-sample",
    default=LIBRARY_SAMPLE,
    show_default=True,
    type=click.IntRange(10),
    help="Readings of the in-process per-message baseline (c), through the libraries.",
)
@click.option(
    "--rounds",
    default=ROUNDS,
    show_default=True,
    type=click.IntRange(1),
    help="Rounds of (a) then (b); the round with the median (b)/(a) is reported.",
)
@click.option(
    "--free-models",
    is_flag=True,
    help="In each round, also run (b) with the anomaly and maintenance models answering "
    "constants (no features, no forest): the rate faster sensor models could reach at most.",
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Worker processes in each throughput phase's group ((a), (b) and the free "
    "models' run), as `driftline worker --processes N` runs them; the latency run keeps one.",
)
@click.option(
    "--partitions", default=6, show_default=True, type=click.IntRange(1), help="Per topic."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Generator and model seed.")
@click.option(
    "--worker-setting",
    "settings",
    multiple=True,
    metavar="WORKER_NAME=VALUE",
    help="A worker setting for every phase's worker (repeatable), e.g. "
    "WORKER_BATCH_MAX_WAIT_S=0.01.",
)
@click.option(
    "--bootstrap",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    help="Use this broker instead of starting a local one.",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
def stream(
    messages: int,
    seconds: float,
    warmup_s: float,
    rate: float,
    sample: int,
    library_sample: int,
    rounds: int,
    free_models: bool,
    processes: int,
    partitions: int,
    seed: int,
    settings: tuple[str, ...],
    bootstrap: str | None,
    json_path: Path | None,
) -> None:
    """Worker speed against goals: throughput, latency, memory, forecasts.

    Throughput of the scoring worker against a passthrough worker (the ceiling) and a
    per-message baseline, end-to-end latency and memory at a fixed offered load, and
    sequence forecasts per second. See docs/performance.md.
    """
    from driftline.benchmarks.cluster import BenchError
    from driftline.benchmarks.report import Goals, payload, table
    from driftline.benchmarks.workload import Sizes
    from driftline.publish import PublishError

    extra = worker_settings(settings)
    if processes > partitions:
        raise click.BadParameter(
            f"{processes} processes cannot all take a partition of {partitions}",
            param_hint="--processes",
        )
    plan = Plan(
        messages,
        seconds,
        rate,
        sample,
        partitions,
        Sizes(seed=seed),
        warmup_s,
        extra,
        library_sample=library_sample,
        rounds=rounds,
        free_models=free_models,
        processes=processes,
    )
    goals = Goals()
    where = environment()  # before the run: the load average of other processes
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="driftline-bench-"))
    keep = False
    try:
        figures = run(plan, work, bootstrap)
    except (BenchError, PublishError) as exc:
        keep = True
        raise click.ClickException(f"{exc}\n(worker logs kept in {work})") from exc
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    phases = "(a), (b) and (b) with free sensor models" if plan.free_models else "(a), (b)"
    workers = f" ({plan.processes} worker processes each)" if plan.processes > 1 else ""
    caption = (
        f"{plan.messages:,} readings for {phases}{workers} in {plan.rounds} round(s); "
        f"{plan.paced:,} offered in "
        f"{plan.seconds:g} s after {plan.warmup_s:g} s unmeasured; "
        f"{plan.partitions} partitions; {where['cpus']} CPUs, load average "
        f"{where['load_average_1m'] or 0:.1f} at the start; {elapsed:,.0f} s"
    )
    out = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    out.print(table(figures, goals, caption))
    result = payload(figures, goals)
    if json_path is not None:
        options = {
            "messages": messages,
            "seconds": seconds,
            "warmup": warmup_s,
            "rate": rate,
            "sample": sample,
            "library_sample": library_sample,
            "rounds": rounds,
            "free_models": free_models,
            "processes": processes,
        }
        chosen = {**options, "partitions": partitions, "seed": seed, "worker": extra}
        about = {"benchmark": "stream", "settings": chosen, "environment": where}
        write_json(json_path, {**about, "seconds": elapsed, **result})
        out.print(f"figures written to {json_path}", highlight=False)
    if not result["passed"]:
        missed = [name for name, check in result["checks"].items() if not check["passed"]]
        raise click.ClickException(f"goal missed: {', '.join(missed)}")


def run(plan: Plan, work: Path, bootstrap: str | None) -> StreamFigures:
    """Every phase of one run; logs and the model store live in ``work``."""
    from driftline.benchmarks.baseline import consumed, measure_in_process
    from driftline.benchmarks.cluster import Cluster
    from driftline.benchmarks.forecasts import measure_forecasts
    from driftline.benchmarks.report import StreamFigures
    from driftline.benchmarks.workload import encode, generate, train_champions

    console = Console(stderr=True)
    with console.status("generating readings") as status:
        history = generate(plan.readings, plan.sizes)
        readings = encode(history)
        status.update("training the champions")
        store = work / "store"
        train_champions(store, history, plan.sizes)
        join_delay = GROUP_JOIN_DELAY_MS if plan.processes > 1 else None
        with _broker(work, bootstrap, status.update, join_delay) as (kafka, broker_jit):
            cluster = Cluster(kafka, plan.partitions)
            try:
                on_broker = _on_broker(
                    plan, cluster, readings, store, work, status.update, broker_jit
                )
            finally:
                cluster.close()
        status.update("(c) per message through the libraries, in-process")
        throughput = readings.head(plan.messages)
        library = consumed(throughput, plan.library_sample, 1)
        per_message = measure_in_process(store, library, 1, library=True)
        status.update("per message through driftline's scorers, in-process")
        own_per_message = measure_in_process(store, consumed(throughput, plan.sample, 1), 1)
        status.update("scoring pipeline in-process, batched")
        batched_readings = min(IN_PROCESS_READINGS, len(throughput) // 2)
        in_process = consumed(throughput, batched_readings, plan.partitions)
        batched = measure_in_process(store, in_process, BATCH, repeats=3)
        small = measure_in_process(store, in_process, SMALL_BATCH, repeats=3)
        status.update("sequence forecasts")
        forecasts = measure_forecasts(history.machines_train, BATCH)
    rounds, latency = on_broker
    return StreamFigures(
        tuple(rounds), batched, small, per_message, own_per_message, latency, forecasts
    )


def worker_settings(items: Sequence[str]) -> dict[str, str]:
    """``WORKER_NAME=VALUE`` items as environment variables for the phases' workers.

    The benchmark wires topics, groups, pipelines and ports itself; only tuning settings
    may be given.
    """
    from driftline.benchmarks.workers import WIRED_SETTINGS

    settings: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("WORKER_"):
            raise click.BadParameter(
                f"{item!r} is not WORKER_NAME=VALUE", param_hint="--worker-setting"
            )
        if name in WIRED_SETTINGS:
            raise click.BadParameter(
                f"{name} is set by the benchmark itself", param_hint="--worker-setting"
            )
        settings[name] = value
    return settings


@contextlib.contextmanager
def _broker(
    work: Path, bootstrap: str | None, say: Callable[[str], None], join_delay_ms: int | None
) -> Iterator[tuple[KafkaSettings, Callable[[], float | None]]]:
    """The given broker, else a local one for the run (stopped on the way out); and what
    reads the CPU seconds of its JIT compilers (None for a broker elsewhere).
    ``join_delay_ms``: the local broker's ``group.initial.rebalance.delay.ms`` (None: the
    project's 0); a broker elsewhere keeps its own."""
    from broker import LocalBroker
    from driftline.benchmarks.jit import compiler_seconds
    from events.settings import kafka_settings

    if bootstrap:
        yield kafka_settings(bootstrap), lambda: None
        return

    say("starting a local Kafka broker")
    # The JVM's defaults (C2 compiler, its default collector): tuned for throughput, not
    # for start-up time as the tests' broker is.
    delay = (
        {} if join_delay_ms is None else {"group.initial.rebalance.delay.ms": str(join_delay_ms)}
    )
    with LocalBroker(work / "kafka", jvm_options=(), extra_properties=delay) as broker:
        yield kafka_settings(broker.bootstrap_servers), lambda: compiler_seconds(broker.pid)


def _on_broker(
    plan: Plan,
    cluster: Cluster,
    readings: Readings,
    store: Path,
    work: Path,
    say: Callable[[str], None],
    broker_jit: Callable[[], float | None],
) -> tuple[list[Round], Latency]:
    """The rounds of (a) and (b), then the latency run, each worker on its own output
    topics and group."""
    from driftline.benchmarks.cluster import PhaseTopics, run_prefix
    from driftline.benchmarks.latency import measure_latency
    from driftline.benchmarks.report import Round
    from driftline.benchmarks.throughput import measure_throughput
    from driftline.benchmarks.workers import WorkerSpec
    from driftline.benchmarks.workload import CHAMPIONS

    prefix = run_prefix()
    numbers = range(1, plan.rounds + 1)
    ceilings = [PhaseTopics.named(prefix, "input", f"passthrough{n}") for n in numbers]
    scorings = [PhaseTopics.named(prefix, "input", f"scoring{n}") for n in numbers]
    frees = [PhaseTopics.named(prefix, "input", f"free{n}") for n in numbers]
    paced = PhaseTopics.named(prefix, "paced", "latency")
    updates = f"{prefix}.model.updates"
    phases = [*ceilings, *scorings, *(frees if plan.free_models else []), paced]
    outputs = [topic for phase in phases for topic in phase.outputs]
    dead = [*ceilings[0].dead_letters, *paced.dead_letters]  # the rounds share their inputs
    cluster.create([*ceilings[0].inputs, *paced.inputs, *outputs, *dead, updates])
    throughput = readings.head(plan.messages)
    say(f"pre-publishing {len(throughput):,} readings")
    cluster.publish(ceilings[0].sensor, throughput.sensor)
    cluster.publish(ceilings[0].demand, throughput.demand)

    def spec(name: str, phase: PhaseTopics, pipeline: str = "scoring") -> WorkerSpec:
        """The worker of one phase: ``pipeline`` is ``passthrough`` (no models), or
        ``scoring`` or ``free_sensor_models`` (the champions preloaded)."""
        preload = () if pipeline == "passthrough" else CHAMPIONS
        return WorkerSpec(
            name, f"{PIPELINES}:{pipeline}", phase, f"{prefix}-{name}", store, updates,
            preload, plan.worker,
        )  # fmt: skip

    deadline = plan.deadline_s(len(throughput))
    rounds: list[Round] = []
    for n, ceiling, scoring, free in zip(numbers, ceilings, scorings, frees, strict=True):
        of = f" (round {n} of {plan.rounds})" if plan.rounds > 1 else ""
        say(f"(a) passthrough worker{of}")
        passthrough = spec(f"passthrough{n}", ceiling, "passthrough")
        ceiling_run = measure_throughput(
            cluster, passthrough, len(throughput), work / f"a{n}.log", deadline, plan.processes
        )
        say(f"(b) scoring worker{of}")
        scoring_spec = spec(f"scoring{n}", scoring)
        scoring_run = measure_throughput(
            cluster, scoring_spec, len(throughput), work / f"b{n}.log", deadline, plan.processes
        )
        free_run = None
        if plan.free_models:
            say(f"(b) with constant sensor models{of}")
            free_spec = spec(f"free{n}", free, "free_sensor_models")
            free_run = measure_throughput(
                cluster, free_spec, len(throughput), work / f"f{n}.log", deadline, plan.processes
            )
        rounds.append(Round(ceiling_run, scoring_run, free_run))
    say(f"latency at {plan.rate:,.0f} readings/s for {plan.seconds:g} s")
    latency = measure_latency(
        cluster,
        spec("latency", paced),
        readings.head(plan.warm),
        readings.part(plan.warm, plan.primer),
        readings.part(plan.warm + plan.primer, plan.paced),
        plan.rate,
        work / "latency.log",
        plan.deadline_s(plan.primer + plan.paced),
        broker_jit,
    )
    return rounds, latency
