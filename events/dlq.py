"""The dead-letter envelope: a refused record, unchanged, plus headers that say why.

A record that cannot be processed goes to ``dlq.<source topic>`` with its original key
and value bytes, its original headers, and ``dlq.*`` headers naming the error and where
the record came from. Pure functions: the caller produces and consumes the records.
The DLQ record's own Kafka timestamp is the time of failure (so DLQ retention counts from
then); the source record's timestamp travels in ``dlq.source.timestamp``.

A refused record can be as large as the broker accepts (about 1 MB by default), and the
copy adds headers: unbounded, it would be refused in its turn, the service that
dead-letters it would stop, and its restart would meet the same record again. A copy
above :data:`MAX_RECORD_BYTES` drops the original headers and truncates the key and
value; ``dlq.truncated`` then says what was cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

from events.errors import ContractError, DlqFormatError
from events.topics import dlq_topic

Headers = Sequence[tuple[str, bytes | str | None]]
Header = tuple[str, bytes | None]

HEADER_PREFIX: Final = "dlq."
ERROR_CLASS: Final = "dlq.error.class"
ERROR_REASON: Final = "dlq.error.reason"
ERROR_MESSAGE: Final = "dlq.error.message"
SOURCE_TOPIC: Final = "dlq.source.topic"
SOURCE_PARTITION: Final = "dlq.source.partition"
SOURCE_OFFSET: Final = "dlq.source.offset"
SOURCE_TIMESTAMP: Final = "dlq.source.timestamp"
FAILED_AT: Final = "dlq.failed_at"
TRUNCATED: Final = "dlq.truncated"

# An error message is for a person reading the record; 1 KiB holds msgspec's message with
# its field path and keeps the headers a small fraction of the record.
MAX_MESSAGE_BYTES: Final = 1024
# Reason of errors that are not contract violations (e.g. a model raised on one record).
PROCESSING_REASON: Final = "processing"
# Largest DLQ record (key, value and headers): below librdkafka's default message.max.bytes
# (1,000,000) and the broker's (1,048,588), with room for the record's framing.
MAX_RECORD_BYTES: Final = 900_000
# A key longer than this is no entity id (ids are at most 256 characters, 1 KiB of UTF-8):
# an oversize copy keeps this much of it.
MAX_KEPT_KEY_BYTES: Final = 1024
# Room kept for the dlq.truncated header itself (its text is about 150 bytes).
TRUNCATED_NOTE_BYTES: Final = 256


class KafkaMessage(Protocol):
    """The accessors of ``confluent_kafka.Message`` that :meth:`SourceRecord.of` reads."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...
    def timestamp(self) -> tuple[int, int]: ...


@dataclass(frozen=True)
class SourceRecord:
    """The record that failed, as the consumer received it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None

    @classmethod
    def of(cls, message: KafkaMessage) -> SourceRecord:
        """The source record of a consumed ``confluent_kafka.Message``."""
        timestamp_type, timestamp_ms = message.timestamp()
        return cls(
            topic=message.topic() or "",
            partition=_or_unknown(message.partition()),
            offset=_or_unknown(message.offset()),
            key=message.key(),
            value=message.value(),
            headers=tuple(message.headers() or ()),
            # librdkafka's TIMESTAMP_NOT_AVAILABLE is type 0.
            timestamp_ms=timestamp_ms if timestamp_type != 0 else None,
        )


@dataclass(frozen=True)
class DlqMessage:
    """What to produce: ``producer.produce(m.topic, m.value, m.key, headers=m.headers)``."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class DlqRecord:
    """A dead-letter record read back: the original record and why it was refused."""

    source: SourceRecord
    error_class: str
    reason: str
    message: str
    failed_at: datetime
    truncated: str | None = None  # what was cut to fit the DLQ, if anything


