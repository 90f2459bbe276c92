"""Hostile and malformed records mixed into a valid stream of readings.

Over forty kinds of bad record (broken bytes, broken JSON, wrong types, missing and extra
fields, non-finite and absurd numbers, oversize payloads, unknown schema versions,
timestamps out of range or decades after the record was produced, unicode tricks in ids,
key/value mismatches, tombstones, huge keys and headers, ...) are interleaved with the
readings of 20 stations. The worker must dead-letter each with its reason, skip (and
count) the valid but stale ones, accept the few that are valid records (as documented
below), never crash, and give the stations' readings exactly the outputs of a run without
the hostile records.

Documented behaviour of the records that are not refused:

* a duplicate or an out-of-order reading is valid, but not newer than its station's last
  reading: skipped, counted in ``driftline_worker_stale_records_total``, no output;
* an id with a homoglyph (Cyrillic ``а`` in ``stаtion``) is a different entity: ids are
  compared byte for byte, never normalised, so it cannot touch the real station's state;
* a JSON object with a repeated field is decoded with the last value winning (msgspec);
* whitespace around the JSON document is valid JSON;
* headers are not part of the contract: a valid reading with large headers is scored.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from events import SensorReading, codec_for, read_dead_letter

pytestmark = pytest.mark.fault

STATIONS = 20
STEPS = 30
HOMOGLYPH = "st\u0430tion-7"  # Cyrillic a: looks like station-7
# Just under the broker's default max.message.bytes (1 MiB): what a Java producer may send.
NEAR_LIMIT_BYTES = 1_000_000
# The test producer must be allowed to send records that large (librdkafka: 1,000,000).
PRODUCER = {"message.max.bytes": 1_048_000}


@dataclass(frozen=True)
class Case:
    """One hostile record and what must become of it (a DLQ reason, stale or accepted)."""

    name: str
    value: bytes | None
    expect: str
    key: bytes | None = b"station-3"
    headers: list[tuple[str, bytes]] | None = None


def body(**fields: Any) -> bytes:
    """A reading of station-3 as JSON, with ``fields`` replaced."""
    document = {
        "schema": 1,
        "entity_id": "station-3",
        "kind": "air",
        "ts": "2025-01-01T00:30:00Z",
        "values": {"pm25": 1.0, "no2": 2.0},
        **fields,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


BASE = body()


def hostile_cases() -> list[Case]:
    pad = b" " * (NEAR_LIMIT_BYTES - len(BASE))
    return [
        Case("invalid UTF-8", BASE.replace(b"station-3", b"station-\xff"), "not_utf8"),
        Case("lone UTF-16 surrogate", BASE.replace(b"station-3", b"station\\ud800"), "not_utf8"),
        Case("truncated JSON", BASE[:40], "invalid_json"),
        Case("trailing bytes", BASE + b"}}", "invalid_json"),
        Case("binary garbage", bytes(range(256)), "invalid_json"),
        Case("byte order mark", b"\xef\xbb\xbf" + BASE, "invalid_json"),
        Case("deeply nested JSON", b'{"a":' * 10_000, "invalid_json"),
        Case("zero bytes", b"", "empty"),
        Case("tombstone (null value)", None, "empty"),
        Case("JSON array", b"[1,2]", "wrong_type"),
        Case("JSON null", b"null", "wrong_type"),
        Case("string number", body(values={"pm25": "12.5"}), "wrong_type"),
        Case("boolean value", body(values={"pm25": True}), "wrong_type"),
        Case("values not an object", body(values="high"), "wrong_type"),
        Case("epoch-number timestamp", body(ts=1_735_689_600), "wrong_type"),
        Case("missing field", BASE.replace(b',"ts":"2025-01-01T00:30:00Z"', b""), "missing_field"),
        Case("extra field", body(extra=1), "unknown_field"),
        Case("NaN literal", BASE.replace(b"1.0", b"NaN"), "non_finite"),
        Case("Infinity literal", BASE.replace(b"1.0", b"-Infinity"), "non_finite"),
        Case("1e999", BASE.replace(b"1.0", b"1e999"), "non_finite"),
        Case("absurd magnitude", BASE.replace(b"1.0", b"1e300"), "out_of_range"),
        Case("absurd negative", BASE.replace(b"1.0", b"-1e15"), "out_of_range"),
        Case("oversize payload (100 kB)", BASE[:-1] + b" " * 100_000 + b"}", "oversize"),
        Case("oversize payload (1 MB)", BASE[:-1] + pad + b"}", "oversize"),
        Case("unknown schema version", body(schema=99), "schema_version"),
        Case("schema as text", body(schema="1"), "schema_version"),
        Case("no schema", BASE.replace(b'"schema":1,', b""), "schema_version"),
        Case("timestamp in 2150", body(ts="2150-01-01T00:00:00Z"), "out_of_range"),
        Case("timestamp in year 9999", body(ts="9999-12-31T23:59:59Z"), "out_of_range"),
        Case("timestamp in 1970", body(ts="1970-01-01T00:00:00Z"), "out_of_range"),
        # inside the contract's range, but accepted it would make station-3's readings stale
        Case("timestamp in 2099", body(ts="2099-01-01T00:00:00Z"), "future_timestamp"),
        Case("naive timestamp", body(ts="2025-01-01T00:30:00"), "invalid_value"),
        Case("impossible date", body(ts="2025-13-45T00:00:00Z"), "invalid_value"),
        Case("empty id", body(entity_id=""), "out_of_range"),
        Case("300-character id", body(entity_id="s" * 300), "out_of_range"),
        Case("RTL override in id", body(entity_id="station-\u202e3"), "invalid_value"),
        Case("zero-width space in id", body(entity_id="station-\u200b3"), "invalid_value"),
        Case("NUL byte in id", body(entity_id="station-\x003"), "invalid_value"),
        Case("leading space in id", body(entity_id=" station-3"), "invalid_value"),
        Case("65 metrics", body(values={f"m{i}": 1.0 for i in range(65)}), "out_of_range"),
        Case("metric name with a space", body(values={"pm 2.5": 1.0}), "invalid_value"),
        Case("empty values", body(values={}), "out_of_range"),
        Case("unknown kind", body(kind="submarine"), "invalid_value"),
        Case("key of another entity", BASE, "key_mismatch", key=b"station-4"),
        Case("null key", BASE, "key_mismatch", key=None),
        Case("empty key", BASE, "key_mismatch", key=b""),
        Case("100 kB key", BASE, "key_mismatch", key=b"k" * 100_000),
        Case("homoglyph id, ASCII key", body(entity_id=HOMOGLYPH), "key_mismatch"),
        Case(
            "huge headers on a bad record",
            b"{",
            "invalid_json",
            headers=[("trace", b"h" * (NEAR_LIMIT_BYTES - 1_000))],
        ),
        Case(
            "homoglyph id (its own entity)",
            body(entity_id=HOMOGLYPH, ts="2025-01-01T00:00:00Z"),
            "accepted",
            key=HOMOGLYPH.encode(),
        ),
        Case(
            "repeated field (last wins)",
            body(entity_id="dup-1").replace(b'"kind":"air"', b'"kind":"machine","kind":"air"'),
            "accepted",
            key=b"dup-1",
        ),
        Case("whitespace around JSON", b"  " + body(entity_id="ws-1") + b"\n", "accepted", b"ws-1"),
    ]


def stale_cases(readings: Callable[[str, int], SensorReading]) -> list[Case]:
    """A station's reading sent again, and one older than its last (sent after step 20)."""
    codec = codec_for("readings.sensor")
    again = codec.encode(readings("station-5", 12))
    late = readings("station-6", 20)
    older = SensorReading(
        entity_id=late.entity_id,
        kind=late.kind,
        ts=late.ts - timedelta(seconds=30),
        values={"pm25": 99.0, "no2": 99.0},
    )
    return [
        Case("duplicate reading", again, "stale", key=b"station-5"),
        Case("out-of-order reading", codec.encode(older), "stale", key=b"station-6"),
    ]


