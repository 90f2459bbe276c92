"""Scheduled checks: the time-based rules over every model key, and bootstrapping.

Every ``check_interval_s`` the trainer

1. applies the rules (``trainer.rules``, trigger ``schedule``) to every model key with a
   champion: a fine-tune after ``update_days``, a full retrain after ``full_retrain_days``
   or ``max_fine_tunes`` fine-tunes;
2. looks at the recent window of the readings for models (and keys) that have no version
   yet: ``bootstrap_models`` (model name -> family) get their first version as soon as the
   window holds ``min_samples`` training readings for them - the global model first, then,
   with ``per_product_models``, one demand model per product, and for a family keyed by
   metric (sequence) one model per metric with readings. Until then the global model or
   the family's fallback serves.

A key with a job pending, or whose last attempt is more recent than ``retry_after_hours``,
is left alone, so a candidate that keeps losing is not retrained every check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pandas as pd

from models.frames import PRODUCT
from models.registry import Registry
from models.registry_errors import RegistryError
from models.training import KEYED_BY_METRIC
from trainer.data import (
    DEMAND_FAMILIES,
    LABELLED_FAMILIES,
    TrainingData,
    for_model,
    metrics_with_values,
    sample_count,
    source_of,
)
from trainer.errors import DataError
from trainer.lineage import parse_time, read_lineage
from trainer.policy import thresholds
from trainer.replay import Window
from trainer.rules import Lineage, Trigger, decide
from trainer.settings import TrainerSettings
from trainer.state import Job, TrainerState, model_label

log = logging.getLogger(__name__)


class ScheduledCheck:
    """Finds the jobs a scheduled check should start."""

    def __init__(
        self,
        settings: TrainerSettings,
        registry: Registry,
        data: TrainingData,
        state: TrainerState,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.data = data
        self.state = state

    def run(self, now: datetime) -> list[Job]:
        """The jobs to queue now: rule-driven updates first, then bootstraps."""
        jobs = list(self._updates(now))
        if self.settings.bootstrap and self.settings.bootstrap_models:
            try:
                jobs += self._bootstraps(now)
            except DataError as exc:  # the updates above still run; the next check retries
                log.warning("bootstrap scan skipped: %s", exc)
        return jobs

    def _busy(self, model: str, key: str | None, now: datetime) -> bool:
        if self.state.pending_for(model, key):
            return True
        last = parse_time(self.state.model_value(model, key, "last_attempt"))
        backoff = timedelta(hours=self.settings.retry_after_hours)
        return last is not None and now - last < backoff

    def _updates(self, now: datetime) -> Iterator[Job]:
        limits = thresholds(self.settings)
        for model in self.registry.models():
            for key in self.registry.layout.keys(model):
                lineage = self._lineage(model, key)
                if lineage is None or not lineage.has_champion or self._busy(model, key, now):
                    continue
                decision = decide(Trigger("schedule"), lineage, now, limits)
                if decision.action == "none":
                    continue
                yield Job(
                    job_id=f"schedule:{model_label(model, key)}:{now.isoformat()}",
                    model=model,
                    key=key,
                    trigger="schedule",
                    action=decision.action,
                    reason=decision.reason,
                )

    def _bootstraps(self, now: datetime) -> list[Job]:
        window = Window(now - timedelta(days=self.settings.window_days), now)
        frames: dict[tuple[str, str | None, bool], pd.DataFrame] = {}
        jobs = []
        for model, family in self.settings.bootstrap_models.items():
            source = source_of(family)
            kind = self.settings.family_kinds.get(family) if source == "sensor" else None
            labelled = family in LABELLED_FAMILIES
            if (source, kind, labelled) not in frames:
                frames[source, kind, labelled] = self.data.frame(
                    source, window, kind=kind, labels=labelled
                )
            frame = frames[source, kind, labelled]
            jobs += [
                job
                for key in self._keys(family, frame)
                if (job := self._bootstrap(model, family, key, frame, now)) is not None
            ]
        return jobs

    def _keys(self, family: str, frame: pd.DataFrame) -> list[str | None]:
        if frame.empty:
            return []
        if family in KEYED_BY_METRIC:
            return list(metrics_with_values(frame))
        if family in DEMAND_FAMILIES and self.settings.per_product_models:
            return [None, *sorted(frame[PRODUCT].astype(str).unique())]
        return [None]

    def _lineage(self, model: str, key: str | None) -> Lineage | None:
        """The key's lineage; None (logged) when its store files cannot be read, so that
        one damaged key does not stop the checks of every other."""
        try:
            return read_lineage(self.registry, model, key)
        except RegistryError as exc:
            log.error("%s: skipped by the scheduled check: %s", model_label(model, key), exc)
            return None

    def _bootstrap(
        self, model: str, family: str, key: str | None, frame: pd.DataFrame, now: datetime
    ) -> Job | None:
        lineage = self._lineage(model, key)
        if lineage is None or lineage.has_champion or self._busy(model, key, now):
            return None
        samples = sample_count(for_model(frame, family, key), family, key)
        # the job trains on the part before the holdout: that part must reach min_samples
        usable = int(samples * (1.0 - self.settings.holdout_fraction))
        if usable < self.settings.min_samples:
            log.debug(
                "%s: %d usable readings, waiting for %d", model, usable, self.settings.min_samples
            )
            return None
        return Job(
            job_id=f"bootstrap:{model_label(model, key)}:{now.isoformat()}",
            model=model,
            key=key,
            trigger="bootstrap",
            action="full_retrain",
            reason=f"bootstrap: {samples} readings and no version yet",
            family=family,
            params=dict(self.settings.bootstrap_params.get(family, {})),
        )
