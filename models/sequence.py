"""Sequence family: a small Keras LSTM that forecasts one sensor metric and fills its gaps.

One network serves both jobs. Its input is the window of the last ``seq_len`` readings of
every metric of one entity ending at the present reading t (:class:`SequenceSpec`, also the
worker's ring-buffer layout); its outputs are the target at t, t+1, ..., t+h
(h = ``horizon``), in the target's units:

* **forecast** (``predict_batch``, ``forecast_path``): outputs t+1 ... t+h. ``Scores.value``
  is the h-step-ahead forecast; :meth:`SequenceModel.forecast_path` returns every step.
* **gap filling** (``impute``, ``impute_rows``): output t, with the present target *hidden*
  from the input. The estimate uses the past of every metric and the covariates read at t,
  never the target at t nor anything after t. Training hides the present target in a share
  of rows (``hide_fraction``) so the network learns this task next to forecasting.

Feature rows may hold NaN (a metric not read yet in the window, or any reading not made):
it enters the network as the training mean with mask 0, so outputs are always finite.

``lower``/``upper`` are split-conformal intervals: the validation |residual| quantile at
``coverage`` (90% by default) for each output step, so ``lower <= value <= upper``.

The most recent ``val_fraction`` of the history (by time, over all entities) validates:
it drives early stopping and best-checkpoint selection, gives the FitReport metrics (MAPE in
percent, as ``models.metrics``) and calibrates the intervals; training labels that fall in it
are blanked. ``fine_tune`` continues from the current weights at a lower learning rate and
keeps the scaler: the weights were learnt on inputs scaled that way and rescaling would move
every input under them. TensorFlow is imported on first fit/load only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd

from models import sequence_data as data
from models import sequence_files as files
from models import sequence_net as net
from models.base import FitReport, FloatArray, ModelError, NotFittedError, Scores
from models.features import FeatureRows, frame_rows, infer_step_seconds
from models.frames import ENTITY
from models.metrics import regression_report
from models.sequence_params import SequenceParams
from models.sequence_window import ChannelScaler, SequenceSpec
from models.tabular import (
    SpecModel,
    Stopwatch,
    params_dict,
    parse_params,
    time_window,
)

# Rows per forward call: bounds memory on a large backfill; a worker batch fits in one call.
MAX_BATCH: Final = 8192


@dataclass(frozen=True)
class ForecastPath:
    """All forecast steps of a batch: arrays are (rows x horizon), column k is t+k+1."""

    value: FloatArray
    lower: FloatArray
    upper: FloatArray


class SequenceModel(SpecModel):
    """Keras LSTM forecaster and gap filler for one metric of sensor entities."""

    family: ClassVar[str] = "sequence"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.config = parse_params(SequenceParams, self.params, self.family)
        self.params = params_dict(self.config)
        self.training_log = ""
        self._layout: SequenceSpec | None = None
        self._network: Any = None
        self._forward: Callable[[FloatArray], FloatArray] | None = None
        self._scaler: ChannelScaler | None = None
        self._half_width = np.empty(0)

    @property
    def metrics(self) -> list[str]:
        """Metric order of raw windows: the target, then the covariates."""
        return list(self._fitted()[0].metrics)

    def _fitted(self) -> tuple[SequenceSpec, ChannelScaler]:
        if self._layout is None or self._scaler is None or self._network is None:
            raise NotFittedError("sequence: model is not fitted")
        return self._layout, self._scaler

    # -- training ------------------------------------------------------------------------
    def fit(self, history: pd.DataFrame) -> FitReport:
        """Train a new network and scaler on a wide sensor history frame."""
        clock, cfg = Stopwatch(), self.config
        metrics = data.choose_metrics(history, cfg.metric, cfg.covariates)
        spec = SequenceSpec(tuple(metrics), cfg.seq_len)
        prepared = data.prepare(frame_rows(spec, history), spec, cfg)
        scaler = ChannelScaler.fit(metrics, prepared.trained[metrics].to_numpy(np.float64))
        step = infer_step_seconds(history, ENTITY)
        self._network = net.build(cfg.seq_len, spec.channels, cfg.horizon + 1, cfg.units, cfg.seed)
        self._layout, self._scaler, self._forward = spec, scaler, None
        self.info = {"fine_tunes": 0, "step_seconds": step if np.isfinite(step) else None}
        self._set_spec(spec)
        return self._run(prepared, cfg.learning_rate, "fit", clock)

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        """Continue training at ``learning_rate * fine_tune_lr_factor``; keep the scaler."""
        clock, cfg = Stopwatch(), self.config
        spec, _ = self._fitted()
        prepared = data.prepare(self.feature_rows(history), spec, cfg)
        report = self._run(
            prepared, cfg.learning_rate * cfg.fine_tune_lr_factor, "fine_tune", clock
        )
        self.info["fine_tunes"] = int(self.info.get("fine_tunes", 0)) + 1
        return report

    def _run(self, prepared: data.Prepared, rate: float, how: str, clock: Stopwatch) -> FitReport:
        cfg = self.config
        _, scaler = self._fitted()
        train, valid = prepared.train, prepared.valid
        arrays = (
            scaler.network_input(train.features, cfg.seq_len),
            scaler.scale_target(train.labels),
            scaler.network_input(valid.features, cfg.seq_len),
            scaler.scale_target(valid.labels),
        )
        config = net.TrainConfig(cfg.epochs, cfg.batch_size, rate, cfg.patience, cfg.seed)
        outcome = net.train(self._network, arrays, config)
        self.training_log = outcome.log_csv
        metrics = self._evaluate(prepared.holdout)
        self.info.update(
            trained_by=how,
            train_rows=len(train),
            val_rows=len(valid),
            epochs_run=len(outcome.curve.get("loss", [])),
            best_epoch=outcome.best_epoch,
            half_width=[float(w) for w in self._half_width],
            keras_version=str(net.runtime().__version__),
        )
        trained = prepared.trained
        return FitReport(
            metrics, len(trained), clock.seconds(), time_window(trained), outcome.curve
        )

    def _evaluate(self, val: data.Examples) -> dict[str, float]:
        """Holdout metrics of the h-step forecast and of gap filling; calibrate intervals."""
        h, coverage = self.config.horizon, self.config.coverage
        spec, _ = self._fitted()
        forecast = self._outputs(val.features)
        filled = self._outputs(spec.hide_present_target(val.features))[:, 0]
        widths = [data.interval_half_width(val.labels[:, 0], filled, coverage)]
        widths += [
            data.interval_half_width(val.labels[:, k], forecast[:, k], coverage)
            for k in range(1, h + 1)
        ]
        if not np.all(np.isfinite(widths)):
            raise ModelError("sequence: validation rows lack observed targets to calibrate on")
        self._half_width = np.asarray(widths, dtype=np.float64)
        impute = regression_report(val.labels[:, 0], filled)
        return {
            **regression_report(val.labels[:, h], forecast[:, h]),
            **{f"impute_{k}": v for k, v in impute.items()},
        }

    # -- serving -------------------------------------------------------------------------
    def feature_rows(self, history: pd.DataFrame) -> FeatureRows:
        """Feature rows for every reading; an absent covariate column counts as never read."""
        spec, _ = self._fitted()
        absent = {m: np.nan for m in spec.metrics[1:] if m not in history.columns}
        return frame_rows(spec, history.assign(**absent) if absent else history)

    def features_from_windows(self, windows: FloatArray) -> FloatArray:
        """Raw windows ``(batch, seq_len, len(metrics))`` -> the predict_batch matrix."""
        return self._fitted()[0].rows(windows)

    def predict_batch(self, features: FloatArray) -> Scores:
        """Forecast of the target at t+horizon for every row, with its interval."""
        h = self.config.horizon
        return _scores(self._outputs(features)[:, h], float(self._half_width[h]))

    def forecast_path(self, features: FloatArray) -> ForecastPath:
        """Forecasts of t+1 ... t+horizon for every row, with per-step intervals."""
        value = self._outputs(features)[:, 1:]
        width = self._half_width[1:]
        return ForecastPath(value=value, lower=value - width, upper=value + width)

    def impute(self, windows: FloatArray) -> Scores:
        """Estimate the target at each raw window's last step; see :meth:`impute_rows`."""
        return self.impute_rows(self.features_from_windows(windows))

    def impute_rows(self, features: FloatArray) -> Scores:
        """Estimate the target at t of each row from the past and the covariates at t.

        The row's own target reading at t is ignored (treated as missing), so the estimate
        never depends on it: use it for the readings whose target is missing.
        """
        spec, _ = self._fitted()
        hidden = spec.hide_present_target(self._matrix(features))
        return _scores(self._outputs(hidden)[:, 0], float(self._half_width[0]))

    def _outputs(self, features: FloatArray) -> FloatArray:
        """Network outputs (rows x horizon+1) in target units: one forward call per chunk."""
        matrix = self._matrix(features)
        _, scaler = self._fitted()
        if matrix.shape[0] == 0:
            return np.empty((0, self.config.horizon + 1))
        if self._forward is None:
            self._forward = net.forward_fn(self._network)
        x = scaler.network_input(matrix, self.config.seq_len)
        scaled = [self._forward(x[i : i + MAX_BATCH]) for i in range(0, x.shape[0], MAX_BATCH)]
        return scaler.unscale_target(np.concatenate(scaled))

    # -- persistence ---------------------------------------------------------------------
    def save(self, directory: Path) -> list[str]:
        """Write the network (.keras), scaler and state (JSON) and the training log (CSV)."""
        _, scaler = self._fitted()
        state = files.SavedState(self.params, self._half_width, self.info, self.training_log)
        return files.write(directory, self._network, scaler, state)

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> SequenceModel:
        """Read a model written by :meth:`save`; no pickle is involved."""
        if metadata.get("family", cls.family) != cls.family:
            raise ModelError(f"sequence: metadata belongs to family {metadata.get('family')!r}")
        network, scaler, state = files.read(directory)
        model = cls(state.params)
        spec = SequenceSpec(scaler.metrics, model.config.seq_len)
        model._network, model._scaler, model._layout = network, scaler, spec
        model._half_width, model.info = state.half_width, state.info
        model.training_log = state.training_log
        model._set_spec(spec)
        model._check_loaded()
        return model

    def _check_loaded(self) -> None:
        spec, h = self._fitted()[0], self.config.horizon
        inputs, outputs = tuple(self._network.input_shape[1:]), self._network.output_shape[-1]
        if inputs != (spec.seq_len, spec.channels) or outputs != h + 1:
            raise ModelError(
                f"sequence: network shape {inputs}->{outputs} does not match the saved "
                f"layout ({spec.seq_len}, {spec.channels})->{h + 1}"
            )
        if self._half_width.shape != (h + 1,):
            raise ModelError(f"sequence: {self._half_width.shape[0]} interval widths saved")


def _scores(value: FloatArray, half_width: float) -> Scores:
    return Scores(value=value, lower=value - half_width, upper=value + half_width)
