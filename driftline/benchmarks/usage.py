"""What a worker process spent between two moments, read from its own ``/metrics``.

A worker exports its CPU time (``process_cpu_seconds_total``, prometheus_client's process
collector: user plus system time of every thread, librdkafka's included), the records of
its micro-batches (``driftline_worker_batch_size_records``) and the time it waited for
acknowledgements (``driftline_worker_ack_wait_seconds``). Two samples taken around a
phase give what the phase cost: CPU per reading, the mean batch, the acknowledgement wait.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

from driftline.benchmarks.cluster import BenchError

CPU: Final = "process_cpu_seconds_total"
BATCH_RECORDS: Final = "driftline_worker_batch_size_records"
ACK_WAIT: Final = "driftline_worker_ack_wait_seconds"
HTTP_TIMEOUT_S: Final = 5.0
MICROSECONDS: Final = 1e6


@dataclass(frozen=True)
class Sample:
    """Totals of one ``/metrics`` scrape."""

    cpu_seconds: float
    batches: float
    records: float
    ack_wait_seconds: float


@dataclass(frozen=True)
class Usage:
    """What a worker spent between two samples, over ``seconds`` of wall time."""

    seconds: float
    cpu_seconds: float
    batches: int
    records: int
    ack_wait_seconds: float

    @classmethod
    def between(cls, before: Sample, after: Sample, seconds: float) -> Usage:
        return cls(
            seconds=seconds,
            cpu_seconds=after.cpu_seconds - before.cpu_seconds,
            batches=round(after.batches - before.batches),
            records=round(after.records - before.records),
            ack_wait_seconds=after.ack_wait_seconds - before.ack_wait_seconds,
        )

    @classmethod
    def total(cls, parts: Sequence[Usage]) -> Usage:
        """What several processes spent together over the same wall time.

        >>> one = Usage(2.0, 1.5, 10, 5_000, 0.2)
        >>> both = Usage.total([one, Usage(2.0, 0.5, 30, 5_000, 0.1)])
        >>> both.cores, both.batches, both.records, both.mean_batch
        (1.0, 40, 10000, 250.0)
        """
        if not parts:
            raise ValueError("no usage to add up")
        return cls(
            seconds=max(part.seconds for part in parts),
            cpu_seconds=sum(part.cpu_seconds for part in parts),
            batches=sum(part.batches for part in parts),
            records=sum(part.records for part in parts),
            ack_wait_seconds=sum(part.ack_wait_seconds for part in parts),
        )

    @property
    def cpu_us_per_record(self) -> float:
        return MICROSECONDS * self.cpu_seconds / self.records if self.records else float("nan")

    @property
    def cores(self) -> float:
        """CPU seconds per wall second: the share of one core the worker used."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mean_batch(self) -> float:
        return self.records / self.batches if self.batches else float("nan")


def parse(text: str) -> Sample:
    """The totals of a Prometheus text exposition (absent metrics count 0).

    >>> parse('process_cpu_seconds_total 2.5\\n'
    ...       'driftline_worker_batch_size_records_count 4.0\\n'
    ...       'driftline_worker_batch_size_records_sum 1000.0\\n')
    Sample(cpu_seconds=2.5, batches=4.0, records=1000.0, ack_wait_seconds=0.0)
    """
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels:
                values[sample.name] = float(sample.value)
    return Sample(
        cpu_seconds=values.get(CPU, 0.0),
        batches=values.get(BATCH_RECORDS + "_count", 0.0),
        records=values.get(BATCH_RECORDS + "_sum", 0.0),
        ack_wait_seconds=values.get(ACK_WAIT + "_sum", 0.0),
    )


def scrape(port: int) -> Sample:
    """A sample of the worker serving ``/metrics`` on ``port`` (127.0.0.1)."""
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            return parse(response.read().decode())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise BenchError(f"cannot read the worker's metrics at {url}: {exc}") from exc
