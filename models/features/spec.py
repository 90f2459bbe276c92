"""What every feature spec provides, and the errors specs raise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from models.base import FloatArray, ModelError
from models.features.stats import TimeArray

Entities = Sequence[str] | npt.NDArray[np.object_]


class FeatureSpecError(ModelError):
    """A feature spec is inconsistent (lags beyond its window, unknown feature names)."""


class FeatureSpec(Protocol):
    """A family's features: which inputs a window holds, how long it is, how rows are made.

    ``rows(windows, ts, entities)`` maps ``[batch, history_needed, len(inputs)]`` windows
    (oldest reading first, NaN-padded at the front) plus the timestamp and entity of each
    window's last reading to a ``[batch, len(names())]`` float64 matrix.
    """

    kind: ClassVar[str]

    @property
    def entity(self) -> str:
        """Key column of the history frame (``entity_id`` or ``product_id``)."""
        ...

    @property
    def inputs(self) -> tuple[str, ...]:
        """Frame columns a window holds, in order."""
        ...

    @property
    def history_needed(self) -> int:
        """Readings per window: the worker's ring buffer length and warm-up depth."""
        ...

    def names(self) -> list[str]:
        """Feature names, one per output column."""
        ...

    def rows(self, windows: FloatArray, ts: TimeArray, entities: Entities) -> FloatArray:
        """Feature rows of a batch of windows."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``kind`` plus the fields) for model metadata."""
        ...


def check_names(values: Sequence[str], allowed: Sequence[str], what: str) -> None:
    """Raise FeatureSpecError naming every value not in ``allowed``."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise FeatureSpecError(f"unknown {what} {unknown}; allowed: {', '.join(allowed)}")


def spec_dict(spec: Any) -> dict[str, Any]:
    """``kind`` plus the dataclass fields of ``spec``."""
    return {"kind": spec.kind, **asdict(spec)}
