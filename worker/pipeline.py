"""The worker's scoring pipeline: a consumed micro-batch in, the records to produce out.

:class:`ScoringPipeline` implements ``worker.records.Pipeline`` without any Kafka client:

* ``process``: decode (refused records to ``dlq.<topic>``), push every reading into its
  entity's window, score each served model once over the batch, encode the outputs. The
  demand readings score while the helper thread scores the sensor readings' maintenance.
* ``warm``: push history read back on assignment into state; emits nothing, and records
  that fail to decode are skipped (they were dead-lettered when first processed).
* ``forget``: drop the state of entities on revoked partitions.
* ``history_needed``: readings per entity the served models' windows need.
* ``refresh``: after a ``model.updates`` swap, serve the named key; True when the state
  must be read back again (``forget`` + ``warm``) because a window grew.
* ``relist``: once model updates are followed, serve keys first promoted before that.
* ``output_topics``: the topics it writes (checked at start, ``worker.preflight``).
* ``close``: stop the helper thread (a second scoring thread); the runtime calls it last.

State only moves forward: a reading is scored once, when it is newer than its entity's
last one. To score a batch again after its outputs were lost (an aborted transaction),
``forget`` its partitions and ``warm`` them up to the batch first, as a restarted worker
would. A restarted worker warmed with the history before its committed offsets (at least
``history_needed`` readings per entity) produces exactly the outputs an uninterrupted
one would have.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from events import topics
from events.dlq import KafkaMessage
from models import jit
from models.store import ModelStore
from worker import rings
from worker.deadletters import DeadLetters
from worker.demand import DemandStream
from worker.emit import Emitter
from worker.intake import Intake
from worker.limits import DEFAULT_MAX_ENTITIES, DEFAULT_MAX_FUTURE_S, DEFAULT_SCORING_THREADS
from worker.preflight import OutputTopics
from worker.records import BatchResult
from worker.routes import STREAMS, ModelRoutes, StreamKind, StreamTopics
from worker.sensors import SensorStream
from worker.serving import ModelSource, Serving

if TYPE_CHECKING:
    from models.cache import ModelCache
    from worker.settings import WorkerSettings


class ScoringPipeline:
    """Scores sensor and demand readings with the champions of a model store."""

    def __init__(
        self,
        store: ModelStore,
        cache: ModelSource,
        *,
        streams: StreamTopics | None = None,
        routes: ModelRoutes | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_future_s: float = DEFAULT_MAX_FUTURE_S,
        max_entities: int = DEFAULT_MAX_ENTITIES,
        scoring_threads: int = DEFAULT_SCORING_THREADS,
        serving: type[Serving] = Serving,
    ) -> None:
        self.streams = streams or StreamTopics()
        self.serving = serving(store, cache, routes or ModelRoutes(), clock)
        emitter = Emitter(self.streams)
        self._helper = None
        if scoring_threads > 1:
            self._helper = ThreadPoolExecutor(scoring_threads - 1, thread_name_prefix="scoring")
        self.sensor = SensorStream(self.serving, emitter, max_entities, self._helper)
        self.demand = DemandStream(self.serving, emitter, max_entities)
        self._intake = Intake(self.streams, max_future_s)
        jit.warm()  # compiled features and forests, before the first batch
        rings.warm()

    def process(self, messages: Sequence[KafkaMessage]) -> BatchResult:
        """Outputs of one consumed batch; bad records become DLQ records, never errors."""
        result = BatchResult()
        dead = DeadLetters(result)
        decoded = self._intake.read(messages, dead)
        finish_sensor = None
        if decoded.sensor:
            # demand scores here while the helper thread scores maintenance
            finish_sensor = self.sensor.start(decoded.sensor, result, dead)
        try:
            if decoded.demand:
                self.demand.process(decoded.demand, result, dead)
        finally:  # the helper's work for this batch ends with the batch, whatever happens
            if finish_sensor is not None:
                finish_sensor()
        return result

    def warm(self, messages: Sequence[KafkaMessage]) -> None:
        """Feed history into state (in offset order per partition), emitting nothing."""
        decoded = self._intake.read(messages, None)
        if decoded.sensor:
            self.sensor.warm(decoded.sensor)
        if decoded.demand:
            self.demand.warm(decoded.demand)

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Drop the state of every entity last seen on one of ``partitions``."""
        self.sensor.state.forget(partitions)
        self.demand.state.forget(partitions)

    def history_needed(self, topic: str | None = None) -> int:
        """Readings per entity to read back: for ``topic``, or the most any stream needs."""
        stream = None if topic is None else self.streams.stream_of(topic)
        if stream is not None:
            return self.serving.needed(stream)
        return max(self.serving.needed(kind) for kind in STREAMS)

    def refresh(self, name: str, key: str | None) -> bool:
        """Serve ``name``/``key`` (promoted or rolled back) from the next batch on.

        Returns True when its window is longer than the history read back into state (the
        state is shorter, or a batch already saw the new model and lengthened it): the
        caller should then ``forget`` and ``warm`` the assigned partitions again for exact
        windows (until then the state keeps what it has and grows as readings arrive).
        """
        stream = self.serving.routes.stream_of(name)
        if stream is None:  # a model this pipeline does not serve
            return False
        self.serving.refresh(name, key)
        return self._short_of_history(stream)

    def relist(self) -> bool:
        """Serve the keys whose first champion came before model updates were followed;
        True when their windows are longer than the state holds (as for ``refresh``)."""
        self.serving.relist()
        return any([self._short_of_history(stream) for stream in STREAMS])  # both flags taken

    def output_topics(self) -> OutputTopics:
        """Outputs and the dead-letter topic of every input; the shadow topic apart."""
        streams = self.streams
        dead = tuple(topics.dlq_topic(t) for t in (*streams.sensor, *streams.demand))
        return OutputTopics(
            required=(streams.predictions, streams.alerts, streams.imputed, *dead),
            shadow=(streams.shadow,),
        )

    def close(self) -> None:
        """Stop the helper thread once the batch in flight is done; later batches score
        on the caller's thread alone."""
        if self._helper is not None:
            self._helper.shutdown(wait=True)
            self._helper = None
            self.sensor.helper = None

    def _short_of_history(self, stream: StreamKind) -> bool:
        return (self.sensor if stream == "sensor" else self.demand).take_short()


def build_pipeline(settings: WorkerSettings, cache: ModelCache) -> ScoringPipeline:
    """The pipeline of ``WorkerSettings`` (the runtime's default ``pipeline`` factory)."""
    streams = StreamTopics.for_inputs(
        settings.input_topics,
        settings.streams,
        predictions=settings.predictions_topic,
        alerts=settings.alerts_topic,
        imputed=settings.imputed_topic,
        shadow=settings.shadow_topic,
    )
    return scoring_pipeline(settings, cache, streams)


def scoring_pipeline(
    settings: WorkerSettings,
    cache: ModelCache,
    streams: StreamTopics,
    serving: type[Serving] = Serving,
) -> ScoringPipeline:
    """The pipeline of ``settings`` (store, bounds) reading and writing ``streams``;
    ``serving`` resolves the models that serve each batch."""
    return ScoringPipeline(
        ModelStore(settings.model_store),
        cache,
        streams=streams,
        max_future_s=settings.max_future_s,
        max_entities=settings.max_entities,
        scoring_threads=settings.scoring_threads,
        serving=serving,
    )
