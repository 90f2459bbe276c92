"""One job from decision to announcement: decide, replay, train, register, validate, promote.

Stages (recorded in the state file, shown by ``driftline trainer status``)::

    decide -> replay -> fit -> validate -> announce (promoted | challenger), or reject

* **decide**: the rules (``trainer.rules``) on the job's trigger and the registry lineage.
* **replay**: the window ``[end - window_days, end]`` of the model's readings; ``end`` is
  fixed at the job's first attempt, so a retried job sees the same data. The most recent
  ``holdout_fraction`` of it (by time) is held out; the candidate trains on the rest (a
  fine-tune on its last ``fine_tune_days``).
* **fit**: ``trainer.candidate``; skipped when an earlier attempt of the job registered its
  candidate already.
* **validate**: ``trainer.gate`` on the candidate as loaded back through the registry.
* **announce**: registry champion (or challenger in shadow mode), then a ``ModelUpdate``,
  through ``trainer.outbox`` so that the update goes out even if the trainer stops between
  the two. A losing candidate is recorded in the registry with ``reject`` and both figures.

A job that runs again after a stop first looks for the candidate an earlier attempt
registered: one already promoted (or made challenger) ends the job, announced if the outbox
still holds its note, before the rules run - they would now find the evidence stale, the
new version serving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from events.lifecycle import UpdateAction
from models.base import Model, ModelError
from models.frames import TS
from models.registry import Registry
from models.registry_errors import RegistryError
from trainer import metrics
from trainer.candidate import (
    Plan,
    earlier_candidate,
    job_marker,
    settled,
    train_candidate,
)
from trainer.data import LABELLED_FAMILIES, TrainingData, for_model, sample_count, source_of
from trainer.errors import InfraCheckError, TargetError, TooLittleDataError
from trainer.gate import Verdict, infra_check, validate
from trainer.lineage import read_lineage, serving_champion
from trainer.outbox import Change, Outbox
from trainer.planning import champion_inputs, job_window, plan_job
from trainer.policy import gate_rule, shadows, thresholds, trigger_of
from trainer.rules import Decision, Lineage, decide
from trainer.settings import TrainerSettings
from trainer.state import DecisionRecord, Job, TrainerState
from trainer.updates import Announcer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def figures(verdict: Verdict) -> dict[str, float]:
    """Both models' holdout figures: ``mae``, ``champion_mae``, ..., ``holdout_rows``."""
    champion = {f"champion_{k}": v for k, v in (verdict.champion or {}).items()}
    return {**verdict.candidate, **champion, "holdout_rows": float(verdict.rows)}


@dataclass(frozen=True)
class Attempt:
    """One run of a job: what was decided, and the decision record it ends with."""

    job: Job
    decision: Decision
    lineage: Lineage

    def record(
        self,
        outcome: str,
        reason: str,
        version: int | None = None,
        found: dict[str, float] | None = None,
    ) -> DecisionRecord:
        return DecisionRecord(
            job_id=self.job.job_id,
            model=self.job.model,
            key=self.job.key,
            trigger=self.job.trigger,
            action=self.decision.action,
            outcome=outcome,
            reason=reason,
            rule=self.decision.rule,
            version=version,
            metrics=dict(found or {}),
            attempts=self.job.attempts,
        )


