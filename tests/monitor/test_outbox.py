"""The outbox reports unacknowledged records, so offsets are never committed past them."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from events.settings import KafkaSettings
from monitor.errors import DeliveryError
from monitor.outbox import Outbox
from monitor.service import MonitorService
from monitor.settings import MonitorSettings

# librdkafka gives up on a record this long after producing it (the test's whole wait).
MESSAGE_TIMEOUT_MS = 300


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_failed_delivery_is_reported_by_flush() -> None:
    config = {
        "bootstrap.servers": f"127.0.0.1:{closed_port()}",
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
        "log_level": 0,  # the refused connections are the point of the test
    }
    outbox = Outbox(MonitorSettings(), config)
    outbox.produce("monitor.pairs", b"{}", b"m-1")
    with pytest.raises(DeliveryError, match="1 failed") as caught:
        outbox.flush(timeout_s=30)
    assert "monitor.pairs" in str(caught.value)
    # The lost record is no longer queued: a later flush (the stop's, before its commit)
    # must fail as well, or the commit would pass over it.
    with pytest.raises(DeliveryError, match=r"monitor\.pairs"):
        outbox.flush(timeout_s=1)


def test_a_failed_flush_on_revocation_stops_the_service_without_a_commit(
    tmp_path: Path,
) -> None:
    service = MonitorService(
        MonitorSettings(model_store=tmp_path), KafkaSettings(), baselines=lambda m, k, v: 1.0
    )
    lost = DeliveryError("1 record(s) failed (monitor.pairs: timed out)")

    class Committing:
        def __init__(self) -> None:
            self.commits: list[Any] = []

        def commit(self, **kwargs: Any) -> None:
            self.commits.append(kwargs)

    class Broken:
        def flush(self) -> None:
            raise lost

    consumer = Committing()
    service._consumer = consumer  # type: ignore[assignment]
    service._outbox = Broken()  # type: ignore[assignment]
    service._assigned = {("predictions", 0)}
    service._next[("predictions", 0)] = 10
    service._on_revoke(consumer, [TopicPartition("predictions", 0)])  # type: ignore[arg-type]
    assert consumer.commits == []
    assert service._failed is lost and service._stop.is_set()
