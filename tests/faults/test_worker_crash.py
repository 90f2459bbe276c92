"""A worker killed (SIGKILL) or stopped (SIGTERM) in the middle of a stream, then restarted.

The real pipeline scores 100,000 air-quality readings; every reading but each station's
first yields one imputed output whose bytes depend only on the station's history (see
conftest). Counting outputs by their bytes against an uninterrupted in-process run gives
lost and repeated readings exactly. Complements tests/worker/test_worker_integration.py
(a passthrough pipeline on 1,200-1,500 readings: SIGTERM restart, SIGKILL takeover by a
second worker, exactly once after SIGKILL).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.fault

READINGS = 100_000
STATIONS = 200
# Batches of 1,000 with 20 ms more each: the stream takes several seconds, so the kill
# lands in its middle rather than after its end.
PACED = {"WORKER_BATCH_MAX_RECORDS": "1000", "FAULT_BATCH_DELAY_S": "0.02"}
# Stop once a third of the outputs are out.
STOP_AT = 1 / 3


def settled_count(stream: Any) -> int:
    """Outputs on the topic once no more arrive (the stopped worker produces nothing)."""
    seen = -1
    while seen != (now := stream.output_count()):
        seen = now
        time.sleep(0.5)
    return seen


def figures(expected: Counter[bytes], outputs: Counter[bytes]) -> dict[str, int]:
    return {
        "readings_sent": READINGS,
        "expected_outputs": sum(expected.values()),
        "outputs": sum(outputs.values()),
        "lost": sum((expected - outputs).values()),
        "duplicates": sum(outputs.values()) - len(outputs),
        "unexpected": len(set(outputs) - set(expected)),
    }


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_sigkill_mid_stream_then_restart_loses_nothing(
    guarantee: str,
    fault_stream: Any,
    air_readings: Callable[..., list[Any]],
    reference: Callable[[Any], Counter[bytes]],
    fault_report: Callable[..., Any],
    faults: Any,
) -> None:
    stream = fault_stream
    readings = air_readings(READINGS, entities=STATIONS)
    expected = reference(readings)
    total = sum(expected.values())
    stream.produce(readings)
    args = ["--guarantee", guarantee]
    first = stream.start(f"kill-{guarantee}", args, **PACED)
    stream.wait_outputs(int(total * STOP_AT))
    first.stop(signal.SIGKILL)
    killed = time.monotonic()
    before = settled_count(stream)
    assert before < total, "the worker finished before the kill"

    second = stream.start(f"kill-{guarantee}", args, **PACED)
    faults.wait_until(lambda: stream.output_count() > before, "the restarted worker's output")
    recovery_s = time.monotonic() - killed
    faults.wait_until(lambda: len(stream.outputs()) >= len(expected), "every output")
    assert second.stop(signal.SIGTERM) == 0
    outputs = stream.outputs()
    found = figures(expected, outputs)
    fault_report(
        f"worker-sigkill-{guarantee.replace('_', '-')}",
        f"Worker SIGKILL mid-stream ({guarantee.replace('_', ' ')})",
        f"kill -9 of the worker after {before:,} of {total:,} outputs, then a restart "
        "under the same instance id",
        "every reading's output exists with the bytes of an uninterrupted run; "
        + (
            "duplicates are counted (at least once: the batches after the last commit "
            "are scored again)"
            if guarantee == "at_least_once"
            else "no output is visible twice to read_committed consumers"
        ),
        **found,
        outputs_before_kill=before,
        recovery_s=round(recovery_s, 2),
    )
    assert found["lost"] == 0 and found["unexpected"] == 0
    if guarantee == "exactly_once":
        assert found["duplicates"] == 0
        assert outputs == expected


def test_sigterm_mid_stream_then_restart_loses_and_repeats_nothing(
    fault_stream: Any,
    air_readings: Callable[..., list[Any]],
    reference: Callable[[Any], Counter[bytes]],
    fault_report: Callable[..., Any],
    faults: Any,
) -> None:
    stream = fault_stream
    readings = air_readings(READINGS, entities=STATIONS)
    expected = reference(readings)
    total = sum(expected.values())
    stream.produce(readings)
    first = stream.start("term", **PACED)
    stream.wait_outputs(int(total * STOP_AT))
    asked = time.monotonic()
    assert first.stop(signal.SIGTERM) == 0
    shutdown_s = time.monotonic() - asked
    before = settled_count(stream)
    assert before < total, "the worker finished before the stop"

    restarted = time.monotonic()
    second = stream.start("term", **PACED)
    faults.wait_until(lambda: stream.output_count() > before, "the restarted worker's output")
    recovery_s = time.monotonic() - restarted
    faults.wait_until(lambda: len(stream.outputs()) >= len(expected), "every output")
    assert second.stop(signal.SIGTERM) == 0
    outputs = stream.outputs()
    found = figures(expected, outputs)
    fault_report(
        "worker-sigterm",
        "Worker SIGTERM mid-stream",
        f"SIGTERM to the worker after {before:,} of {total:,} outputs, then a restart",
        "the graceful stop finishes its batch, commits what was acknowledged and exits 0; "
        "after the restart every output exists exactly once",
        **found,
        outputs_before_stop=before,
        shutdown_s=round(shutdown_s, 2),
        recovery_s=round(recovery_s, 2),
    )
    assert found["lost"] == 0 and found["unexpected"] == 0
    assert found["duplicates"] == 0
    assert outputs == expected
