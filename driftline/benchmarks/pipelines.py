"""Pipelines of a benchmarked worker process (``WORKER_PIPELINE=module:callable``).

Both read the phase's topics from :data:`~driftline.benchmarks.cluster.TOPICS_ENV` and run
inside the real runtime (``worker.runner``): the same consumer, micro-batches, producer,
acknowledgements and offset commits as ``driftline worker``.

* :func:`passthrough` - the ceiling: decode every reading strictly (bad records to the DLQ,
  as the scoring pipeline does) and emit one small output per reading, its deterministic
  id, with no state and no model.
* :func:`scoring` - :class:`worker.pipeline.ScoringPipeline` on the phase's topics.
* :func:`free_sensor_models` - the same, with the anomaly and maintenance champions
  answering constants: their windows are cut from state as usual, but no feature is built
  and no forest walked. Every other step is the scoring worker's own (decode, state, risk
  predictions, demand), so its rate bounds what faster sensor models could give row (b).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from driftline.benchmarks.cluster import PhaseTopics
from events import codec_for, derive_id, topics
from events.codec import Codec
from events.dlq import KafkaMessage
from models.base import FitReport, FloatArray, Model, Scores
from models.features.spec import Entities, FeatureSpec
from models.features.stats import TimeArray
from worker.deadletters import DeadLetters
from worker.errors import UnknownStreamError
from worker.pipeline import ScoringPipeline, scoring_pipeline
from worker.records import BatchResult, OutRecord
from worker.serving import Served, Serving

if TYPE_CHECKING:
    import pandas as pd

    from models.cache import ModelCache
    from worker.settings import WorkerSettings

PASSTHROUGH = "passthrough"  # the "model" its output ids are derived for
STAND_IN = "a benchmark's constant stand-in has no training and no files"


class Passthrough:
    """Decode, then one output per reading: ``derive_id(topic, partition, offset)``."""

    def __init__(self, phase: PhaseTopics) -> None:
        self.output = phase.predictions
        self.codecs: dict[str, Codec[Any]] = {
            phase.sensor: codec_for(topics.READINGS_SENSOR),
            phase.demand: codec_for(topics.READINGS_DEMAND),
        }

    def process(self, messages: Sequence[KafkaMessage]) -> BatchResult:
        result = BatchResult()
        dead = DeadLetters(result)
        by_topic: dict[str, list[KafkaMessage]] = {}
        for message in messages:
            by_topic.setdefault(message.topic() or "", []).append(message)
        for topic, group in by_topic.items():
            codec = self.codecs.get(topic)
            if codec is None:
                for message in group:
                    dead.refuse(message, UnknownStreamError(f"no stream reads {topic!r}"))
                continue
            decoded = codec.decode_batch([m.value() for m in group])
            for failure in decoded.failures:
                dead.refuse(group[failure.index], failure.error)
            for index in decoded.indices:
                source = group[index]
                value = derive_id(topic, source.partition() or 0, source.offset() or 0, PASSTHROUGH)
                result.records.append(
                    OutRecord(self.output, source.key(), value.encode(), "prediction")
                )
        return result

    def warm(self, messages: Sequence[KafkaMessage]) -> None:
        """Stateless: nothing to rebuild."""

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Stateless: nothing to drop."""

    def history_needed(self) -> int:
        return 0


def passthrough(settings: WorkerSettings, cache: ModelCache) -> Passthrough:
    """``WORKER_PIPELINE=driftline.benchmarks.pipelines:passthrough``."""
    return Passthrough(PhaseTopics.from_env())


def scoring(settings: WorkerSettings, cache: ModelCache) -> ScoringPipeline:
    """``WORKER_PIPELINE=driftline.benchmarks.pipelines:scoring``."""
    return scoring_pipeline(settings, cache, PhaseTopics.from_env().streams())


def free_sensor_models(settings: WorkerSettings, cache: ModelCache) -> ScoringPipeline:
    """``WORKER_PIPELINE=driftline.benchmarks.pipelines:free_sensor_models``."""
    return scoring_pipeline(settings, cache, PhaseTopics.from_env().streams(), FreeSensorModels)


class FreeSensorModels(Serving):
    """Serves the anomaly and maintenance champions as constants that cost nothing.

    Each keeps its version and its spec's inputs and window, so the state, the windows cut
    for it and the outputs' labels are the champion's; its scores are zeros: no anomaly is
    flagged and every risk is level 0. Challengers score as they would (the benchmark
    registers none).
    """

    def champion(self, name: str, key: str | None = None) -> Served | None:
        served = super().champion(name, key)
        if served is None or name not in (self.routes.anomaly, self.routes.maintenance):
            return served
        return replace(served, model=ConstantScores(), spec=WindowsOnly(served.spec))


class WindowsOnly:
    """A spec with another's inputs and window whose feature rows have no columns."""

    kind: ClassVar[str] = "windows-only"

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec

    @property
    def entity(self) -> str:
        return self.spec.entity

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.spec.inputs

    @property
    def history_needed(self) -> int:
        return self.spec.history_needed

    def names(self) -> list[str]:
        return []

    def rows(self, windows: FloatArray, ts: TimeArray, entities: Entities) -> FloatArray:
        return np.zeros((windows.shape[0], 0))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "of": self.spec.to_dict()}


class ConstantScores(Model):
    """Zeros for every row, in every field an anomaly or maintenance output reads."""

    family: ClassVar[str] = "constant"

    def predict_batch(self, features: FloatArray) -> Scores:
        rows = features.shape[0]
        zeros, levels = np.zeros(rows), np.zeros(rows, dtype=np.int64)
        flags = np.zeros(rows, dtype=np.bool_)
        return Scores(value=zeros, score=zeros, flag=flags, severity=levels, level=levels)

    def fit(self, history: pd.DataFrame) -> FitReport:
        raise TypeError(STAND_IN)

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        raise TypeError(STAND_IN)

    def save(self, directory: Path) -> list[str]:
        raise TypeError(STAND_IN)

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> Model:
        raise TypeError(STAND_IN)
