"""Sequence forecasts per second: the LSTM family scoring batches of windows in-process.

A sequence model is fitted on the machines' training history (target ``temperature``, the
other metrics as covariates, the family's default network: 24-reading windows, 32 LSTM
units). Speed depends on the network's shape, not on how long it trained, so a few epochs
do. Its feature rows (one window each) are then scored in batches of the worker's size;
the figure is the best of ``repeats`` timed passes after one untimed call (graph tracing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import pandas as pd

TARGET: Final = "temperature"
# Enough epochs for a network with sensible weights; the shape alone sets the speed.
EPOCHS: Final = 2
MAX_WINDOWS: Final = 10_000  # a few passes of this take seconds on two cores


@dataclass(frozen=True)
class Forecasts:
    """``windows`` forecast in batches of ``batch_size`` in ``seconds`` (best pass)."""

    windows: int
    batch_size: int
    seconds: float
    train_seconds: float

    @property
    def windows_per_s(self) -> float:
        return self.windows / self.seconds if self.seconds > 0 else float("inf")


def measure_forecasts(history: pd.DataFrame, batch_size: int, repeats: int = 3) -> Forecasts:
    """Fit a sequence model on ``history`` and time ``predict_batch`` on its windows.

    Imported here: the sequence family brings TensorFlow, which nothing else needs.
    """
    from models.families import create
    from models.scoring import feature_rows

    model = create("sequence", {"metric": TARGET, "epochs": EPOCHS})
    report = model.fit(history)
    windows = feature_rows(model, history).matrix[-MAX_WINDOWS:]
    model.predict_batch(windows[:batch_size])  # untimed: traces the forward function
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for start in range(0, windows.shape[0], batch_size):
            model.predict_batch(windows[start : start + batch_size])
        best = min(best, time.perf_counter() - started)
    return Forecasts(int(windows.shape[0]), batch_size, best, report.seconds)
