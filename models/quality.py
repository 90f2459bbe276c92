"""Model-quality benchmark: every family on a time-ordered holdout, against goals and baselines.

Each check trains on the earlier part of a history and scores the whole history with
``models.scoring`` (each reading's features come from its own past only, as in the worker),
then measures the readings after the cut. Nothing from the later part reaches training.

* Generated data (``driftline.generator``), checked against goals: anomaly F1 >= 0.85 and
  ROC AUC >= 0.90, maintenance risk MAE <= 0.5, demand MAPE <= 10 %, sequence R² >= 0.9.
* Real data (``../shared/data``, when present; ``models.quality_real``): demand on
  Birmingham car-park occupancy, sequence and demand on Victoria electricity, each of which
  must beat the seasonal-naive fallback on the same readings; the anomaly family on the UCR
  InternalBleeding16 series, reported as the best rank of a labelled anomalous point.

Every check also records training time and the model's size on disk.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from models.base import FloatArray, Model
from models.families import create
from models.frames import ENTITY, IS_ANOMALY, PRODUCT, QUANTITY, RISK, TS
from models.metrics import detection_report, mae, mape, r2
from models.scoring import ScoredHistory, actual_ahead, score_history

TEST_FRACTION: Final = 0.2  # the latest fifth of every history is the evaluation period
Status = Callable[[str], None]


@dataclass(frozen=True)
class Goal:
    """``value op target``; ``op`` is ">=", "<=" or "<" (beat a baseline)."""

    op: str
    target: float

    def met(self, value: float) -> bool:
        if not np.isfinite(value):
            return False
        if self.op == ">=":
            return value >= self.target
        if self.op == "<=":
            return value <= self.target
        return value < self.target

    def __str__(self) -> str:
        return f"{self.op} {self.target:.4g}"


@dataclass
class Check:
    """One row of the benchmark table."""

    suite: str
    family: str
    data: str
    metric: str
    value: float
    goal: str | None = None
    passed: bool | None = None
    baseline: str | None = None
    train_seconds: float | None = None
    model_bytes: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judged(check: Check, goal: Goal | None) -> Check:
    if goal is not None:
        check.goal, check.passed = str(goal), goal.met(check.value)
    return check


@dataclass(frozen=True)
class Trained:
    """A model fitted on the earlier part, its fit time and its saved size."""

    model: Model
    seconds: float
    size_bytes: int


def split_time(frame: pd.DataFrame, fraction: float = TEST_FRACTION) -> tuple[pd.DataFrame, Any]:
    """The readings up to the ``1 - fraction`` time quantile, and that cut."""
    stamps = pd.to_datetime(frame[TS], utc=True)
    cut = stamps.quantile(1.0 - fraction)
    return frame.loc[stamps <= cut].reset_index(drop=True), cut


def fit(family: str, params: dict[str, Any], train: pd.DataFrame) -> Trained:
    """Fit, time it, and measure the saved files (what the registry would store)."""
    model = create(family, params)
    started = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="driftline-quality-") as tmp:
        model.save(Path(tmp))
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    return Trained(model, seconds, size)


def after(scored: ScoredHistory, cut: Any) -> np.ndarray:
    """Rows read after the cut (the evaluation period)."""
    return np.asarray(scored.inputs[TS] > cut, dtype=np.bool_)


@dataclass(frozen=True)
class Forecasts:
    """One-step-ahead forecasts on the evaluation rows and the actuals they target."""

    forecast: FloatArray
    actual: FloatArray


def forecasts(model: Model, history: pd.DataFrame, target: str, cut: Any) -> Forecasts:
    scored = score_history(model, history)
    actual = actual_ahead(scored.inputs, scored.entity, target, 1)
    forecast = scored.outputs["forecast"].to_numpy(dtype=np.float64)
    rows = after(scored, cut) & np.isfinite(actual)
    return Forecasts(forecast[rows], actual[rows])


def versus_naive(
    trained: Trained, history: pd.DataFrame, target: str, cut: Any, season: int
) -> tuple[float, float, float]:
    """MAE of the model, of seasonal naive (``season`` readings) and of the last value,
    all on the same evaluation readings."""
    model = forecasts(trained.model, history, target, cut)
    train, _ = split_time(history)
    naive_values = []
    for naive_season in (season, 1):
        naive = create("seasonal_naive", {"target": target, "season": naive_season})
        naive.fit(train)
        measured = forecasts(naive, history, target, cut)
        if not np.array_equal(measured.actual, model.actual):
            raise AssertionError("the model and seasonal naive were measured on different rows")
        naive_values.append(mae(measured.actual, measured.forecast))
    return mae(model.actual, model.forecast), naive_values[0], naive_values[1]


def best_rank(score: FloatArray, labels: FloatArray) -> int:
    """Best (lowest) rank of a labelled point when all scores are sorted high to low; ties
    rank pessimistically (a labelled point shares its rank with the last of its equals)."""
    flagged = score[labels > 0.5]
    if flagged.size == 0:
        raise ValueError("no labelled point to rank")
    return int(np.sum(score >= flagged.max()))


def detection(trained: Trained, history: pd.DataFrame, cut: Any) -> dict[str, float]:
    scored = score_history(trained.model, history)
    rows = after(scored, cut)
    truth = scored.inputs.loc[rows, IS_ANOMALY].to_numpy(dtype=np.float64)
    out = scored.outputs[rows]
    return detection_report(truth, out["flag"].to_numpy(), out["score"].to_numpy(np.float64))


def risk_mae(trained: Trained, history: pd.DataFrame, cut: Any) -> float:
    scored = score_history(trained.model, history)
    rows = after(scored, cut)
    truth = scored.inputs.loc[rows, RISK].to_numpy(dtype=np.float64)
    return mae(truth, scored.outputs.loc[rows, "risk_level"].to_numpy(dtype=np.float64))


def r2_and_imputation(
    trained: Trained, history: pd.DataFrame, target: str, cut: Any
) -> tuple[float, float]:
    """R² of the one-step forecast, and of gap filling (every present target hidden in turn)."""
    from models.sequence import SequenceModel

    measured = forecasts(trained.model, history, target, cut)
    model = trained.model
    if not isinstance(model, SequenceModel):
        return r2(measured.actual, measured.forecast), float("nan")
    rows = model.feature_rows(history)
    present = np.asarray(rows.frame[TS] > cut) & rows.frame[target].notna().to_numpy()
    filled = model.impute_rows(rows.matrix[present])
    imputed = r2(rows.frame.loc[present, target].to_numpy(np.float64), np.asarray(filled.value))
    return r2(measured.actual, measured.forecast), imputed


def label(frame: pd.DataFrame, entity: str) -> str:
    """``NxM``: entities x median readings per entity."""
    counts = frame.groupby(entity).size()
    return f"{len(counts)}x{int(counts.median())}"


def rename_for_demand(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """A single-metric sensor frame as a demand frame (one product, the metric as quantity)."""
    return frame[[ENTITY, TS, target]].rename(columns={ENTITY: PRODUCT, target: QUANTITY})


# -- generated data: goals ---------------------------------------------------------------

ANOMALY_F1: Final = Goal(">=", 0.85)
ANOMALY_AUC: Final = Goal(">=", 0.90)
RISK_MAE: Final = Goal("<=", 0.5)
DEMAND_MAPE: Final = Goal("<=", 10.0)
SEQUENCE_R2: Final = Goal(">=", 0.9)
DAILY_SEASON: Final = 7  # seasonal naive for daily demand: the same weekday last week


@dataclass(frozen=True)
class Generated:
    """Generated histories: machines (sensor + labels), products (demand), air (sensor)."""

    machines: pd.DataFrame
    products: pd.DataFrame
    air: pd.DataFrame
    sequence_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


def generated_checks(data: Generated, status: Status) -> list[Check]:
    """Every family on generated data against its goal."""
    return [
        *_machine_checks(data, status),
        _demand_check(data, status),
        _sequence_check(data, status),
    ]


def timed(check: Check, trained: Trained) -> Check:
    check.train_seconds, check.model_bytes = trained.seconds, trained.size_bytes
    return check


def _machine_checks(data: Generated, status: Status) -> list[Check]:
    train, cut = split_time(data.machines)
    name = f"machines {label(data.machines, ENTITY)}"
    status(f"anomaly on {name}")
    anomaly = fit("anomaly", {"seed": data.seed}, train)
    found = detection(anomaly, data.machines, cut)
    status(f"maintenance on {name}")
    maintenance = fit("maintenance", {"seed": data.seed}, train)
    return [
        timed(judged(Check("generated", "anomaly", name, "F1", found["f1"]), ANOMALY_F1), anomaly),
        judged(Check("generated", "anomaly", name, "ROC AUC", found["roc_auc"]), ANOMALY_AUC),
        timed(
            judged(
                Check(
                    "generated",
                    "maintenance",
                    name,
                    "risk MAE",
                    risk_mae(maintenance, data.machines, cut),
                ),
                RISK_MAE,
            ),
            maintenance,
        ),
    ]


def _demand_check(data: Generated, status: Status) -> Check:
    train, cut = split_time(data.products)
    name = f"products {label(data.products, PRODUCT)}"
    status(f"demand on {name}")
    demand = fit("demand", {"seed": data.seed}, train)
    measured = forecasts(demand.model, data.products, QUANTITY, cut)
    naive = fit("seasonal_naive", {"season": DAILY_SEASON}, train)
    baseline = forecasts(naive.model, data.products, QUANTITY, cut)
    check = Check("generated", "demand", name, "MAPE %", mape(measured.actual, measured.forecast))
    check.baseline = f"naive {mape(baseline.actual, baseline.forecast):.1f}"
    return timed(judged(check, DEMAND_MAPE), demand)


def _sequence_check(data: Generated, status: Status) -> Check:
    target = "pm25"
    train, cut = split_time(data.air)
    name = f"air {label(data.air, ENTITY)} {target}"
    status(f"sequence on {name}")
    params = {"metric": target, "seed": data.seed, **data.sequence_params}
    sequence = fit("sequence", params, train)
    forecast_r2, impute_r2 = r2_and_imputation(sequence, data.air, target, cut)
    naive = fit("seasonal_naive", {"target": target}, train)
    baseline = forecasts(naive.model, data.air, target, cut)
    check = Check("generated", "sequence", name, "R²", forecast_r2)
    check.baseline = f"naive {r2(baseline.actual, baseline.forecast):.3f}"
    check.notes.append(f"gap filling R² {impute_r2:.3f}")
    return timed(judged(check, SEQUENCE_R2), sequence)
