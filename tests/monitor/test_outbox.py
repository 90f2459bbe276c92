"""The outbox reports unacknowledged records, so offsets are never committed past them."""

from __future__ import annotations

import socket

import pytest

from monitor.errors import DeliveryError
from monitor.outbox import Outbox
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
    for attempt in range(2):  # a second failure is reported as well as the first
        outbox.produce("monitor.pairs", b"{}", b"m-1")
        with pytest.raises(DeliveryError, match="1 failed") as caught:
            outbox.flush(timeout_s=30)
        assert "monitor.pairs" in str(caught.value), attempt
    outbox.flush(timeout_s=1)  # nothing left, nothing failed
