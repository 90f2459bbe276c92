"""The broker restarts while a worker is in the middle of a stream.

A dedicated broker (``LocalBroker(fresh=False)`` on fixed ports, so clients reconnect to
the same address and the data survives) is stopped with SIGTERM and started again on the
same data directory while the worker scores.

At least once, the worker keeps its process: its clients reconnect and it resumes. Exactly
once, librdkafka's send_offsets_to_transaction can hang when the group coordinator comes
back (confluentinc/librdkafka#5456, #5511); the worker then stops with exit status 1 at
its deadline (``worker.offsets.call_with_deadline``) and, restarted as its supervisor
would, aborts the open transaction and resumes. Either way every reading's output arrives.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from broker import LocalBroker
from broker.config import free_ports
from events.settings import KafkaSettings

pytestmark = [pytest.mark.fault, pytest.mark.integration]

READINGS = 30_000
STATIONS = 100
# Small batches with a pause: the stream lasts long enough for the broker to go down in it.
PACED = {"WORKER_BATCH_MAX_RECORDS": "500", "FAULT_BATCH_DELAY_S": "0.05"}
# Exactly once: a 10 s transaction timeout bounds how long a hung offsets call is waited
# for (the worker's deadline is the timeout plus a margin).
SETTINGS = {
    "at_least_once": PACED,
    "exactly_once": {**PACED, "WORKER_TRANSACTION_TIMEOUT_MS": "10000"},
}
WORKER_FAILED = 1


class Supervised:
    """A worker restarted, as its supervisor would, when it stops with exit status 1."""

    def __init__(self, start: Callable[[], Any]) -> None:
        self.start = start
        self.worker = start()
        self.restarts = 0

    def check(self) -> None:
        """Restart the worker if it stopped; only the documented hang may stop it."""
        if self.worker.alive():
            return
        log = self.worker.log.read_text()
        assert self.worker.process.returncode == WORKER_FAILED, log[-3000:]
        assert "did not return within" in log, log[-3000:]
        self.restarts += 1
        self.worker = self.start()


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[LocalBroker]:
    port, controller_port = free_ports(2)
    broker = LocalBroker(
        tmp_path / "kafka", port=port, controller_port=controller_port, fresh=False
    )
    try:
        yield broker.start()
    finally:
        broker.stop()


def topic_maker(kafka: KafkaSettings) -> Callable[..., str]:
    admin = AdminClient(kafka.client_config())

    def create(prefix: str = "test", partitions: int = 1) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
        return name

    return create


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_broker_restart_mid_stream_loses_nothing(
    guarantee: str,
    restartable: LocalBroker,
    tmp_path: Path,
    air_readings: Callable[..., list[Any]],
    reference: Callable[[Any], Counter[bytes]],
    fault_report: Callable[..., Any],
    faults: Any,
) -> None:
    kafka = KafkaSettings(bootstrap_servers=restartable.bootstrap_servers)
    stream = faults.FaultStream(kafka, topic_maker(kafka), tmp_path)
    try:
        readings = air_readings(READINGS, entities=STATIONS)
        expected = reference(readings)
        total = sum(expected.values())
        stream.produce(readings)
        worker = Supervised(
            lambda: stream.start("restart", ["--guarantee", guarantee], **SETTINGS[guarantee])
        )
        stream.wait_outputs(total // 4)
        stopped = time.monotonic()
        restartable.stop()
        assert worker.worker.alive(), "the worker died with the broker"
        restartable.start()
        down_s = time.monotonic() - stopped
        back = time.monotonic()
        before = stream.output_count()

        def resumed() -> bool:
            worker.check()
            return stream.output_count() > before

        faults.wait_until(resumed, "outputs after the broker restart", 120)
        recovery_s = time.monotonic() - back

        def finished() -> bool:
            worker.check()
            return len(stream.outputs()) >= len(expected)

        faults.wait_until(finished, "every output", 120)
        assert worker.worker.stop(signal.SIGTERM) == 0
        outputs = stream.outputs()
        lost = sum((expected - outputs).values())
        duplicates = sum(outputs.values()) - len(outputs)
        fault_report(
            f"broker-restart-{guarantee.replace('_', '-')}",
            f"Broker restart mid-stream ({guarantee.replace('_', ' ')})",
            f"the broker stopped (SIGTERM) and started again on its data after {before:,} "
            f"of {total:,} outputs",
            (
                "the worker stops with exit status 1 if the offsets call hangs and, "
                "restarted, resumes; every reading's output exists, none twice"
                if guarantee == "exactly_once"
                else "the worker process keeps running, reconnects and resumes; every "
                "reading's output exists; duplicates counted"
            ),
            readings_sent=READINGS,
            outputs=sum(outputs.values()),
            lost=lost,
            duplicates=duplicates,
            broker_down_s=round(down_s, 2),
            recovery_s=round(recovery_s, 2),
            worker_restarts=worker.restarts,
        )
        assert lost == 0 and set(outputs) == set(expected)
        if guarantee == "exactly_once":
            assert duplicates == 0
        else:
            assert worker.restarts == 0  # at least once, the process rides the restart out
    finally:
        stream.close()
