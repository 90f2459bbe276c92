"""Figures of the run over time: one :class:`Sample` per scrape of the services.

Times are seconds since the demo started. Rates and the p99 latency are over the last
``RATE_WINDOW_S`` seconds, so the dashboard shows the present rather than the average.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from driftline.demo.scrape import Figures, difference, quantile

RATE_WINDOW_S: Final = 5.0  # long enough to smooth batching, short enough to follow changes


@dataclass(frozen=True)
class Sample:
    """The services' counters at time ``t`` (cumulative) and the recent rates."""

    t: float
    published: int
    consumed: float
    predictions: float
    alerts: float
    dlq: float
    published_per_s: float = 0.0
    scored_per_s: float = 0.0
    p99_s: float | None = None  # end-to-end latency over the rate window


@dataclass
class Timeline:
    """Samples in time order, plus the latest full scrape."""

    samples: list[Sample] = field(default_factory=list)
    latest: Figures = field(default_factory=Figures)
    _latency: list[tuple[float, dict[float, float]]] = field(default_factory=list)

    def add(self, t: float, published: int, figures: Figures) -> Sample:
        outputs = figures.outputs
        earlier = self._at_or_before(t - RATE_WINDOW_S)
        sample = Sample(
            t=t,
            published=published,
            consumed=figures.consumed,
            predictions=outputs.get("prediction", 0.0),
            alerts=outputs.get("alert", 0.0),
            dlq=sum(figures.dlq.values()),
        )
        if earlier is not None and t > earlier.t:
            span = t - earlier.t
            sample = Sample(
                **{
                    **sample.__dict__,
                    "published_per_s": (published - earlier.published) / span,
                    "scored_per_s": (figures.consumed - earlier.consumed) / span,
                    "p99_s": self._recent_p99(t, figures.latency),
                }
            )
        self.samples.append(sample)
        self._latency.append((t, figures.latency))
        self.latest = figures
        return sample

    def keep_latest(self, figures: Figures) -> None:
        """Remember a scrape without plotting it (the last one, taken while stopping)."""
        self.latest = figures

    def _at_or_before(self, t: float) -> Sample | None:
        chosen = None
        for sample in self.samples:
            if sample.t > t:
                break
            chosen = sample
        return chosen if chosen is not None else (self.samples[0] if self.samples else None)

    def _recent_p99(self, t: float, buckets: dict[float, float]) -> float | None:
        before = next(
            (b for at, b in reversed(self._latency) if at <= t - RATE_WINDOW_S),
            self._latency[0][1] if self._latency else {},
        )
        return quantile(0.99, difference(buckets, before))

    @property
    def last(self) -> Sample | None:
        return self.samples[-1] if self.samples else None
