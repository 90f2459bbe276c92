"""The messages the monitor publishes about a model version, built from one evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from events import Alert, ModelHealth, RetrainRequest
from events.fields import MAX_WINDOW_SECONDS
from events.lifecycle import HealthStatus, RetrainAction
from monitor.clock import MICROS_PER_SECOND, from_micros
from monitor.health import evidence_id
from monitor.windows import WindowStats

# A count window whose pairs share one target time still has a positive length to report.
MIN_WINDOW_S: Final = 1.0


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of one model version: its figures, baseline and verdict."""

    model: str
    key: str | None
    version: int
    at: datetime
    evaluation: int  # pairs of the version seen since tracking began (numbers evaluations)
    count: WindowStats
    time: WindowStats
    judged: WindowStats
    window_s: float  # length of the judged window
    baseline_mae: float | None
    degradation: float | None
    coverage: float | None
    status: HealthStatus
    previous: HealthStatus

    @property
    def label(self) -> str:
        name = self.model if self.key is None else f"{self.model}/{self.key}"
        return f"{name} v{self.version}"

    @property
    def window_end(self) -> datetime:
        last = self.judged.last_us
        return self.at if last is None else from_micros(last)

    @property
    def evidence(self) -> int:
        """What identifies the evidence in request and alert ids: the judged window's end."""
        last = self.judged.last_us
        return int(self.at.timestamp() * MICROS_PER_SECOND) if last is None else last


def window_seconds(stats: WindowStats, judged: str, time_window_s: float) -> float:
    """Length of the judged window: the configured one, or the count window's target span."""
    if judged == "time":
        return time_window_s
    if stats.first_us is None or stats.last_us is None:
        return MIN_WINDOW_S
    span = (stats.last_us - stats.first_us) / MICROS_PER_SECOND
    return min(max(span, MIN_WINDOW_S), MAX_WINDOW_SECONDS)


def health_message(evaluation: Evaluation) -> ModelHealth:
    judged = evaluation.judged
    return ModelHealth(
        model=evaluation.model,
        key=evaluation.key,
        version=evaluation.version,
        ts=evaluation.window_end,
        window=evaluation.window_s,
        pairs=judged.pairs,
        mae=judged.mae,
        rmse=judged.rmse,
        mape=judged.mape,
        bias=judged.bias,
        baseline_mae=evaluation.baseline_mae,
        degradation=evaluation.degradation,
        label_coverage=evaluation.coverage,
        status=evaluation.status,
    )


def retrain_request(evaluation: Evaluation, action: RetrainAction) -> RetrainRequest:
    judged = evaluation.judged
    figures: dict[str, float | str | None] = {
        "trigger": "drift",
        "status": evaluation.status,
        "version": evaluation.version,
        "evaluation": evaluation.evaluation,
        "degradation": evaluation.degradation,
        "mae": judged.mae,
        "baseline_mae": evaluation.baseline_mae,
        "rmse": judged.rmse,
        "bias": judged.bias,
        "pairs": judged.pairs,
        "label_coverage": evaluation.coverage,
    }
    evidence = {name: value for name, value in figures.items() if value is not None}
    return RetrainRequest(
        request_id=evidence_id(
            evaluation.model, evaluation.key, evaluation.version, evaluation.evidence, action
        ),
        model=evaluation.model,
        key=evaluation.key,
        action=action,
        reason=f"{evaluation.label} is {evaluation.status}: {_summary(evaluation)}",
        requested_at=evaluation.at,
        evidence=evidence,
    )


def drift_alert(evaluation: Evaluation, threshold: float, recommendation: str) -> Alert:
    return Alert(
        alert_id=evidence_id(
            evaluation.model, evaluation.key, evaluation.version, evaluation.evidence, "alert"
        ),
        type="drift",
        entity_id=evaluation.key or evaluation.model,
        ts=evaluation.window_end,
        score=evaluation.degradation or 0.0,
        threshold=threshold,
        severity="critical",
        model=evaluation.model,
        version=evaluation.version,
        key=evaluation.key,
        message=f"{evaluation.label} drifted: {_summary(evaluation)}",
        recommendation=recommendation,
    )


def _summary(evaluation: Evaluation) -> str:
    judged = evaluation.judged
    return (
        f"rolling MAE {judged.mae:.4g} is {evaluation.degradation or 0.0:+.0%} against the "
        f"baseline {evaluation.baseline_mae or 0.0:.4g} over {judged.pairs} pairs"
    )
