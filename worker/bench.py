"""Throughput of the scoring pipeline: consumed records in, records to produce out.

The pipeline is measured in its steady state: each pass builds a fresh pipeline, warms its
state with history (so every window is full, as after a warm-up on assignment), then times
``process`` over the measured records in micro-batches. The figure is the best of
``repeats`` passes, so a busy machine costs as little as possible. No broker is involved:
this prices decoding, state, features, models and encoding, not the network.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from events.dlq import KafkaMessage
from worker.pipeline import ScoringPipeline


@dataclass(frozen=True)
class PipelineFigures:
    """Best pass over ``messages`` records processed in batches of ``batch_size``."""

    messages: int
    batch_size: int
    seconds: float
    outputs: int
    model_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")

    @property
    def batch_ms(self) -> float:
        """Mean wall time of one batch, in milliseconds."""
        batches = -(-self.messages // self.batch_size)
        return 1000.0 * self.seconds / max(batches, 1)


def measure(
    make_pipeline: Callable[[], ScoringPipeline],
    history: Sequence[KafkaMessage],
    measured: Sequence[KafkaMessage],
    batch_size: int = 1000,
    repeats: int = 3,
) -> PipelineFigures:
    """Best of ``repeats`` timed passes of ``process`` over ``measured``."""
    best: PipelineFigures | None = None
    for _ in range(repeats):
        pipeline = make_pipeline()
        pipeline.warm(history)
        outputs, spent = 0, dict[str, float]()
        started = time.perf_counter()
        for start in range(0, len(measured), batch_size):
            result = pipeline.process(measured[start : start + batch_size])
            outputs += len(result.records)
            for name, seconds in result.model_seconds.items():
                spent[name] = spent.get(name, 0.0) + seconds
        elapsed = time.perf_counter() - started
        if best is None or elapsed < best.seconds:
            best = PipelineFigures(len(measured), batch_size, elapsed, outputs, spent)
    if best is None:
        raise ValueError("repeats must be at least 1")
    return best
