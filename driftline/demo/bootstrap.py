"""First champions: every family trained on the generated history, with progress bars.

Training is kept small (few trees, few epochs) so the demo scores its first readings soon
after it starts; the figures are still those of real models (see ``docs/models.md`` for the
full-size ones).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from driftline.commands.train import STAGE_TEXT
from driftline.demo.scenario import SEQUENCE_METRIC, Scenario

# family -> (registry name, key, hyper-parameters). Smaller than the defaults: the demo's
# history is three weeks, and the first score should come within a minute of the start.
CHAMPIONS: Final[tuple[tuple[str, str | None, dict[str, Any]], ...]] = (
    ("anomaly", None, {"n_estimators": 100}),
    ("maintenance", None, {"n_estimators": 40}),
    ("demand", None, {"iterations": 150}),
    # 8 epochs with early stopping: the LSTM's error is within a few percent of 30 epochs
    # on hourly pm25, at a quarter of the time.
    ("sequence", SEQUENCE_METRIC, {"metric": SEQUENCE_METRIC, "epochs": 8}),
)


# The stages models.training reports without a training plot (its "validate" stage draws it).
STAGES: Final = ("fit", "register")


@dataclass(frozen=True)
class Champion:
    """A bootstrapped champion and its holdout MAE (the monitor's baseline)."""

    family: str
    key: str | None
    version: int
    seconds: float
    metrics: dict[str, float]

    @property
    def label(self) -> str:
        return self.family if self.key is None else f"{self.family}/{self.key}"


def training_frames(scenario: Scenario) -> dict[str, pd.DataFrame]:
    """The history each family learns from."""
    machines = scenario.history(scenario.machines)
    return {
        "anomaly": machines,
        "maintenance": machines,
        "demand": scenario.history(scenario.products),
        "sequence": scenario.history(scenario.air),
    }


def train_champions(store: Path, scenario: Scenario, console: Console) -> list[Champion]:
    """Train and register every family's first version (champion) into ``store``."""
    from models.registry import Registry
    from models.training import TrainRequest, train_model

    registry = Registry(store, actor="driftline-demo")
    frames = training_frames(scenario)
    trained: list[Champion] = []
    with _progress(console) as progress:
        bars = [
            FamilyBar(progress, family if key is None else f"{family}/{key}")
            for family, key, _ in CHAMPIONS
        ]
        for (family, key, params), bar in zip(CHAMPIONS, bars, strict=True):
            request = TrainRequest(family, key=key, params=params, plot=False, reason="demo")
            started = time.perf_counter()
            result = train_model(registry, request, frames[family], bar)
            bar.finish()
            seconds = time.perf_counter() - started
            champion = Champion(
                family, key, result.version.version, seconds, dict(result.report.metrics)
            )
            trained.append(champion)
            if not console.is_terminal:
                console.print(f"trained {champion.label} v{champion.version} in {seconds:.1f} s")
    return trained


class FamilyBar:
    """One family's training stages as a progress bar (``models.training.Progress``)."""

    def __init__(self, progress: Progress, label: str) -> None:
        self._progress, self._label = progress, label
        self._task = progress.add_task(f"{label}: waiting", total=len(STAGES))
        self._started = False

    def stage(self, name: str) -> None:
        if self._started:
            self._progress.advance(self._task)
        self._started = True
        text = STAGE_TEXT.get(name, name)
        self._progress.update(self._task, description=f"{self._label}: {text}")

    def finish(self) -> None:
        done = f"{self._label}: champion registered"
        self._progress.update(self._task, completed=len(STAGES), description=done)


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<48}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        yield progress
