"""One model over a group of rows of a batch: features, one vectorized call, its time.

:meth:`Scorer.run` cuts the windows the model's spec needs from the batch snapshot, builds
the feature rows with the spec (the code training used) and calls the model once. A model
that raises is logged once for the group and reported as None, so the caller serves a
fallback and no reading is lost. Time building the features, time in the model call and
the version used are booked on the batch result for the runtime's metrics.
:meth:`Scorer.submit` runs the same on the pipeline's helper thread, when it has one, so
that model scores while the caller goes on.
:func:`warm_up` is the model cache's warm-up: a version is scored once before it serves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any, Protocol, runtime_checkable

import numpy as np

from models.base import FloatArray, Scores
from models.versions import LoadedModel
from worker.intake import Readings
from worker.records import BatchResult, add_seconds
from worker.serving import Served
from worker.snapshot import Snapshot

log = logging.getLogger(__name__)

Call = Callable[[FloatArray], Scores]


@runtime_checkable
class GapFiller(Protocol):
    """A model that estimates a reading's missing target (``SequenceModel``)."""

    def impute_rows(self, features: FloatArray) -> Scores: ...


class Scorer:
    """Runs served models for one batch and books their time and versions."""

    def __init__(self, result: BatchResult, helper: Executor | None = None) -> None:
        self.result = result
        self.helper = helper

    def submit(
        self, served: Served, snapshot: Snapshot, readings: Readings[Any], rows: Sequence[int]
    ) -> Future[Scores | None]:
        """:meth:`run` on the helper thread (at once, without one); ``result()`` gives its
        scores. The caller must take the result before the batch ends."""
        if self.helper is not None:
            return self.helper.submit(self.run, served, snapshot, readings, rows)
        done: Future[Scores | None] = Future()
        done.set_result(self.run(served, snapshot, readings, rows))
        return done

    def run(
        self,
        served: Served,
        snapshot: Snapshot,
        readings: Readings[Any],
        rows: Sequence[int],
        call: Call | None = None,
        *,
        shadow: bool = False,
    ) -> Scores | None:
        """Scores of ``rows`` (``call`` defaults to ``predict_batch``); None if it failed.

        ``shadow``: a challenger scoring beside the champion; the version that served the
        batch stays the champion's."""
        spec = served.spec
        try:
            started = time.perf_counter()
            try:
                windows = snapshot.windows(spec.inputs, spec.history_needed, rows)
                features = spec.rows(windows, readings.times(rows), readings.entity_array(rows))
            finally:
                started = self._book(self.result.feature_seconds, served.name, started)
            try:
                scores = (call or served.model.predict_batch)(features)
            finally:
                self._book(self.result.model_seconds, served.name, started)
            if len(scores) != len(rows):
                raise ValueError(f"returned {len(scores)} scores for {len(rows)} rows")
        # A model may raise anything its framework raises; one failing group must neither
        # crash the batch nor lose its readings: the caller serves a fallback instead.
        except Exception as exc:
            log.warning(
                "%s failed on %d reading(s) of this batch: %s: %s",
                served.label,
                len(rows),
                type(exc).__name__,
                exc,
            )
            return None
        # A key may serve twice in a batch (a sequence model forecasts and fills gaps); the
        # version reported is the trained one whenever it scored anything.
        if not shadow:
            booked = self.result.versions
            model_key = (served.name, served.key)
            booked[model_key] = max(booked.get(model_key, 0), served.version)
        return scores

    @staticmethod
    def _book(spent: dict[str, float], name: str, started: float) -> float:
        """Add the time since ``started`` to ``name``'s; returns now."""
        now = time.perf_counter()
        add_seconds(spent, {name: now - started})
        return now


def warm_up(loaded: LoadedModel) -> None:
    """Score one row of zeros with a freshly loaded version (the scores are discarded).

    What a model builds on its first call (a sequence model's TensorFlow graph takes about
    0.1 s) is then built where the cache loads it: on the updates thread for a swap, off
    the hot path. A version that cannot score a row of its own width fails here, and the
    version serving keeps serving.
    """
    model = loaded.model
    row = np.zeros((1, len(model.feature_names)))
    model.predict_batch(row)
    if isinstance(model, GapFiller):
        model.impute_rows(row)