def dead_letter(
    source: SourceRecord,
    error: BaseException,
    *,
    failed_at: datetime | None = None,
    reason: str | None = None,
) -> DlqMessage:
    """The DLQ record for ``source``, refused because of ``error``.

    ``reason`` defaults to the ContractError's reason, else ``processing``. Headers the
    source already had under ``dlq.`` (a re-driven record failing again) are replaced. A
    record too large for the DLQ is cut down to :data:`MAX_RECORD_BYTES` (see above).
    """
    when = (failed_at or datetime.now(UTC)).astimezone(UTC)
    cls = type(error)
    added: list[tuple[str, str]] = [
        (ERROR_CLASS, f"{cls.__module__}.{cls.__qualname__}"),
        (ERROR_REASON, reason or _reason(error)),
        (ERROR_MESSAGE, truncate_utf8(str(error) or cls.__name__, MAX_MESSAGE_BYTES)),
        (SOURCE_TOPIC, source.topic),
        (SOURCE_PARTITION, str(source.partition)),
        (SOURCE_OFFSET, str(source.offset)),
        (FAILED_AT, when.isoformat(timespec="milliseconds").replace("+00:00", "Z")),
    ]
    if source.timestamp_ms is not None:
        added.append((SOURCE_TIMESTAMP, str(source.timestamp_ms)))
    kept = [(k, v) for k, v in source.headers if not k.startswith(HEADER_PREFIX)]
    ours: list[Header] = [(k, v.encode()) for k, v in added]
    key, value, kept, cut = _fit(source.key, source.value, kept, _size(ours))
    if cut is not None:
        ours.append((TRUNCATED, cut.encode()))
    return DlqMessage(topic=dlq_topic(source.topic), key=key, value=value, headers=kept + ours)


def _size(headers: Sequence[Header]) -> int:
    return sum(len(name.encode()) + len(value or b"") for name, value in headers)


def _fit(
    key: bytes | None, value: bytes | None, headers: list[Header], ours: int
) -> tuple[bytes | None, bytes | None, list[Header], str | None]:
    """Key, value and original headers cut to fit the DLQ, and a note of what was cut."""
    budget = MAX_RECORD_BYTES - ours
    key_bytes, value_bytes = len(key or b""), len(value or b"")
    total = key_bytes + value_bytes + _size(headers)
    if total <= budget:
        return key, value, headers, None
    kept_key = key[:MAX_KEPT_KEY_BYTES] if key is not None else None
    room = max(0, budget - TRUNCATED_NOTE_BYTES - len(kept_key or b""))
    kept_value = value[:room] if value is not None else None
    note = (
        f"{total}-byte record cut to fit the DLQ: {len(headers)} original header(s) dropped, "
        f"key {len(kept_key or b'')} of {key_bytes} bytes, "
        f"value {len(kept_value or b'')} of {value_bytes} bytes kept"
    )
    return kept_key, kept_value, [], note


def read_dead_letter(key: bytes | None, value: bytes | None, headers: Headers | None) -> DlqRecord:
    """Parse a record of a ``dlq.*`` topic; DlqFormatError names any bad header."""
    original: list[tuple[str, bytes | None]] = []
    ours: dict[str, str] = {}
    for name, raw in headers or ():
        data = raw.encode() if isinstance(raw, str) else raw
        if not name.startswith(HEADER_PREFIX):
            original.append((name, data))
            continue
        try:
            ours[name] = (data or b"").decode()
        except UnicodeDecodeError as exc:
            raise DlqFormatError(f"DLQ header {name} is not UTF-8") from exc
    source = SourceRecord(
        topic=_required(ours, SOURCE_TOPIC),
        partition=_integer(ours, SOURCE_PARTITION),
        offset=_integer(ours, SOURCE_OFFSET),
        key=key,
        value=value,
        headers=tuple(original),
        timestamp_ms=_integer(ours, SOURCE_TIMESTAMP) if SOURCE_TIMESTAMP in ours else None,
    )
    return DlqRecord(
        source=source,
        error_class=_required(ours, ERROR_CLASS),
        reason=_required(ours, ERROR_REASON),
        message=ours.get(ERROR_MESSAGE, ""),
        failed_at=_timestamp(ours, FAILED_AT),
        truncated=ours.get(TRUNCATED),
    )


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    marker = "…"  # tells a reader the message was cut
    budget = max_bytes - len(marker.encode())
    return encoded[:budget].decode(errors="ignore") + marker


def _or_unknown(number: int | None) -> int:
    """-1 where librdkafka reports no partition or offset."""
    return -1 if number is None else number


def _reason(error: BaseException) -> str:
    return error.reason if isinstance(error, ContractError) else PROCESSING_REASON


def _required(headers: dict[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise DlqFormatError(f"DLQ record lacks header {name}")
    return value


def _integer(headers: dict[str, str], name: str) -> int:
    text = _required(headers, name)
    try:
        return int(text)
    except ValueError as exc:
        raise DlqFormatError(f"DLQ header {name}={text!r} is not an integer") from exc


def _timestamp(headers: dict[str, str], name: str) -> datetime:
    text = _required(headers, name)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DlqFormatError(f"DLQ header {name}={text!r} is not an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise DlqFormatError(f"DLQ header {name}={text!r} has no UTC offset")
    return parsed.astimezone(UTC)
