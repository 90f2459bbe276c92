"""Timestamps as integer microseconds since the epoch: exact dictionary keys and sort keys.

Datetimes decoded from the contracts are UTC and at most microsecond-precise, so two
records about the same instant always map to the same integer, whatever offset they were
written with.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
MICROS_PER_SECOND: Final = 1_000_000


def micros(ts: datetime) -> int:
    """``ts`` as microseconds since the epoch.

    >>> micros(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
    1000000
    """
    return (ts - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """The UTC datetime of ``value`` microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=value)


def seconds_to_micros(seconds: float) -> int:
    return round(seconds * MICROS_PER_SECOND)
