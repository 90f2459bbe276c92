"""Hyper-parameters of the sequence family, parsed and checked once."""

from __future__ import annotations

from dataclasses import dataclass

from models.base import ModelError


@dataclass(frozen=True)
class SequenceParams:
    """Every knob of the sequence family; ``Model.params`` holds the same keys as a dict.

    ``metric`` is the target (default: the frame's first numeric metric column);
    ``covariates`` the other metrics fed as inputs (default: every other numeric metric
    column that has a reading). ``horizon`` h means the network predicts t+1 ... t+h;
    ``hide_fraction`` is the share of training windows whose present target is hidden so the
    network also learns to fill gaps.
    """

    metric: str | None = None
    covariates: tuple[str, ...] | None = None
    seq_len: int = 24  # one day of hourly readings: a full diurnal cycle
    horizon: int = 1
    units: int = 32  # one small layer keeps CPU scoring far above 2,000 windows/s
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3  # 3x Adam's default: converges in about half the epochs, same error
    patience: int = 4
    val_fraction: float = 0.2
    fine_tune_lr_factor: float = 0.1  # continue gently: adapt without forgetting
    coverage: float = 0.9  # nominal coverage of lower/upper
    hide_fraction: float = 0.25  # gaps are rarer than readings; most windows teach forecasting
    seed: int = 0

    def __post_init__(self) -> None:
        """Raise ModelError when a value is out of range."""
        problems = [
            name
            for name, ok in (
                ("seq_len >= 2", self.seq_len >= 2),
                ("horizon >= 1", self.horizon >= 1),
                ("units >= 1", self.units >= 1),
                ("epochs >= 1", self.epochs >= 1),
                ("batch_size >= 1", self.batch_size >= 1),
                ("learning_rate > 0", self.learning_rate > 0),
                ("patience >= 0", self.patience >= 0),
                ("0 < val_fraction < 1", 0 < self.val_fraction < 1),
                ("fine_tune_lr_factor > 0", self.fine_tune_lr_factor > 0),
                ("0 < coverage < 1", 0 < self.coverage < 1),
                ("0 <= hide_fraction < 1", 0 <= self.hide_fraction < 1),
            )
            if not ok
        ]
        if problems:
            raise ModelError(f"sequence: parameters must satisfy {', '.join(problems)}")
