"""The demand stream: one quantity forecast per reading, ``horizon`` sampling steps ahead.

Each product is served by its own champion (registry key = product id) when it has one,
else by the unkeyed champion, else by the seasonal naive fallback. Readings are grouped by
the model serving them: one predict per model key per batch. When the champion's key has a
challenger in shadow mode, the challenger scores the same rows and its forecasts go to the
shadow topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events.readings import DemandReading
from models.frames import PRICE, PROMO, QUANTITY
from worker.emit import Forecast, Outbox
from worker.intake import Readings
from worker.scoring import Scorer
from worker.serving import Served
from worker.snapshot import Snapshot
from worker.state import Values
from worker.stream import Stream


@dataclass
class DemandPlan:
    """The model serving each product of the batch."""

    by_product: dict[str, Served] = field(default_factory=dict)


class DemandStream(Stream[DemandReading, DemandPlan]):
    """Scores ``readings.demand``."""

    kind = "demand"

    def values(self, reading: DemandReading) -> Values:
        return {
            QUANTITY: reading.quantity,
            PRICE: reading.price,
            PROMO: 1.0 if reading.promo else 0.0,
        }

    def plan(self, readings: Readings[DemandReading]) -> DemandPlan:
        name = self.routes.demand
        keyed = self.serving.keys(name)
        shared: Served | None = None
        plan = DemandPlan()
        for product in dict.fromkeys(readings.entities):
            served = self.serving.champion(name, product) if product in keyed else None
            if served is None:
                if shared is None:
                    shared = self.serving.champion(name) or self.serving.demand_fallback()
                served = shared
            plan.by_product[product] = served
        return plan

    def score(
        self,
        plan: DemandPlan,
        batch: Readings[DemandReading],
        snapshot: Snapshot,
        scorer: Scorer,
        out: Outbox,
    ) -> None:
        groups: dict[tuple[str | None, int], tuple[Served, list[int]]] = {}
        for i, product in enumerate(batch.entities):
            served = plan.by_product[product]
            groups.setdefault((served.key, served.version), (served, []))[1].append(i)
        for served, rows in groups.values():
            scores = scorer.run(served, snapshot, batch, rows)
            if scores is None and not served.fallback:
                served = self.serving.demand_fallback()
                scores = scorer.run(served, snapshot, batch, rows)
            if scores is not None:
                step = served.step_seconds or self.routes.demand_step_seconds
                self.emitter.forecasts(out, batch, rows, served, scores, Forecast(QUANTITY, step))
            if not served.fallback:
                self._shadow(served, batch, rows, snapshot, scorer, out)

    def _shadow(
        self,
        champion: Served,
        batch: Readings[DemandReading],
        rows: list[int],
        snapshot: Snapshot,
        scorer: Scorer,
        out: Outbox,
    ) -> None:
        """The challenger of the champion's key scores the same rows, to the shadow topic."""
        challenger = self.serving.challenger(champion.name, champion.key)
        # Promoted a moment ago: it serves already, and is dropped as a challenger next.
        if challenger is None or challenger.version == champion.version:
            return
        scores = scorer.run(challenger, snapshot, batch, rows, shadow=True)
        if scores is not None:
            step = challenger.step_seconds or self.routes.demand_step_seconds
            forecast = Forecast(QUANTITY, step)
            self.emitter.forecasts(out, batch, rows, challenger, scores, forecast, shadow=True)