class Retrainer:
    """Runs jobs against the registry, the training data and the updates topic."""

    def __init__(
        self,
        settings: TrainerSettings,
        registry: Registry,
        data: TrainingData,
        announcer: Announcer,
        state: TrainerState,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.data = data
        self.announcer = announcer
        self.state = state
        self.clock = clock
        self.outbox = Outbox(state, registry, announcer)

    def run(self, queued: Job) -> DecisionRecord:
        """One attempt at ``queued``; the decision is returned, not yet recorded."""
        job = self.state.begin(queued.job_id, self.clock().isoformat())
        lineage = read_lineage(self.registry, job.model, job.key)
        resumed = self._resume(job, lineage)
        if resumed is not None:
            return resumed
        decision = decide(trigger_of(job), lineage, self.clock(), thresholds(self.settings))
        attempt = Attempt(job, decision, lineage)
        if decision.action == "none":
            return attempt.record("nothing", decision.reason)
        try:
            plan = plan_job(self.registry, self.settings, job, decision, lineage)
            return self._train(attempt, plan)
        except (TooLittleDataError, TargetError) as exc:
            return attempt.record("skipped", f"skipped: {exc}")
        except RegistryError:
            raise  # the store failed (disk full, lock): the job runs again
        except ModelError as exc:  # the family refused the data: running again changes nothing
            return attempt.record("failed", f"training failed: {exc}")

    def _resume(self, job: Job, lineage: Lineage) -> DecisionRecord | None:
        """The end of a job whose candidate an earlier attempt already settled, if any."""
        earlier = earlier_candidate(self.registry, job.model, job.key, job.job_id)
        if earlier is None:
            return None
        version, action = earlier
        done = settled(self.registry, job.model, job.key, version)
        if done is None:
            return None  # registered, not validated: the job goes on from there
        attempt = Attempt(
            job, Decision(action, "resumed", f"{action} resumed after a stop"), lineage
        )
        log.info("%s: job %s resumes with v%d (%s)", job.label, job.job_id, version, done)
        if done == "rejected":
            return attempt.record("rejected", "resumed: rejected before a stop", version)
        self.state.set_stage(job.job_id, "announce")
        sent = self.outbox.resend(job.model, job.key, version)
        why = "announced after a stop" if sent else "announced before a stop"
        return attempt.record(done, f"{attempt.decision.reason}; {why}", version)

    def _train(self, attempt: Attempt, plan: Plan) -> DecisionRecord:
        job = attempt.job
        self.state.set_stage(job.job_id, "replay")
        frame = self._frame(attempt, plan)
        cutoff = frame[TS].quantile(1.0 - self.settings.holdout_fraction)
        history = self._training_rows(plan, frame, cutoff)
        earlier = earlier_candidate(self.registry, plan.model, plan.key, job.job_id)
        if earlier is None:
            self.state.set_stage(job.job_id, "fit")
            reason = f"{plan.action} {job_marker(job.job_id)}: {attempt.decision.reason}"
            info, _ = train_candidate(
                self.registry, plan, history, reason=reason, plot=self.settings.plot
            )
            version = info.version
        else:
            version = earlier[0]
            log.info(
                "%s: job %s validates v%d, registered before a stop",
                plan.label,
                job.job_id,
                version,
            )
        self.state.set_stage(job.job_id, "validate")
        return self._validate(attempt, plan, version, frame, cutoff)

    def _frame(self, attempt: Attempt, plan: Plan) -> pd.DataFrame:
        source = source_of(plan.family)
        started = time.monotonic()
        frame = self.data.frame(
            source,
            job_window(attempt.job, self.settings, self.clock()),
            kind=self.settings.family_kinds.get(plan.family) if source == "sensor" else None,
            entity=plan.key if source == "demand" else None,
            labels=plan.family in LABELLED_FAMILIES,
        )
        topic = self.settings.demand_topic if source == "demand" else self.settings.sensor_topic
        metrics.REPLAY_SECONDS.labels(topic).observe(time.monotonic() - started)
        metrics.REPLAY_RECORDS.labels(topic).inc(len(frame))
        inputs = champion_inputs(self.registry, plan) if attempt.lineage.has_champion else None
        chosen = for_model(frame, plan.family, plan.key, inputs)
        if chosen.empty:
            raise TooLittleDataError(f"{plan.label}'s window", 0, self.settings.min_samples)
        return chosen

    def _training_rows(self, plan: Plan, frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
        """The rows the candidate learns from; TooLittleDataError below the minimums."""
        settings = self.settings
        history = frame[frame[TS] <= cutoff]
        if plan.action == "fine_tune":
            history = history[history[TS] >= cutoff - pd.Timedelta(days=settings.fine_tune_days)]
        n = sample_count(history, plan.family, plan.key)
        if n < settings.min_samples:
            raise TooLittleDataError(f"{plan.label}'s training window", n, settings.min_samples)
        held = sample_count(frame[frame[TS] > cutoff], plan.family, plan.key)
        if held < settings.min_holdout:
            raise TooLittleDataError(f"{plan.label}'s holdout", held, settings.min_holdout)
        return history.reset_index(drop=True)

    def _validate(
        self, attempt: Attempt, plan: Plan, version: int, frame: pd.DataFrame, cutoff: pd.Timestamp
    ) -> DecisionRecord:
        # A store error loading either model raises: the job runs again; only a candidate
        # that loads and fails its infra check is rejected.
        candidate = self.registry.load(plan.model, plan.key, version).model
        try:
            infra_check(candidate, frame, cutoff, self.settings.infra_rows)
        except InfraCheckError as exc:
            return self._reject(attempt, plan, version, {}, f"infra check failed: {exc}")
        # The champion of now, not of the decision: an operator may have promoted or
        # rolled back while the candidate trained. The alias change below is refused if
        # it moves again before the change is written.
        champion = serving_champion(self.registry, plan.model, plan.key)
        has_champion = champion is not None
        verdict = validate(
            gate_rule(plan.family, self.settings),
            candidate,
            self._champion_loader(plan, champion) if champion is not None else None,
            frame,
            cutoff,
            self.settings.min_holdout,
            promote_unlabelled=self.settings.promote_unlabelled,
        )
        self._observe(plan, verdict)
        found = figures(verdict)
        if not verdict.passed:
            return self._reject(attempt, plan, version, found, f"rejected: {verdict.reason}")
        if has_champion and shadows(plan.family, self.settings):

            def challenge() -> None:
                self.registry.set_challenger(
                    plan.model,
                    version,
                    plan.key,
                    reason=verdict.reason,
                    expected_champion=champion,
                )
                since = self.clock().isoformat()
                self.state.set_model(
                    plan.model, plan.key, challenger=version, challenger_since=since
                )

            return self._announce(attempt, version, "challenger", found, verdict.reason, challenge)
        reason = f"{plan.action}: {verdict.reason}"

        def promote() -> None:
            self.registry.promote(
                plan.model, version, plan.key, reason=reason, expected_champion=champion
            )

        return self._announce(attempt, version, "promoted", found, verdict.reason, promote)

    def _champion_loader(self, plan: Plan, version: int) -> Callable[[], Model]:
        def load() -> Model:
            return self.registry.load(plan.model, plan.key, version).model

        return load

    def _reject(
        self, attempt: Attempt, plan: Plan, version: int, found: dict[str, float], reason: str
    ) -> DecisionRecord:
        self.registry.reject(plan.model, version, plan.key, reason=reason)
        return attempt.record("rejected", reason, version, found)

    def _announce(
        self,
        attempt: Attempt,
        version: int,
        outcome: str,
        found: dict[str, float],
        why: str,
        write: Callable[[], object] | None = None,
    ) -> DecisionRecord:
        """Make the registry ``write`` (None: made already) and announce it."""
        job = attempt.job
        self.state.set_stage(job.job_id, "announce")
        action: UpdateAction = "challenger" if outcome == "challenger" else "promoted"
        reason = f"{attempt.decision.reason}; {why}"
        self.outbox.change(Change(job.model, job.key, version, action, reason, found), write)
        return attempt.record(outcome, reason, version, found)

    @staticmethod
    def _observe(plan: Plan, verdict: Verdict) -> None:
        for role, found in (("candidate", verdict.candidate), ("champion", verdict.champion)):
            for name, value in (found or {}).items():
                metrics.GATE_METRIC.labels(plan.model, name, role).set(value)
