"""End-to-end latency at a fixed offered load.

The scoring worker starts in its steady state: the readings before the paced ones are on
its input topics with the group's offsets committed after them, so on assignment it reads
them back into state (every window full, as after a restart) and scores nothing. Once it
is ready (partitions assigned and warmed, models loaded), one producer publishes readings
at ``rate`` per second: every millisecond it sends the readings due by then (sensor and
demand interleaved in their proportions). A warm-up at the same rate comes first and is
not measured: the clients pay their one-off producer id and topic metadata requests in it
(which would otherwise hold the first readings back and send them as one burst), and the
broker's JVM compiles the code paths of the paced traffic. A freshly started broker spends
more than a core on that compilation for its first ten or so seconds of such traffic,
which on a small machine takes the CPU from the worker; a broker in service has long done
it. When the group has committed every reading, the measured readings and the predictions
are read back and joined on the prediction id, which the worker derives from the reading's
topic, partition and offset (``events.ids``). A reading's latency is its prediction's broker
append time minus its own: from the moment it could be consumed to the moment its output
could be.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from confluent_kafka import Producer

from driftline.benchmarks.cluster import BenchError, Cluster, PhaseTopics
from driftline.benchmarks.usage import Usage
from driftline.benchmarks.workers import Memory, WorkerProcess, WorkerSpec
from driftline.benchmarks.workload import Readings, spread
from driftline.publish import produce_waiting
from events import codec_for, derive_id, topics
from models.base import FloatArray
from models.frames import QUANTITY
from worker.emit import RISK_METRIC
from worker.routes import ModelRoutes

# The producer wakes this often and sends what is due: 5 readings a tick at 5,000/s.
TICK_S: Final = 0.001
# librdkafka's default linger: readings reach the broker in the small batches a fleet of
# producers sends. Latency counts from the broker's append, so the linger is not in it.
LINGER_MS: Final = 5
PERCENTILES: Final = (50.0, 99.0)

Offsets = Mapping[tuple[str, int], int]


@dataclass(frozen=True)
class Latency:
    """Latency percentiles of one paced run, and how well the producer held the rate."""

    offered_per_s: float
    achieved_per_s: float
    readings: int
    matched: int  # readings whose prediction was found
    p50_ms: float
    p99_ms: float
    max_ms: float
    memory: Memory
    usage: Usage  # over the measured readings (from their first to their last commit)
    p99_by_second: list[float] = field(default_factory=list)  # of each second of the run
    # the broker's JIT compilers over the measured readings, in cores (None: not our broker)
    broker_jit_cores: float | None = None

    @property
    def typical_second_p99_ms(self) -> float:
        """The median over the run's seconds of their p99: the tail of a usual second."""
        return float(np.median(self.p99_by_second)) if self.p99_by_second else math.nan


def interleave(readings: Readings, phase: PhaseTopics) -> list[tuple[str, bytes, bytes]]:
    """Both streams in one produce order, each spread evenly over the run."""
    return spread(
        [(phase.sensor, key, value) for key, value in readings.sensor],
        [(phase.demand, key, value) for key, value in readings.demand],
    )


def pace(producer: Producer, records: Sequence[tuple[str, bytes, bytes]], rate: float) -> float:
    """Produce ``records`` at ``rate`` per second; the rate achieved."""
    failures: list[Any] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(error)

    started = time.monotonic()
    sent = 0
    while sent < len(records):
        due = min(len(records), int((time.monotonic() - started) * rate) + 1)
        for topic, key, value in records[sent:due]:
            produce_waiting(producer, topic, value, key, delivered)
        sent = max(sent, due)
        producer.poll(0)
        time.sleep(TICK_S)  # pacing: the next readings are not due yet
    elapsed = time.monotonic() - started
    if producer.flush(60) or failures:
        raise BenchError(f"paced producer: {len(failures)} reading(s) not delivered")
    return len(records) / elapsed


