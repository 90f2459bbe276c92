"""Fixtures of the trainer tests: tiny demand histories and models, fakes of the outside.

Test modules run in importlib mode and cannot import helpers by name, so the helpers are
fixtures: ``tiny_params``, ``demand_history``, ``fit_demand``, ``announcer``, ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline.generator.products import generate_products
from models.base import Model
from models.families import create
from models.frames import QUANTITY
from trainer.data import for_model
from trainer.errors import PublishError
from trainer.replay import Window

# Few, shallow trees on one thread: a fit takes a few hundredths of a second.
TINY_DEMAND: dict[str, Any] = {
    "iterations": 40,
    "depth": 3,
    "thread_count": 1,
    "fine_tune_iterations": 20,
}


@dataclass
class Announced:
    model: str
    key: str | None
    version: int
    action: str
    metrics: dict[str, float | None]
    reason: str


@dataclass
class FakeAnnouncer:
    """Records what would have been published on model.updates."""

    sent: list[Announced] = field(default_factory=list)
    failures: int = 0  # how many publishes to refuse first (the broker is away)

    def publish(
        self,
        model: str,
        key: str | None,
        version: int,
        action: str,
        metrics: Mapping[str, float | None],
        reason: str,
    ) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise PublishError(f"cannot announce {model} v{version}: not acknowledged")
        self.sent.append(Announced(model, key, version, action, dict(metrics), reason))


class FakeData:
    """Serves one demand frame whatever the window (the replay has its own tests)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame_ = frame
        self.asked: list[tuple[str, Window, str | None]] = []

    def frame(
        self,
        source: str,
        window: Window,
        *,
        kind: str | None = None,
        entity: str | None = None,
        labels: bool = False,
    ) -> pd.DataFrame:
        self.asked.append((source, window, entity))
        return for_model(self.frame_, "demand", entity)


@pytest.fixture
def fake_data() -> type[FakeData]:
    """The class of a fake ``TrainingData`` that serves one canonical frame."""
    return FakeData


@pytest.fixture
def tiny_params() -> dict[str, Any]:
    return dict(TINY_DEMAND)


@pytest.fixture(scope="session")
def demand_history() -> pd.DataFrame:
    """Two products, 200 days of daily demand (2026-03-01 to 2026-09-16)."""
    return generate_products(entities=2, periods=200, seed=3, start="2026-03-01T00:00:00Z")


@pytest.fixture
def fit_demand() -> Callable[..., Model]:
    """``fit_demand(frame, shuffled=False, **params)``: a tiny fitted demand model."""

    def fit(frame: pd.DataFrame, shuffled: bool = False, **params: Any) -> Model:
        if shuffled:  # the same readings with quantities in random order: nothing to learn
            rng = np.random.default_rng(0)
            frame = frame.assign(**{QUANTITY: rng.permutation(frame[QUANTITY].to_numpy())})
        model = create("demand", {**TINY_DEMAND, **params})
        model.fit(frame)
        return model

    return fit


@pytest.fixture
def announcer() -> FakeAnnouncer:
    return FakeAnnouncer()
