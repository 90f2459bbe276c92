"""Figures of one ``driftline bench stream`` run: goals, the table and the JSON payload."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

from rich.table import Table

from driftline.benchmarks.baseline import InProcess
from driftline.benchmarks.forecasts import Forecasts
from driftline.benchmarks.latency import Latency
from driftline.benchmarks.throughput import Throughput
from driftline.benchmarks.usage import Usage

MIB: Final = 1024 * 1024


@dataclass(frozen=True)
class Goals:
    """What the stream benchmark checks."""

    share_of_ceiling: float = 0.5  # (b) >= this x (a), messages per second
    over_baseline: float = 100.0  # (b) >= this x (c)
    p99_ms: float = 100.0  # at the offered rate
    windows_per_s: float = 2_000.0  # sequence forecasts


@dataclass(frozen=True)
class Check:
    """One goal: met or not, with the figure that decides it."""

    goal: str
    passed: bool
    figure: str


@dataclass(frozen=True)
class Round:
    """(a) and then (b), back to back: a host whose speed drifts over minutes (a shared
    machine) moves both alike, so their ratio is what it changes least."""

    passthrough: Throughput
    scoring: Throughput
    # (b) with the sensor models answering constants, after (b), when asked for
    free: Throughput | None = None

    @property
    def share_of_ceiling(self) -> float:
        return self.scoring.messages_per_s / self.passthrough.messages_per_s

    @property
    def free_share(self) -> float | None:
        """The free-models run's rate over (a)'s, when there is one."""
        if self.free is None:
            return None
        return self.free.messages_per_s / self.passthrough.messages_per_s


@dataclass(frozen=True)
class StreamFigures:
    """Everything one run measured."""

    rounds: tuple[Round, ...]  # (a) and (b), alternating
    batched: InProcess
    small_batches: InProcess  # the same readings in the batches of a paced worker
    per_message: InProcess  # (c): the libraries' own predict, one reading at a time
    own_per_message: InProcess  # driftline's scorers, one reading at a time
    latency: Latency
    forecasts: Forecasts

    @property
    def median_round(self) -> Round:
        """The round whose (b)/(a) is the median (the lower middle of an even count):
        the table's (a) and (b) come from it."""
        ordered = sorted(self.rounds, key=lambda run: run.share_of_ceiling)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def passthrough(self) -> Throughput:
        return self.median_round.passthrough

    @property
    def scoring(self) -> Throughput:
        return self.median_round.scoring

    @property
    def share_of_ceiling(self) -> float:
        return self.median_round.share_of_ceiling

    @property
    def complete(self) -> bool:
        """Every reading of every (b) run produced its output."""
        return all(run.scoring.complete for run in self.rounds)

    @property
    def free(self) -> Throughput | None:
        return self.median_round.free

    @property
    def over_baseline(self) -> float:
        return self.scoring.messages_per_s / self.per_message.messages_per_s

    @property
    def batch_cost_ms(self) -> float:
        """What a batch costs whatever its size (ms), from the two batched in-process rows:
        per reading, small and large batches differ by this cost over their sizes."""
        small, large = self.small_batches, self.batched
        per_reading = 1 / small.messages_per_s - 1 / large.messages_per_s
        return 1000.0 * per_reading / (1 / small.batch_size - 1 / large.batch_size)

    @property
    def over_own_per_message(self) -> float:
        return self.scoring.messages_per_s / self.own_per_message.messages_per_s


def checks(figures: StreamFigures, goals: Goals) -> dict[str, Check]:
    """Row name -> the goal checked on that row."""
    latency = figures.latency
    complete = latency.matched == latency.readings
    return {
        "b": Check(
            f">= {goals.share_of_ceiling:.0%} of (a)",
            figures.share_of_ceiling >= goals.share_of_ceiling and figures.complete,
            f"{figures.share_of_ceiling:.0%} of (a)",
        ),
        "c": Check(
            f"(b) >= {goals.over_baseline:,.0f}x",
            figures.over_baseline >= goals.over_baseline,
            f"(b) = {figures.over_baseline:,.0f}x",
        ),
        "p99": Check(
            f"<= {goals.p99_ms:,.0f} ms",
            complete and latency.p99_ms <= goals.p99_ms,
            f"{latency.matched:,} of {latency.readings:,} readings matched",
        ),
        "forecasts": Check(
            f">= {goals.windows_per_s:,.0f}",
            figures.forecasts.windows_per_s >= goals.windows_per_s,
            "",
        ),
    }


