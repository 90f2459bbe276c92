"""A broker started with ``fresh=False`` restarts on its data: the same cluster, not a new one."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from broker import LocalBroker

pytestmark = pytest.mark.integration

# Generous bounds for a loaded 2-core machine; the happy path takes milliseconds.
TIMEOUT_S = 30.0


def cluster_id(bootstrap: str) -> str:
    return str(
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=TIMEOUT_S).cluster_id
    )


def test_a_restart_keeps_ports_topics_records_and_committed_offsets(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka", fresh=False)
    group = f"restart-{uuid.uuid4().hex[:8]}"
    try:
        broker.start()
        bootstrap, before = broker.bootstrap_servers, cluster_id(broker.bootstrap_servers)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("kept", 2, 1)])["kept"].result(timeout=TIMEOUT_S)
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        producer.produce("kept", key=b"k", value=b"before the restart", partition=1)
        assert producer.flush(TIMEOUT_S) == 0
        committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        committer.commit(offsets=[TopicPartition("kept", 1, 1)], asynchronous=False)
        committer.close()

        broker.stop()
        broker.start()

        assert broker.bootstrap_servers == bootstrap
        assert cluster_id(bootstrap) == before
        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        try:
            [committed] = reader.committed([TopicPartition("kept", 1)], timeout=TIMEOUT_S)
            assert committed.offset == 1
            reader.assign([TopicPartition("kept", 1, 0)])
            message = reader.poll(TIMEOUT_S)
            assert message is not None and message.error() is None
            assert message.value() == b"before the restart"
        finally:
            reader.close()
    finally:
        broker.stop()


def test_fresh_false_needs_a_data_dir() -> None:
    with pytest.raises(ValueError, match="needs a data_dir"):
        LocalBroker(fresh=False)
