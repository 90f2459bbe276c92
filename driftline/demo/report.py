"""The PNG report of a run: rolling MAE, alerts and throughput over the same time axis.

Drawn with matplotlib's Agg backend (no display needed). Every panel marks the drift onset,
its detection and each promotion, so cause and effect line up vertically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from driftline.demo.timeline import Sample
from events import ModelHealth

if TYPE_CHECKING:
    from matplotlib.axes import Axes

ALERT_BIN_S: Final = 5.0  # alerts are counted per five seconds of the run
ALERT_COLOURS: Final = {
    "anomaly": "tab:purple",
    "maintenance": "tab:orange",
    "drift": "tab:red",
    "model": "tab:gray",
}
VERSION_COLOURS: Final = ("tab:blue", "tab:green", "tab:olive", "tab:cyan", "tab:brown")
DPI: Final = 110


@dataclass(frozen=True)
class ReportData:
    """What the report draws; times are seconds since the run started."""

    samples: Sequence[Sample] = ()
    health: Sequence[tuple[float, ModelHealth]] = ()
    alerts: Sequence[tuple[float, str]] = ()  # (t, alert type)
    stream_start_s: float | None = None
    onset_s: float | None = None
    detected_s: float | None = None
    promotions: Sequence[tuple[float, str, int]] = ()  # (t, model, version)
    drift_model: str = "demand"
    title: str = "driftline demo"
    notes: Sequence[str] = field(default_factory=tuple)


def write_report(data: ReportData, path: Path) -> Path:
    """Render ``data`` into ``path`` (PNG); the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        3, 1, figsize=(11, 10), sharex=True, gridspec_kw={"height_ratios": [3, 2, 2]}
    )
    _mae(axes[0], data)
    _alerts(axes[1], data)
    _throughput(axes[2], data)
    for ax in axes:
        _markers(ax, data, labelled=ax is axes[0])
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8, ncol=2)
    axes[-1].set_xlabel("seconds since the demo started")
    figure.suptitle(data.title, fontsize=13)
    if data.notes:
        figure.text(0.01, 0.008, "\n".join(data.notes), fontsize=9, color="0.25", va="bottom")
    figure.tight_layout(rect=(0, 0.015 + 0.018 * len(data.notes), 1, 0.98))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def _mae(ax: Axes, data: ReportData) -> None:
    records = [
        (t, h.version, h.mae, h.baseline_mae)
        for t, h in data.health
        if h.model == data.drift_model and h.mae is not None
    ]
    versions = sorted({version for _, version, _, _ in records})
    for i, version in enumerate(versions):
        colour = VERSION_COLOURS[i % len(VERSION_COLOURS)]
        mine = [r for r in records if r[1] == version]
        ax.plot(
            [r[0] for r in mine],
            [r[2] for r in mine],
            color=colour,
            lw=2,
            label=f"{data.drift_model} v{version} rolling MAE",
        )
        baselines = [r[3] for r in mine if r[3] is not None]
        if baselines:
            ax.axhline(
                baselines[-1],
                color=colour,
                ls=":",
                lw=1.2,
                label=f"v{version} baseline (holdout MAE)",
            )
    ax.set_ylabel(f"{data.drift_model} MAE (units)")
    ax.set_title(
        f"{data.drift_model}: rolling MAE of each version against its baseline",
        loc="left",
        fontsize=10,
    )
    if not versions:
        ax.text(0.5, 0.5, "no model health reported", transform=ax.transAxes, ha="center")


def _alerts(ax: Axes, data: ReportData) -> None:
    end = max([t for t, _ in data.alerts] + [s.t for s in data.samples] + [ALERT_BIN_S])
    edges = np.arange(0.0, end + ALERT_BIN_S, ALERT_BIN_S)
    bottom = np.zeros(len(edges) - 1)
    kinds = sorted({kind for _, kind in data.alerts})
    for kind in kinds:
        times = np.array([t for t, k in data.alerts if k == kind], dtype=np.float64)
        counts, _ = np.histogram(times, bins=edges)
        ax.bar(
            edges[:-1],
            counts,
            width=ALERT_BIN_S,
            align="edge",
            bottom=bottom,
            color=ALERT_COLOURS.get(kind, "tab:gray"),
            label=kind,
            alpha=0.85,
        )
        bottom += counts
    ax.set_ylabel(f"alerts per {ALERT_BIN_S:.0f} s")
    ax.set_title("alerts by type", loc="left", fontsize=10)
    if kinds:
        ax.set_ylim(0, 1.3 * max(float(bottom.max()), 1.0))  # room for the legend
        ax.legend(loc="upper right", fontsize=8, ncol=len(kinds))


def _throughput(ax: Axes, data: ReportData) -> None:
    samples = [s for s in data.samples if s.published_per_s or s.scored_per_s]
    t = [s.t for s in samples]
    ax.plot(t, [s.published_per_s for s in samples], color="tab:blue", label="published / s")
    ax.plot(t, [s.scored_per_s for s in samples], color="tab:green", label="scored / s")
    ax.set_ylabel("readings / s")
    ax.set_title("throughput and p99 end-to-end latency", loc="left", fontsize=10)
    latency = ax.twinx()
    timed = [(s.t, s.p99_s * 1000) for s in samples if s.p99_s is not None]
    latency.plot(
        [x for x, _ in timed],
        [y for _, y in timed],
        color="tab:red",
        lw=1,
        alpha=0.7,
        label="p99 latency (ms)",
    )
    latency.set_ylabel("p99 latency (ms)", color="tab:red")
    # Head room above the curves for the legend.
    ax.set_ylim(0, 1.4 * max([s.published_per_s for s in samples] + [1.0]))
    latency.set_ylim(0, 1.4 * max([y for _, y in timed] + [1.0]))
    lines = ax.get_legend_handles_labels()
    more = latency.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right", fontsize=8, ncol=3)


def _markers(ax: Axes, data: ReportData, labelled: bool) -> None:
    """Start-up shading, drift onset, detection and the drifting model's promotions."""
    if data.stream_start_s is not None:
        ax.axvspan(0, data.stream_start_s, color="0.9", zorder=0)
    lines: list[tuple[float, str, str, str]] = []
    if data.onset_s is not None:
        lines.append((data.onset_s, "tab:red", "--", "drift onset"))
    if data.detected_s is not None:
        lines.append((data.detected_s, "tab:orange", "-.", "drift detected"))
    for t, model, version in data.promotions:
        if model == data.drift_model:
            lines.append((t, "tab:green", "--", f"v{version} promoted"))
    for t, colour, style, _ in lines:
        ax.axvline(t, color=colour, ls=style, lw=1.3)
    if not labelled:
        return
    transform = ax.get_xaxis_transform()  # x in data, y in axes fractions
    if data.stream_start_s is not None:
        ax.text(
            data.stream_start_s / 2,
            0.5,
            "start-up:\nbroker, training,\nservices",
            transform=transform,
            ha="center",
            va="center",
            fontsize=8,
            color="0.4",
        )
    for i, (t, colour, _, text) in enumerate(sorted(lines)):
        height = 0.97 - 0.07 * (i % 3)  # staggered so close markers do not overlap
        ax.text(
            t,
            height,
            f" {text}",
            transform=transform,
            color=colour,
            va="top",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
