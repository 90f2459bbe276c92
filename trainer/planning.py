"""What a job trains: the family and hyper-parameters of a model key, and its data.

* A key with a champion: the champion's family, its hyper-parameters (a full retrain is
  ``families.create(family, champion params)``) and its input metrics (sensor families),
  so candidate and champion are judged on the same columns.
* A key with no champion: the family of its newest version, else the job's (bootstrap)
  family, else ``bootstrap_models``; hyper-parameters from ``bootstrap_params``. A family
  keyed by metric (sequence) forecasts the key's metric.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from models.features import spec_from_metadata
from models.registry import Registry
from models.registry_errors import RegistryError
from models.training import KEYED_BY_METRIC
from trainer.candidate import Plan, TrainAction
from trainer.errors import TargetError
from trainer.lineage import parse_time
from trainer.replay import Window
from trainer.rules import Decision, Lineage
from trainer.settings import TrainerSettings
from trainer.state import Job


def plan_job(
    registry: Registry,
    settings: TrainerSettings,
    job: Job,
    decision: Decision,
    lineage: Lineage,
) -> Plan:
    """The plan of ``job``; TargetError when nothing tells which family to train."""
    action: TrainAction = "fine_tune" if decision.action == "fine_tune" else "full_retrain"
    if lineage.has_champion:
        info = registry.info(job.model, job.key)
        params = dict(info.metadata.get("params") or {})
        return Plan(job.model, job.key, info.family, action, params)
    family = job.family or _newest_family(registry, job) or settings.bootstrap_models.get(job.model)
    if family is None:
        raise TargetError(
            f"{job.label} has no version and no family to bootstrap it with "
            "(TRAINER_BOOTSTRAP_MODELS)"
        )
    params = {**settings.bootstrap_params.get(family, {}), **job.params}
    if family in KEYED_BY_METRIC and job.key is not None:
        params.setdefault("metric", job.key)
    return Plan(job.model, job.key, family, "full_retrain", params)


def champion_inputs(registry: Registry, plan: Plan) -> tuple[str, ...] | None:
    """The champion's input columns (None when the key has no champion)."""
    try:
        return tuple(spec_from_metadata(registry.info(plan.model, plan.key).metadata).inputs)
    except RegistryError:
        return None


def job_window(job: Job, settings: TrainerSettings, now: datetime) -> Window:
    """``[end - window_days, end]``; ``end`` is the job's first attempt, kept for retries."""
    end = parse_time(job.window_end) or now
    return Window(end - timedelta(days=settings.window_days), end)


def _newest_family(registry: Registry, job: Job) -> str | None:
    """Family of the newest version of a key that has versions but no champion."""
    try:
        versions = registry.versions(job.model, job.key)
    except RegistryError:
        return None
    return versions[-1].family if versions else None
