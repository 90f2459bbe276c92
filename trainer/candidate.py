"""Train a candidate and register it, and find a job's candidate again after a crash.

* **full retrain**: ``families.create(family, params).fit(train frame)``; the params are the
  champion's (the first version of a model: the bootstrap params). No parent: a full
  retrain starts a new lineage.
* **fine-tune**: the champion loaded from the store (a copy: the serving model is never
  touched), ``fine_tune(recent frame)``, registered with ``parent`` = the champion.

The candidate is registered with ``promote_if_first=False``: not even a model's first
version serves before it passed the gate. Its history reason carries the job id, so a job
interrupted after registering finds its candidate again and validates it instead of
training a second one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from models.base import FitReport, Model, ModelError
from models.families import create
from models.frames import FrameError
from models.layout import describe
from models.registry import Registry
from models.registry_errors import ModelNotFoundError
from models.training import PLOT_FILE, bundle
from models.training_plot import training_plot
from models.versions import VersionInfo

log = logging.getLogger(__name__)

TrainAction = Literal["full_retrain", "fine_tune"]


@dataclass(frozen=True)
class Plan:
    """What one job trains: a model key, its family and hyper-parameters, and how."""

    model: str
    key: str | None
    family: str
    action: TrainAction
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return describe(self.model, self.key)


def job_marker(job_id: str) -> str:
    """The text that ties a registered version to the job that trained it."""
    return f"(job {job_id})"


def train_candidate(
    registry: Registry,
    plan: Plan,
    history: pd.DataFrame,
    *,
    reason: str,
    plot: bool,
) -> tuple[VersionInfo, FitReport]:
    """Fit or fine-tune on ``history`` and register the result as a new version."""
    parent: int | None = None
    try:
        if plan.action == "fine_tune":
            loaded = registry.load(plan.model, plan.key)
            model, parent = loaded.model, loaded.version
            report = model.fine_tune(history)
        else:
            model = create(plan.family, plan.params)
            report = model.fit(history)
    except FrameError as exc:
        raise ModelError(f"{plan.label}: {exc}") from exc
    files = _plot(model, history, report, plan.label) if plot else {}
    version = registry.register(
        bundle(model, files),
        plan.model,
        plan.key,
        report,
        frame=history,
        parent=parent,
        promote_if_first=False,
        reason=reason,
    )
    return version, report


def _plot(model: Model, history: pd.DataFrame, report: FitReport, label: str) -> dict[str, bytes]:
    """The training plot; a plot that cannot be drawn never blocks a version."""
    try:
        return {PLOT_FILE: training_plot(model, history, report, label)}
    except (ModelError, ValueError) as exc:
        log.warning("%s: no training plot: %s", label, exc)
        return {}


def earlier_candidate(
    registry: Registry, model: str, key: str | None, job_id: str
) -> tuple[int, TrainAction] | None:
    """The version an earlier attempt of ``job_id`` registered, and how it was trained."""
    marker = job_marker(job_id)
    try:
        events = registry.history(model, key)
    except ModelNotFoundError:
        return None
    existing = set(registry.paths(model, key).version_numbers())
    for event in reversed(events):
        if event.action == "register" and marker in event.reason and event.version in existing:
            action: TrainAction = (
                "fine_tune" if event.reason.startswith("fine_tune") else "full_retrain"
            )
            return event.version, action
    return None


def settled(registry: Registry, model: str, key: str | None, version: int) -> str | None:
    """What already happened to ``version``: champion, challenger, rejected, or None."""
    aliases = registry.aliases(model, key)
    if aliases.champion == version:
        return "promoted"
    if aliases.challenger == version:
        return "challenger"
    rejected = any(
        e.action == "reject" and e.version == version for e in registry.history(model, key)
    )
    return "rejected" if rejected else None
