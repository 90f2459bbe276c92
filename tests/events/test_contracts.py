"""Every contract round-trips through its codec, with optional fields absent and present."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from events import (
    CONTRACTS,
    MAX_PAYLOAD_BYTES,
    Actual,
    Codec,
    ContractError,
    DemandReading,
    ImputedReading,
    Message,
    MonitorPair,
    Prediction,
    SensorReading,
)
from events.samples import BUILDERS, sample

TYPES = sorted(BUILDERS, key=lambda t: t.__name__)


@pytest.mark.parametrize("full", [True, False], ids=["optional-present", "optional-absent"])
@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.__name__)
def test_round_trip(message_type: type[Message], full: bool) -> None:
    codec = Codec(message_type)
    message = sample(message_type, random.Random(7), 11, full=full)

    data = codec.encode(message)

    assert codec.decode(data) == message
    assert json.loads(data)["schema"] == message_type.schema_version()


@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.__name__)
def test_optional_fields_may_be_left_out_of_the_json(message_type: type[Message]) -> None:
    codec = Codec(message_type)
    message = sample(message_type, random.Random(3), 5, full=False)
    document = json.loads(codec.encode(message))
    optional = {f.encode_name for f in msgspec.structs.fields(message_type) if not f.required}
    trimmed = {k: v for k, v in document.items() if k not in optional}
    assert len(trimmed) == len(document) - len(optional)

    assert codec.decode(json.dumps(trimmed).encode()) == message


def test_schema_is_the_first_field_and_timestamps_are_utc_rfc3339() -> None:
    reading = SensorReading(
        entity_id="press-7",
        kind="machine",
        ts=datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        values={"temperature": 71.5, "vibration": None},
    )

    data = Codec(SensorReading).encode(reading)

    assert data.startswith(b'{"schema":1,')
    assert b'"ts":"2024-05-01T12:00:00Z"' in data
    assert reading.ts.tzinfo is UTC


def test_decoded_offsets_are_normalised_to_utc() -> None:
    data = (
        b'{"schema":1,"entity_id":"m","ts":"2024-05-01T14:00:00+02:00",'
        b'"metric":"temperature","value":1.5}'
    )

    actual = Codec(Actual).decode(data)

    assert actual.ts == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert actual.ts.tzinfo is UTC


def test_every_contract_declares_an_integer_schema_version() -> None:
    for contract in CONTRACTS.values():
        assert contract.type.schema_version() >= 1
        assert set(contract.key_fields) <= set(contract.type.__struct_fields__)


def test_nan_in_values_encodes_as_missing() -> None:
    reading = SensorReading(
        entity_id="m", kind="air", ts=datetime(2024, 1, 1, tzinfo=UTC), values={"no2": float("nan")}
    )
    codec = Codec(SensorReading)

    assert codec.decode(codec.encode(reading)).values == {"no2": None}


def test_encode_refuses_a_non_finite_required_number() -> None:
    actual = Actual(
        entity_id="m", ts=datetime(2024, 1, 1, tzinfo=UTC), metric="quantity", value=float("inf")
    )

    with pytest.raises(ContractError, match=r"\$\.value") as caught:
        Codec(Actual).encode(actual)

    assert caught.value.reason == "non_finite"


def test_encode_refuses_an_out_of_range_number_and_skips_the_check_on_request() -> None:
    demand = DemandReading(product_id="p", ts=datetime(2024, 1, 1, tzinfo=UTC), quantity=-1.0)
    codec = Codec(DemandReading)

    with pytest.raises(ContractError, match=r"\$\.quantity") as caught:
        codec.encode(demand)

    assert caught.value.reason == "out_of_range"
    assert b'"quantity":-1.0' in codec.encode(demand, validate=False)


def test_encode_refuses_a_message_of_another_type() -> None:
    imputed = sample(ImputedReading, random.Random(1))

    with pytest.raises(ContractError, match="ImputedReading") as caught:
        Codec(SensorReading).encode(imputed)

    assert caught.value.reason == "wrong_type"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ts": datetime(2024, 1, 1)}, "$.ts"),
        ({"entity_id": "m\n"}, "$.entity_id"),
        ({"metric": "1x"}, "$.metric"),
    ],
    ids=["naive-ts", "control-char-id", "bad-metric-name"],
)
def test_construction_runs_the_message_checks(change: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {
        "entity_id": "m",
        "ts": datetime(2024, 1, 1, tzinfo=UTC),
        "metric": "x",
        "value": 1.0,
    }

    with pytest.raises(ContractError) as caught:
        Actual(**(fields | change))

    assert caught.value.field == field
    assert field in str(caught.value)


def test_prediction_interval_must_not_be_inverted() -> None:
    codec = Codec(Prediction)
    document = json.loads(codec.encode(sample(Prediction, random.Random(2))))
    document["lower"] = document["upper"] + 1

    with pytest.raises(ContractError, match=r"\$\.lower") as caught:
        codec.decode(json.dumps(document).encode())

    assert caught.value.reason == "invalid_value"


def test_monitor_pair_error_must_be_predicted_minus_actual() -> None:
    pair = sample(MonitorPair, random.Random(4))

    with pytest.raises(ContractError, match=r"\$\.error") as caught:
        msgspec.structs.replace(pair, error=pair.error + 1.0)

    assert caught.value.reason == "invalid_value"


def test_imputed_metrics_must_have_values() -> None:
    reading = sample(ImputedReading, random.Random(5))

    with pytest.raises(ContractError, match="no2") as caught:
        msgspec.structs.replace(reading, imputed=["no2"])

    assert caught.value.field == "$.imputed"


def test_messages_are_immutable() -> None:
    reading = sample(SensorReading, random.Random(6))

    with pytest.raises(AttributeError):
        reading.entity_id = "other"  # type: ignore[misc]


def test_the_largest_legitimate_reading_is_far_below_the_size_limit() -> None:
    names = [f"m{i:02d}".ljust(64, "x") for i in range(64)]  # 64 metrics, 64-char names
    reading = SensorReading(
        entity_id="e" * 256,
        kind="machine",
        ts=datetime(2024, 1, 1, tzinfo=UTC),
        values=dict.fromkeys(names, -123456.78901234567),
    )

    data = Codec(SensorReading).encode(reading)

    assert len(data) * 8 < MAX_PAYLOAD_BYTES
