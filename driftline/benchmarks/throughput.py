"""Throughput of a worker process over pre-published readings (rows (a) and (b)).

The readings are on the phase's input topics before the worker starts, so producing them
is not measured. The worker joins a fresh group, reads from the earliest offsets and scores
everything; the phase ends when the group has committed every input offset (a committed
offset means the batch's outputs were acknowledged).

A phase may run several worker processes in its group (``processes``), as
``driftline worker --processes N`` would. They are started together; for them to share
the partitions from the first fetch, the broker must hold a new group's first rebalance
until they have all joined (``group.initial.rebalance.delay.ms``: Kafka's default of 3 s,
which the benchmark's own broker sets when a run asks for several processes). Their CPU
and batches are added up.

Every reading yields exactly one record on the predictions topic (the passthrough's id; the
scoring pipeline's risk prediction per machine reading and demand forecast per product
reading), so those records time the run. The first :data:`SKIPPED_SHARE` of them are left
out (start-up: first fetches, the first predicts); the rate is the rest divided by the span
between the broker append times of the first and the last of them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from driftline.benchmarks import host
from driftline.benchmarks.cluster import Cluster
from driftline.benchmarks.usage import Usage
from driftline.benchmarks.workers import Memory, WorkerProcess, WorkerSpec

SKIPPED_SHARE: Final = 0.1
# Broker timestamps have millisecond resolution: a span is at least one tick.
MIN_SPAN_S: Final = 0.001


@dataclass(frozen=True)
class Throughput:
    """How fast a phase's worker processes turned the readings into acknowledged outputs."""

    pipeline: str
    readings: int  # on the input topics
    outputs: int  # records on the predictions topic (one per reading expected)
    all_outputs: int  # records on every output topic (alerts and imputed readings too)
    timed: int  # outputs inside the measured span
    seconds: float  # the measured span
    memory: Memory  # of the process with the highest peak
    usage: Usage  # from the workers' readiness to the last commit, all processes together
    host_cores: float | None = None  # the whole host's busy cores over the same time
    processes: int = 1  # worker processes in the phase's group

    @property
    def messages_per_s(self) -> float:
        return self.timed / self.seconds

    @property
    def complete(self) -> bool:
        """Every reading produced its output."""
        return self.outputs == self.readings


def steady_span(stamps_ms: Sequence[int], skipped: float = SKIPPED_SHARE) -> tuple[int, float]:
    """(records, seconds) after the first ``skipped`` share of sorted broker timestamps.

    >>> steady_span([0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000], 0.1)
    (10, 0.9)
    """
    if not stamps_ms:
        return 0, MIN_SPAN_S
    ordered = sorted(stamps_ms)
    first = int(len(ordered) * skipped)
    span = (ordered[-1] - ordered[first]) / 1000.0
    return len(ordered) - first, max(span, MIN_SPAN_S)


def measure_throughput(
    cluster: Cluster,
    spec: WorkerSpec,
    readings: int,
    log: Path,
    deadline_s: float,
    processes: int = 1,
) -> Throughput:
    """Run ``spec``'s worker over its pre-published inputs until all are committed; with
    ``processes`` > 1, that many worker processes in its group, each logging to ``log``."""
    if processes < 1:
        raise ValueError(f"a phase needs at least one worker process, got {processes}")
    with ExitStack() as running:
        workers = [
            running.enter_context(WorkerProcess(instance, cluster.kafka, log))
            for instance in instances(spec, processes)
        ]
        for worker in workers:
            worker.wait_ready()
        before, busy, began = [w.sample() for w in workers], host.busy_seconds(), time.monotonic()

        def check_alive() -> None:
            for worker in workers:
                worker.check_alive()

        cluster.wait_committed(spec.group, spec.phase.inputs, deadline_s, check_alive)
        spent = time.monotonic() - began
        parts = zip(before, [w.sample() for w in workers], strict=True)
        usage = Usage.total([Usage.between(start, end, spent) for start, end in parts])
        host_cores = host.cores_between(busy, host.busy_seconds(), spent)
        memory = max((w.memory() for w in workers), key=lambda m: m.peak_bytes)
    stamps = [record.timestamp_ms for record in cluster.read([spec.phase.predictions])]
    timed, seconds = steady_span(stamps)
    return Throughput(
        pipeline=spec.name,
        readings=readings,
        outputs=len(stamps),
        all_outputs=sum(cluster.end_offsets(spec.phase.outputs).values()),
        timed=timed,
        seconds=seconds,
        memory=memory,
        usage=usage,
        host_cores=host_cores,
        processes=processes,
    )


def instances(spec: WorkerSpec, processes: int) -> list[WorkerSpec]:
    """The specs of a phase's ``processes`` workers: one group, an instance name each.

    >>> from pathlib import Path
    >>> from driftline.benchmarks.cluster import PhaseTopics
    >>> spec = WorkerSpec("scoring1", "m:f", PhaseTopics.named("run", "in", "scoring1"),
    ...                   "run-scoring1", Path("store"), "run.model.updates")
    >>> [(s.name, s.group) for s in instances(spec, 2)]
    [('scoring1.1', 'run-scoring1'), ('scoring1.2', 'run-scoring1')]
    >>> instances(spec, 1) == [spec]
    True
    """
    if processes == 1:
        return [spec]
    return [replace(spec, name=f"{spec.name}.{n}") for n in range(1, processes + 1)]
