"""Feature code shared by training (whole history frames) and the worker (per-entity state).

A *spec* (:class:`SensorSpec`, :class:`DemandSpec`, :class:`SeriesSpec`) turns a window of
the last ``spec.history_needed`` readings of one entity into one feature row with
``spec.rows(windows, ts, entities)``, vectorized over ``[batch, W, inputs]``. Training calls
:func:`frame_rows` over a history frame; the worker keeps one :class:`EntityWindow` per entity,
stacks their ``window()`` arrays and calls the same ``rows``. Missing values are forward-filled
inside each window only and statistics are NaN-aware (details in ``models.features.stats``).

A model stores its spec in metadata (``info.spec``); :func:`spec_from_metadata` rebuilds it
(the sequence family's ``SequenceSpec`` included, imported only when one is rebuilt):

>>> spec = SensorSpec(metrics=("temperature",), window=4, rolling=(2,), features=("rz",))
>>> spec_from_dict(spec.to_dict()) == spec, spec.history_needed, spec.names()
(True, 4, ['temperature_rz'])
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Final

from models.features.demand import UNKNOWN_PRODUCT, DemandSpec
from models.features.sensor import SensorSpec
from models.features.series import SeriesSpec
from models.features.spec import FeatureSpec, FeatureSpecError
from models.features.window import (
    EntityWindow,
    FeatureRows,
    fill_missing,
    fill_values,
    frame_rows,
    infer_step_seconds,
    reading_vector,
    utc_naive,
)

# spec kind -> "module:class"; imported when a spec of that kind is rebuilt, so a kind that
# lives with its family (the sequence family's) costs nothing until it is used
SPEC_KINDS: Final[dict[str, str]] = {
    SensorSpec.kind: "models.features.sensor:SensorSpec",
    DemandSpec.kind: "models.features.demand:DemandSpec",
    SeriesSpec.kind: "models.features.series:SeriesSpec",
    "sequence": "models.sequence_window:SequenceSpec",
}

__all__ = [
    "SPEC_KINDS",
    "UNKNOWN_PRODUCT",
    "DemandSpec",
    "EntityWindow",
    "FeatureRows",
    "FeatureSpec",
    "FeatureSpecError",
    "SensorSpec",
    "SeriesSpec",
    "fill_missing",
    "fill_values",
    "frame_rows",
    "infer_step_seconds",
    "reading_vector",
    "spec_from_dict",
    "spec_from_metadata",
    "utc_naive",
]


def spec_from_dict(data: Mapping[str, Any]) -> FeatureSpec:
    """Rebuild a spec written by ``spec.to_dict()`` (JSON lists become tuples again)."""
    values = dict(data)
    kind = values.pop("kind", None)
    if kind not in SPEC_KINDS:
        raise FeatureSpecError(f"unknown feature spec kind {kind!r}; known: {sorted(SPEC_KINDS)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    module_name, attribute = SPEC_KINDS[kind].split(":")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise FeatureSpecError(f"feature spec kind {kind!r} cannot be imported: {exc}") from exc
    try:
        spec: FeatureSpec = cls(**values)
    except TypeError as exc:
        raise FeatureSpecError(f"feature spec of kind {kind!r} is malformed: {exc}") from exc
    return spec


def spec_from_metadata(metadata: Mapping[str, Any]) -> FeatureSpec:
    """The spec a model stored in its metadata (``info.spec``)."""
    try:
        spec_data = metadata["info"]["spec"]
    except (KeyError, TypeError) as exc:
        family = metadata.get("family", "?")
        raise FeatureSpecError(f"metadata of family {family!r} holds no feature spec") from exc
    return spec_from_dict(spec_data)
