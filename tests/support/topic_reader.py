"""Read back what a test produced: every record of a topic, from its start."""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import Consumer

# Bounded number of 1 s polls: records of a local broker arrive in well under this.
POLLS = 60


def read_topic(bootstrap: str, topic: str, expected: int) -> list[Any]:
    """The records of ``topic`` (stops once ``expected`` arrived, or after ``POLLS`` s)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-back-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    records: list[Any] = []
    try:
        for _ in range(POLLS):
            records.extend(m for m in consumer.consume(1000, timeout=1.0) if not m.error())
            if len(records) >= expected:
                break
    finally:
        consumer.close()
    return records
