"""Codec throughput: encode and decode rates of every contract, one message and in batches.

Each figure is the best of ``repeats`` timed passes over the same messages (after one
warm-up pass), so a busy machine costs as little as possible; rates are messages per
second and decimal megabytes (1e6 bytes) of JSON per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from events.codec import Codec
from events.messages import Message
from events.samples import BUILDERS, samples

# One bad record in a hundred: enough that almost every worker-sized batch holds one and
# falls back to decoding record by record, which is what this figure prices.
BAD_RECORD_EVERY: Final = 100
_BAD_RECORD: Final = b'{"schema":1,"truncated":'


@dataclass(frozen=True)
class CodecFigures:
    """Throughput of one message type."""

    message_type: str
    messages: int
    bytes_per_message: float
    encode_per_s: float
    encode_checked_per_s: float
    decode_per_s: float
    batch_decode_per_s: float
    dirty_batch_decode_per_s: float

    def megabytes_per_s(self, rate: float) -> float:
        return rate * self.bytes_per_message / 1e6

    def to_dict(self) -> dict[str, Any]:
        figures = asdict(self)
        for name in ("encode", "encode_checked", "decode", "batch_decode"):
            figures[f"{name}_mb_per_s"] = self.megabytes_per_s(figures[f"{name}_per_s"])
        return figures


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls of ``run`` after one untimed warm-up."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure(
    message_type: type[Message], *, messages: int, batch_size: int, repeats: int, seed: int = 0
) -> CodecFigures:
    """Figures of one contract over ``messages`` generated messages."""
    codec = Codec(message_type)
    items = samples(message_type, messages, seed=seed)
    payloads = [codec.encode(m) for m in items]
    batches = _chunks(payloads, batch_size)
    dirty = _chunks(_with_bad_records(payloads), batch_size)

    def rate(run: Callable[[], object], count: int = messages) -> float:
        return count / best_seconds(run, repeats)

    return CodecFigures(
        message_type=message_type.__name__,
        messages=messages,
        bytes_per_message=sum(map(len, payloads)) / messages,
        encode_per_s=rate(lambda: [codec.encode(m, validate=False) for m in items]),
        encode_checked_per_s=rate(lambda: [codec.encode(m) for m in items]),
        decode_per_s=rate(lambda: [codec.decode(p) for p in payloads]),
        batch_decode_per_s=rate(lambda: [codec.decode_batch(b) for b in batches]),
        dirty_batch_decode_per_s=rate(
            lambda: [codec.decode_batch(b) for b in dirty], sum(map(len, dirty))
        ),
    )


def measure_all(
    *, messages: int, batch_size: int, repeats: int, seed: int = 0
) -> list[CodecFigures]:
    """Figures of every contract, in a fixed order (readings first)."""
    return [
        measure(t, messages=messages, batch_size=batch_size, repeats=repeats, seed=seed)
        for t in BUILDERS
    ]


def _chunks(payloads: Sequence[bytes], size: int) -> list[Sequence[bytes]]:
    return [payloads[i : i + size] for i in range(0, len(payloads), size)]


def _with_bad_records(payloads: Sequence[bytes]) -> list[bytes]:
    return [
        _BAD_RECORD if i % BAD_RECORD_EVERY == BAD_RECORD_EVERY // 2 else p
        for i, p in enumerate(payloads)
    ]
