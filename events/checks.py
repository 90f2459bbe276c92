"""Checks a message runs in ``__post_init__`` (on construction and on every decode).

They cover what msgspec's declarative constraints cannot express cheaply: name patterns,
printable ids, the timestamp range and UTC normalisation. Each raises a ContractError
naming the field; during a decode msgspec wraps it and the codec reports it unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Final

import msgspec

from events.errors import ContractError
from events.fields import MAX_METRIC_LENGTH, MAX_NAME_LENGTH, TS_MAX, TS_MIN

# Distinct names remembered per vocabulary. Metric and model names are few (tens to
# hundreds); the bound only stops a stream of random names from growing memory forever.
_VOCABULARY_CAPACITY: Final = 10_000


class Vocabulary:
    """Names that must match a pattern; names seen before pass with one set lookup.

    Metric names repeat in every reading, so the pattern runs once per distinct name
    instead of once per value (a regular expression per metric would cost more than
    decoding the whole message).
    """

    def __init__(self, what: str, pattern: str, rule: str) -> None:
        self.what = what
        self.rule = rule
        self._pattern = re.compile(pattern)
        self._known: set[str] = set()

    def check(self, names: Collection[str], path: str) -> None:
        """Raise ContractError (``invalid_value``) naming the first invalid name."""
        if not self._known.issuperset(names):
            for name in names:
                self.check_name(name, path)

    def check_name(self, name: str, path: str) -> None:
        """Raise ContractError (``invalid_value``) if ``name`` is invalid."""
        if name in self._known:
            return
        if not self._pattern.fullmatch(name):
            raise ContractError(
                f"`{path}` has invalid {self.what} {name!r}: {self.rule}", "invalid_value", path
            )
        if len(self._known) < _VOCABULARY_CAPACITY:
            self._known.add(name)


METRIC_NAMES: Final = Vocabulary(
    "metric name",
    rf"[A-Za-z][A-Za-z0-9_.-]{{0,{MAX_METRIC_LENGTH - 1}}}",
    f"use a letter, then letters, digits, '_', '.' or '-' (at most {MAX_METRIC_LENGTH})",
)
# The same rule as the model registry's directory names (models/layout.py).
MODEL_NAMES: Final = Vocabulary(
    "model name",
    rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME_LENGTH - 1}}}",
    f"use a letter or digit, then letters, digits, '_', '.' or '-' (at most {MAX_NAME_LENGTH})",
)


def check_identifier(value: str | None, name: str) -> None:
    """Refuse an id with control or format characters or with surrounding spaces.

    ``str.isprintable`` is False for every control and format character and for every
    whitespace except the ASCII space, so ids stay safe in logs, headers and file names.
    ``None`` (an absent optional id) passes.
    """
    if value is not None and (not value.isprintable() or value != value.strip(" ")):
        raise ContractError(
            f"`$.{name}` {value!r} must be printable text without leading or trailing spaces",
            "invalid_value",
            f"$.{name}",
        )


def check_model(name: str, field: str = "model") -> None:
    """Refuse a model name the registry would refuse."""
    MODEL_NAMES.check_name(name, f"$.{field}")


def check_metric(name: str | None, field: str = "metric") -> None:
    """Refuse an invalid metric name in a ``metric`` field (``None`` passes)."""
    if name is not None:
        METRIC_NAMES.check_name(name, f"$.{field}")


def check_metrics(names: Collection[str], path: str) -> None:
    """Refuse invalid metric names (the keys of ``values``, ``metrics``, ``evidence``)."""
    METRIC_NAMES.check(names, path)


def check_timestamp(message: msgspec.Struct, name: str) -> None:
    """Convert the datetime field ``name`` to UTC in place; refuse naive or out-of-range."""
    value: datetime = getattr(message, name)
    if value.tzinfo is not UTC:
        if value.utcoffset() is None:
            raise ContractError(
                f"`$.{name}` is a naive datetime; timestamps must carry a UTC offset",
                "invalid_value",
                f"$.{name}",
            )
        value = value.astimezone(UTC)
        msgspec.structs.force_setattr(message, name, value)
    if not TS_MIN <= value < TS_MAX:
        raise ContractError(
            f"`$.{name}` {value.isoformat()} is outside the accepted range "
            f"[{TS_MIN.date()}, {TS_MAX.date()}) UTC",
            "out_of_range",
            f"$.{name}",
        )
