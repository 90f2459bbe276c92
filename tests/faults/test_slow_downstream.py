"""A slow downstream: the broker throttles the worker's producer while a backlog waits.

A client quota (``producer_byte_rate`` on the worker producer's client id, set through the
AdminClient protocol's AlterClientQuotas request) makes the broker hold back the worker's
output; the worker's producer queue is small (1,000 records) and a batch is larger
(5,000), so producing blocks on the full queue. What must hold: memory stays bounded
(the backlog waits in Kafka, not in the worker), nothing is dropped, and once the quota
is lifted every output arrives.
"""

from __future__ import annotations

import signal
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.fault

READINGS = 60_000
STATIONS = 100
# Scored before the quota, so that the memory baseline includes what a first batch
# allocates once (imports, buffers) and the growth measured is what the backlog costs.
WARMUP_READINGS = 5_000
# Bytes per second the broker lets the throttled producer write: a fraction of what the
# worker makes (lz4 packs its JSON outputs to a few dozen bytes each: ~2 MB in all).
THROTTLED_BYTES_PER_S = 20_000.0
# How long the quota holds before it is lifted.
THROTTLED_S = 10.0
SMALL_QUEUE = {
    "WORKER_BATCH_MAX_RECORDS": "5000",
    "WORKER_PRODUCER_QUEUE_MESSAGES": "1000",  # the smallest the settings allow
    "WORKER_PRODUCER_QUEUE_KBYTES": "1024",
}
MIB = 1024 * 1024
# What the worker may hold beyond its idle footprint: librdkafka's fetch queue
# (queued.max.messages.kbytes, 64 MiB by default, in C memory), its producer queue
# (1 MiB here) and a batch's Python objects on each side of the pipeline, generously.
MEMORY_BOUND_BYTES = 64 * MIB + 1 * MIB + 64 * MIB
ALTER_CLIENT_QUOTAS = 49  # Kafka protocol API key; version 0 is not "flexible"
SAMPLE_S = 0.25


def _string(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">h", -1)
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def alter_producer_quota(bootstrap: str, client_id: str, rate: float | None) -> None:
    """Set (or with None remove) ``producer_byte_rate`` of ``client_id`` on the broker.

    confluent-kafka has no client-quota API, so this sends AlterClientQuotas v0 itself:
    entries [entity [type, name], ops [key, value, remove]], validate_only.
    """
    body = struct.pack(">i", 1)
    body += struct.pack(">i", 1) + _string("client-id") + _string(client_id)
    body += struct.pack(">i", 1) + _string("producer_byte_rate")
    body += struct.pack(">d?", rate or 0.0, rate is None)
    body += struct.pack(">?", False)
    header = struct.pack(">hhi", ALTER_CLIENT_QUOTAS, 0, 1) + _string("driftline-fault-tests")
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        request = header + body
        connection.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _read(connection, 4))[0]
        response = _read(connection, size)
    # correlation id, throttle time, entry count, then the entry's error code
    _, _, entries, error = struct.unpack(">iiih", response[:14])
    assert entries == 1 and error == 0, f"AlterClientQuotas failed with error code {error}"


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        assert chunk, "the broker closed the connection"
        data += chunk
    return data


@pytest.fixture
def quota(kafka_settings: Any) -> Iterator[Callable[[str, float | None], None]]:
    """``quota(client_id, rate)``; every quota set is removed after the test."""
    touched: set[str] = set()

    def set_quota(client_id: str, rate: float | None) -> None:
        touched.add(client_id)
        alter_producer_quota(kafka_settings.bootstrap_servers, client_id, rate)

    yield set_quota
    for client_id in touched:
        alter_producer_quota(kafka_settings.bootstrap_servers, client_id, None)


def test_a_throttled_downstream_bounds_memory_and_drops_nothing(
    fault_stream: Any,
    quota: Callable[[str, float | None], None],
    air_readings: Callable[..., list[Any]],
    reference: Callable[[Any], Counter[bytes]],
    fault_report: Callable[..., Any],
    faults: Any,
) -> None:
    stream = fault_stream
    warmup = air_readings(WARMUP_READINGS, entities=STATIONS, prefix="warm")
    readings = air_readings(READINGS, entities=STATIONS)
    expected = reference(readings) + reference(warmup)
    total = sum(expected.values())
    name = "slow"
    worker = stream.start(name, **SMALL_QUEUE)
    worker.wait_ready()
    pid = worker.process.pid
    stream.produce(warmup)
    warm_outputs = sum(reference(warmup).values())
    stream.wait_outputs(warm_outputs)
    idle = faults.memory_kib(pid)["VmRSS"] * 1024
    quota(f"{stream.kafka.client_id}-worker-{name}", THROTTLED_BYTES_PER_S)
    stream.produce(readings)
    backlog = sum(len(key or b"") + len(value or b"") for key, value in readings)

    began = time.monotonic()
    while time.monotonic() - began < THROTTLED_S:
        assert worker.alive(), worker.log.read_text()[-3000:]
        stream.output_count()  # keep reading: the count below is then current
        time.sleep(SAMPLE_S)
    throttled_outputs = stream.output_count() - warm_outputs
    backpressure = faults.metric(worker.port, "driftline_worker_produce_backpressure_total")
    quota(f"{stream.kafka.client_id}-worker-{name}", None)
    lifted = time.monotonic()
    faults.wait_until(lambda: len(stream.outputs()) >= len(expected), "every output", 120)
    unthrottled_s = time.monotonic() - lifted
    peak = faults.memory_kib(pid)["VmHWM"] * 1024  # the kernel's high-water mark
    assert worker.stop(signal.SIGTERM) == 0
    outputs = stream.outputs()
    fault_report(
        "slow-downstream",
        "Slow downstream (broker quota on the worker's producer)",
        f"a {THROTTLED_BYTES_PER_S / 1000:.0f} kB/s producer quota on the worker while "
        f"{READINGS:,} readings ({backlog / MIB:.1f} MiB) wait; producer queue of 1,000 "
        f"records, batches of 5,000; the quota is lifted after {THROTTLED_S:.0f} s",
        "producing blocks on the full queue (backpressure counted); the growth of resident "
        "memory over the baseline after a first 5,000 readings stays within the worker's "
        "buffers (librdkafka's 64 MiB fetch queue, the 1 MiB producer queue, a batch); "
        "nothing is dropped: every output arrives once the quota is lifted",
        readings_sent=WARMUP_READINGS + READINGS,
        outputs=sum(outputs.values()),
        lost=sum((expected - outputs).values()),
        duplicates=sum(outputs.values()) - len(outputs),
        backlog_mib=round(backlog / MIB, 1),
        outputs_while_throttled=throttled_outputs,
        throttled_outputs_per_s=round(throttled_outputs / THROTTLED_S),
        unthrottled_outputs_per_s=round(
            (total - warm_outputs - throttled_outputs) / max(unthrottled_s, 1e-3)
        ),
        backpressure_waits=int(backpressure),
        baseline_rss_mib=round(idle / MIB, 1),
        peak_rss_mib=round(peak / MIB, 1),
        rss_growth_mib=round((peak - idle) / MIB, 1),
    )
    assert outputs == expected  # nothing dropped, nothing repeated
    assert throttled_outputs < total - warm_outputs, "the quota held nothing back"
    assert backpressure > 0, "the producer queue never filled"
    assert peak - idle < MEMORY_BOUND_BYTES
