"""Refused records: each becomes a dead-letter record and a count by (topic, reason)."""

from __future__ import annotations

from typing import Final

from events.dlq import ERROR_REASON, KafkaMessage, SourceRecord, dead_letter
from worker.records import BatchResult, OutRecord

DLQ_KIND: Final = "dlq"
# Reason label of a reading whose Kafka key is not its entity id (see KeyMismatchError).
KEY_MISMATCH: Final = "key_mismatch"
# Reason label of a reading stamped too far after its record (see FutureTimestampError).
FUTURE_TIMESTAMP: Final = "future_timestamp"


class DeadLetters:
    """Adds the DLQ record of every refused message to a batch result.

    The DLQ record carries the original key, value and headers plus ``dlq.*`` headers that
    name the error, its reason and the source topic/partition/offset (``events.dlq``).
    """

    def __init__(self, result: BatchResult) -> None:
        self.result = result
        self._refused: set[int] = set()

    def refuse(
        self, message: KafkaMessage, error: BaseException, reason: str | None = None
    ) -> None:
        """Dead-letter ``message`` (once: a second refusal of the same message is ignored)."""
        if id(message) in self._refused:
            return
        self._refused.add(id(message))
        record = dead_letter(SourceRecord.of(message), error, reason=reason)
        self.result.records.append(
            OutRecord(record.topic, record.key, record.value, DLQ_KIND, record.headers)
        )
        # the reason as the record states it: ``reason``, else the error's own label
        label = (dict(record.headers).get(ERROR_REASON) or b"").decode()
        counted = (message.topic() or "", label)
        self.result.dlq_reasons[counted] = self.result.dlq_reasons.get(counted, 0) + 1
