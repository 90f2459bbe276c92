"""A refused record near the broker's size limit still fits its dead-letter copy."""

from __future__ import annotations

from events.dlq import (
    MAX_KEPT_KEY_BYTES,
    MAX_RECORD_BYTES,
    SourceRecord,
    dead_letter,
    read_dead_letter,
)
from events.errors import ContractError

REFUSED = ContractError("payload is too large", "oversize", "$")


def source(key: bytes | None, value: bytes | None, headers: tuple = ()) -> SourceRecord:
    return SourceRecord("readings.sensor", 2, 41, key, value, headers, 1_700_000_000_000)


def size(key: bytes | None, value: bytes | None, headers: list) -> int:
    return len(key or b"") + len(value or b"") + sum(len(k) + len(v or b"") for k, v in headers)


def test_a_small_record_is_copied_whole() -> None:
    original = source(b"m-1", b"{}", (("trace", b"abc"),))
    letter = dead_letter(original, REFUSED)
    assert (letter.key, letter.value) == (b"m-1", b"{}")
    assert ("trace", b"abc") in letter.headers
    assert read_dead_letter(letter.key, letter.value, letter.headers).truncated is None


def test_a_near_limit_value_is_truncated_and_says_so() -> None:
    value = b"x" * 1_000_000
    letter = dead_letter(source(b"m-1", value, (("trace", b"abc"),)), REFUSED)
    assert size(letter.key, letter.value, letter.headers) <= MAX_RECORD_BYTES
    assert letter.key == b"m-1" and value.startswith(letter.value or b"-")
    read = read_dead_letter(letter.key, letter.value, letter.headers)
    assert read.reason == "oversize" and read.source.offset == 41
    assert read.source.headers == ()  # the original headers were dropped
    assert read.truncated is not None
    assert "1 original header(s) dropped" in read.truncated
    assert f"value {len(letter.value or b'')} of 1000000 bytes kept" in read.truncated


def test_huge_headers_and_a_huge_key_are_cut() -> None:
    headers = (("trace", b"h" * 999_000),)
    letter = dead_letter(source(b"k" * 100_000, b"{", headers), REFUSED)
    assert size(letter.key, letter.value, letter.headers) <= MAX_RECORD_BYTES
    assert letter.key == b"k" * MAX_KEPT_KEY_BYTES
    assert letter.value == b"{"  # small enough to keep whole
    assert all(name != "trace" for name, _ in letter.headers)


def test_a_tombstone_stays_a_tombstone() -> None:
    letter = dead_letter(source(None, None), REFUSED)
    assert (letter.key, letter.value) == (None, None)
