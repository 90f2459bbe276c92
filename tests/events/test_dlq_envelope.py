"""The DLQ envelope keeps the original record intact and round-trips its headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events import (
    ContractError,
    DlqFormatError,
    SensorReading,
    SourceRecord,
    codec_for,
    dead_letter,
    read_dead_letter,
)
from events import dlq as envelope
from events.codec import Codec

FAILED_AT = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
SOURCE = SourceRecord(
    topic="readings.sensor",
    partition=4,
    offset=99_812,
    key=b"press-7",
    value=b'{"schema":1,"entity_id":"press-7"}',
    headers=(("traceparent", b"00-abc-def-01"), ("empty", None)),
    timestamp_ms=1_714_566_000_000,
)


def _contract_error() -> ContractError:
    with pytest.raises(ContractError) as caught:
        Codec(SensorReading).decode(SOURCE.value)
    return caught.value


def test_round_trip_restores_source_and_error() -> None:
    error = _contract_error()

    message = dead_letter(SOURCE, error, failed_at=FAILED_AT)
    record = read_dead_letter(message.key, message.value, message.headers)

    assert message.topic == "dlq.readings.sensor"
    assert (message.key, message.value) == (SOURCE.key, SOURCE.value)
    assert record.source == SOURCE
    assert record.reason == error.reason == "missing_field"
    assert record.error_class == "events.errors.ContractError"
    assert record.message == str(error)
    assert record.failed_at == FAILED_AT


def test_headers_are_readable_text() -> None:
    headers = dict(dead_letter(SOURCE, _contract_error(), failed_at=FAILED_AT).headers)

    assert headers[envelope.SOURCE_TOPIC] == b"readings.sensor"
    assert headers[envelope.SOURCE_PARTITION] == b"4"
    assert headers[envelope.SOURCE_OFFSET] == b"99812"
    assert headers[envelope.SOURCE_TIMESTAMP] == b"1714566000000"
    assert headers[envelope.FAILED_AT] == b"2024-05-01T12:30:15.123Z"
    assert headers["traceparent"] == b"00-abc-def-01"


def test_other_errors_get_the_processing_reason_unless_told() -> None:
    error = RuntimeError("model raised on this row")

    default = read_dead_letter(None, b"x", dead_letter(SOURCE, error).headers)
    told = read_dead_letter(None, b"x", dead_letter(SOURCE, error, reason="model_error").headers)

    assert default.reason == "processing"
    assert default.error_class == "builtins.RuntimeError"
    assert told.reason == "model_error"


def test_a_redriven_record_failing_again_carries_only_the_new_error() -> None:
    first = dead_letter(SOURCE, _contract_error(), failed_at=FAILED_AT)
    redriven = SourceRecord(
        topic="readings.sensor",
        partition=1,
        offset=5,
        key=first.key,
        value=first.value,
        headers=tuple(first.headers),
    )

    second = dead_letter(redriven, ValueError("still bad"))
    record = read_dead_letter(second.key, second.value, second.headers)

    names = [name for name, _ in second.headers]
    assert names.count(envelope.ERROR_REASON) == 1
    assert (record.source.partition, record.source.offset) == (1, 5)
    assert record.source.timestamp_ms is None
    assert record.message == "still bad"
    assert record.source.headers == SOURCE.headers


def test_long_messages_are_cut_on_a_character_boundary() -> None:
    error = ValueError("é" * 5000)

    headers = dict(dead_letter(SOURCE, error).headers)

    text = headers[envelope.ERROR_MESSAGE]
    assert text is not None
    assert len(text) <= envelope.MAX_MESSAGE_BYTES
    assert text.decode().endswith("…")


def test_tombstones_are_dead_lettered_as_they_came() -> None:
    tombstone = SourceRecord("actuals", 0, 7, key=b"k", value=None)

    message = dead_letter(tombstone, ContractError("no value", "empty"))

    assert message.value is None
    assert read_dead_letter(message.key, message.value, message.headers).reason == "empty"


def test_source_record_of_a_consumed_message() -> None:
    class Consumed:
        def topic(self) -> str:
            return "actuals"

        def partition(self) -> int:
            return 2

        def offset(self) -> int:
            return 41

        def key(self) -> bytes:
            return b"k"

        def value(self) -> bytes:
            return b"v"

        def headers(self) -> list[tuple[str, bytes | None]]:
            return [("h", b"1")]

        def timestamp(self) -> tuple[int, int]:
            return (1, 1_700_000_000_000)  # TIMESTAMP_CREATE_TIME

    record = SourceRecord.of(Consumed())

    assert record == SourceRecord("actuals", 2, 41, b"k", b"v", (("h", b"1"),), 1_700_000_000_000)


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        (envelope.SOURCE_TOPIC, None, "lacks header dlq.source.topic"),
        (envelope.SOURCE_OFFSET, b"ten", "not an integer"),
        (envelope.FAILED_AT, b"yesterday", "not an ISO 8601 time"),
        (envelope.FAILED_AT, b"2024-05-01T12:00:00", "no UTC offset"),
        (envelope.ERROR_REASON, b"\xff", "not UTF-8"),
    ],
)
def test_malformed_envelopes_name_the_header(name: str, value: bytes | None, text: str) -> None:
    headers = [(k, v) for k, v in dead_letter(SOURCE, _contract_error()).headers if k != name]
    if value is not None:
        headers.append((name, value))

    with pytest.raises(DlqFormatError, match=text):
        read_dead_letter(SOURCE.key, SOURCE.value, headers)


def test_str_header_values_are_accepted() -> None:
    headers = [
        (k, v.decode() if v is not None else None)
        for k, v in dead_letter(SOURCE, _contract_error(), failed_at=FAILED_AT).headers
    ]

    assert read_dead_letter(None, None, headers).source.offset == SOURCE.offset


def test_decoding_the_dead_letter_value_reproduces_the_error() -> None:
    message = dead_letter(SOURCE, _contract_error(), failed_at=FAILED_AT)

    with pytest.raises(ContractError) as caught:
        codec_for("readings.sensor").decode(message.value)

    assert caught.value.reason == read_dead_letter(None, None, message.headers).reason
