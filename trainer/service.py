"""The trainer's loop: consume requests (and health), queue jobs, run scheduled checks.

The loop thread owns the group consumer and does only quick things, so it polls every
``poll_timeout_s`` whatever a job is doing:

* a ``RetrainRequest``: a seen ``request_id`` (pending or handled) does nothing; a new one
  is written to the state file as a pending job, then the offset is committed (a crash in
  between replays the request, which is then a duplicate), then queued for the job thread;
* a ``ModelHealth`` (shadow mode): fed to the shadow tracker; a verdict that is due is
  queued for the job thread;
* every ``check_interval_s``: a scheduled check is queued for the job thread.

Jobs run on one job thread (``trainer.jobs``). At start, pending jobs of the previous run
are queued again: an attempt cut short by a crash counts (``max_attempts`` bounds the
retries), one cut short by a graceful stop does not. One trainer is active per store: a
second instance waits on the state directory's lock and takes over when the first exits.

Why confluent-kafka rather than faust: the trainer's state is a few kilobytes and its
volume a handful of records a day, so faust's tables and agents would bring an asyncio
runtime around work that is blocking (CPU-bound training in a thread); replays by time need
``offsets_for_times`` on a plain consumer anyway, and a plain poll loop with manual commits
is easy to reason about on any Kafka-compatible broker.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, KafkaException

from events import ContractError, codec_for, topics
from events.settings import KafkaSettings
from models.registry import Registry
from models.registry_errors import RegistryError
from trainer import metrics
from trainer.checks import ScheduledCheck
from trainer.data import TrainingData
from trainer.errors import StateError
from trainer.jobs import JobRunner, Work
from trainer.lineage import parse_time
from trainer.retraining import Clock, Retrainer, utc_now
from trainer.retries import JobRetries
from trainer.settings import TrainerSettings
from trainer.shadow import ShadowTracker, ShadowVerdict, settle
from trainer.state import DecisionRecord, Job, TrainerState, model_label, single_instance
from trainer.updates import Announcer, UpdatePublisher
from worker.http import Health, HealthServer

log = logging.getLogger(__name__)

# Records per poll: requests and health reports are rare; this only bounds one step.
POLL_RECORDS: Final = 100
ACTOR: Final = "driftline-trainer"


class TrainerService:
    """Consume, decide, train, validate, promote: ``driftline trainer``."""

    def __init__(
        self,
        settings: TrainerSettings,
        kafka: KafkaSettings,
        *,
        clock: Clock = utc_now,
        announcer: Announcer | None = None,
        serve_http: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.state = TrainerState.load(
            settings.state_path, settings.processed_kept, settings.decisions_kept
        )
        self.registry = Registry(settings.model_store, actor=ACTOR)
        self.data = TrainingData(settings, lambda: Consumer(settings.reader_config(kafka)))
        self.announcer = announcer or UpdatePublisher(
            kafka, settings.updates_topic, settings.publish_timeout_s
        )
        self.retrainer = Retrainer(
            settings, self.registry, self.data, self.announcer, self.state, clock
        )
        self.checks = ScheduledCheck(settings, self.registry, self.data, self.state)
        self.shadow = ShadowTracker(settings.shadow_min_pairs, settings.shadow_margin)
        self.runner = JobRunner()
        self.health = Health(settings.liveness_timeout_s)
        self.server = (
            HealthServer(self.health, settings.http_host, settings.http_port)
            if serve_http
            else None
        )
        self._consumer: Any = Consumer(settings.consumer_config(kafka))
        self._stop = threading.Event()
        self._next_check = time.monotonic()
        self._check_queued = threading.Event()
        self.retries = JobRetries(settings, self._submit, self._stop)
        self.fatal: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> None:
        """Serve until stopped; the clients are always closed."""
        with single_instance(self.settings.state_path.parent):
            self.state.reload()  # a standby instance loaded it before the lock was free
            if self.server is not None:
                self.server.start()
            self.runner.start()
            self._recover()
            subscribed = [self.settings.requests_topic]
            if self.settings.shadow:
                subscribed.append(self.settings.health_topic)
            self._consumer.subscribe(subscribed, on_assign=self._assigned, on_revoke=self._revoked)
            self.health.set_models_ready(True)  # nothing to load: models load per job
            log.info(
                "trainer consuming %s in group %s", ", ".join(subscribed), self.settings.group_id
            )
            try:
                while not self._stop.is_set():
                    self.step()
            finally:
                self.close()
        if self.fatal is not None:
            raise StateError(f"the trainer stopped: {self.fatal}") from self.fatal

    def close(self) -> None:
        """Let the job in flight finish (bounded), leave the group, stop the helpers."""
        self.health.set_stopping()
        self.retries.cancel()
        unfinished = self.runner.stop(self.settings.shutdown_timeout_s)
        if unfinished is not None and unfinished.job_id is not None:
            log.warning(
                "job %s interrupted by the stop; it runs again at the next start", unfinished.job_id
            )
            self.state.release(unfinished.job_id)
        for name, action in (
            ("consumer close", self._consumer.close),
            ("announcer close", getattr(self.announcer, "close", None)),
            ("http stop", self.server.stop if self.server else None),
        ):
            if action is None:
                continue
            try:
                action()
            except Exception:
                log.exception("shutdown step %r failed", name)

    def _assigned(self, _consumer: Any, partitions: list[Any]) -> None:
        self.health.set_assigned(len(partitions))

    def _revoked(self, _consumer: Any, _partitions: list[Any]) -> None:
        self.health.set_assigned(0)

    # -- the loop ------------------------------------------------------------------------
    def step(self) -> int:
        """Poll once, handle what arrived, commit; queue a check when one is due."""
        messages = self._consumer.consume(
            num_messages=POLL_RECORDS, timeout=self.settings.poll_timeout_s
        )
        self.health.polled()
        handled = 0
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", error)
                continue
            if message.topic() == self.settings.requests_topic:
                self._request(message.value())
            else:
                self._health(message.value(), message.timestamp()[1])
            handled += 1
        if handled:
            self._commit()
        self._maybe_check()
        metrics.JOBS_QUEUED.set(len(self.runner))
        if self.fatal is not None:
            self.stop()
        return handled

    def _commit(self) -> None:
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            # the requests are in the state file: a replay after a failed commit is deduplicated
            log.warning("offset commit failed: %s", exc)

    def _request(self, value: bytes | None) -> None:
        try:
            request = codec_for(topics.RETRAIN_REQUESTS).decode(value)
        except ContractError as exc:
            metrics.REQUESTS.labels("invalid").inc()
            log.warning("ignoring a retrain request that breaks its contract: %s", exc)
            return
        job = Job(
            job_id=request.request_id,
            model=request.model,
            key=request.key,
            trigger="request",
            action=request.action,
            reason=request.reason,
            evidence=dict(request.evidence),
        )
        if not self.state.enqueue(job):
            metrics.REQUESTS.labels("duplicate").inc()
            log.info("request %s for %s was seen before; nothing to do", job.job_id, job.label)
            return
        metrics.REQUESTS.labels("accepted").inc()
        log.info("request %s: %s %s (%s)", job.job_id, job.action, job.label, job.reason)
        self._submit(job)

    def _health(self, value: bytes | None, produced_ms: int) -> None:
        try:
            health = codec_for(topics.MODEL_HEALTH).decode(value)
            aliases = self.registry.aliases(health.model, health.key)
        except (ContractError, RegistryError, OSError) as exc:
            # An unreadable store (EIO, EACCES) must not stop the loop: the verdict is
            # reached again on a later health record.
            log.debug("health record skipped: %s", exc)
            return
        since = parse_time(self.state.model_value(health.model, health.key, "challenger_since"))
        # When the monitor measured it (wall clock, as ``since``); health.ts is event time.
        measured = datetime.fromtimestamp(produced_ms / 1000, UTC) if produced_ms > 0 else None
        verdict = self.shadow.observe(health, aliases, since, measured)
        if verdict is not None:
            self.runner.submit(Work(verdict.job_id, lambda: self._settle(verdict)))

    def _maybe_check(self) -> None:
        interval = self.settings.check_interval_s
        if interval <= 0 or self._check_queued.is_set() or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + interval
        self._check_queued.set()
        self.runner.submit(Work("scheduled check", self._check))

    # -- work on the job thread ----------------------------------------------------------
    def _recover(self) -> None:
        pending = self.state.pending()
        if pending:
            # A job killed inside a registry write may have left a champion without its
            # history line or scratch files; resuming only re-announces, so repair now.
            try:
                self.registry.gc()
            except RegistryError:
                log.exception("repairing the model store after a stop failed")
        self._announce_noted()
        for job in pending:
            if job.attempts >= self.settings.max_attempts:
                reason = f"gave up: {job.attempts} attempt(s) were interrupted ({job.stage})"
                self._finish(DecisionRecord.unfinished(job, "abandoned", reason))
            else:
                log.info(
                    "job %s for %s resumes (attempt %d)", job.job_id, job.label, job.attempts + 1
                )
                self._submit(job)

    def _submit(self, job: Job) -> None:
        self.runner.submit(
            Work(f"{job.label} ({job.trigger})", lambda: self._run_job(job.job_id), job.job_id)
        )

    def _run_job(self, job_id: str) -> None:
        job = next((j for j in self.state.pending() if j.job_id == job_id), None)
        if job is None:
            return
        started = time.monotonic()
        metrics.JOB_RUNNING.set(1)
        try:
            record = self.retrainer.run(job)
        except StateError as exc:
            self.fatal = exc
            return
        except Exception as exc:
            if self.retries.wait_if_unavailable(job, exc, self.state.release):
                return
            log.exception("job %s for %s failed", job_id, job.label)
            attempts = next((j.attempts for j in self.state.pending() if j.job_id == job_id), 0)
            if attempts < self.settings.max_attempts and not self._stop.is_set():
                self.retries.later(job, attempts)
                return
            record = DecisionRecord.unfinished(
                replace(job, attempts=attempts),
                "failed",
                f"failed after {attempts} attempt(s): {exc}",
            )
        finally:
            metrics.JOB_RUNNING.set(0)
        metrics.JOB_SECONDS.labels(job.model, record.action).observe(time.monotonic() - started)
        self._finish(record)

    def _finish(self, record: DecisionRecord) -> None:
        self.retries.forget(record.job_id)
        try:
            self.state.finish(record)
        except StateError as exc:
            self.fatal = exc
            return
        metrics.DECISIONS.labels(record.model, record.action, record.outcome).inc()
        label = model_label(record.model, record.key)
        log.info("%s: %s -> %s: %s", label, record.action, record.outcome, record.reason)

    def _announce_noted(self) -> None:
        """Announce registry changes a stop or a broker outage left unannounced."""
        try:
            self.retrainer.outbox.flush()
        except Exception:  # the next scheduled check tries again
            log.exception("announcing noted registry changes failed")

    def _check(self) -> None:
        self._announce_noted()
        try:
            jobs = self.checks.run(self.clock())
        except Exception:
            log.exception("scheduled check failed")
            return
        finally:
            self._check_queued.clear()
        for job in jobs:
            if self.state.enqueue(job):
                self._submit(job)
        metrics.CHECKS.inc()
        metrics.LAST_CHECK.set_to_current_time()

    def _settle(self, verdict: ShadowVerdict) -> None:
        try:
            record = settle(verdict, self.registry, self.announcer, self.state)
            if record is not None:
                self.state.record(record)
                metrics.DECISIONS.labels(record.model, record.action, record.outcome).inc()
        except Exception:
            log.exception("shadow verdict for %s failed", verdict.job_id)
        finally:
            self.shadow.settled(verdict)
