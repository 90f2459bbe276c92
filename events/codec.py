"""Strict JSON codec of one message contract: bytes <-> typed message.

Decoding refuses anything that breaks the contract with a :class:`ContractError` whose
``reason`` is a fixed label and whose message names the field. The worker decodes
micro-batches with :meth:`Codec.decode_batch`, which never raises: it returns the good
messages (with their positions) and one failure per bad record, for the dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar, cast

import msgspec

from events.diagnosis import DECODE_FAILURES, diagnose
from events.errors import ContractError, EventError
from events.messages import Message, Reserved

# About ten times the largest legitimate message (a 64-metric reading is about 6 KiB), small
# enough to bound per-record CPU and memory, and far below Kafka's 1 MiB default
# message.max.bytes so that the dead-letter copy with its headers always fits.
MAX_PAYLOAD_BYTES: Final = 64 * 1024

# Joins the parts of a composite record key (model topics: "<model>/<registry key>").
KEY_SEPARATOR: Final = "/"

T = TypeVar("T", bound=Message)


@dataclass(frozen=True)
class DecodeFailure:
    """A record of a batch that failed to decode: its position and why."""

    index: int
    error: ContractError


@dataclass
class Batch(Generic[T]):
    """Outcome of a batch decode. ``messages[i]`` came from input ``indices[i]``."""

    messages: list[T] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    failures: list[DecodeFailure] = field(default_factory=list)


class Codec(Generic[T]):
    """Encoder and strict decoder of one message type.

    >>> from datetime import UTC, datetime
    >>> from events.readings import Actual
    >>> codec = Codec(Actual, key_fields=("entity_id",))
    >>> message = Actual(entity_id="m-1", ts=datetime(2024, 5, 1, tzinfo=UTC),
    ...                  metric="temperature", value=71.5)
    >>> codec.encode(message)
    b'{"schema":1,"entity_id":"m-1","ts":"2024-05-01T00:00:00Z","metric":"temperature","value":71.5}'
    >>> codec.decode(codec.encode(message)) == message
    True
    >>> codec.decode(b'{"schema":1,"entity_id":"m-1"}')
    Traceback (most recent call last):
    ...
    events.errors.ContractError: Actual: Object missing required field `ts` - at `$`
    """

    def __init__(
        self,
        message_type: type[T],
        *,
        key_fields: tuple[str, ...] = (),
        max_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        unknown = set(key_fields) - set(message_type.__struct_fields__)
        if unknown:
            raise EventError(f"{message_type.__name__} has no field {', '.join(unknown)}")
        self.type = message_type
        self.key_fields = key_fields
        self.max_bytes = max_bytes
        self.versions = (message_type.schema_version(),)
        self._encoder = msgspec.json.Encoder()
        # Decoding a union with the reserved version 0 makes msgspec insist on `schema`.
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(message_type | Reserved)

    def __repr__(self) -> str:
        return f"Codec({self.type.__name__}, key_fields={self.key_fields!r})"

    def encode(self, message: T, *, validate: bool = True) -> bytes:
        """JSON bytes of ``message``.

        With ``validate`` (the default) the bytes are decoded again, so a writer can never
        publish what its readers refuse; NaN and infinities (which JSON has no words for)
        are caught there. ``validate=False`` skips that for trusted, hot output paths.
        """
        if type(message) is not self.type:
            raise ContractError(
                f"{self.type.__name__} codec cannot encode a {type(message).__name__}",
                "wrong_type",
                "$",
            )
        data = self._encoder.encode(message)
        if validate:
            try:
                self.decode(data)
            except ContractError as exc:
                raise _refused_encoding(exc) from exc
        return data

    def decode(self, data: bytes | None) -> T:
        """The message in ``data``; raises ContractError if it breaks the contract."""
        if not data or len(data) > self.max_bytes:
            raise self._size_error(data)
        try:
            return cast(T, self._decoder.decode(data))
        except DECODE_FAILURES as exc:
            raise diagnose(data, exc, self.type.__name__, self.versions) from exc

    def decode_batch(self, values: Sequence[bytes | None]) -> Batch[T]:
        """Decode every value of a consumed batch; a bad record never raises.

        Records are decoded one by one: joining them into one JSON-lines document and
        decoding that in a single call measured no faster, and per-record decoding keeps
        every record's bytes apart from its neighbours'.
        """
        batch: Batch[T] = Batch()
        for index, data in enumerate(values):
            try:
                message = self.decode(data)
            except ContractError as exc:
                batch.failures.append(DecodeFailure(index, exc))
            else:
                batch.messages.append(message)
                batch.indices.append(index)
        return batch

    def key(self, message: T) -> bytes:
        """The Kafka key of ``message``: its key fields joined by ``/``, UTF-8 encoded.

        Fields that are ``None`` are left out (an unkeyed model's records are keyed by the
        model name alone). The first field never contains ``/`` (ids of entity topics are
        single fields; model names have no ``/``), so the key splits back unambiguously.
        """
        if not self.key_fields:
            raise EventError(f"{self!r} has no key fields")
        parts = [getattr(message, name) for name in self.key_fields]
        return KEY_SEPARATOR.join(p for p in parts if p is not None).encode()

    def _size_error(self, data: bytes | None) -> ContractError:
        name = self.type.__name__
        if not data:
            what = "no value (tombstone)" if data is None else "zero bytes"
            return ContractError(f"{name}: {what}; expected a JSON object", "empty", "$")
        return ContractError(
            f"{name}: payload is {len(data)} bytes, above the {self.max_bytes}-byte limit",
            "oversize",
            "$",
        )


def _refused_encoding(exc: ContractError) -> ContractError:
    detail = str(exc)
    reason = exc.reason
    if reason == "wrong_type" and "got `null`" in detail:
        # Python floats NaN/inf encode as null, which a required number field refuses.
        reason = "non_finite"
        detail += " (NaN and infinities encode as null)"
    return ContractError(f"refusing to encode {detail}", reason, exc.field)