def test_hostile_records_are_dead_lettered_and_valid_readings_are_unaffected(
    fault_stream: Any,
    air_readings: Callable[..., list[Any]],
    reference: Callable[[Any], Counter[bytes]],
    fault_report: Callable[..., Any],
    faults: Any,
) -> None:
    stream = fault_stream
    valid = air_readings(STATIONS * STEPS, entities=STATIONS)
    expected = reference(valid)
    # The homoglyph station's next readings (sent last): it gets outputs of its own.
    codec = codec_for("readings.sensor")
    homoglyph = [
        (HOMOGLYPH.encode(), codec.encode(faults.air_reading(HOMOGLYPH, step))) for step in (1, 2)
    ]
    cases = hostile_cases()
    stale = stale_cases(faults.air_reading)
    # Hostile records spread over the stream; the stale ones after step 20 of every station.
    late = 21 * STATIONS
    plan: list[tuple[tuple[bytes | None, bytes | None], Case | None]] = []
    spacing = len(valid) // len(cases)
    for index, raw in enumerate(valid):
        plan.append((raw, None))
        if index % spacing == spacing - 1 and index // spacing < len(cases):
            case = cases[index // spacing]
            plan.append(((case.key, case.value), case))
        if index == late:
            plan += [((case.key, case.value), case) for case in stale]
    plan += [(raw, None) for raw in homoglyph]  # after its first reading, one of the cases
    # A valid reading with large headers: scored like any other.
    big_headers = [("trace", b"t" * 200_000)]
    headers = [case.headers if case else None for _, case in plan]
    headers[plan.index((valid[100], None))] = big_headers
    where = stream.produce([raw for raw, _ in plan], headers, **PRODUCER)
    sent = {where[i]: case for i, (_, case) in enumerate(plan) if case is not None}
    refused = {w: case for w, case in sent.items() if case.expect not in ("stale", "accepted")}

    worker = stream.start("hostile")
    worker.wait_ready()
    labels = f'topic="{stream.input}"'

    def consumed() -> bool:
        assert worker.alive(), f"the worker crashed:\n{worker.log.read_text()[-3000:]}"
        found = faults.metric(worker.port, "driftline_worker_records_consumed_total", labels)
        return bool(found >= len(plan))

    faults.wait_until(consumed, "every record consumed")
    dlq = stream.tail(stream.dlq)
    faults.wait_until(lambda: len(dlq.read()) >= len(refused), "the dead letters")
    faults.wait_until(lambda: sum(expected.values()) <= stream.output_count(), "the outputs")
    stale_metric = "driftline_worker_stale_records_total"
    stale_counted = int(faults.metric(worker.port, stale_metric, labels))
    assert worker.alive(), "the worker crashed on hostile input"
    assert worker.stop(signal.SIGTERM) == 0

    letters = [read_dead_letter(m.key(), m.value(), m.headers()) for m in dlq.read()]
    reasons = {(d.source.partition, d.source.offset): d.reason for d in letters}
    cut = {refused[(d.source.partition, d.source.offset)].name for d in letters if d.truncated}
    wrong = {
        refused[w].name: (refused[w].expect, reasons.get(w)) for w in refused
        if reasons.get(w) != refused[w].expect
    }  # fmt: skip
    outputs = stream.outputs()
    station_outputs = Counter(
        {v: n for v, n in outputs.items() if json.loads(v)["entity_id"].startswith("station-")}
    )
    homoglyph_outputs = [v for v in outputs if json.loads(v)["entity_id"] == HOMOGLYPH]
    accepted = len(cases) + len(stale) - len(refused) - len(stale)
    fault_report(
        "hostile-input",
        "Hostile and malformed input",
        f"{len(cases) + len(stale)} kinds of hostile record ({len(refused)} to refuse, "
        f"{len(stale)} stale, {accepted} valid oddities) mixed into {len(valid):,} readings "
        f"of {STATIONS} stations; the largest records are 1 MB",
        "each refused record is in the DLQ with its reason; duplicates and out-of-order "
        "readings are skipped and counted as stale; the worker never exits; the stations' "
        "outputs equal those of a run without the hostile records",
        readings_sent=len(valid),
        outputs=sum(station_outputs.values()),
        lost=sum((expected - station_outputs).values()),
        duplicates=sum(station_outputs.values()) - len(station_outputs),
        hostile_kinds=len(cases) + len(stale),
        records_consumed=len(plan),
        dead_lettered=len(letters),
        wrong_reasons=len(wrong),
        stale_counted=stale_counted,
        worker_exits=0,
    )
    assert wrong == {}
    assert len(letters) == len(refused)  # nothing else was refused, nothing twice
    assert station_outputs == expected
    assert len(homoglyph_outputs) == len(homoglyph)
    assert stale_counted == len(stale)
    # The two records near the broker's limit were cut to fit the DLQ, and said so.
    assert cut == {"oversize payload (1 MB)", "huge headers on a bad record"}
