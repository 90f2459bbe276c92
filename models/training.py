"""Training service: family + history frame + params -> fit -> plot -> register -> promote.

One code path for ``driftline train`` and the trainer service. :func:`train_model` reports
its stages to a :class:`Progress` (``fit``, ``validate``, ``register``; reading the data is
the caller's ``read`` stage) and returns a :class:`TrainResult` with the registered version.

The training plot
    ``training.png`` (see :data:`PLOT_FILE`) is rendered *before* registration and saved by
    the registry together with the model files, so it lives inside the version directory
    next to metadata.json, is covered by its sha256 table, travels with ``models export``
    and disappears with the version under retention. It shows the holdout (the most recent
    ``holdout`` / ``val_fraction`` share of the history, the family's own split) scored
    exactly as ``driftline score`` would (``models.training_plot``): forecast vs actual for
    demand and sequence (plus the learning curve from ``FitReport.curve`` when the family
    reports one), the score distribution and threshold for anomaly, the risk confusion
    matrix for maintenance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Protocol

import pandas as pd

from models.base import FitReport, FloatArray, Model, ModelError, Scores
from models.families import create
from models.frames import ENTITY, IS_ANOMALY, PRODUCT, RISK, TS, FrameError
from models.layout import describe
from models.registry import Registry
from models.scoring import spec_model
from models.training_plot import training_plot
from models.versions import VersionInfo

PLOT_FILE: Final = "training.png"
MAX_LISTED: Final = 10  # product ids named in an error message
KEYED_BY_METRIC: Final = frozenset({"sequence"})  # families whose key defaults to the target


class Progress(Protocol):
    """Told when each stage starts; the previous stage is then done."""

    def stage(self, name: str) -> None: ...


class _Silent:
    def stage(self, name: str) -> None:
        return None


@dataclass(frozen=True)
class TrainRequest:
    """What to train and where to register it (``name`` defaults to the family)."""

    family: str
    name: str | None = None
    key: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    promote: bool = False  # champion even when one exists (the first version always is)
    reason: str = "trained"
    plot: bool = True


@dataclass(frozen=True)
class TrainResult:
    """A registered version and how training went."""

    version: VersionInfo
    report: FitReport
    champion: bool
    stages: dict[str, float]  # stage -> seconds
    model: Model  # the fitted model, as registered

    @property
    def model_bytes(self) -> int:
        """Bytes of the model's own files on disk (the plot excluded)."""
        files = self.version.files
        return sum(int(r.get("bytes", 0)) for name, r in files.items() if name != PLOT_FILE)

    @property
    def plot_path(self) -> Path | None:
        path = self.version.path / PLOT_FILE
        return path if PLOT_FILE in self.version.files else None

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts for the CLI and the trainer's logs."""
        window = self.report.window
        return {
            "model": self.version.model,
            "key": self.version.key,
            "version": self.version.version,
            "family": self.version.family,
            "champion": self.champion,
            "metrics": self.report.metrics,
            "rows": self.report.rows,
            "window": None if window is None else {"start": window[0], "end": window[1]},
            "fit_seconds": self.report.seconds,
            "stage_seconds": self.stages,
            "model_bytes": self.model_bytes,
            "path": str(self.version.path),
            "plot": None if self.plot_path is None else str(self.plot_path),
        }


