"""Pipelines of a benchmarked worker process (``WORKER_PIPELINE=module:callable``).

Both read the phase's topics from :data:`~driftline.benchmarks.cluster.TOPICS_ENV` and run
inside the real runtime (``worker.runner``): the same consumer, micro-batches, producer,
acknowledgements and offset commits as ``driftline worker``.

* :func:`passthrough` - the ceiling: decode every reading strictly (bad records to the DLQ,
  as the scoring pipeline does) and emit one small output per reading, its deterministic
  id, with no state and no model.
* :func:`scoring` - :class:`worker.pipeline.ScoringPipeline` on the phase's topics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from driftline.benchmarks.cluster import PhaseTopics
from events import codec_for, derive_id, topics
from events.codec import Codec
from events.dlq import KafkaMessage
from worker.deadletters import DeadLetters
from worker.errors import UnknownStreamError
from worker.pipeline import ScoringPipeline, scoring_pipeline
from worker.records import BatchResult, OutRecord

if TYPE_CHECKING:
    from models.cache import ModelCache
    from worker.settings import WorkerSettings

PASSTHROUGH = "passthrough"  # the "model" its output ids are derived for


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
