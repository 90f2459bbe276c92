"""Deterministic synthetic history in the canonical frame layouts (``models.frames``).

* :func:`generate_machines`: machine telemetry with labelled anomalies and maintenance risk.
* :func:`generate_products`: daily (or hourly) product demand with prices and promotions.
* :func:`generate_air`: hourly air-quality readings with missing-value gaps.
* :func:`inject_drift`: a level, trend, seasonality or variance change from a time onward.

The same seed always gives the same frame; see ``docs/data.md`` for every option.
"""

from driftline.generator.air import POLLUTANTS, generate_air
from driftline.generator.drift import DRIFT_KINDS, inject_drift
from driftline.generator.machines import ANOMALY_KINDS, METRICS, generate_machines, split_labels
from driftline.generator.products import generate_products
from driftline.generator.series import DEFAULT_START, GeneratorError

__all__ = [
    "ANOMALY_KINDS",
    "DEFAULT_START",
    "DRIFT_KINDS",
    "METRICS",
    "POLLUTANTS",
    "GeneratorError",
    "generate_air",
    "generate_machines",
    "generate_products",
    "inject_drift",
    "split_labels",
]
