"""The figures of one loop run, from what was observed on its topics.

* ``pairs_to_request``: labelled pairs of the first champion whose target lies after the
  onset among those the monitor had judged when it asked for the retrain (the request's
  ``evaluation`` evidence: the first pairs it wrote, in the order it wrote them);
* ``seconds_to_request`` / ``seconds_to_serving``: wall seconds from publishing the first
  drifted reading to reading the request, and to reading the first prediction tagged with
  the new champion's version;
* MAE ``before`` (first champion, targets before the onset), ``during`` (first champion,
  from the onset to the promotion) and ``after`` (the new champion, targets from its first
  prediction on: the promotion as the workers saw it; without a promotion, the first
  champion on the ``after`` segment).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from driftline.loop.environment import MODEL
from driftline.loop.runner import LoopOutcome
from events import MonitorPair
from models.store import ModelStore

FIRST_VERSION = 1  # the run registers one champion before anything else


@dataclass(frozen=True)
class LoopFigures:
    """See the module docstring; None where the run did not get that far."""

    requests: int
    outcome: str  # promoted, rejected, challenger, no request, ...
    new_version: int | None
    pairs_to_request: int | None
    seconds_to_request: float | None
    seconds_to_serving: float | None
    mae_before: float | None
    mae_during: float | None
    mae_after: float | None
    pairs_before: int
    pairs_during: int
    pairs_after: int
    baseline_mae: float | None
    run_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _baseline(run: LoopOutcome) -> float | None:
    value = ModelStore(run.paths.store).info(MODEL, None, FIRST_VERSION).metrics.get("mae")
    return None if value is None else float(value)


def _mae(pairs: list[MonitorPair]) -> float | None:
    return float(np.mean([abs(p.error) for p in pairs])) if pairs else None


def loop_figures(run: LoopOutcome) -> LoopFigures:
    """Figures of ``run``; the baseline is the first champion's registry MAE."""
    seen = run.snapshot
    onset: datetime = run.data.onset_time
    first = seen.pairs_of(FIRST_VERSION)
    promoted = seen.updates_of("promoted")
    new_version = promoted[-1].version if promoted else None
    serving = seen.first_prediction(new_version) if new_version is not None else None
    if serving is not None and new_version is not None:
        since = serving.message.target_ts
        after = [p for p in seen.pairs_of(new_version) if p.target_ts >= since]
    else:
        since = run.data.after_start.to_pydatetime()
        after = [p for p in first if p.target_ts >= since]
    before = [p for p in first if p.target_ts < onset]
    during = [p for p in first if onset <= p.target_ts < since]
    request = seen.requests[0] if seen.requests else None
    pairs_to_request = None
    if request is not None:
        # The request's evidence counts the version's pairs the monitor had judged; the
        # monitor wrote them in that order (pairs of many products interleave in a burst).
        judged = int(request.message.evidence.get("evaluation", 0))
        ordered = sorted(
            (s for s in seen.pairs if s.message.version == FIRST_VERSION),
            key=lambda s: s.produced_ms,
        )
        pairs_to_request = sum(s.message.target_ts >= onset for s in ordered[:judged])
    asked = None if request is None else request.message.request_id
    decision = next((d for d in run.decisions if d.job_id == asked), None)
    return LoopFigures(
        requests=len(seen.requests),
        outcome=decision.outcome if decision else ("no request" if request is None else "pending"),
        new_version=new_version,
        pairs_to_request=pairs_to_request,
        seconds_to_request=None if request is None else request.at - run.onset_at,
        seconds_to_serving=None if serving is None else serving.at - run.onset_at,
        mae_before=_mae(before),
        mae_during=_mae(during),
        mae_after=_mae(after),
        pairs_before=len(before),
        pairs_during=len(during),
        pairs_after=len(after),
        baseline_mae=_baseline(run),
        run_seconds=run.seconds,
    )
