"""Readiness of a starting broker: it answers a metadata request with the expected id."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from broker.errors import BrokerStartError

# One metadata request may wait this long; short, so that an exited JVM is noticed soon.
PROBE_TIMEOUT_S = 0.5


def wait_until_ready(
    bootstrap_servers: str,
    cluster_id: str,
    timeout_s: float,
    check_alive: Callable[[], None],
    describe_failure: Callable[[], str],
) -> None:
    """Return once ``bootstrap_servers`` answers with ``cluster_id``.

    ``check_alive`` raises if the broker process has exited. The cluster id proves that
    the answer comes from this broker, not from another process that holds the port.
    """
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap_servers,
            # Connection refused is expected until the listener is up: keep it quiet.
            "log_level": 0,
            # Retry the connection every 50-200 ms instead of backing off up to 10 s.
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 200,
        }
    )
    deadline = time.monotonic() + timeout_s
    while True:
        check_alive()
        if time.monotonic() >= deadline:
            raise BrokerStartError(
                f"broker at {bootstrap_servers} did not answer within {timeout_s:.0f} s; "
                + describe_failure()
            )
        asked = time.monotonic()
        try:
            metadata = admin.list_topics(timeout=PROBE_TIMEOUT_S)
        except KafkaException:
            # Not listening yet. The call normally waits out its timeout; never spin.
            time.sleep(max(0.0, PROBE_TIMEOUT_S - (time.monotonic() - asked)))
            continue
        if metadata.brokers and metadata.cluster_id == cluster_id:
            return
