"""Batch decoding keeps every good message and reports each bad one with its position."""

from __future__ import annotations

import json
import random

from events import Codec, SensorReading
from events.samples import samples

CODEC = Codec(SensorReading)


def _payloads(count: int) -> list[bytes]:
    return [CODEC.encode(m) for m in samples(SensorReading, count, seed=1)]


def test_clean_batch_decodes_in_order() -> None:
    payloads = _payloads(50)

    batch = CODEC.decode_batch(payloads)

    assert batch.messages == [CODEC.decode(p) for p in payloads]
    assert batch.indices == list(range(50))
    assert batch.failures == []


def test_bad_records_fail_alone_and_good_ones_keep_their_positions() -> None:
    payloads: list[bytes | None] = list(_payloads(8))
    payloads[1] = None
    payloads[3] = b"not json"
    payloads[6] = payloads[6].replace(b'"schema":1', b'"schema":9')  # type: ignore[union-attr]

    batch = CODEC.decode_batch(payloads)

    assert batch.indices == [0, 2, 4, 5, 7]
    assert batch.messages == [CODEC.decode(payloads[i]) for i in batch.indices]
    assert [(f.index, f.error.reason) for f in batch.failures] == [
        (1, "empty"),
        (3, "invalid_json"),
        (6, "schema_version"),
    ]


def test_pretty_printed_json_with_newlines_still_decodes() -> None:
    payloads = _payloads(3)
    payloads[1] = json.dumps(json.loads(payloads[1]), indent=2).encode()

    batch = CODEC.decode_batch(payloads)

    assert batch.indices == [0, 1, 2]
    assert batch.failures == []


def test_a_record_cannot_smuggle_a_second_message_into_the_batch() -> None:
    good = _payloads(3)
    # One record holding two documents next to an empty one: each record must hold
    # exactly one message of its own.
    payloads = [good[0], good[1] + b"\n" + good[2], b"", good[0]]

    batch = CODEC.decode_batch(payloads)

    assert batch.indices == [0, 3]
    assert [(f.index, f.error.reason) for f in batch.failures] == [
        (1, "invalid_json"),
        (2, "empty"),
    ]


def test_oversize_records_fail_in_a_batch() -> None:
    codec = Codec(SensorReading, max_bytes=400)
    payloads = _payloads(2)
    payloads.append(payloads[0][:-1] + b" " * 400 + b"}")

    batch = codec.decode_batch(payloads)

    assert batch.indices == [0, 1]
    assert [(f.index, f.error.reason) for f in batch.failures] == [(2, "oversize")]


def test_empty_batch() -> None:
    batch = CODEC.decode_batch([])

    assert (batch.messages, batch.indices, batch.failures) == ([], [], [])


def test_batch_matches_single_decoding_on_random_corruption() -> None:
    rng = random.Random(42)
    payloads: list[bytes | None] = []
    for original in _payloads(200):
        payload: bytes | None = original
        if rng.random() < 0.2:  # corrupt one byte of about a fifth of the records
            position = rng.randrange(len(original))
            payload = original[:position] + bytes([rng.randrange(256)]) + original[position + 1 :]
        payloads.append(payload)

    batch = CODEC.decode_batch(payloads)

    expected_good = []
    expected_bad = []
    for index, payload in enumerate(payloads):
        try:
            expected_good.append((index, CODEC.decode(payload)))
        except ValueError as exc:
            expected_bad.append((index, str(exc)))
    assert list(zip(batch.indices, batch.messages, strict=True)) == expected_good
    assert [(f.index, str(f.error)) for f in batch.failures] == expected_bad
