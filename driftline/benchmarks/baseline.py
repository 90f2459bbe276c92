"""The scoring pipeline in this process, without a broker: per message and batched.

Row (c), the per-message baseline, is what a naive service does: every reading is scored
on its own (``process`` of a one-record batch: its features, one predict with one row per
model, its outputs), each model through its library's own API (scikit-learn's
``decision_function`` and ``predict_proba``, CatBoost's ``predict``). The same one-record
batches through driftline's own forest scorers (``models.forest``) show what is left of
the per-message cost once the libraries' per-call overhead is gone. Both are measured
in-process on a sample because they are far slower than the worker; leaving out the Kafka
round trips a real per-message service would add only flatters them. The same readings in
the worker's micro-batches give the batched in-process rate: what the pipeline costs before
the runtime and the broker take their share.

Every run first pushes the readings before the sample into state (every window as full as
in a running worker) and scores one batch untimed (models loaded, first predicts done).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from driftline.benchmarks.workload import Encoded, Readings, spread
from events import topics
from events.dlq import KafkaMessage
from models.anomaly import AnomalyModel
from models.cache import ModelCache
from models.maintenance import MaintenanceModel
from models.store import ModelStore
from models.versions import LoadedModel
from worker.pipeline import ScoringPipeline
from worker.records import add_seconds
from worker.replay import Record, partition_of

# Every champion fits many times over; the figure must not include evictions.
CACHE_BYTES: Final = 512 * 1024 * 1024


@dataclass(frozen=True)
class InProcess:
    """``messages`` readings processed in batches of ``batch_size`` in ``seconds``.

    ``feature_seconds`` and ``model_seconds``: per model, the time its feature rows and its
    predicts took in that pass (as the worker books them; on the thread that scored it).
    """

    messages: int
    batch_size: int
    seconds: float
    feature_seconds: dict[str, float] = field(default_factory=dict)
    model_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")

    @property
    def feature_us(self) -> float:
        """Feature rows of every model, in µs a reading.

        >>> InProcess(1000, 500, 0.02, {"anomaly": 0.003, "maintenance": 0.005}).feature_us
        8.0
        """
        return self._us(self.feature_seconds)

    @property
    def predict_us(self) -> float:
        """Predicts of every model, in µs a reading."""
        return self._us(self.model_seconds)

    def _us(self, spent: dict[str, float]) -> float:
        return 1e6 * sum(spent.values()) / self.messages if self.messages else float("nan")


@dataclass(frozen=True)
class Consumed:
    """Readings as consumed records (in-process partitions), history then the sample."""

    history: list[KafkaMessage]
    sample: list[KafkaMessage]


def consumed(readings: Readings, sample: int, partitions: int) -> Consumed:
    """The last ``sample`` readings (both streams, in proportion) after the rest.

    The sample mixes the streams evenly, as a worker's batches of both topics do: a batch
    pays the fixed cost of both pipelines.
    """
    sensor = _records(readings.sensor, topics.READINGS_SENSOR, partitions)
    demand = _records(readings.demand, topics.READINGS_DEMAND, partitions)
    tail = readings.head(min(sample, len(readings)))
    cut_sensor, cut_demand = len(sensor) - len(tail.sensor), len(demand) - len(tail.demand)
    return Consumed(
        history=[*sensor[:cut_sensor], *demand[:cut_demand]],
        sample=spread(sensor[cut_sensor:], demand[cut_demand:]),
    )


def measure_in_process(
    store: Path, data: Consumed, batch_size: int, repeats: int = 1, *, library: bool = False
) -> InProcess:
    """Best of ``repeats`` passes of ``process`` over the sample in ``batch_size`` batches.

    With ``library`` the forests score through scikit-learn's own API, as a service that
    calls the library does.
    """
    best: InProcess | None = None
    first, timed = _primer(data.sample)
    for _ in range(repeats):
        pipeline = _pipeline(store, library)
        pipeline.warm(data.history)
        pipeline.process(first)  # untimed: loads the models, first predicts
        features: dict[str, float] = {}
        models: dict[str, float] = {}
        started = time.perf_counter()
        for start in range(0, len(timed), batch_size):
            result = pipeline.process(timed[start : start + batch_size])
            add_seconds(features, result.feature_seconds)
            add_seconds(models, result.model_seconds)
        elapsed = time.perf_counter() - started
        if best is None or elapsed < best.seconds:
            best = InProcess(len(timed), batch_size, elapsed, features, models)
    if best is None:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    return best


def _primer(sample: Sequence[KafkaMessage]) -> tuple[list[KafkaMessage], list[KafkaMessage]]:
    """The first reading of each stream (scored untimed) and the rest of the sample."""
    firsts: dict[str, int] = {}
    for index, message in enumerate(sample):
        firsts.setdefault(message.topic() or "", index)
    chosen = set(firsts.values())
    first = [sample[i] for i in sorted(chosen)]
    rest = [m for i, m in enumerate(sample) if i not in chosen]
    return first, rest


def _pipeline(store: Path, library: bool) -> ScoringPipeline:
    models = ModelStore(store)
    warmup = score_with_library if library else None
    return ScoringPipeline(models, ModelCache(models, CACHE_BYTES, warmup))


def score_with_library(loaded: LoadedModel) -> None:
    """A loaded forest scores through scikit-learn (CatBoost models always use their own)."""
    if isinstance(loaded.model, AnomalyModel | MaintenanceModel):
        loaded.model.score_with_library()


def _records(encoded: Encoded, topic: str, partitions: int) -> list[KafkaMessage]:
    offsets = [0] * partitions
    records: list[KafkaMessage] = []
    for key, value in encoded:
        partition = partition_of(key.decode(), partitions)
        records.append(Record(topic, partition, offsets[partition], key, value))
        offsets[partition] += 1
    return records