def expected_ids(cluster: Cluster, phase: PhaseTopics, after: Offsets) -> dict[str, int]:
    """Prediction id -> broker time (ms) of every reading at or past the ``after`` offsets."""
    routes = ModelRoutes()
    output_of = {
        phase.sensor: (routes.maintenance, RISK_METRIC),
        phase.demand: (routes.demand, QUANTITY),
    }
    return {
        derive_id(r.topic, r.partition, r.offset, *output_of[r.topic]): r.timestamp_ms
        for r in cluster.read(phase.inputs)
        if r.offset >= after.get((r.topic, r.partition), 0)
    }


def latencies_ms(cluster: Cluster, phase: PhaseTopics, after: Offsets) -> tuple[FloatArray, int]:
    """``[readings, 2]``: broker time of every paced reading whose prediction was found and
    its latency (ms); and how many paced readings there are."""
    born = expected_ids(cluster, phase, after)
    codec = codec_for(topics.PREDICTIONS)
    found = []
    for record in cluster.read([phase.predictions]):
        stamp = born.get(codec.decode(record.value).prediction_id)
        if stamp is not None:
            found.append((stamp, record.timestamp_ms - stamp))
    return np.asarray(found, dtype=np.float64).reshape(-1, 2), len(born)


def p99_per_second(found: FloatArray) -> list[float]:
    """p99 latency of the readings of each second of the run (by the readings' times).

    >>> p99_per_second(np.array([[0, 10], [500, 20], [1000, 40], [2500, 5]], dtype=float))
    [19.9, 40.0, 5.0]
    """
    if not found.size:
        return []
    second = ((found[:, 0] - found[:, 0].min()) // 1000).astype(np.int64)
    return [
        round(float(np.percentile(found[second == s, 1], PERCENTILES[1])), 1)
        for s in np.unique(second).tolist()
    ]


def measure_latency(
    cluster: Cluster,
    spec: WorkerSpec,
    history: Readings,
    primer: Readings,
    paced: Readings,
    rate: float,
    log: Path,
    deadline_s: float,
    broker_jit: Callable[[], float | None] = lambda: None,
) -> Latency:
    """Warm ``spec``'s worker on ``history``, offer ``primer`` then ``paced`` at ``rate``
    per second, join the outputs of ``paced``. ``broker_jit`` reads the CPU seconds of the
    broker's JIT compilers (:func:`driftline.benchmarks.jit.compiler_seconds`)."""
    phase = spec.phase
    cluster.publish(phase.sensor, history.sensor)
    cluster.publish(phase.demand, history.demand)
    cluster.commit(spec.group, cluster.end_offsets(phase.inputs))
    # One producer for both: its own first records wait for its id and the topics' metadata.
    producer = cluster.producer(linger_ms=LINGER_MS)
    with WorkerProcess(spec, cluster.kafka, log) as worker:
        worker.wait_ready()
        if len(primer):
            pace(producer, interleave(primer, phase), rate)
            cluster.wait_committed(spec.group, phase.inputs, deadline_s, worker.check_alive)
        start = cluster.end_offsets(phase.inputs)
        before, compiled, began = worker.sample(), broker_jit(), time.monotonic()
        achieved = pace(producer, interleave(paced, phase), rate)
        cluster.wait_committed(spec.group, phase.inputs, deadline_s, worker.check_alive)
        usage = Usage.between(before, worker.sample(), time.monotonic() - began)
        jit_cores = _share(compiled, broker_jit(), usage.seconds)
        memory = worker.memory()
    found, total = latencies_ms(cluster, phase, start)
    latency = found[:, 1]
    p50, p99 = np.percentile(latency, PERCENTILES).tolist() if latency.size else [math.nan] * 2
    return Latency(
        offered_per_s=rate,
        achieved_per_s=achieved,
        readings=total,
        matched=int(latency.size),
        p50_ms=float(p50),
        p99_ms=float(p99),
        max_ms=float(latency.max()) if latency.size else math.nan,
        memory=memory,
        usage=usage,
        p99_by_second=p99_per_second(found),
        broker_jit_cores=jit_cores,
    )


def _share(before: float | None, after: float | None, seconds: float) -> float | None:
    """CPU seconds between two readings per second of the run (None if either is)."""
    if before is None or after is None or seconds <= 0:
        return None
    return (after - before) / seconds
