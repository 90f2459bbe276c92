"""Window layout of the sequence family: its feature spec, scaler and network input.

A *raw window* holds the last ``seq_len`` readings of one entity, oldest first, as a
``(seq_len, n_metrics)`` array in the model's metric order (target first, then the
covariates); NaN marks a missing reading or missing history. That is exactly what the
worker's ``models.features.EntityWindow`` ring buffer holds for :class:`SequenceSpec`, and
what ``models.features.frame_rows`` cuts from a history frame, so training, batch scoring
and the worker build the same rows with :meth:`SequenceSpec.rows`.

Every metric becomes two channels per step:

* ``<metric>_t-<lag>``: the reading, or the last reading *observed* earlier in the same
  window (carried forward), in the metric's units; NaN when the window has none yet.
* ``mask_<metric>_t-<lag>``: 1.0 when the reading was observed at that step, else 0.0.

The feature matrix is that ``(seq_len, 2 * n_metrics)`` array flattened time-major. Rows
stay in metric units so the spec needs no fitted state; :meth:`ChannelScaler.network_input`
scales the value channels and fills what is still missing with 0 (the training mean).
The masks let the network tell a real reading from a carried or filled one, so a sensor that
drops out while the others keep reporting leaves the window usable.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from models.base import FeatureMismatchError, FloatArray, ModelError
from models.frames import ENTITY

# A metric whose training std is (almost) zero is constant: scaling by 1.0 keeps it finite.
MIN_STD = 1e-9


@dataclass(frozen=True)
class SequenceSpec:
    """Feature spec (``models.features.FeatureSpec`` protocol) of the sequence family."""

    kind: ClassVar[str] = "sequence"
    metrics: tuple[str, ...]
    seq_len: int = 24
    entity: str = ENTITY

    def __post_init__(self) -> None:
        # carrying the previous step forward (gap filling) needs at least two steps
        if not self.metrics or self.seq_len < 2:
            raise ModelError(
                f"sequence spec needs metrics and seq_len >= 2, got {self.metrics}, {self.seq_len}"
            )

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.metrics

    @property
    def history_needed(self) -> int:
        return self.seq_len

    @property
    def channels(self) -> int:
        """Network input channels per step: a value and a mask per metric."""
        return 2 * len(self.metrics)

    def names(self) -> list[str]:
        """``<metric>_t-<lag>`` then ``mask_<metric>_t-<lag>`` per step, oldest step first."""
        per_step = [*self.metrics, *(f"mask_{m}" for m in self.metrics)]
        return [f"{c}_t-{lag}" for lag in range(self.seq_len - 1, -1, -1) for c in per_step]

    def rows(self, windows: FloatArray, ts: object = None, entities: object = None) -> FloatArray:
        """Feature rows of raw windows ``(batch, seq_len, n_metrics)``; input not modified.

        ``ts`` and ``entities`` (the spec protocol's other arguments) are not used.
        """
        if windows.ndim != 3 or windows.shape[1:] != (self.seq_len, len(self.metrics)):
            raise FeatureMismatchError(
                f"sequence: expected raw windows (batch, {self.seq_len}, {len(self.metrics)}) "
                f"of metrics {', '.join(self.metrics)}, got shape {windows.shape}"
            )
        present = np.isfinite(windows)
        steps = np.arange(self.seq_len).reshape(1, -1, 1)
        last_seen = np.maximum.accumulate(np.where(present, steps, -1), axis=1)
        carried = np.take_along_axis(windows, np.maximum(last_seen, 0), axis=1)
        values = np.where(last_seen >= 0, carried, np.nan)
        stacked = np.concatenate([values, present.astype(np.float64)], axis=2)
        return stacked.reshape(windows.shape[0], -1)

    def hide_present_target(self, features: FloatArray) -> FloatArray:
        """Copy of feature rows as if the target at t-0 had not been read.

        Equals ``rows`` of the windows with that reading set to NaN: the carried value at
        t-0 becomes the carried value at t-1 and the mask drops to 0.
        """
        width = self.channels
        now, before = (self.seq_len - 1) * width, (self.seq_len - 2) * width
        hidden = np.array(features, dtype=np.float64, copy=True)
        hidden[:, now] = hidden[:, before]
        hidden[:, now + len(self.metrics)] = 0.0
        return hidden

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "metrics": list(self.metrics),
            "seq_len": self.seq_len,
            "entity": self.entity,
        }


@dataclass(frozen=True)
class ChannelScaler:
    """Per-metric mean/std fitted on training readings; saved as JSON with the model."""

    metrics: tuple[str, ...]
    mean: FloatArray
    std: FloatArray

    @classmethod
    def fit(cls, metrics: Sequence[str], values: FloatArray) -> ChannelScaler:
        """Fit on ``values`` (rows x metrics, NaN = missing); every metric needs a reading."""
        observed = np.isfinite(values)
        seen = np.asarray(observed.any(axis=0), dtype=np.bool_)
        empty = [m for m, ok in zip(metrics, seen, strict=True) if not ok]
        if empty:
            raise ModelError(f"sequence: no training readings for metric(s) {', '.join(empty)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nanstd of a single reading
            clean = np.where(observed, values, np.nan)
            mean, std = np.nanmean(clean, axis=0), np.nanstd(clean, axis=0)
        std = np.where(np.isfinite(std) & (std > MIN_STD), std, 1.0)
        return cls(tuple(metrics), mean.astype(np.float64), std.astype(np.float64))

    def network_input(self, features: FloatArray, seq_len: int) -> FloatArray:
        """Feature rows -> ``(batch, seq_len, channels)``: values scaled, gaps filled with 0.

        NaN means "not read": a NaN value becomes 0 (the training mean) and a NaN mask 0
        (not observed), so even an all-NaN row gives a finite input.
        """
        steps = features.reshape(features.shape[0], seq_len, -1)
        count = len(self.metrics)
        scaled = (steps[:, :, :count] - self.mean) / self.std
        out = np.concatenate([scaled, steps[:, :, count:]], axis=2)
        return np.where(np.isfinite(out), out, 0.0)

    def scale_target(self, values: FloatArray) -> FloatArray:
        """Scale target readings (any shape; NaN stays NaN)."""
        return np.asarray((values - self.mean[0]) / self.std[0], dtype=np.float64)

    def unscale_target(self, scaled: FloatArray) -> FloatArray:
        """Map scaled network outputs back to target units (any shape)."""
        return np.asarray(scaled * self.std[0] + self.mean[0], dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serialisable form (no pickle anywhere)."""
        return {
            "metrics": list(self.metrics),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChannelScaler:
        """Inverse of :meth:`to_json`; raises ModelError on a malformed document."""
        try:
            metrics = tuple(str(m) for m in data["metrics"])
            mean = np.asarray(data["mean"], dtype=np.float64)
            std = np.asarray(data["std"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"sequence: scaler JSON is malformed: {exc}") from exc
        if not metrics or mean.shape != (len(metrics),) or std.shape != (len(metrics),):
            raise ModelError(
                f"sequence: scaler JSON is inconsistent: {len(metrics)} metrics, "
                f"mean {mean.shape}, std {std.shape}"
            )
        return cls(metrics, mean, std)
