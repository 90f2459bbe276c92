"""Turn a failed decode into a :class:`ContractError` with a reason and the field path.

Runs only after a decode failed, so it may afford a second look at the bytes (reading the
``schema`` field on its own, inspecting the byte a syntax error points at). msgspec's own
wording is kept, since it names the field as a JSON path (``$.values[...]``).
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from events.errors import ContractError, Reason
from events.messages import SCHEMA_FIELD

DECODE_FAILURES: Final = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)
"""What a msgspec decode raises on bad input (deep nesting surfaces as RecursionError)."""

_PATH = re.compile(r" - at `(?P<path>[^`]+)`$")
_NAMED_FIELD = re.compile(r"field `(?P<name>[^`]+)`")
_BYTE_POSITION = re.compile(r"\(byte (?P<pos>\d+)\)")
# Literals some JSON writers (Python's json, JavaScript) emit for non-finite floats.
_NON_FINITE_LITERALS: Final = (b"NaN", b"Infinity")
# A key the non-finite literal is the value of: `"name": ` (optionally `-`) just before it.
_KEY_BEFORE = re.compile(rb'"([^"\\]{1,128})"\s*:\s*-?$')
# Bytes to look back for that key: a 128-byte name plus quotes, colon and whitespace.
_KEY_LOOKBACK: Final = 160

# msgspec ValidationError wording -> reason; first match wins.
_RULES: Final[tuple[tuple[re.Pattern[str], Reason], ...]] = (
    (re.compile(r"^Object missing required field"), "missing_field"),
    (re.compile(r"^Object contains unknown field"), "unknown_field"),
    (re.compile(r"^Number out of range"), "non_finite"),
    (re.compile(r"^Expected `[^`]+`, got `"), "wrong_type"),
    (re.compile(r"^Expected `[^`]+` (?:of length )?[<>]=? "), "out_of_range"),
    (re.compile(r"^Expected `[^`]+` matching regex"), "invalid_value"),
    (re.compile(r"^Expected `datetime` with a timezone"), "invalid_value"),
    (re.compile(r"^Invalid (?:enum value|RFC3339)"), "invalid_value"),
    (re.compile(r"^Expected `[^`]+`(?: - at `|$)"), "wrong_type"),
)


class _SchemaProbe(msgspec.Struct):
    """Reads only ``schema``; every other field is skipped."""

    schema: Any = msgspec.UNSET


_PROBE = msgspec.json.Decoder(_SchemaProbe)


def diagnose(
    data: bytes, exc: BaseException, type_name: str, versions: tuple[int, ...]
) -> ContractError:
    """The ContractError that explains why ``data`` failed to decode with ``exc``."""
    if isinstance(exc, UnicodeDecodeError):
        return _error(type_name, f"text is not valid UTF-8 ({exc.reason})", "not_utf8", None)
    if isinstance(exc, RecursionError):
        return _error(type_name, "JSON nests deeper than the decoder allows", "invalid_json", None)
    if isinstance(exc, msgspec.ValidationError):
        return _schema_error(data, type_name, versions) or _validation_error(exc, type_name)
    return _syntax_error(data, str(exc), type_name)


def _error(type_name: str, detail: str, reason: Reason, field: str | None = "$") -> ContractError:
    return ContractError(f"{type_name}: {detail}", reason, field)


def _syntax_error(data: bytes, detail: str, type_name: str) -> ContractError:
    if "surrogate" in detail or "utf-8" in detail.lower():
        return _error(type_name, detail, "not_utf8", None)
    position = _BYTE_POSITION.search(detail)
    if position and data[int(position["pos"]) :].startswith(_NON_FINITE_LITERALS):
        name = _key_before(data, int(position["pos"]))
        field = f"$..{name}" if name else None
        return _error(
            type_name,
            f"{detail}: NaN and Infinity are not JSON numbers, at `{field or '$'}` "
            "(send null for a missing value)",
            "non_finite",
            field,
        )
    return _error(type_name, detail, "invalid_json", None)


def _key_before(data: bytes, position: int) -> str | None:
    """The object key whose value starts at ``position`` (``"a": -NaN`` -> ``a``)."""
    match = _KEY_BEFORE.search(data[max(0, position - _KEY_LOOKBACK) : position])
    return match[1].decode(errors="replace") if match else None


def _schema_error(data: bytes, type_name: str, versions: tuple[int, ...]) -> ContractError | None:
    """A ContractError if ``schema`` is missing or unsupported, else None."""
    try:
        schema = _PROBE.decode(data).schema
    except DECODE_FAILURES:
        return None  # not an object at all; the validation error says so
    accepted = ", ".join(map(str, versions))
    path = f"$.{SCHEMA_FIELD}"
    if schema is msgspec.UNSET:
        detail = f"missing `{path}` (the schema version; this reader accepts {accepted})"
    elif type(schema) is not int:
        detail = f"`{path}` must be an integer schema version, got {schema!r}"
    elif schema not in versions:
        detail = (
            f"unsupported schema version {schema} at `{path}`; this reader accepts {accepted} "
            "(upgrade consumers before producers send a new version)"
        )
    else:
        return None
    return _error(type_name, detail, "schema_version", path)


def _validation_error(exc: msgspec.ValidationError, type_name: str) -> ContractError:
    cause = exc.__cause__
    if isinstance(cause, ContractError):  # raised by a message's __post_init__
        return _error(type_name, str(cause), cause.reason, cause.field)
    detail = str(exc)
    reason: Reason = next((r for pattern, r in _RULES if pattern.search(detail)), "validation")
    return _error(
        type_name,
        detail if _PATH.search(detail) else f"{detail} - at `$`",
        reason,
        _field_path(detail),
    )


def _field_path(detail: str) -> str:
    """JSON path of the field a msgspec message is about (``$.ts``, ``$.values[...]``)."""
    match = _PATH.search(detail)
    path = match["path"] if match else "$"
    named = _NAMED_FIELD.search(detail)
    if named and detail.startswith("Object "):
        return f"{path}.{named['name']}"
    return path