@dataclass(frozen=True)
class Row:
    """One line of the table; ``check`` names the goal checked on it (see :func:`checks`)."""

    label: str
    measures: str
    value: float
    unit: str
    note: str = ""
    check: str | None = None
    decimals: int = 0


def rows(f: StreamFigures) -> list[Row]:
    """Every figure of the run, in the order of the table."""
    lat, batched, single, own = f.latency, f.batched, f.per_message, f.own_per_message
    rate = f"at {lat.offered_per_s:,.0f} readings/s"
    return [
        Row("(a)", "passthrough worker: consume, decode, produce",
            f.passthrough.messages_per_s, "msg/s", _complete(f.passthrough)),
        Row("(b)", "scoring worker: anomaly + maintenance + demand",
            f.scoring.messages_per_s, "msg/s", _complete(f.scoring) + _rounds(f), "b"),
        *_free(f),
        Row("", f"scoring pipeline in-process, batches of {batched.batch_size:,}",
            batched.messages_per_s, "msg/s",
            f"{batched.messages:,} readings, no broker{_model_time(batched)}"),
        Row("", f"scoring pipeline in-process, batches of {f.small_batches.batch_size:,}",
            f.small_batches.messages_per_s, "msg/s",
            f"the same readings; a batch costs {f.batch_cost_ms:,.1f} ms whatever its size"),
        Row("(c)", "per message: the libraries' predict per model per reading",
            single.messages_per_s, "msg/s",
            f"in-process sample of {single.messages:,}, no broker", "c"),
        Row("", "per message: driftline's scorers per model per reading",
            own.messages_per_s, "msg/s",
            f"(b) = {f.over_own_per_message:,.0f}x; in-process sample of {own.messages:,}"),
        Row("", f"latency p50 {rate}", lat.p50_ms, "ms",
            f"rate achieved {lat.achieved_per_s:,.0f}/s; {_usage(lat.usage)}", decimals=1),
        Row("", f"latency p99 {rate}", lat.p99_ms, "ms",
            f"max {lat.max_ms:,.0f} ms; p99 of a typical second "
            f"{lat.typical_second_p99_ms:,.0f} ms{_jit(lat)}", "p99", 1),
        Row("", "scoring worker resident memory, peak", lat.memory.peak_bytes / MIB, "MiB",
            f"VmHWM; VmRSS at the end {lat.memory.now_bytes / MIB:,.0f} MiB"),
        Row("", f"sequence forecasts, batches of {f.forecasts.batch_size:,}",
            f.forecasts.windows_per_s, "windows/s", "in-process", "forecasts"),
    ]  # fmt: skip


def table(figures: StreamFigures, goals: Goals, caption: str) -> Table:
    """The run as a rich table: one row per figure, goals beside the ones checked."""
    done = checks(figures, goals)
    out = Table(
        title="stream benchmark", caption=caption, title_justify="left", caption_justify="left"
    )
    out.add_column("row")
    out.add_column("measures")
    out.add_column("value", justify="right")
    for header in ("unit", "goal", "pass", "note"):
        out.add_column(header)
    for row in rows(figures):
        check = done.get(row.check or "")
        notes = [row.note] if check is None else [check.figure, row.note]
        out.add_row(
            row.label,
            row.measures,
            f"{row.value:,.{row.decimals}f}",
            row.unit,
            "" if check is None else check.goal,
            "" if check is None else ("yes" if check.passed else "NO"),
            "; ".join(n for n in notes if n),
        )
    return out


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _complete(run: Throughput) -> str:
    cpu = f"{run.usage.cpu_us_per_record:,.0f} µs CPU a reading"
    workers = "worker" if run.processes == 1 else f"{run.processes} worker processes"
    cpu += f", {workers} at {run.usage.cores:.2f} cores"
    if run.host_cores is not None:
        cpu += f", host at {run.host_cores:.2f}"
    if run.complete:
        return f"{run.readings:,} readings, {run.all_outputs:,} outputs; {cpu}"
    return f"INCOMPLETE: {run.outputs:,} outputs for {run.readings:,} readings"


