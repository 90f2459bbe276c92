"""The sensor stream: anomaly alerts, maintenance risk, metric forecasts and gap filling.

Per batch, each model runs once over all the readings it serves:

* ``anomaly`` (unkeyed) over readings of ``ModelRoutes.machine_kinds``; without a champion,
  or when it fails, the robust z-score fallback over every metric those entities report.
* ``maintenance`` (unkeyed) over the same readings; nothing without a champion.
* ``sequence/<metric>`` forecasts ``metric`` for every reading that carries it, when that
  key has a champion (seasonal naive for the batch if the champion fails).
* gaps (null values) are filled by ``sequence/<metric>`` or the last observed value.

In shadow mode a challenger of the maintenance or a sequence key scores the same readings;
its risk and forecast predictions go to the shadow topic (no alerts, no gap filling).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from events.readings import SensorReading
from models.base import Scores
from worker.emit import Forecast, Outbox
from worker.imputation import fill_gaps
from worker.intake import Readings
from worker.scoring import Scorer
from worker.serving import Served
from worker.snapshot import Snapshot
from worker.state import Values
from worker.stream import Finish, Stream


@dataclass
class SensorPlan:
    """The champions serving one batch (None: no champion)."""

    anomaly: Served | None = None
    maintenance: Served | None = None
    sequence: dict[str, Served] = field(default_factory=dict)


class SensorStream(Stream[SensorReading, SensorPlan]):
    """Scores ``readings.sensor``."""

    kind = "sensor"

    def values(self, reading: SensorReading) -> Values:
        return reading.values

    def plan(self, readings: Readings[SensorReading]) -> SensorPlan:
        plan = SensorPlan()
        if any(m.kind in self.routes.machine_kinds for m in readings.messages):
            plan.anomaly = self.serving.champion(self.routes.anomaly)
            plan.maintenance = self.serving.champion(self.routes.maintenance)
        reported: set[str] = set().union(*(m.values for m in readings.messages))
        keys = self.serving.keys(self.routes.sequence)
        for metric in sorted(k for k in keys if k is not None and k in reported):
            served = self.serving.champion(self.routes.sequence, metric)
            if served is not None:
                plan.sequence[metric] = served
        return plan

    def score(
        self,
        plan: SensorPlan,
        batch: Readings[SensorReading],
        snapshot: Snapshot,
        scorer: Scorer,
        out: Outbox,
    ) -> Finish | None:
        kinds = self.routes.machine_kinds
        machines = [i for i, m in enumerate(batch.messages) if m.kind in kinds]
        # maintenance scores on the helper thread (if any) while the rest scores here; its
        # risks are emitted last, by the returned call, in the same order with one thread
        maintenance = None
        if machines and plan.maintenance is not None:
            maintenance = scorer.submit(plan.maintenance, snapshot, batch, machines)
        if machines:
            self._anomalies(plan.anomaly, machines, batch, snapshot, scorer, out)
        carried, gaps = _metric_rows(batch, plan.sequence)
        for metric, rows in carried.items():
            self._forecasts(plan.sequence[metric], metric, rows, batch, snapshot, scorer, out)
        if gaps:
            fills = fill_gaps(gaps, plan.sequence, batch, snapshot, scorer)
            self.emitter.imputed(out, batch, fills, self.routes.sequence)
        served = plan.maintenance
        if maintenance is None or served is None:
            return None
        # taken now: what the caller does before the risks (demand) may evict it
        challenger = self._challenger(served)

        def risks() -> None:
            scores = maintenance.result()
            if scores is not None:
                self.emitter.risks(out, batch, machines, served, scores)
            shadow = self._shadow(challenger, snapshot, batch, machines, scorer)
            if shadow is not None:
                self.emitter.risks(out, batch, machines, *shadow, shadow=True)

        return risks

    def _anomalies(
        self,
        champion: Served | None,
        rows: list[int],
        batch: Readings[SensorReading],
        snapshot: Snapshot,
        scorer: Scorer,
        out: Outbox,
    ) -> None:
        served = champion
        scores = scorer.run(champion, snapshot, batch, rows) if champion is not None else None
        if scores is None:
            served = self.serving.anomaly_fallback(tuple(sorted(snapshot.metrics(rows))))
            scores = scorer.run(served, snapshot, batch, rows)
        if scores is not None and served is not None:
            self.emitter.anomalies(out, batch, rows, served, scores)

    def _forecasts(
        self,
        champion: Served,
        metric: str,
        rows: list[int],
        batch: Readings[SensorReading],
        snapshot: Snapshot,
        scorer: Scorer,
        out: Outbox,
    ) -> None:
        step = champion.step_seconds or self.routes.sensor_step_seconds
        served, scores = champion, scorer.run(champion, snapshot, batch, rows)
        if scores is None:
            fallback = self.serving.forecast_fallback(metric, step, champion.horizon)
            served = replace(fallback, key=metric)
            scores = scorer.run(served, snapshot, batch, rows)
        if scores is not None:
            self.emitter.forecasts(out, batch, rows, served, scores, Forecast(metric, step))
        shadow = self._shadow(self._challenger(champion), snapshot, batch, rows, scorer)
        if shadow is not None:
            challenger, scores = shadow
            forecast = Forecast(metric, challenger.step_seconds or step)
            self.emitter.forecasts(out, batch, rows, challenger, scores, forecast, shadow=True)

    def _challenger(self, champion: Served) -> Served | None:
        """The challenger of ``champion``'s key in shadow mode, if any."""
        challenger = self.serving.challenger(champion.name, champion.key)
        # Promoted a moment ago: it serves already, and is dropped as a challenger next.
        if challenger is None or challenger.version == champion.version:
            return None
        return challenger

    @staticmethod
    def _shadow(
        challenger: Served | None,
        snapshot: Snapshot,
        batch: Readings[SensorReading],
        rows: list[int],
        scorer: Scorer,
    ) -> tuple[Served, Scores] | None:
        """``challenger`` and its scores of ``rows`` (None without one, or if it failed)."""
        if challenger is None:
            return None
        scores = scorer.run(challenger, snapshot, batch, rows, shadow=True)
        return None if scores is None else (challenger, scores)


def _metric_rows(
    batch: Readings[SensorReading], forecast: dict[str, Served]
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Rows carrying each forecast metric, and rows where each metric is null."""
    carried: dict[str, list[int]] = {metric: [] for metric in forecast}
    gaps: dict[str, list[int]] = {}
    for i, message in enumerate(batch.messages):
        values = message.values
        # without a forecast model, a reading without a gap is passed by one scan in C
        if not carried and None not in values.values():
            continue
        for metric, value in values.items():
            if metric in carried:
                carried[metric].append(i)
            if value is None:
                gaps.setdefault(metric, []).append(i)
    return {m: rows for m, rows in carried.items() if rows}, gaps
