"""Training plots as PNG bytes: learning curves and holdout fits.

matplotlib is imported on first use, and only its object-oriented API with the Agg canvas:
no pyplot, no global figure state, no display needed, safe in a service thread. A figure is
a row of *panels*; each panel is a function that draws into one matplotlib ``Axes``, built
from plain arrays by the helpers below, so this module knows nothing about model families.

>>> png = render("demo", [learning_curve({"loss": [1.0, 0.5], "val_loss": [1.2, 0.7]})])
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

Panel = Callable[[Any], None]  # draws into a matplotlib Axes

PANEL_INCHES: Final = (5.0, 3.6)  # one panel: readable at 100 % zoom in a browser
DPI: Final = 100
MAX_POINTS: Final = 600  # a time panel shows at most this many readings (the latest)
BINS: Final = 40  # histogram bins of anomaly scores: 0.025 wide on [0, 1]
RISK_LEVELS: Final = 4  # maintenance risk 0-3


def render(title: str, panels: Sequence[Panel]) -> bytes:
    """One PNG with ``panels`` side by side under ``title``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("a plot needs at least one panel")
    width, height = PANEL_INCHES
    figure = Figure(figsize=(width * len(panels), height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for panel, ax in zip(panels, axes, strict=True):
        panel(ax)
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def learning_curve(curve: Mapping[str, Sequence[float]]) -> Panel:
    """Loss per epoch of every series in ``curve``; the lowest ``val_loss`` is marked."""

    from matplotlib.ticker import MaxNLocator

    def draw(ax: Any) -> None:
        for name, values in curve.items():
            ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=name)
        validation = list(curve.get("val_loss", []))
        if validation:
            best = int(np.argmin(validation))
            ax.axvline(best + 1, color="grey", linestyle=":", label=f"best epoch {best + 1}")
        ax.set(title="learning curve", xlabel="epoch", ylabel="loss (scaled units)")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()

    return draw


def forecast_over_time(
    ts: npt.NDArray[Any],
    actual: npt.NDArray[np.float64],
    forecast: npt.NDArray[np.float64],
    band: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None,
    label: str,
) -> Panel:
    """Forecast (with its interval) against the actual over the holdout of one series."""
    keep = slice(-MAX_POINTS, None)

    def draw(ax: Any) -> None:
        x = np.asarray(ts)[keep]
        if band is not None:
            ax.fill_between(x, band[0][keep], band[1][keep], alpha=0.25, label="interval")
        ax.plot(x, actual[keep], color="black", linewidth=1.0, label="actual")
        ax.plot(x, forecast[keep], linewidth=1.0, label="forecast")
        ax.set(title=f"holdout: {label}", xlabel="target time (UTC)")
        ax.tick_params(axis="x", labelrotation=30)
        ax.legend()

    return draw


def predicted_vs_actual(
    actual: npt.NDArray[np.float64], forecast: npt.NDArray[np.float64]
) -> Panel:
    """Scatter of every holdout forecast against its actual, with the identity line."""

    def draw(ax: Any) -> None:
        ok = np.isfinite(actual) & np.isfinite(forecast)
        ax.scatter(actual[ok], forecast[ok], s=4, alpha=0.4)
        if ok.any():
            low = float(min(actual[ok].min(), forecast[ok].min()))
            high = float(max(actual[ok].max(), forecast[ok].max()))
            ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1.0)
        ax.set(title="holdout: forecast vs actual", xlabel="actual", ylabel="forecast")

    return draw


def score_histogram(
    score: npt.NDArray[np.float64], labels: npt.NDArray[np.float64] | None, threshold: float
) -> Panel:
    """Distribution of anomaly scores (normal vs labelled anomalies) and the flag threshold."""

    def draw(ax: Any) -> None:
        bins = np.linspace(0.0, 1.0, BINS + 1)
        if labels is None:
            ax.hist(score, bins=bins, label="all readings")
        else:
            anomalous = labels > 0.5
            ax.hist(score[~anomalous], bins=bins, alpha=0.6, label="normal")
            ax.hist(score[anomalous], bins=bins, alpha=0.6, label="labelled anomaly")
        ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold:g}")
        ax.set(title="holdout: anomaly scores", xlabel="score", ylabel="readings")
        ax.set_yscale("log")
        ax.legend()

    return draw


def score_over_time(
    ts: npt.NDArray[Any],
    score: npt.NDArray[np.float64],
    labels: npt.NDArray[np.float64] | None,
    threshold: float,
    label: str,
) -> Panel:
    """Anomaly score over the holdout of one entity; labelled anomalies marked."""
    keep = slice(-MAX_POINTS, None)

    def draw(ax: Any) -> None:
        x, y = np.asarray(ts)[keep], score[keep]
        ax.plot(x, y, linewidth=0.8, label="score")
        if labels is not None:
            marked = labels[keep] > 0.5
            ax.scatter(x[marked], y[marked], s=12, color="C1", zorder=3, label="labelled anomaly")
        ax.axhline(threshold, color="red", linestyle="--", linewidth=1.0, label="threshold")
        ax.set(title=f"holdout: {label}", xlabel="time (UTC)", ylabel="score", ylim=(0.0, 1.0))
        ax.tick_params(axis="x", labelrotation=30)
        ax.legend()

    return draw


def risk_confusion(actual: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64]) -> Panel:
    """Counts of actual vs predicted risk level (0-3) over the holdout."""

    def draw(ax: Any) -> None:
        counts = np.zeros((RISK_LEVELS, RISK_LEVELS), dtype=np.int64)
        np.add.at(counts, (np.clip(actual, 0, 3), np.clip(predicted, 0, 3)), 1)
        shade = np.log1p(counts)
        ax.imshow(shade, cmap="Blues")
        dark = shade > shade.max() / 2.0  # white digits where the cell is dark
        for (row, column), count in np.ndenumerate(counts):
            color = "white" if dark[row, column] else "black"
            ax.text(column, row, str(count), ha="center", va="center", color=color)
        ticks = np.arange(RISK_LEVELS)
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set(title="holdout: risk level", xlabel="predicted", ylabel="actual")

    return draw


def risk_over_time(
    ts: npt.NDArray[Any],
    actual: npt.NDArray[np.int64],
    expected: npt.NDArray[np.float64],
    label: str,
) -> Panel:
    """Actual risk level and the model's expected risk over the holdout of one machine."""
    keep = slice(-MAX_POINTS, None)

    def draw(ax: Any) -> None:
        x = np.asarray(ts)[keep]
        ax.step(x, actual[keep], where="post", color="black", linewidth=1.0, label="actual")
        ax.plot(x, expected[keep], linewidth=1.0, label="expected risk")
        ax.set(title=f"holdout: {label}", xlabel="time (UTC)", ylabel="risk", ylim=(-0.2, 3.2))
        ax.tick_params(axis="x", labelrotation=30)
        ax.legend()

    return draw
