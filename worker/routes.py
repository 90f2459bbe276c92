"""What the scoring pipeline reads, which registry models serve what, and where outputs go.

Two frozen dataclasses configure :class:`worker.pipeline.ScoringPipeline`:

* :class:`StreamTopics` maps every input topic to the stream it carries (sensor or demand
  readings) and names the output topics.
* :class:`ModelRoutes` names the registry models and the fallbacks' knobs.

>>> StreamTopics().stream_of("readings.demand")
'demand'
>>> ModelRoutes().stream_of("sequence")
'sensor'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from events import topics
from worker.errors import UnknownStreamError

StreamKind = Literal["sensor", "demand"]
STREAMS: Final[tuple[StreamKind, ...]] = ("sensor", "demand")

HOUR_SECONDS: Final = 3600.0
DAY_SECONDS: Final = 86_400.0


@dataclass(frozen=True)
class StreamTopics:
    """Input topics per stream and the output topics (defaults: ``events.topics``)."""

    sensor: tuple[str, ...] = (topics.READINGS_SENSOR,)
    demand: tuple[str, ...] = (topics.READINGS_DEMAND,)
    predictions: str = topics.PREDICTIONS
    alerts: str = topics.ALERTS
    imputed: str = topics.READINGS_IMPUTED
    shadow: str = topics.PREDICTIONS_SHADOW  # a challenger's predictions (shadow mode)

    def __post_init__(self) -> None:
        shared = set(self.sensor) & set(self.demand)
        if shared:
            raise UnknownStreamError(f"topic(s) {sorted(shared)} cannot feed both streams")

    def stream_of(self, topic: str) -> StreamKind | None:
        """The stream ``topic`` carries, or None when no stream reads it."""
        if topic in self.sensor:
            return "sensor"
        if topic in self.demand:
            return "demand"
        return None

    @classmethod
    def for_inputs(
        cls,
        inputs: list[str] | tuple[str, ...],
        streams: Mapping[str, StreamKind] | None = None,
        **outputs: str,
    ) -> StreamTopics:
        """Streams of ``inputs``: named in ``streams`` (topic -> stream), else by their
        ``events.topics`` name. Other names are refused: nothing tells which contract they
        carry."""
        named: dict[str, StreamKind] = {
            topics.READINGS_SENSOR: "sensor",
            topics.READINGS_DEMAND: "demand",
            **(streams or {}),
        }
        unknown = [t for t in inputs if t not in named]
        if unknown:
            raise UnknownStreamError(
                f"input topic(s) {unknown} carry no known stream; name the stream of each in "
                f"WORKER_STREAMS (topic -> sensor or demand), or use {topics.READINGS_SENSOR} "
                f"and {topics.READINGS_DEMAND}"
            )
        return cls(
            sensor=tuple(t for t in inputs if named[t] == "sensor"),
            demand=tuple(t for t in inputs if named[t] == "demand"),
            **outputs,
        )


@dataclass(frozen=True)
class ModelRoutes:
    """Registry model names, the reading kinds they score, and the fallbacks' parameters.

    * ``anomaly`` / ``maintenance`` (unkeyed) score sensor readings of ``machine_kinds``.
    * ``sequence`` is keyed by metric name: the champion of key ``pm25`` forecasts and fills
      gaps of ``pm25`` in every sensor reading.
    * ``demand`` is keyed by product id, with the unkeyed champion serving every product
      that has no model of its own.
    """

    anomaly: str = "anomaly"
    maintenance: str = "maintenance"
    sequence: str = "sequence"
    demand: str = "demand"
    machine_kinds: tuple[str, ...] = ("machine",)
    # Readings kept per entity at least, whatever the served specs need: two days of hourly
    # readings, the robust z-score fallback's window.
    min_history: int = 48
    zscore_window: int = 48  # readings of the robust z-score fallback's typical level
    zscore_threshold: float = 3.5  # Iglewicz and Hoaglin's cut-off for modified z-scores
    # Sampling steps assumed when a model records none: hourly sensors, daily sales.
    sensor_step_seconds: float = HOUR_SECONDS
    demand_step_seconds: float = DAY_SECONDS
    # A model key whose load failed (or that has no champion) is tried again after this
    # long, or at once when a model update names it: a broken version is not re-read and
    # re-verified for every batch.
    retry_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.min_history < 2 or self.zscore_window < 3:
            raise ValueError("min_history must be >= 2 and zscore_window >= 3")
        if self.sensor_step_seconds <= 0 or self.demand_step_seconds <= 0:
            raise ValueError("sampling steps must be positive")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.anomaly, self.maintenance, self.sequence, self.demand)

    def stream_of(self, name: str) -> StreamKind | None:
        """The stream a registry model scores (None for a model the pipeline never serves)."""
        if name == self.demand:
            return "demand"
        if name in (self.anomaly, self.maintenance, self.sequence):
            return "sensor"
        return None
