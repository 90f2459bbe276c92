"""The training plot: the holdout of a freshly fitted model, scored as ``driftline score``
would score it, drawn with ``models.plots``.

The holdout is the most recent ``holdout`` (or ``val_fraction``) share of the history by
time, the family's own split; a family that kept none (an unlabelled anomaly fit) shows
every reading. Panels by what the model outputs:

* forecasts (demand, sequence): forecast and interval against the actual over time for the
  entity with the most holdout readings, and forecast vs actual for all of them; the
  learning curve first when the family reports one (``FitReport.curve``);
* anomaly scores: their distribution (normal vs labelled anomalies) with the flag threshold,
  and the score over time for one entity;
* risk (maintenance): the confusion matrix of risk levels, and expected risk over time.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from models import plots
from models.base import FitReport, FloatArray, Model, ModelError
from models.frames import IS_ANOMALY, RISK, TS, holdout_mask
from models.scoring import (
    FLAG_THRESHOLD,
    ScoredHistory,
    actual_ahead,
    horizon,
    score_history,
    spec_model,
)

DEFAULT_HOLDOUT: Final = 0.2  # the families' default holdout share
HEADLINE: Final = ("f1", "roc_auc", "accuracy", "mae", "mape", "r2")  # metrics in the title
DERIVED_RISK_HORIZON: Final = 12  # the maintenance family's default label horizon


def training_plot(model: Model, history: pd.DataFrame, report: FitReport, label: str) -> bytes:
    """PNG of the holdout fit (and learning curve) of a freshly fitted model."""
    scored = score_history(model, history)
    fraction = float(model.params.get("holdout", model.params.get("val_fraction", DEFAULT_HOLDOUT)))
    holdout = holdout_mask(scored.inputs[TS], fraction) if fraction > 0 else None
    panels = [plots.learning_curve(report.curve)] if report.curve else []
    outputs = scored.outputs
    if "risk_level" in outputs:
        panels += _risk_panels(model, scored, holdout)
    elif "score" in outputs:
        panels += _anomaly_panels(scored, holdout)
    else:
        panels += _forecast_panels(model, scored, holdout)
    headline = ", ".join(
        f"{name} {report.metrics[name]:.3g}" for name in HEADLINE if name in report.metrics
    )
    title = f"{label}: {model.family} trained on {report.rows:,} rows"
    return plots.render(f"{title} | holdout {headline}" if headline else title, panels)


def _rows(scored: ScoredHistory, holdout: np.ndarray | None) -> np.ndarray:
    """The holdout rows, or every row when the family kept none."""
    if holdout is None or not holdout.any():
        return np.ones(len(scored.inputs), dtype=np.bool_)
    return holdout


def _busiest(scored: ScoredHistory, rows: np.ndarray) -> tuple[str, np.ndarray]:
    """The entity with the most selected rows, and the mask of its selected rows."""
    entities = scored.inputs[scored.entity].astype(str)
    entity = str(entities[rows].value_counts().idxmax())
    return entity, rows & (entities == entity).to_numpy()


def _forecast_panels(
    model: Model, scored: ScoredHistory, holdout: np.ndarray | None
) -> list[plots.Panel]:
    target = spec_model(model).spec.inputs[0]
    actual = actual_ahead(scored.inputs, scored.entity, target, horizon(model))
    out = scored.outputs
    forecast = out["forecast"].to_numpy(dtype=np.float64)
    rows = _rows(scored, holdout) & np.isfinite(actual) & np.isfinite(forecast)
    if not rows.any():
        raise ModelError(f"{model.family}: no holdout forecast has an actual to plot against")
    entity, mine = _busiest(scored, rows)
    band = (out["lower"].to_numpy(np.float64)[mine], out["upper"].to_numpy(np.float64)[mine])
    return [
        plots.forecast_over_time(
            out["target_ts"].to_numpy()[mine],
            actual[mine],
            forecast[mine],
            band,
            f"{entity} {target}",
        ),
        plots.predicted_vs_actual(actual[rows], forecast[rows]),
    ]


def _anomaly_panels(scored: ScoredHistory, holdout: np.ndarray | None) -> list[plots.Panel]:
    rows = _rows(scored, holdout)
    score: FloatArray = scored.outputs["score"].to_numpy(dtype=np.float64)
    labels = None
    if IS_ANOMALY in scored.inputs and scored.inputs[IS_ANOMALY].notna().any():
        labels = scored.inputs[IS_ANOMALY].to_numpy(dtype=np.float64)
    entity, mine = _busiest(scored, rows)
    ts = scored.inputs[TS].to_numpy()[mine]
    return [
        plots.score_histogram(
            score[rows], None if labels is None else labels[rows], FLAG_THRESHOLD
        ),
        plots.score_over_time(
            ts, score[mine], None if labels is None else labels[mine], FLAG_THRESHOLD, entity
        ),
    ]


def _risk_panels(
    model: Model, scored: ScoredHistory, holdout: np.ndarray | None
) -> list[plots.Panel]:
    frame = scored.inputs
    if RISK in frame and frame[RISK].notna().any():
        actual = frame[RISK].to_numpy(dtype=np.float64)
    elif IS_ANOMALY in frame:
        from models.maintenance import derive_risk

        actual = derive_risk(frame, int(model.params.get("horizon", DERIVED_RISK_HORIZON))).astype(
            np.float64
        )
    else:
        raise ModelError(f"{model.family}: the history holds no risk labels to plot")
    rows = _rows(scored, holdout) & np.isfinite(actual)
    level = scored.outputs["risk_level"].to_numpy(dtype=np.int64)
    expected = scored.outputs["expected_risk"].to_numpy(dtype=np.float64)
    truth = np.nan_to_num(actual).astype(np.int64)
    entity, mine = _busiest(scored, rows)
    ts = frame[TS].to_numpy()[mine]
    return [
        plots.risk_confusion(truth[rows], level[rows]),
        plots.risk_over_time(ts, truth[mine], expected[mine], entity),
    ]
