"""Hot swaps: a thread that follows ``model.updates`` and swaps models off the hot path.

Every worker instance must see every update, so this is a broadcast read, not a shared
one: the thread's consumer joins no group - it ``assign()``s every partition of the topic
itself, starting at the high watermarks read when it starts (explicit offsets, so an update
published after the instance reports ready is never skipped). Older updates are not
replayed: the cache loads the store's current champion on first use anyway, and once
positioned the thread swaps any model loaded earlier whose champion has moved since.

For ``promoted`` and ``rolled_back`` the thread calls ``cache.swap(model, key, version)``,
which loads, verifies and warms the new version while the old one keeps serving, then
swaps atomically. Keys this instance has not loaded are left alone (``load_if_absent=False``):
with a model per product, loading every promoted key into every instance would fill the
cache with models it never serves. A failed load (integrity error, unknown family, broken
files) keeps the old version serving, is logged and counted, and publishes an ``Alert`` of
type ``model``. In every case the pipeline is told (``refresh(model, key)``, when it has
that method) - on the consume thread, between batches, so that the pipeline never needs to
be thread-safe.

Shadow mode: a ``challenger`` update swaps no champion; it loads the version the store's
``challenger`` alias names beside the champion (``cache.sync_challengers``), and the
pipeline scores with both. The trainer announces the end of a shadow run only when it
promotes; a rejection just clears the alias, so the thread reads the aliases of the loaded
challengers again every ``challenger_check_s`` and drops the ones no longer named.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from confluent_kafka import KafkaException, TopicPartition

from events import Alert, ContractError, ModelUpdate, codec_for, derive_id, topics
from events.dlq import SourceRecord
from models.cache import ChallengerSync
from models.versions import LoadedModel
from worker import metrics

log = logging.getLogger(__name__)

# The thread checks for stop between polls; 0.5 s keeps shutdown prompt at no cost.
POLL_S: Final = 0.5
# Metadata and watermark requests at start; retried until the topic exists.
REQUEST_TIMEOUT_S: Final = 10.0
# How long to wait before looking for a missing updates topic again.
RETRY_S: Final = 5.0
# Alert.message holds at most 1024 characters (events.fields.MAX_TEXT_LENGTH).
MAX_ALERT_TEXT: Final = 1024
STOP_TIMEOUT_S: Final = 10.0
# How often the loaded challengers' aliases are read again (WorkerSettings overrides it).
CHALLENGER_CHECK_S: Final = 10.0

ModelKey = tuple[str, str | None]


class SwapCache(Protocol):
    def swap(
        self,
        name: str,
        key: str | None = ...,
        version: int | str | None = ...,
        warmup: Any = ...,
        *,
        load_if_absent: bool = ...,
    ) -> LoadedModel | None: ...

    def peek(self, name: str, key: str | None = ...) -> LoadedModel | None: ...

    def get(self, name: str, key: str | None = ...) -> LoadedModel: ...

    def sync_challengers(self, keys: Iterable[ModelKey] = ...) -> ChallengerSync: ...

    def wait_for_loads(self) -> None: ...

    def served(self) -> dict[ModelKey, int]: ...


AlertSink = Callable[[Alert], None]


class ModelUpdates:
    """Consumes ``model.updates`` on its own thread and applies each update to the cache."""

    def __init__(
        self,
        topic: str,
        cache: SwapCache,
        make_consumer: Callable[[], Any],
        publish_alert: AlertSink,
        instance_id: str,
        preload: Sequence[ModelKey] = (),
        challenger_check_s: float = CHALLENGER_CHECK_S,
    ) -> None:
        self.topic = topic
        self.challenger_check_s = challenger_check_s
        self._next_challenger_check = time.monotonic() + challenger_check_s
        self.cache = cache
        self.instance_id = instance_id
        self.positioned = threading.Event()
        # Set once positioned and every preloaded model is in the cache.
        self.ready = threading.Event()
        self._pending = list(preload)
        self._preloaded = list(preload)
        self._next_preload = 0.0
        self._make_consumer = make_consumer
        self._publish_alert = publish_alert
        self._refreshes: queue.SimpleQueue[ModelKey] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-updates", daemon=True)
        self.error: Exception | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def refreshes(self) -> list[ModelKey]:
        """Model keys changed since the last call (each once), for ``pipeline.refresh``."""
        changed: dict[ModelKey, None] = {}
        while True:
            try:
                changed[self._refreshes.get_nowait()] = None
            except queue.Empty:
                return list(changed)

    def apply(self, update: ModelUpdate, source: SourceRecord) -> str:
        """Swap the cache for one update; returns the outcome (also counted)."""
        # A challenger runs in shadow: the champion entry of the cache stays as it is.
        if update.action == "challenger":
            outcome = "challenger" if self._sync([(update.model, update.key)]) else "failed"
        else:
            outcome = self._swap(update, source)
            self._sync([(update.model, update.key)])  # a promoted challenger leaves the shadow
        metrics.MODEL_SWAPS.labels(update.model, outcome).inc()
        if outcome != "failed":
            self._refreshes.put((update.model, update.key))
        return outcome

    def _swap(self, update: ModelUpdate, source: SourceRecord) -> str:
        label = _label(update.model, update.key)
        try:
            loaded = self.cache.swap(update.model, update.key, update.version, load_if_absent=False)
        except Exception as exc:  # any failure keeps the old version; never kill the thread
            old = self.cache.peek(update.model, update.key)
            serving = f"v{old.version} keeps serving" if old else "nothing cached"
            log.error("%s: swap to v%d failed (%s): %s", label, update.version, serving, exc)
            self._publish_alert(model_alert(update, source, exc, self.instance_id, serving))
            return "failed"
        if loaded is None:
            return "not_cached"
        metrics.record_versions({(update.model, update.key): loaded.version})
        log.info("%s: now serving v%d (%s)", label, loaded.version, update.action)
        return "swapped"

    def _sync(self, keys: Sequence[ModelKey]) -> bool:
        """Load or drop challengers as the store's aliases say; False if any load failed."""
        try:
            sync = self.cache.sync_challengers(keys)
        except Exception:  # the store is unreadable: try again at the next check
            log.exception("cannot read the challenger aliases")
            return False
        for (name, key), version in sync.changed.items():
            label = _label(name, key)
            if version is None:
                log.info("%s: shadow scoring stopped (no longer the challenger)", label)
            else:
                log.info("%s: v%d scores in shadow beside the champion", label, version)
        for (name, key), error in sync.failed.items():
            log.error("%s: challenger not loaded: %s", _label(name, key), error)
        return not sync.failed

    def _run(self) -> None:
        consumer = None
        try:
            consumer = self._make_consumer()
            self._position(consumer)
            while not self._stop.is_set():
                if not self.ready.is_set() and time.monotonic() >= self._next_preload:
                    self._preload()
                if time.monotonic() >= self._next_challenger_check:
                    self._next_challenger_check = time.monotonic() + self.challenger_check_s
                    self._sync(())
                message = consumer.poll(POLL_S)
                if message is not None and message.error() is None:
                    self._handle(message)
        except Exception as exc:  # the runner sees the dead thread and stops the worker
            self.error = exc
            log.exception("model updates consumer failed; hot swaps stopped")
        finally:
            if consumer is not None:
                consumer.close()

    def _position(self, consumer: Any) -> None:
        partitions = self._partitions(consumer)
        if partitions is None:
            return  # stopped before the topic appeared
        assignment = []
        for partition in partitions:
            tp = TopicPartition(self.topic, partition)
            _, high = consumer.get_watermark_offsets(tp, timeout=REQUEST_TIMEOUT_S)
            assignment.append(TopicPartition(self.topic, partition, high))
        consumer.assign(assignment)
        self._catch_up()
        self.positioned.set()

    def _catch_up(self) -> None:
        """Serve the store's champion of every model loaded before the position was taken.

        A model loaded (preloaded, or by the first batches) before the watermarks were read
        serves the champion of its load: a promotion announced in between sits on no offset
        this thread reads. The store says who the champion is now; later promotions are on
        the topic. A load still under way may have read the champion before the position
        was taken: it is waited for, so that it is compared too.
        """
        self.cache.wait_for_loads()
        for name, key in list(self.cache.served()):
            before = self.cache.peek(name, key)
            try:
                loaded = self.cache.swap(name, key, None, load_if_absent=False)
            except Exception as exc:  # the old version keeps serving, as for a failed update
                log.error("%s: cannot load the current champion: %s", _label(name, key), exc)
                metrics.MODEL_SWAPS.labels(name, "failed").inc()
                continue
            if loaded is None or before is None or loaded.version == before.version:
                continue
            metrics.MODEL_SWAPS.labels(name, "swapped").inc()
            metrics.record_versions({(name, key): loaded.version})
            log.info(
                "%s: now serving v%d (promoted during start-up)", _label(name, key), loaded.version
            )
            self._refreshes.put((name, key))

    def _partitions(self, consumer: Any) -> list[int] | None:
        while not self._stop.is_set():
            try:
                metadata = consumer.list_topics(self.topic, timeout=REQUEST_TIMEOUT_S)
            except KafkaException as exc:
                log.warning("cannot describe %s (retrying): %s", self.topic, exc)
            else:
                described = metadata.topics.get(self.topic)
                if described is not None and described.error is None and described.partitions:
                    return sorted(described.partitions)
                log.warning("topic %s not found; hot swaps wait for it", self.topic)
            self._stop.wait(RETRY_S)
        return None

    def _preload(self) -> None:
        """Load the champions to preload; failed ones are tried again every RETRY_S."""
        failed = []
        for name, key in self._pending:
            try:
                loaded = self.cache.get(name, key)
            except Exception as exc:
                failed.append((name, key))
                metrics.MODEL_SWAPS.labels(name, "preload_failed").inc()
                log.error(
                    "cannot preload %s%s (retrying in %.0f s): %s",
                    name,
                    f"[{key}]" if key else "",
                    RETRY_S,
                    exc,
                )
            else:
                metrics.record_versions({(name, key): loaded.version})
        self._pending = failed
        if failed:
            self._next_preload = time.monotonic() + RETRY_S
        elif self.positioned.is_set():
            self._sync(self._preloaded)  # a shadow run in progress when this instance started
            self.ready.set()

    def _handle(self, message: Any) -> None:
        source = SourceRecord.of(message)
        try:
            update = codec_for(topics.MODEL_UPDATES).decode(message.value())
        except ContractError as exc:
            metrics.MODEL_SWAPS.labels("", "invalid").inc()
            log.warning(
                "ignoring invalid update at %s[%d]@%d: %s",
                source.topic,
                source.partition,
                source.offset,
                exc,
            )
            return
        self.apply(update, source)


