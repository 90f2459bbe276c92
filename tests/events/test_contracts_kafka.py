"""Every contract type goes through the real broker and comes back equal."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from confluent_kafka import Consumer, Producer

from events import CONTRACTS, SourceRecord, codec_for, dead_letter, read_dead_letter
from events.admin import TopicSettings, ensure_topics
from events.errors import ContractError
from events.samples import samples
from events.settings import KafkaSettings
from events.topics import ALL_TOPICS, READINGS_SENSOR, dlq_topic

PER_TOPIC = 20
PARTITIONS = 6


def produce_samples(kafka: KafkaSettings) -> dict[str, list[Any]]:
    producer = Producer(kafka.producer_config())
    sent: dict[str, list[Any]] = {}
    for topic in CONTRACTS:
        codec = codec_for(topic)
        messages = samples(codec.type, PER_TOPIC, seed=7)
        for message in messages:
            producer.produce(topic, codec.encode(message), codec.key(message))
        sent[topic] = messages
    bad = SourceRecord(READINGS_SENSOR, 0, 41, b"press-1", b"{not json", ())
    letter = dead_letter(bad, ContractError("bad", "invalid_json", "$"))
    producer.produce(letter.topic, letter.value, letter.key, headers=letter.headers)
    assert producer.flush(30) == 0
    return sent


def consume_all(kafka: KafkaSettings, topics: list[str], expected: int) -> list[Any]:
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"contracts-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    received: list[Any] = []
    try:
        # A bound on polls, not a sleep: each poll returns as soon as records are there.
        for _ in range(120):
            received.extend(m for m in consumer.consume(500, timeout=1.0) if m.error() is None)
            if len(received) >= expected and _all_sent_seen(received, expected):
                break
    finally:
        consumer.close()
    return received


def _all_sent_seen(received: list[Any], expected: int) -> bool:
    per_topic = defaultdict(int)
    for message in received:
        per_topic[message.topic()] += 1
    return sum(min(n, PER_TOPIC) for n in per_topic.values()) >= expected - 1


def test_every_contract_round_trips_through_kafka(kafka_bootstrap: str) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    report = ensure_topics(kafka, TopicSettings(partitions=PARTITIONS))
    assert not report.mismatched
    assert set(report.created) | set(report.existing) == set(ALL_TOPICS)

    sent = produce_samples(kafka)
    dlq = dlq_topic(READINGS_SENSOR)
    received = consume_all(kafka, [*sent, dlq], PER_TOPIC * len(sent) + 1)

    by_topic: dict[str, list[Any]] = defaultdict(list)
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    for message in received:
        by_topic[message.topic()].append(message)
    for topic, messages in sent.items():
        codec = codec_for(topic)
        records = by_topic[topic]
        decoded = [codec.decode(r.value()) for r in records]
        # Other tests may publish to the standard topics too: every sample must be there.
        received_bytes = set(map(codec.encode, decoded))
        assert set(map(codec.encode, messages)) <= received_bytes, topic
        for record, message in zip(records, decoded, strict=True):
            assert record.key() == codec.key(message)
            if topic in ("readings.sensor", "predictions", "alerts", "readings.imputed"):
                partitions_of_key[record.key()].add(record.partition())

    # Co-partitioning: one entity key lands on one partition number on every topic.
    assert partitions_of_key
    assert all(len(parts) == 1 for parts in partitions_of_key.values())

    letters = [m for m in by_topic[dlq] if m.value() == b"{not json"]
    assert letters, "the dead letter did not come back"
    letter = letters[-1]
    parsed = read_dead_letter(letter.key(), letter.value(), letter.headers())
    assert parsed.reason == "invalid_json"
    assert parsed.source.value == b"{not json"
    assert parsed.source.offset == 41