def _free(figures: StreamFigures) -> list[Row]:
    """The row of (b) with the sensor models answering constants, when it was run."""
    free, share = figures.free, figures.median_round.free_share
    if free is None or share is None:
        return []
    shares = [run.free_share for run in figures.rounds]
    by_round = ", ".join(f"{s:.0%}" for s in shares if s is not None) if len(shares) > 1 else ""
    return [
        Row("", "scoring worker, anomaly + maintenance answering constants",
            free.messages_per_s, "msg/s",
            f"{share:.0%} of (a) in the same round"
            + (f" (by round {by_round})" if by_round else "")
            + f"; bounds faster sensor models; {_complete(free)}"),
    ]  # fmt: skip


def _rounds(figures: StreamFigures) -> str:
    """(b)/(a) of every round, when there were several, and which one (a) and (b) show."""
    if len(figures.rounds) < 2:
        return ""
    shares = ", ".join(f"{run.share_of_ceiling:.0%}" for run in figures.rounds)
    shown = figures.rounds.index(figures.median_round) + 1
    lossy = [str(n) for n, run in enumerate(figures.rounds, start=1) if not run.scoring.complete]
    missing = f"; INCOMPLETE (b) in round {', '.join(lossy)}" if lossy else ""
    return f"; (b)/(a) by round {shares}: round {shown}, the median, shown{missing}"


def _model_time(run: InProcess) -> str:
    """What the models' feature rows and predicts took a reading, when they were booked."""
    if not (run.feature_seconds or run.model_seconds):
        return ""
    return (
        f"; a reading, all models: features {run.feature_us:,.1f} µs, "
        f"predicts {run.predict_us:,.1f} µs (on either scoring thread)"
    )


def _jit(latency: Latency) -> str:
    """The broker's JIT compilers while the latency was measured, when known."""
    cores = latency.broker_jit_cores
    return "" if cores is None else f"; broker JIT compilers at {cores:.2f} of a core"


def _usage(usage: Usage) -> str:
    """The worker's share of a core and its batches over the measured readings."""
    return f"worker at {usage.cores:.2f} of a core, batches of {usage.mean_batch:,.0f}"


def payload(figures: StreamFigures, goals: Goals) -> dict[str, Any]:
    """JSON-ready figures with their rates (per second), ratios and the goals' verdicts."""
    done = checks(figures, goals)
    rated: dict[str, tuple[Any, float]] = {
        "passthrough": (figures.passthrough, figures.passthrough.messages_per_s),
        "scoring": (figures.scoring, figures.scoring.messages_per_s),
        "in_process_batched": (figures.batched, figures.batched.messages_per_s),
        "in_process_small_batches": (
            figures.small_batches,
            figures.small_batches.messages_per_s,
        ),
        "per_message": (figures.per_message, figures.per_message.messages_per_s),
        "own_per_message": (figures.own_per_message, figures.own_per_message.messages_per_s),
        "forecasts": (figures.forecasts, figures.forecasts.windows_per_s),
    }
    if figures.free is not None:
        rated["free_sensor_models"] = (figures.free, figures.free.messages_per_s)
    return {
        **{name: {**asdict(run), "per_s": rate} for name, (run, rate) in rated.items()},
        "rounds": [
            {
                "passthrough_per_s": run.passthrough.messages_per_s,
                "scoring_per_s": run.scoring.messages_per_s,
                "share_of_ceiling": run.share_of_ceiling,
                **(
                    {}
                    if run.free is None
                    else {"free_per_s": run.free.messages_per_s, "free_share": run.free_share}
                ),
            }
            for run in figures.rounds
        ],
        "latency": asdict(figures.latency),
        "share_of_ceiling": figures.share_of_ceiling,
        "over_baseline": figures.over_baseline,
        "over_own_per_message": figures.over_own_per_message,
        "batch_cost_ms": figures.batch_cost_ms,
        "goals": asdict(goals),
        "checks": {name: asdict(check) for name, check in done.items()},
        "passed": all(check.passed for check in done.values()),
    }
