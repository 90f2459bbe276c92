"""Errors of the ``events`` package, under one root: :class:`EventError`."""

from __future__ import annotations

from typing import Final, Literal, get_args

Reason = Literal[
    "empty",
    "oversize",
    "not_utf8",
    "invalid_json",
    "non_finite",
    "schema_version",
    "missing_field",
    "unknown_field",
    "wrong_type",
    "out_of_range",
    "invalid_value",
    "validation",
]
"""Why a message broke its contract. A small fixed set, safe as a Prometheus label value.

* ``empty`` - no value at all (a tombstone) or zero bytes.
* ``oversize`` - more bytes than the contract allows; refused before parsing.
* ``not_utf8`` - the text is not valid UTF-8 (or holds an unpaired surrogate escape).
* ``invalid_json`` - not JSON: syntax error, truncated, trailing bytes, nested too deeply.
* ``non_finite`` - NaN or an infinity (``NaN``/``Infinity`` literals, ``1e999``).
* ``schema_version`` - the ``schema`` field is missing, not an integer, or a version this
  reader does not know.
* ``missing_field`` / ``unknown_field`` - a required field is absent / a field is not part
  of the contract.
* ``wrong_type`` - a field (or the whole document) has the wrong JSON type.
* ``out_of_range`` - a number, length, count or timestamp outside its bounds.
* ``invalid_value`` - right type, but not an allowed value: enum, pattern, naive timestamp.
* ``validation`` - any other contract violation.
"""

REASONS: Final[tuple[Reason, ...]] = get_args(Reason)


class EventError(Exception):
    """Root of every error raised by the ``events`` package."""


class ContractError(EventError, ValueError):
    """A message does not satisfy its contract.

    ``reason`` is one of :data:`REASONS`; ``field`` is the JSON path of the offending field
    (``$.values[...]``, ``$.ts``) when one is known. The message always names the field and
    why it was refused. A ``ValueError`` too, so that msgspec reports it with the field
    path when a message's own checks fail during decoding.
    """

    def __init__(self, message: str, reason: Reason, field: str | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.field = field

    def __reduce__(self) -> tuple[type[ContractError], tuple[str, Reason, str | None]]:
        return (type(self), (str(self), self.reason, self.field))


class UnknownTopicError(EventError, KeyError):
    """A topic has no registered message contract."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown topic"


class DlqFormatError(EventError):
    """A dead-letter record lacks a header this package writes, or a header is malformed."""


class IdError(EventError, ValueError):
    """The inputs of a deterministic id are not valid (negative partition or offset)."""
