"""Hot swaps: a thread that follows ``model.updates`` and swaps models off the hot path.

Every worker instance must see every update, so this is a broadcast read, not a shared
one: the thread's consumer joins no group - it ``assign()``s every partition of the topic
itself, starting at the high watermarks read when it starts (explicit offsets, so an update
published after the instance reports ready is never skipped). Older updates are not
replayed: the cache loads the store's current champion on first use anyway, and once
positioned the thread swaps any model loaded earlier whose champion has moved since.

For ``promoted`` and ``rolled_back`` the thread calls ``cache.swap(model, key)``, which
loads, verifies and warms the store's champion of that moment while the old version keeps
serving, then swaps atomically. The update says which key changed; the store says which
version serves: the registry moves the alias before the update is published, so the store
is never behind an update, and an update read late (a rollback published after it, a
champion loaded lazily in between) cannot bring a superseded version back.

Keys this instance has not loaded are left alone (``load_if_absent=False``): with a model
per product, loading every promoted key into every instance would fill the cache with
models it never serves. A failed load (integrity error, unknown family, broken
files) keeps the old version serving, is logged and counted, and publishes an ``Alert`` of
type ``model``; the key is then tried again, against the store's champion of that moment
(a rollback may have followed), after ``RETRY_S`` and twice as long after each failure up
to ``MAX_RETRY_S``: a store that was briefly unreadable does not leave the instance on the
old version until the next update. Updates are how a change arrives at once, not the only
way: every ``alias_check_s`` the thread also compares each cached key with the store's
champion, so a change whose update never came (an operator's ``--no-announce``, a record
the broker refused) is served within that. In every case the pipeline is told
(``refresh(model, key)``, when it has that method) - on the consume thread, between
batches, so that the pipeline never needs to be thread-safe.

Shadow mode: a ``challenger`` update swaps no champion; an instance that serves the key
loads the version the store's ``challenger`` alias names beside the champion
(``cache.sync_challengers``), and the pipeline scores with both. A key first served later
joins the shadow run at the next check. The trainer announces the end of a shadow run only when it
promotes; a rejection just clears the alias, so the thread reads the aliases of the loaded
challengers again every ``alias_check_s`` and drops the ones no longer named. A
challenger that failed to load is tried again at those checks, with the same growing delays.

Polling errors are counted (``model_updates_errors_total``) and logged at most once a minute
per kind; a fatal one stops the thread, and the runner stops the worker. Partitions added to
the topic while the instance runs are found every ``PARTITION_CHECK_S`` and read from their
start: everything on them is newer than the position taken at start.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

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
# How long to wait before looking for a missing updates topic again, and the first delay
# before a failed swap or challenger load is tried again; each failure doubles it up to
# MAX_RETRY_S.
RETRY_S: Final = 5.0
MAX_RETRY_S: Final = 300.0
# How often the updates topic is described again for partitions added while running.
PARTITION_CHECK_S: Final = 60.0
# A polling error of one kind is logged at most this often (every one is counted).
ERROR_LOG_S: Final = 60.0
# Alert.message holds at most 1024 characters (events.fields.MAX_TEXT_LENGTH).
MAX_ALERT_TEXT: Final = 1024
STOP_TIMEOUT_S: Final = 10.0
# How often the loaded challengers' aliases are read again (WorkerSettings overrides it).
ALIAS_CHECK_S: Final = 10.0

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


@dataclass
class Retries:
    """Model keys whose last load failed, and when each is due to be tried again.

    The first delay is ``first_s``; every further failure of the key doubles it, up to
    ``max_s``. A success forgets the key.
    """

    first_s: float = RETRY_S
    max_s: float = MAX_RETRY_S
    _due: dict[ModelKey, tuple[float, float]] = field(default_factory=dict)

    def failed(self, model_key: ModelKey, now: float, *, again: bool = True) -> float:
        """Note a failure (``again=False``: a new cause, start over); returns the delay."""
        previous = self._due.get(model_key) if again else None
        delay = self.first_s if previous is None else min(previous[1] * 2, self.max_s)
        self._due[model_key] = (now + delay, delay)
        return delay

    def succeeded(self, model_key: ModelKey) -> None:
        self._due.pop(model_key, None)

    def due(self, now: float) -> list[ModelKey]:
        return [model_key for model_key, (at, _) in self._due.items() if at <= now]

    def keys(self) -> list[ModelKey]:
        return list(self._due)


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
        alias_check_s: float = ALIAS_CHECK_S,
    ) -> None:
        self.topic = topic
        self.alias_check_s = alias_check_s
        self._next_alias_check = time.monotonic() + alias_check_s
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
        # Swaps and challenger loads that failed, to be tried again.
        self.retries = Retries()
        self.challenger_retries = Retries()
        self._assigned: set[int] = set()
        self._next_partition_check = 0.0
        self._error_logged: dict[str, float] = {}
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
            # The update names the key that changed; the store names what serves now. An
            # update read late (a rollback has followed it) must not bring its version back.
            loaded = self.cache.swap(update.model, update.key, None, load_if_absent=False)
        except Exception as exc:  # any failure keeps the old version; never kill the thread
            old = self.cache.peek(update.model, update.key)
            serving = f"v{old.version} keeps serving" if old else "nothing cached"
            delay = self.retries.failed((update.model, update.key), time.monotonic(), again=False)
            log.error(
                "%s: swap to v%d failed (%s; trying the champion again in %.0f s): %s",
                label,
                update.version,
                serving,
                delay,
                exc,
            )
            self._publish_alert(model_alert(update, source, exc, self.instance_id, serving))
            return "failed"
        self.retries.succeeded((update.model, update.key))
        if loaded is None:
            return "not_cached"
        metrics.record_versions({(update.model, update.key): loaded.version})
        if loaded.version != update.version:
            log.info(
                "%s: now serving v%d, the champion since v%d was %s",
                label,
                loaded.version,
                update.version,
                update.action,
            )
        else:
            log.info("%s: now serving v%d (%s)", label, loaded.version, update.action)
        return "swapped"

    def _sync(self, keys: Sequence[ModelKey]) -> bool:
        """Load or drop challengers as the store's aliases say; False if any load failed.

        Keys that fail are tried again at a later check (``challenger_retries``).
        """
        now = time.monotonic()
        try:
            sync = self.cache.sync_challengers(keys)
        except Exception:  # the store is unreadable: try again at a later check
            log.exception("cannot read the challenger aliases")
            for model_key in keys:
                self.challenger_retries.failed(model_key, now)
            return False
        for model_key in keys:
            if model_key not in sync.failed:
                self.challenger_retries.succeeded(model_key)
        for model_key in sync.failed:
            self.challenger_retries.failed(model_key, now)
        for (name, key), version in sync.changed.items():
            label = _label(name, key)
            if version is None:
                log.info("%s: shadow scoring stopped (no longer the challenger)", label)
            else:
                log.info("%s: v%d scores in shadow beside the champion", label, version)
                self._refreshes.put((name, key))  # its window may be longer
        for (name, key), error in sync.failed.items():
            log.error("%s: challenger not loaded: %s", _label(name, key), error)
        return not sync.failed

    def _run(self) -> None:
        consumer = None
        try:
            consumer = self._make_consumer()
            self._position(consumer)
            while not self._stop.is_set():
                self._housekeeping(consumer, time.monotonic())
                message = consumer.poll(POLL_S)
                if message is None:
                    continue
                if message.error() is not None:
                    self._poll_error(message.error())
                else:
                    self._handle(message)
        except Exception as exc:  # the runner sees the dead thread and stops the worker
            self.error = exc
            log.exception("model updates consumer failed; hot swaps stopped")
        finally:
            if consumer is not None:
                consumer.close()

    def _housekeeping(self, consumer: Any, now: float) -> None:
        """Between polls: preloads, alias checks, retries and new partitions, when due."""
        if not self.ready.is_set() and now >= self._next_preload:
            self._preload()
        if now >= self._next_alias_check:
            self._next_alias_check = now + self.alias_check_s
            self._sync(self.challenger_retries.due(now))
            self.check_champions(now)
        self.retry_swaps(now)
        if self.positioned.is_set() and now >= self._next_partition_check:
            self._next_partition_check = now + PARTITION_CHECK_S
            self._assign_new_partitions(consumer)

    def check_champions(self, now: float) -> None:
        """Serve the store's champion of every cached key whose alias moved unannounced.

        An update can be lost (an operator's change made with ``--no-announce``, or its
        record refused); the store is the truth. Keys waiting for a retry are left to it.
        """
        if not self.positioned.is_set():
            return  # _catch_up does this once the position is taken
        retrying = set(self.retries.keys())
        for model_key in self.cache.served():
            if model_key not in retrying:
                self._serve_champion(model_key, "the store's champion changed", now)

    def retry_swaps(self, now: float) -> None:
        """Serve the store's champion of every key whose swap failed and is due again."""
        for model_key in self.retries.due(now):
            self._serve_champion(model_key, "after a failed swap", now)

    def _poll_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        metrics.UPDATES_ERRORS.labels(error.name()).inc()
        now = time.monotonic()
        if now >= self._error_logged.get(error.name(), 0.0):
            self._error_logged[error.name()] = now + ERROR_LOG_S
            log.warning("polling %s: %s (logged at most once a minute)", self.topic, error)

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
        self._assigned = set(partitions)
        self._next_partition_check = time.monotonic() + PARTITION_CHECK_S
        self._catch_up()
        self.positioned.set()

    def _assign_new_partitions(self, consumer: Any) -> None:
        """Read partitions added to the topic since it was positioned, from their start."""
        try:
            described = consumer.list_topics(self.topic, timeout=POLL_S).topics.get(self.topic)
        except KafkaException as exc:  # the broker is away: the next check asks again
            log.debug("cannot describe %s: %s", self.topic, exc)
            return
        if described is None or described.error is not None:
            return
        added = sorted(set(described.partitions) - self._assigned)
        if added:
            consumer.incremental_assign(
                [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in added]
            )
            self._assigned.update(added)
            log.info("%s: reading partitions %s added since start", self.topic, added)

    def _catch_up(self) -> None:
        """Serve the store's champion of every model loaded before the position was taken.

        A model loaded (preloaded, or by the first batches) before the watermarks were read
        serves the champion of its load: a promotion announced in between sits on no offset
        this thread reads. The store says who the champion is now; later promotions are on
        the topic. A load still under way may have read the champion before the position
        was taken: it is waited for, so that it is compared too.
        """
        self.cache.wait_for_loads()
        for model_key in list(self.cache.served()):
            self._serve_champion(model_key, "promoted during start-up", time.monotonic())

    def _serve_champion(self, model_key: ModelKey, why: str, now: float) -> None:
        """Swap a cached key to the store's current champion; a failure is tried again."""
        name, key = model_key
        before = self.cache.peek(name, key)
        try:
            loaded = self.cache.swap(name, key, None, load_if_absent=False)
        except Exception as exc:  # the old version keeps serving, as for a failed update
            delay = self.retries.failed(model_key, now)
            metrics.MODEL_SWAPS.labels(name, "failed").inc()
            log.error(
                "%s: cannot load the current champion (trying again in %.0f s): %s",
                _label(name, key),
                delay,
                exc,
            )
            return
        self.retries.succeeded(model_key)
        if loaded is None or before is None or loaded.version == before.version:
            return
        metrics.MODEL_SWAPS.labels(name, "swapped").inc()
        metrics.record_versions({model_key: loaded.version})
        log.info("%s: now serving v%d (%s)", _label(name, key), loaded.version, why)
        self._refreshes.put(model_key)

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
