"""The pipeline that the fault tests' ``driftline worker`` processes run.

The real :class:`~worker.pipeline.ScoringPipeline` (an empty model store: the fallbacks
serve), reading the test's input topics as sensor readings and writing to the test's
output topics (``FAULT_PREDICTIONS``, ``FAULT_ALERTS``, ``FAULT_IMPUTED``). With
``FAULT_BATCH_DELAY_S`` every batch takes that much longer, standing in for heavier
models so that a test can act while the stream is in flight.

The worker imports it by name (``WORKER_PIPELINE=fault_pipeline:build_pipeline``, with
this directory on ``PYTHONPATH``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from worker.pipeline import ScoringPipeline, scoring_pipeline
from worker.records import BatchResult
from worker.routes import StreamTopics


class Paced:
    """A pipeline whose batches each take ``delay_s`` longer."""

    def __init__(self, pipeline: ScoringPipeline, delay_s: float) -> None:
        self.pipeline, self.delay_s = pipeline, delay_s

    def process(self, messages: Sequence[Any]) -> BatchResult:
        result = self.pipeline.process(messages)
        time.sleep(self.delay_s)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)


def topics_of(inputs: Sequence[str]) -> StreamTopics:
    return StreamTopics(
        sensor=tuple(inputs),
        demand=(),
        predictions=os.environ["FAULT_PREDICTIONS"],
        alerts=os.environ["FAULT_ALERTS"],
        imputed=os.environ["FAULT_IMPUTED"],
    )


def build_pipeline(settings: Any, cache: Any) -> Any:
    pipeline = scoring_pipeline(settings, cache, topics_of(settings.input_topics))
    delay = float(os.environ.get("FAULT_BATCH_DELAY_S", "0"))
    return Paced(pipeline, delay) if delay > 0 else pipeline
