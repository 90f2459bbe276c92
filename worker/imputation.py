"""Gap filling: a value for every metric a sensor reading reported as null.

The sequence champion of the metric (``ModelRoutes.sequence``, keyed by metric) estimates
the gap from the window's past and the covariates read at the same time, in one call per
metric per batch. Where no champion serves the metric, or it gives no finite estimate,
the last value observed in the entity's window fills the gap (version 0: a fallback). A
gap with no observation anywhere in the window stays null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from events.readings import SensorReading
from worker.intake import Readings
from worker.scoring import GapFiller, Scorer
from worker.serving import Served
from worker.snapshot import Snapshot

Filled = dict[int, dict[str, tuple[float, int]]]


def fill_gaps(
    gaps: Mapping[str, Sequence[int]],
    champions: Mapping[str, Served],
    readings: Readings[SensorReading],
    snapshot: Snapshot,
    scorer: Scorer,
) -> Filled:
    """Row -> metric -> (value, version) for every gap that could be filled."""
    fills: Filled = {}
    for metric, rows in gaps.items():
        values = np.full(len(rows), np.nan)
        versions = np.zeros(len(rows), dtype=np.int64)
        served = champions.get(metric)
        if served is not None and isinstance(served.model, GapFiller):
            scores = scorer.run(served, snapshot, readings, rows, served.model.impute_rows)
            if scores is not None and scores.value is not None:
                estimate = np.asarray(scores.value, dtype=np.float64)
                good = np.isfinite(estimate)
                values[good], versions[good] = estimate[good], served.version
        missing = np.flatnonzero(~np.isfinite(values))
        if missing.size:
            values[missing] = snapshot.last_observed(metric, [rows[k] for k in missing.tolist()])
        for k in np.flatnonzero(np.isfinite(values)).tolist():
            fills.setdefault(rows[k], {})[metric] = (float(values[k]), int(versions[k]))
    return fills
