"""Exactly once on the real broker: an output the broker refuses aborts its transaction.

Once an output of a transaction fails, librdkafka refuses every further record of it
(``_STATE``); the checkpoint must take that refusal, abort, rewind, and carry on in the
same process with the next transaction.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from events.settings import KafkaSettings
from worker.offsets import Deliveries, ExactlyOnce, Outputs, TransactionAborted
from worker.records import OutRecord
from worker.settings import WorkerSettings

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0
TOPIC_LIMIT = 2_000  # the refusing topic's max.message.bytes


def consume_one(consumer: Consumer) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            return message
    raise AssertionError("no record within the deadline")


def committed_values(kafka: KafkaSettings, topic: str) -> list[bytes]:
    """Every committed record of partition 0 of ``topic`` (read_committed, to its end)."""
    reader = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"check-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        partition = TopicPartition(topic, 0, 0)
        _, end = reader.get_watermark_offsets(partition, timeout=DEADLINE_S)
        reader.assign([partition])
        values: list[bytes] = []
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            position = reader.position([TopicPartition(topic, 0)])[0].offset
            if position >= end:  # past the last record and the transaction markers
                return values
            message = reader.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
        raise AssertionError(f"{topic} not read to its end ({end}) within the deadline")
    finally:
        reader.close()


def test_a_refused_output_aborts_its_batch_and_the_next_transaction_commits(
    kafka_settings: KafkaSettings, unique_topic: Any
) -> None:
    inputs, outputs = unique_topic("in"), unique_topic("out")
    small = unique_topic("small", config={"max.message.bytes": str(TOPIC_LIMIT)})
    feeder = Producer(kafka_settings.client_config())
    feeder.produce(inputs, b"reading")
    assert feeder.flush(DEADLINE_S) == 0
    settings = WorkerSettings(
        input_topics=[inputs],
        instance_id=f"refusals-{uuid.uuid4().hex[:8]}",
        processing_guarantee="exactly_once",
        linger_ms=0,
    )
    consumer = Consumer(settings.consumer_config(kafka_settings))
    deliveries = Deliveries()
    producer = Producer({**settings.producer_config(kafka_settings), "on_delivery": deliveries})
    checkpoint = ExactlyOnce(producer, Outputs(producer, deliveries, DEADLINE_S), DEADLINE_S)
    try:
        consumer.assign([TopicPartition(inputs, 0, 0)])
        batch = [consume_one(consumer)]
        checkpoint.begin()
        # within librdkafka's own size limit, above the topic's even compressed: the broker
        # refuses it
        too_large = OutRecord(small, b"k", os.urandom(2 * TOPIC_LIMIT), "dlq")
        checkpoint.produce([OutRecord(outputs, b"k", b"aborted-1", "prediction"), too_large])
        deadline = time.monotonic() + DEADLINE_S
        while not deliveries.failures and time.monotonic() < deadline:
            producer.poll(0.1)  # the refusal is reported
        [(error, topic)] = deliveries.failures
        assert (error.code(), topic) == (KafkaError.MSG_SIZE_TOO_LARGE, small)
        # librdkafka now refuses every further record of the transaction (_STATE)
        checkpoint.produce([OutRecord(outputs, b"k", b"aborted-2", "prediction")])
        with pytest.raises(TransactionAborted, match="refused"):
            checkpoint.commit(consumer, batch)
        again = [consume_one(consumer)]  # rewound: the same reading comes back
        assert (again[0].offset(), again[0].value()) == (0, b"reading")
        checkpoint.begin()
        checkpoint.produce([OutRecord(outputs, b"k", b"committed", "prediction")])
        assert checkpoint.commit(consumer, again) == again
    finally:
        checkpoint.close(consumer)
        consumer.close()
    assert committed_values(kafka_settings, outputs) == [b"committed"]
    assert committed_values(kafka_settings, small) == []