def attach_labels(history: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``history`` with ``is_anomaly``/``risk`` taken from a labels frame on (entity_id, ts).

    Label columns already in ``history`` are replaced; readings without a label get NaN.
    """
    columns = [c for c in (IS_ANOMALY, RISK) if c in labels.columns]
    base = history.drop(columns=[c for c in columns if c in history.columns])
    merged = base.merge(labels[[ENTITY, TS, *columns]], on=[ENTITY, TS], how="left")
    if columns and merged[columns[0]].isna().all():
        raise ModelError(
            f"the labels match none of the {len(history)} readings on ({ENTITY}, {TS}); "
            "check the entity ids and timestamps of both files"
        )
    return merged


def rows_for_key(family: str, history: pd.DataFrame, key: str | None) -> pd.DataFrame:
    """The readings a keyed model learns from and scores: for demand, a key is a product id
    and selects that product's rows (a per-product model); other families use every row."""
    if family != "demand" or key is None:
        return history
    products = history[PRODUCT].astype(str)
    if not (products == key).any():
        known = ", ".join(sorted(products.unique())[:MAX_LISTED])
        raise ModelError(
            f"demand: key {key!r} is not a product of the history (products: {known}); "
            "a demand key names the product of a per-product model, a global model has no key"
        )
    return history.loc[products == key].reset_index(drop=True)


def train_model(
    registry: Registry,
    request: TrainRequest,
    history: pd.DataFrame,
    progress: Progress | None = None,
) -> TrainResult:
    """Fit a new model of ``request.family`` on ``history`` and register it."""
    tracker = progress or _Silent()
    clock = _StageClock(tracker)
    clock.start("fit")
    model = create(request.family, request.params)
    history = rows_for_key(request.family, history, request.key)
    try:
        report = model.fit(history)
    except FrameError as exc:
        raise ModelError(f"{request.family}: {exc}") from exc
    name = request.name or request.family
    key = request.key or default_key(model)
    extra: dict[str, bytes] = {}
    if request.plot:
        clock.start("validate")
        extra[PLOT_FILE] = training_plot(model, history, report, describe(name, key))
    clock.start("register")
    version = registry.register(
        bundle(model, extra), name, key, report, frame=history, reason=request.reason
    )
    if request.promote:
        registry.promote(name, version.version, key, reason=f"{request.reason}: --promote")
    champion = registry.aliases(name, key).champion == version.version
    return TrainResult(version, report, champion, clock.stop(), model)


def default_key(model: Model) -> str | None:
    """Registry key when none is given: the target metric for the sequence family."""
    if model.family in KEYED_BY_METRIC:
        return spec_model(model).spec.inputs[0]
    return None


class _StageClock:
    """Seconds per stage, reported to a Progress as stages start."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._current: str | None = None
        self._since = 0.0
        self.seconds: dict[str, float] = {}

    def start(self, name: str) -> None:
        self._finish()
        self._progress.stage(name)
        self._current, self._since = name, time.perf_counter()

    def stop(self) -> dict[str, float]:
        self._finish()
        return dict(self.seconds)

    def _finish(self) -> None:
        if self._current is not None:
            self.seconds[self._current] = time.perf_counter() - self._since
            self._current = None


# -- saving the plot with the model ----------------------------------------------------


class _WithFiles(Model):
    """A fitted model that also writes extra files (the plot) when the registry saves it.

    Everything the registry reads (family, features, params, metadata) is the wrapped
    model's; :func:`bundle` makes a subclass per family so ``family`` is right.
    """

    family: ClassVar[str] = ""

    def __init__(self, model: Model, files: dict[str, bytes]) -> None:
        super().__init__(model.params)
        self.model, self.files = model, files
        self.feature_names, self.info = model.feature_names, model.info

    def fit(self, history: pd.DataFrame) -> FitReport:
        return self.model.fit(history)

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        return self.model.fine_tune(history)

    def predict_batch(self, features: FloatArray) -> Scores:
        return self.model.predict_batch(features)

    def metadata(self) -> dict[str, Any]:
        return self.model.metadata()

    def save(self, directory: Path) -> list[str]:
        names = self.model.save(directory)
        clash = sorted(set(names) & set(self.files))
        if clash:
            raise ModelError(f"{self.family}: model file(s) {clash} clash with training files")
        for name, content in self.files.items():
            (directory / name).write_bytes(content)
        return [*names, *self.files]

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> Model:
        raise ModelError("load a registered version through its family, not the save bundle")


def bundle(model: Model, files: dict[str, bytes]) -> Model:
    """``model`` saving ``files`` (name -> bytes) next to its own files."""
    if not files:
        return model
    cls = type(f"{type(model).__name__}WithFiles", (_WithFiles,), {"family": model.family})
    wrapped: Model = cls(model, files)
    return wrapped