def _label(name: str, key: str | None) -> str:
    """``name[key]`` for a keyed model, ``name`` alone otherwise (log lines)."""
    return f"{name}[{key}]" if key else name


def parse_model_key(text: str) -> ModelKey:
    """``"demand/p-1"`` -> ``("demand", "p-1")``; ``"anomaly"`` -> ``("anomaly", None)``."""
    name, _, key = text.partition("/")
    return name, key or None


def model_alert(
    update: ModelUpdate, source: SourceRecord, error: BaseException, instance: str, serving: str
) -> Alert:
    """The ``model`` alert for a version that could not be loaded.

    The id derives from the update record, so every instance that fails on the same update
    publishes the same ``alert_id`` and consumers that dedupe see one alert.
    """
    text = f"{instance}: cannot load v{update.version} ({update.action}): {error}; {serving}"
    return Alert(
        alert_id=derive_id(
            source.topic, source.partition, source.offset, update.model, "load_failed"
        ),
        type="model",
        entity_id=update.key or update.model,
        ts=datetime.now(UTC),
        score=1.0,  # one failed load ...
        threshold=0.0,  # ... and any failed load alerts
        severity="high",  # not critical: the previous version keeps serving
        model=update.model,
        version=update.version,
        key=update.key,
        message=text[:MAX_ALERT_TEXT],
    )


class AlertPublisher:
    """Produces alerts and waits for their acknowledgement (a rare, low-volume path)."""

    def __init__(self, producer: Any, topic: str, timeout_s: float) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s

    def __call__(self, alert: Alert) -> None:
        codec = codec_for(topics.ALERTS)
        try:
            self.producer.produce(self.topic, codec.encode(alert), codec.key(alert))
            if self.producer.flush(self.timeout_s):
                log.error("alert %s not acknowledged within %.0f s", alert.alert_id, self.timeout_s)
        except Exception:
            log.exception("could not publish alert %s", alert.alert_id)
