"""The validation gate: does a registered candidate beat the champion on the same holdout?

Both models score the whole window (each row's features use only that entity's readings up
to it, as in the worker, via ``models.scoring``); only the rows after the holdout cutoff
count, and only those both models could score and that have a truth:

* forecasts (demand, sequence): the actual ``horizon`` readings later; MAE (RMSE, MAPE);
* risk (maintenance): the ``risk`` label (or one derived from ``is_anomaly``); MAE of the
  expected risk;
* anomaly: the ``is_anomaly`` label; F1 of the flags or ROC AUC of the scores.

The candidate passes when its metric is better by the configured relative margin (MAE at
least 2 % lower; F1 at least 2 % higher). Before that, the **infra check**: the candidate
was loaded through the registry (sha256 of every file verified) and must predict the last
holdout rows with one finite output per row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from models.base import FloatArray, Model, ModelError
from models.frames import IS_ANOMALY, RISK, TS
from models.metrics import detection_report, mae, mape, rmse
from models.scoring import actual_ahead, feature_rows, horizon, score_history, spec_model
from trainer.errors import InfraCheckError

DETECTION: Final = frozenset({"f1", "roc_auc", "precision", "recall"})
RISK_HORIZON: Final = 12  # the maintenance family's default look-ahead for derived risk


@dataclass(frozen=True)
class GateRule:
    """Which holdout metric decides, its direction and the relative margin to beat."""

    metric: str
    higher_is_better: bool
    margin: float

    def describe(self) -> str:
        direction = "higher" if self.higher_is_better else "lower"
        return f"{self.metric} at least {self.margin:.1%} {direction}"


@dataclass(frozen=True)
class Evaluation:
    """One model's outputs on a window, row-aligned with every other model's."""

    ts: pd.Series
    truth: FloatArray
    predicted: FloatArray
    score: FloatArray | None = None


@dataclass(frozen=True)
class Verdict:
    """The gate's answer, with both models' holdout figures."""

    passed: bool
    reason: str
    candidate: dict[str, float]
    champion: dict[str, float] | None
    rows: int


def evaluate(model: Model, frame: pd.DataFrame) -> Evaluation:
    """Score every row of ``frame`` and pair it with the truth it is judged against."""
    scored = score_history(model, frame)
    inputs, out = scored.inputs, scored.outputs
    ts = inputs[TS].reset_index(drop=True)
    if "expected_risk" in out:
        return Evaluation(ts, _risk_truth(inputs), out["expected_risk"].to_numpy(np.float64))
    if "score" in out:
        truth = _column(inputs, IS_ANOMALY)
        flags = out["flag"].to_numpy(np.float64)
        return Evaluation(ts, truth, flags, out["score"].to_numpy(np.float64))
    target = spec_model(model).spec.inputs[0]
    truth = actual_ahead(inputs, scored.entity, target, horizon(model))
    return Evaluation(ts, truth, out["forecast"].to_numpy(np.float64))


def _column(frame: pd.DataFrame, name: str) -> FloatArray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    values: FloatArray = frame[name].to_numpy(dtype=np.float64)
    return values


def _risk_truth(frame: pd.DataFrame) -> FloatArray:
    if RISK in frame and frame[RISK].notna().any():
        return _column(frame, RISK)
    if IS_ANOMALY in frame and frame[IS_ANOMALY].notna().any():
        from models.maintenance import derive_risk

        return derive_risk(frame, RISK_HORIZON).astype(np.float64)
    return np.full(len(frame), np.nan)


def measure(evaluation: Evaluation, rows: np.ndarray) -> dict[str, float]:
    """Holdout figures of one model on the selected rows."""
    truth, predicted = evaluation.truth[rows], evaluation.predicted[rows]
    if evaluation.score is not None:
        return detection_report(truth, predicted, evaluation.score[rows])
    return {
        "mae": mae(truth, predicted),
        "rmse": rmse(truth, predicted),
        "mape": mape(truth, predicted),
    }


def judge(
    rule: GateRule, candidate: dict[str, float], champion: dict[str, float] | None
) -> tuple[bool, str]:
    """Pass when the candidate beats the champion's metric by the rule's margin.

    ``champion`` None: there is none, and a first version passes (after its infra check).
    """
    mine = candidate.get(rule.metric, math.nan)
    if champion is None:
        return True, f"first version: nothing to beat (candidate {rule.metric} {mine:.4g})"
    if not math.isfinite(mine):
        return False, f"the candidate's {rule.metric} cannot be measured on the holdout"
    theirs = champion.get(rule.metric, math.nan)
    if not math.isfinite(theirs):
        return True, f"the champion's {rule.metric} cannot be measured; candidate {mine:.4g}"
    if rule.higher_is_better:
        needed = theirs * (1.0 + rule.margin)
        passed = mine >= needed and mine > theirs
    else:
        needed = theirs * (1.0 - rule.margin)
        passed = mine <= needed and mine < theirs
    sign = ">=" if rule.higher_is_better else "<="
    verdict = "better" if passed else "not better"
    return passed, (
        f"{verdict}: candidate {rule.metric} {mine:.4g} vs champion {theirs:.4g} "
        f"(needs {sign} {needed:.4g}: {rule.describe()})"
    )


def infra_check(model: Model, frame: pd.DataFrame, cutoff: pd.Timestamp, rows: int) -> None:
    """Predict the last ``rows`` holdout rows; raise InfraCheckError unless all finite."""
    try:
        features = feature_rows(model, frame)
        holdout = np.flatnonzero((features.frame[TS] > cutoff).to_numpy())[-rows:]
        scores = model.predict_batch(features.matrix[holdout])
    except (ModelError, ValueError) as exc:
        raise InfraCheckError(f"the candidate cannot predict: {exc}") from exc
    outputs = [a for a in (scores.value, scores.score, scores.level) if a is not None]
    if not outputs or len(scores) != holdout.size:
        raise InfraCheckError(
            f"the candidate returned {len(scores)} output(s) for {holdout.size} row(s)"
        )
    bad = sum(int(np.count_nonzero(~np.isfinite(np.asarray(a, dtype=np.float64)))) for a in outputs)
    if bad:
        raise InfraCheckError(
            f"the candidate returned {bad} non-finite output(s) on {holdout.size} rows"
        )


def validate(
    rule: GateRule,
    candidate: Model,
    champion: Callable[[], Model] | None,
    frame: pd.DataFrame,
    cutoff: pd.Timestamp,
    min_rows: int,
    *,
    promote_unlabelled: bool = False,
) -> Verdict:
    """Compare ``candidate`` with the champion on the rows of ``frame`` after ``cutoff``.

    ``champion`` loads the champion (None: the model has none); its load errors are raised,
    so that a store briefly unreadable never waves a candidate through. A champion that
    loads but cannot score the window cannot serve it either: the candidate then only has
    to be measurable.

    ``promote_unlabelled``: when the holdout holds no truth at all (anomaly readings without
    labels), pass on the infra check alone instead of refusing an unmeasurable candidate.
    """
    mine = evaluate(candidate, frame)
    theirs, champion_error = _champion_evaluation(champion, frame)
    rows = (mine.ts > cutoff).to_numpy() & np.isfinite(mine.truth) & np.isfinite(mine.predicted)
    if theirs is not None:
        if len(theirs.ts) != len(mine.ts):
            raise ModelError("candidate and champion scored different rows of one window")
        rows &= np.isfinite(theirs.predicted)
    count = int(rows.sum())
    candidate_figures = measure(mine, rows) if count else {}
    champion_figures = measure(theirs, rows) if theirs is not None and count else {}
    if champion is None:  # a first version: the infra check was the gate
        return Verdict(
            True, judge(rule, candidate_figures, None)[1], candidate_figures, None, count
        )
    unlabelled = not np.isfinite(mine.truth[(mine.ts > cutoff).to_numpy()]).any()
    if unlabelled and promote_unlabelled:
        reason = "no truth in the holdout: passed on the infra check alone"
        return Verdict(True, reason, candidate_figures, champion_figures, count)
    if count < min_rows:
        reason = f"too few holdout rows to compare: {count} < {min_rows}"
        return Verdict(False, reason, candidate_figures, champion_figures, count)
    passed, reason = judge(rule, candidate_figures, champion_figures)
    if champion_error:
        reason = f"{reason} ({champion_error})"
    return Verdict(passed, reason, candidate_figures, champion_figures, count)


def _champion_evaluation(
    champion: Callable[[], Model] | None, frame: pd.DataFrame
) -> tuple[Evaluation | None, str]:
    if champion is None:
        return None, ""
    # A champion the store cannot load raises (RegistryError): a store briefly unreadable
    # must not let a candidate through unchallenged; the job runs again.
    model = champion()
    try:
        return evaluate(model, frame), ""
    except ModelError as exc:
        return None, f"the champion cannot score the window: {exc}"
