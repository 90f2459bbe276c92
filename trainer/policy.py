"""The configured policy: settings and jobs turned into the inputs of the rules and the gate."""

from __future__ import annotations

from typing import Final

from events.lifecycle import RetrainAction
from trainer.gate import GateRule
from trainer.rules import Source, Thresholds, Trigger
from trainer.settings import TrainerSettings
from trainer.state import Job

SOURCES: Final[dict[str, Source]] = {
    "request": "request",
    "schedule": "schedule",
    "bootstrap": "bootstrap",
}
ACTIONS: Final[dict[str, RetrainAction]] = {
    "fine_tune": "fine_tune",
    "full_retrain": "full_retrain",
}
# Families whose outputs are predictions the monitor pairs with actuals (risk, forecasts):
# only these can beat their champion on live pairs. An anomaly model publishes alerts, so
# a challenger of it would wait for a verdict forever; its gate's verdict promotes it.
SHADOWED_FAMILIES: Final = frozenset({"maintenance", "demand", "sequence"})


def trigger_of(job: Job) -> Trigger:
    """The rules' view of a job (an unknown trigger name counts as a scheduled check)."""
    action = ACTIONS.get(job.action) if job.action is not None else None
    return Trigger(SOURCES.get(job.trigger, "schedule"), action, job.evidence)


def thresholds(settings: TrainerSettings) -> Thresholds:
    return Thresholds(
        critical_degradation=settings.critical_degradation,
        moderate_degradation=settings.moderate_degradation,
        full_retrain_days=settings.full_retrain_days,
        max_fine_tunes=settings.max_fine_tunes,
        update_days=settings.update_days,
        wait_for_shadow=settings.shadow,
    )


def gate_rule(family: str, settings: TrainerSettings) -> GateRule:
    """Anomaly models are compared on a detection metric (higher wins), the others on MAE."""
    if family == "anomaly":
        return GateRule(settings.detection_metric, True, settings.detection_margin)
    return GateRule("mae", False, settings.forecast_margin)


def shadows(family: str, settings: TrainerSettings) -> bool:
    """Whether a candidate of ``family`` that passed the gate runs in shadow first."""
    return settings.shadow and family in SHADOWED_FAMILIES
