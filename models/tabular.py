"""Plumbing shared by the families whose features come from a ``models.features`` spec.

:class:`SpecModel` keeps the spec in ``info["spec"]`` (so the worker can rebuild it from
metadata), checks feature matrices, and turns history frames into feature rows.
:func:`parse_params` turns ``Model.params`` into a typed, validated dataclass.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, fields
from typing import Any, TypeVar, get_type_hints

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from models.base import FeatureMismatchError, FloatArray, Model, ModelError, NotFittedError
from models.features import FeatureRows, FeatureSpec, frame_rows, spec_from_dict
from models.frames import TS, metric_columns

P = TypeVar("P")


def parse_params(cls: type[P], params: dict[str, Any], family: str) -> P:
    """Build the ``cls`` dataclass from ``params``; ModelError names unknown keys or bad values.

    Each value is checked strictly against its field's type: ``true`` is not a lag and
    ``16.0`` not a depth (an int still serves where a float belongs). JSON lists become
    tuples, so parameters read back from metadata.json parse the same.
    """
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - known)
    if unknown:
        raise ModelError(f"{family}: unknown parameter(s) {unknown}; known: {sorted(known)}")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in params.items():
        try:
            values[name] = _adapter(hints[name]).validate_python(
                tuple(value) if isinstance(value, list) else value, strict=True
            )
        except ValidationError as exc:
            problems += [
                f"{'.'.join([name, *map(str, error['loc'])])}: {error['msg']}"
                for error in exc.errors()
            ]
    if problems:
        raise ModelError(f"{family}: bad parameter value: {'; '.join(problems)}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{family}: bad parameter value: {exc}") from exc


@functools.cache
def _adapter(hint: Any) -> TypeAdapter[Any]:
    """The validator of one field type (built once per type)."""
    return TypeAdapter(hint)


def params_dict(parsed: Any) -> dict[str, Any]:
    """Every effective hyper-parameter as a JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(parsed).items()}


def numeric_metrics(history: pd.DataFrame) -> tuple[str, ...]:
    """Metric columns of a sensor frame that are numeric and hold at least one value."""
    return tuple(
        c
        for c in metric_columns(history)
        if pd.api.types.is_numeric_dtype(history[c]) and history[c].notna().any()
    )


def time_window(frame: pd.DataFrame) -> tuple[str, str] | None:
    """ISO first and last ``ts`` of a frame (None when empty)."""
    if frame.empty:
        return None
    stamps = pd.to_datetime(frame[TS], utc=True)
    return stamps.min().isoformat(), stamps.max().isoformat()


def require_frame(history: pd.DataFrame, columns: tuple[str, ...], family: str) -> None:
    """Raise FeatureMismatchError naming the required columns a history frame lacks."""
    missing = [c for c in columns if c not in history.columns]
    if missing:
        raise FeatureMismatchError(
            f"{family}: history frame lacks column(s) {', '.join(missing)}; "
            f"has {', '.join(map(str, history.columns))}"
        )


def require_rows(count: int, minimum: int, family: str, what: str) -> None:
    """Raise ModelError when fewer than ``minimum`` rows are available for ``what``."""
    if count < minimum:
        raise ModelError(
            f"{family}: too little data to {what}: {count} usable row(s), need at least {minimum}"
        )


class Stopwatch:
    """Seconds since creation (for FitReport.seconds)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self._start


class SpecModel(Model):
    """A family whose feature rows come from a ``models.features`` spec."""

    _spec: FeatureSpec | None = None

    @property
    def spec(self) -> FeatureSpec:
        """The fitted spec (NotFittedError before fit or load)."""
        if self._spec is None:
            raise NotFittedError(f"{self.family}: model is not fitted")
        return self._spec

    def _set_spec(self, spec: FeatureSpec) -> None:
        self._spec = spec
        self.feature_names = spec.names()
        self.info["spec"] = spec.to_dict()

    def _restore_spec(self, metadata: dict[str, Any]) -> None:
        """Take spec and info from metadata written at save time (family checked)."""
        if metadata.get("family") != self.family:
            raise ModelError(
                f"{self.family}: metadata belongs to family {metadata.get('family')!r}"
            )
        self.info = dict(metadata.get("info", {}))
        try:
            self._set_spec(spec_from_dict(self.info["spec"]))
        except KeyError as exc:
            raise ModelError(f"{self.family}: metadata has no feature spec") from exc

    def feature_rows(self, history: pd.DataFrame) -> FeatureRows:
        """Feature rows for every reading of a history frame (batch scoring, evaluation)."""
        return frame_rows(self.spec, history)

    def _matrix(self, features: FloatArray) -> FloatArray:
        """Checked float64 view of ``features`` (callers copy before changing anything)."""
        if self._spec is None:
            raise NotFittedError(f"{self.family}: model is not fitted")
        matrix = np.asarray(features, dtype=np.float64)
        self.check_features(matrix)
        return matrix
