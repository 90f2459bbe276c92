"""Malformed messages are refused with a reason label and a message naming the problem."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from events import (
    MAX_PAYLOAD_BYTES,
    REASONS,
    Codec,
    ContractError,
    DemandReading,
    ImputedReading,
    Message,
    ModelHealth,
    MonitorPair,
    SensorReading,
)
from events.samples import sample

VALID = (
    b'{"schema":1,"entity_id":"press-7","kind":"machine","ts":"2024-05-01T12:00:00Z",'
    b'"values":{"temperature":71.5,"vibration":null}}'
)
SENSOR = Codec(SensorReading)


def _with(**changes: Any) -> bytes:
    document = json.loads(VALID)
    for name, value in changes.items():
        if value is ...:
            del document[name]
        else:
            document[name] = value
    return json.dumps(document).encode()


def _refusal(data: bytes | None, codec: Codec[Any] = SENSOR) -> ContractError:
    with pytest.raises(ContractError) as caught:
        codec.decode(data)
    assert caught.value.reason in REASONS
    return caught.value


# (payload, reason, text the message must contain, field path or None)
CASES: dict[str, tuple[bytes | None, str, str, str | None]] = {
    "invalid-json": (b'{"schema":1,"entity_id":', "invalid_json", "truncated", None),
    "trailing-bytes": (VALID + b"}", "invalid_json", "trailing characters", None),
    "binary-garbage": (b"\x00\x9f\x92\x96garbage\xff", "invalid_json", "malformed", None),
    "utf8-bom": (b"\xef\xbb\xbf" + VALID, "invalid_json", "malformed", None),
    "not-utf8": (VALID.replace(b"press-7", b"press\xff7"), "not_utf8", "UTF-8", None),
    "lone-surrogate": (VALID.replace(b"press-7", b"\\ud800"), "not_utf8", "surrogate", None),
    "tombstone": (None, "empty", "tombstone", "$"),
    "zero-bytes": (b"", "empty", "zero bytes", "$"),
    "oversize": (b" " * (MAX_PAYLOAD_BYTES + 1), "oversize", "65537 bytes", "$"),
    "json-array": (b"[1, 2]", "wrong_type", "got `array`", "$"),
    "json-number": (b"42", "wrong_type", "got `int`", "$"),
    "json-null": (b"null", "wrong_type", "got `null`", "$"),
    "missing-schema": (_with(schema=...), "schema_version", "`$.schema`", "$.schema"),
    "unknown-schema": (_with(schema=2), "schema_version", "version 2", "$.schema"),
    "reserved-schema": (_with(schema=0), "schema_version", "version 0", "$.schema"),
    "string-schema": (_with(schema="1"), "schema_version", "'1'", "$.schema"),
    "boolean-schema": (_with(schema=True), "schema_version", "True", "$.schema"),
    "missing-field": (_with(ts=...), "missing_field", "`ts`", "$.ts"),
    "unknown-field": (_with(colour="red"), "unknown_field", "`colour`", "$.colour"),
    "wrong-type": (_with(ts=1714564800), "wrong_type", "`$.ts`", "$.ts"),
    "wrong-value-type": (
        _with(values={"temperature": "71.5"}),
        "wrong_type",
        "`$.values[...]`",
        "$.values[...]",
    ),
    "nan-literal": (
        VALID.replace(b"71.5", b"NaN"),
        "non_finite",
        "`$..temperature`",
        "$..temperature",
    ),
    "infinity-literal": (
        VALID.replace(b"71.5", b"-Infinity"),
        "non_finite",
        "`$..temperature`",
        "$..temperature",
    ),
    "overflowing-number": (
        VALID.replace(b"71.5", b"1e999"),
        "non_finite",
        "`$.values[...]`",
        "$.values[...]",
    ),
    "too-large-number": (
        VALID.replace(b"71.5", b"2e12"),
        "out_of_range",
        "<= 1000000000000.0",
        "$.values[...]",
    ),
    "empty-id": (_with(entity_id=""), "out_of_range", "`$.entity_id`", "$.entity_id"),
    "too-long-id": (_with(entity_id="m" * 257), "out_of_range", "length <= 256", "$.entity_id"),
    "control-char-id": (_with(entity_id="m\u0000"), "invalid_value", "printable", "$.entity_id"),
    "padded-id": (_with(entity_id=" m"), "invalid_value", "leading", "$.entity_id"),
    "bad-enum": (_with(kind="water"), "invalid_value", "'water'", "$.kind"),
    "bad-metric-name": (_with(values={"1st": 1.0}), "invalid_value", "'1st'", "$.values"),
    "too-many-metrics": (
        _with(values={f"m{i}": 1.0 for i in range(65)}),
        "out_of_range",
        "length <= 64",
        "$.values",
    ),
    "no-metrics": (_with(values={}), "out_of_range", "length >= 1", "$.values"),
    "naive-ts": (_with(ts="2024-05-01T12:00:00"), "invalid_value", "timezone", "$.ts"),
    "ts-not-rfc3339": (_with(ts="yesterday"), "invalid_value", "RFC3339", "$.ts"),
    "ts-too-early": (_with(ts="1970-01-01T00:00:00Z"), "out_of_range", "1970-01-01", "$.ts"),
    "ts-too-late": (_with(ts="2100-01-01T00:00:00Z"), "out_of_range", "2100-01-01", "$.ts"),
    "deeply-nested": (
        b'{"payload":' + b"[" * 20_000 + b"]" * 20_000 + b',"schema":1}',
        "invalid_json",
        "nests deeper",
        None,
    ),
    "nested-in-a-field": (
        _with(values={"temperature": [[[[[1.0]]]]]}),
        "wrong_type",
        "got `array`",
        "$.values[...]",
    ),
}


@pytest.mark.parametrize(("data", "reason", "text", "field"), CASES.values(), ids=CASES.keys())
def test_malformed_message_is_refused_with_reason_and_field(
    data: bytes | None, reason: str, text: str, field: str | None
) -> None:
    error = _refusal(data)

    assert error.reason == reason
    assert text in str(error)
    assert str(error).startswith("SensorReading: ")
    assert error.field == field
    if field not in (None, "$"):
        assert field in str(error) or field.split(".")[-1] in str(error)


def test_the_probe_covers_most_reasons() -> None:
    covered = {reason for _, reason, _, _ in CASES.values()}

    assert covered >= set(REASONS) - {"validation"}


def test_unknown_schema_wins_over_unknown_fields() -> None:
    # A newer producer's message: different fields *and* a newer version.
    error = _refusal(_with(schema=2, colour="red"))

    assert error.reason == "schema_version"
    assert "upgrade consumers" in str(error)


def test_duplicate_keys_resolve_to_the_last_value() -> None:
    # Not detected (that needs a second full parse); every reader uses this codec, so every
    # reader sees the same value. Pinned here so a change of behaviour is noticed.
    data = VALID.replace(b'"entity_id":"press-7"', b'"entity_id":"a","entity_id":"b"')

    assert SENSOR.decode(data).entity_id == "b"


@pytest.mark.parametrize(
    ("message_type", "field", "value", "reason"),
    [
        (DemandReading, "quantity", -1, "out_of_range"),
        (DemandReading, "price", -0.01, "out_of_range"),
        (DemandReading, "promo", "yes", "wrong_type"),
        (ModelHealth, "label_coverage", 1.5, "out_of_range"),
        (ModelHealth, "pairs", -1, "out_of_range"),
        (ModelHealth, "status", "fine", "invalid_value"),
        (ModelHealth, "model", "../etc", "invalid_value"),
        (MonitorPair, "error", 123.0, "invalid_value"),
        (ImputedReading, "imputed", ["ozone"], "invalid_value"),
        (ImputedReading, "version", -1, "out_of_range"),
    ],
)
def test_field_rules_of_other_contracts(
    message_type: type[Message], field: str, value: object, reason: str
) -> None:
    codec = Codec(message_type)
    document = json.loads(codec.encode(sample(message_type, random.Random(9))))
    document[field] = value

    error = _refusal(json.dumps(document).encode(), codec)

    assert error.reason == reason
    assert f"$.{field}" in str(error) or f"`{field}`" in str(error)
    assert str(error).startswith(f"{message_type.__name__}: ")


def test_a_custom_size_limit_is_checked_before_parsing() -> None:
    codec = Codec(SensorReading, max_bytes=64)

    error = _refusal(b"{" * 65, codec)

    assert error.reason == "oversize"
