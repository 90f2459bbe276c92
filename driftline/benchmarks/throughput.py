"""Throughput of a worker process over pre-published readings (rows (a) and (b)).

The readings are on the phase's input topics before the worker starts, so producing them
is not measured. The worker joins a fresh group, reads from the earliest offsets and scores
everything; the phase ends when the group has committed every input offset (a committed
offset means the batch's outputs were acknowledged).

Every reading yields exactly one record on the predictions topic (the passthrough's id; the
scoring pipeline's risk prediction per machine reading and demand forecast per product
reading), so those records time the run. The first :data:`SKIPPED_SHARE` of them are left
out (start-up: first fetches, the first predicts); the rate is the rest divided by the span
between the broker append times of the first and the last of them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
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
    """How fast one worker process turned the readings into acknowledged outputs."""

    pipeline: str
    readings: int  # on the input topics
    outputs: int  # records on the predictions topic (one per reading expected)
    all_outputs: int  # records on every output topic (alerts and imputed readings too)
    timed: int  # outputs inside the measured span
    seconds: float  # the measured span
    memory: Memory
    usage: Usage  # from the worker's readiness to its last commit
    host_cores: float | None = None  # the whole host's busy cores over the same time

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
    cluster: Cluster, spec: WorkerSpec, readings: int, log: Path, deadline_s: float
) -> Throughput:
    """Run ``spec``'s worker over its pre-published inputs until all are committed."""
    with WorkerProcess(spec, cluster.kafka, log) as worker:
        worker.wait_ready()
        before, busy, began = worker.sample(), host.busy_seconds(), time.monotonic()
        cluster.wait_committed(spec.group, spec.phase.inputs, deadline_s, worker.check_alive)
        spent = time.monotonic() - began
        usage = Usage.between(before, worker.sample(), spent)
        host_cores = host.cores_between(busy, host.busy_seconds(), spent)
        memory = worker.memory()
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
    )
