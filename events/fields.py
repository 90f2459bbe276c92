"""Constrained field types and the limits every message contract shares.

Lengths, bounds, enums and timezone-awareness are enforced by msgspec while it decodes
(C code, no per-field Python), so a message that breaks one is refused with the JSON path
of the field. Name patterns, printable ids, the timestamp range and cross-field rules are
checked in each message's ``__post_init__`` with the helpers of ``events.checks``: msgspec
would run a regular expression per metric name, several times slower than decoding.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

import msgspec

# Kafka keys, log lines and DLQ headers carry ids. 256 characters holds any UUID, URN, SKU
# or "site/line/machine" path with room to spare while bounding key and state-store size.
MAX_ID_LENGTH: Final = 256
# Same bound as the model registry's directory names (models/layout.py NAME_PATTERN).
MAX_NAME_LENGTH: Final = 100
# Metric names become feature column names and chart labels; 64 is ample for those.
MAX_METRIC_LENGTH: Final = 64
# The widest feed (machine sensors) carries about 20 metrics; 64 leaves room for growth
# while bounding per-message work and the feature width the worker must hold per entity.
MAX_METRICS: Final = 64
# Alert messages, recommendations and retrain reasons are one or two sentences.
MAX_TEXT_LENGTH: Final = 1024
# Retrain evidence is a handful of figures (mae, baseline, degradation, days since ...).
MAX_EVIDENCE: Final = 32
# Far above any physical reading, price or daily demand, and small enough that squares
# summed over a billion rows (1e24 * 1e9) stay finite in float64 (max ~1.8e308), so
# RMSE and variance never overflow. Anything larger is a unit or encoding bug.
MAX_MAGNITUDE: Final = 1e12
# Version numbers fit a signed 32-bit integer in every consumer (JVM, SQL, Avro).
MAX_VERSION: Final = 2**31 - 1
# Counts fit a float64 exactly, so JSON readers in any language keep them intact.
MAX_COUNT: Final = 2**53
# Rejects epoch-zero defaults, seconds-vs-milliseconds mix-ups and 9999 sentinels, while
# covering every historical series driftline imports and any forecast horizon.
TS_MIN: Final = datetime(2000, 1, 1, tzinfo=UTC)
TS_MAX: Final = datetime(2100, 1, 1, tzinfo=UTC)
# One year: the longest rolling window the monitor reports.
MAX_WINDOW_SECONDS: Final = 366 * 24 * 3600.0

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
"""Entity, product, prediction, alert and request ids; model keys.

Printable characters only (no control or format characters), no leading or trailing
space: checked by :func:`events.checks.check_identifier`.
"""

ModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
"""A registry model name: letters, digits, ``_``, ``.``, ``-``, starting with a letter or
digit (:data:`events.checks.MODEL_NAMES`)."""

Version = Annotated[int, msgspec.Meta(ge=0, le=MAX_VERSION)]
"""A registry version number (``v3`` is 3); 0 means no registered version (a fallback)."""

RegisteredVersion = Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION)]
"""A version that exists in the registry (1 and up)."""

MetricName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_METRIC_LENGTH)]
"""A metric name: a letter, then letters, digits, ``_``, ``.``, ``-``
(:data:`events.checks.METRIC_NAMES`)."""

Finite = Annotated[float, msgspec.Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
"""A finite float with ``|x| <= 1e12`` (NaN and infinities are refused)."""

NonNegative = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_MAGNITUDE)]
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
WindowSeconds = Annotated[float, msgspec.Meta(gt=0.0, le=MAX_WINDOW_SECONDS)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_LENGTH)]

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
"""RFC 3339 text with an explicit offset (``Z`` or ``+hh:mm``); naive times are refused.

Decoded values are converted to UTC by :func:`events.checks.check_timestamp`; they are
encoded with ``Z``.
"""

Values = Annotated[
    dict[MetricName, Finite | None], msgspec.Meta(min_length=1, max_length=MAX_METRICS)
]
"""Metric name -> value; ``null`` marks a missing reading (NaN encodes as ``null``)."""

Metrics = Annotated[dict[MetricName, Finite], msgspec.Meta(max_length=MAX_METRICS)]
Evidence = Annotated[
    dict[MetricName, Finite | Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)]],
    msgspec.Meta(max_length=MAX_EVIDENCE),
]

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: Final[tuple[Severity, ...]] = ("low", "medium", "high", "critical")
"""Severity labels in increasing order: ``SEVERITIES[level]`` maps a model's 0-3 level."""
