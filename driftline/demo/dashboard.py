"""The live view of a run: a rich layout on a terminal, a log line every few seconds elsewhere.

Both render a :class:`View`, a snapshot the runner assembles from the services' metrics and
the output topics, so rendering never touches Kafka or HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from driftline.demo.timeline import Sample
from events import Alert, ModelHealth

STATUS_STYLES: Final = {
    "healthy": "green",
    "warning": "yellow",
    "critical": "bold red",
    "unknown": "dim",
}
ALERT_STYLES: Final = {"anomaly": "magenta", "maintenance": "yellow", "drift": "red"}
RECENT_ALERTS: Final = 5  # alerts listed under the counts


@dataclass(frozen=True)
class View:
    """Everything one frame of the dashboard shows."""

    elapsed_s: float
    duration_s: float
    sim_time: datetime | None = None
    sample: Sample | None = None
    serving: dict[str, int] = field(default_factory=dict)
    health: Sequence[ModelHealth] = ()  # latest per model key
    alerts: Counter[str] = field(default_factory=Counter)
    recent_alerts: Sequence[Alert] = ()
    onset_s: float | None = None
    detected_s: float | None = None
    requests: int = 0
    decisions: dict[str, dict[str, int]] = field(default_factory=dict)
    promotions: Sequence[tuple[float, str, int]] = ()  # (t, model, version)
    training: bool = False


def render(view: View) -> RenderableType:
    """The dashboard as one renderable for ``rich.live.Live``."""
    header = Text.assemble(
        ("driftline demo", "bold cyan"),
        f"  {view.elapsed_s:5.0f} s / {view.duration_s:.0f} s",
        f"   simulated time {_sim(view.sim_time)}",
    )
    # Columns put the tables side by side when the terminal is wide enough, else one under
    # the other, each at its natural width.
    top = Columns([_stream_table(view), _drift_table(view)], padding=(0, 2))
    bottom = Columns([_models_table(view), _alerts_table(view)], padding=(0, 2))
    return Panel(Group(header, top, bottom), border_style="cyan")


def plain(view: View) -> str:
    """One log line with the same figures (no terminal: CI, pipes)."""
    s = view.sample
    rate = "-" if s is None else f"{s.published_per_s:.0f}/{s.scored_per_s:.0f}"
    p99 = "-" if s is None or s.p99_s is None else f"{s.p99_s * 1000:.0f}ms"
    maes = " ".join(
        f"{_label(h)}={_num(h.mae)}/{_num(h.baseline_mae)}({h.status})" for h in view.health
    )
    alerts = ",".join(f"{k}:{n}" for k, n in sorted(view.alerts.items())) or "0"
    serving = ",".join(f"{k}=v{v}" for k, v in sorted(view.serving.items()))
    return (
        f"t={view.elapsed_s:.0f}s published/scored per s={rate} p99={p99} alerts={alerts} "
        f"drift={_drift_state(view)} retrains={_decisions(view)} serving={serving} mae={maes}"
    )


def _stream_table(view: View) -> Table:
    s = view.sample
    table = Table(title="stream", title_justify="left", show_header=False, min_width=38)
    table.add_column(style="dim")
    table.add_column(justify="right")
    if s is None:
        table.add_row("waiting for the services", "")
        return table
    table.add_row("readings published", f"{s.published:,}")
    table.add_row("published / s", f"{s.published_per_s:,.0f}")
    table.add_row("scored / s", f"{s.scored_per_s:,.0f}")
    table.add_row("predictions", f"{s.predictions:,.0f}")
    table.add_row("p99 end-to-end", "-" if s.p99_s is None else f"{s.p99_s * 1000:,.0f} ms")
    table.add_row("dead-lettered", f"{s.dlq:,.0f}")
    return table


def _drift_table(view: View) -> Table:
    table = Table(title="drift and retraining", title_justify="left", show_header=False)
    table.add_column(style="dim")
    table.add_column()
    table.add_row("drift", _drift_state(view))
    table.add_row("retrain requests", str(view.requests))
    table.add_row("trainer", ("[bold]training[/]  " if view.training else "") + _decisions(view))
    promotions = ", ".join(f"{m} v{v} at {t:.0f} s" for t, m, v in view.promotions) or "-"
    table.add_row("promoted", promotions)
    serving = ", ".join(f"{k} v{v}" for k, v in sorted(view.serving.items())) or "-"
    table.add_row("serving", serving)
    return table


def _models_table(view: View) -> Table:
    table = Table(title="model error (rolling MAE)", title_justify="left")
    table.add_column("model", no_wrap=True, min_width=13)  # "sequence/pm25"
    for column in ("version", "pairs", "MAE", "baseline", "change", "status"):
        table.add_column(column, justify="right")
    for h in view.health:
        style = STATUS_STYLES.get(h.status, "")
        change = "-" if h.degradation is None else f"{h.degradation:+.0%}"
        table.add_row(
            _label(h),
            f"v{h.version}",
            str(h.pairs),
            _num(h.mae),
            _num(h.baseline_mae),
            change,
            f"[{style}]{h.status}[/]",
        )
    if not view.health:
        table.add_row("waiting for pairs", "", "", "", "", "", "")
    return table


def _alerts_table(view: View) -> Table:
    table = Table(title="alerts", title_justify="left", show_header=False)
    table.add_column()
    table.add_column(justify="right")
    for kind, count in sorted(view.alerts.items()):
        table.add_row(f"[{ALERT_STYLES.get(kind, '')}]{kind}[/]", f"{count:,}")
    for alert in view.recent_alerts[-RECENT_ALERTS:]:
        when = alert.ts.strftime("%d %H:%M")
        table.add_row(
            f"[dim]{when} {alert.type} {alert.entity_id}[/]", f"[dim]{alert.score:.2f}[/]"
        )
    if not view.alerts:
        table.add_row("none yet", "")
    return table


def _drift_state(view: View) -> str:
    if view.onset_s is None:
        return "none injected yet"
    if view.detected_s is None:
        return f"injected at {view.onset_s:.0f} s, not detected yet"
    lag = view.detected_s - view.onset_s
    return f"injected at {view.onset_s:.0f} s, detected {lag:.0f} s later"


def _decisions(view: View) -> str:
    parts = []
    for model, outcomes in sorted(view.decisions.items()):
        done = ", ".join(f"{k} {n}" for k, n in sorted(outcomes.items()) if n)
        if done:
            parts.append(f"{model}: {done}")
    return "; ".join(parts) or "no decisions yet"


def _label(h: ModelHealth) -> str:
    return h.model if h.key is None else f"{h.model}/{h.key}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _sim(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:00")
