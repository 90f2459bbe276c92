"""Message contracts, their strict JSON codec, deterministic ids and the DLQ envelope.

>>> from events import codec_for
>>> codec = codec_for("readings.sensor")
>>> reading = codec.decode(
...     b'{"schema":1,"entity_id":"press-7","kind":"machine",'
...     b'"ts":"2024-05-01T12:00:00Z","values":{"temperature":71.5,"vibration":null}}'
... )
>>> reading.values
{'temperature': 71.5, 'vibration': None}
>>> codec.key(reading)
b'press-7'

Only the standard library and msgspec are imported here: the worker's hot path imports
this package.
"""

from __future__ import annotations

from events.catalog import CONTRACTS, Contract, codec_for, contract_for
from events.codec import MAX_PAYLOAD_BYTES, Batch, Codec, DecodeFailure
from events.dlq import DlqMessage, DlqRecord, SourceRecord, dead_letter, read_dead_letter
from events.errors import (
    REASONS,
    ContractError,
    DlqFormatError,
    EventError,
    IdError,
    Reason,
    UnknownTopicError,
)
from events.fields import SEVERITIES, Severity
from events.ids import derive_id
from events.lifecycle import ModelHealth, ModelUpdate, RetrainRequest
from events.messages import Message
from events.outputs import Alert, MonitorPair, Prediction
from events.readings import Actual, DemandReading, ImputedReading, SensorReading

__all__ = [
    "CONTRACTS",
    "MAX_PAYLOAD_BYTES",
    "REASONS",
    "SEVERITIES",
    "Actual",
    "Alert",
    "Batch",
    "Codec",
    "Contract",
    "ContractError",
    "DecodeFailure",
    "DemandReading",
    "DlqFormatError",
    "DlqMessage",
    "DlqRecord",
    "EventError",
    "IdError",
    "ImputedReading",
    "Message",
    "ModelHealth",
    "ModelUpdate",
    "MonitorPair",
    "Prediction",
    "Reason",
    "RetrainRequest",
    "SensorReading",
    "Severity",
    "SourceRecord",
    "UnknownTopicError",
    "codec_for",
    "contract_for",
    "dead_letter",
    "derive_id",
    "read_dead_letter",
]
