"""The ``driftline`` command line.

Subcommands are imported only when they run, so ``driftline --help`` stays fast and never
imports a training framework.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "broker": "driftline.commands.broker:broker",
    "topics": "driftline.commands.topics:topics",
    "generate": "driftline.commands.generate:generate",
    "train": "driftline.commands.train:train",
    "score": "driftline.commands.score:score",
    "models": "driftline.commands.models:models",
    "bench": "driftline.commands.bench:bench",
    "worker": "driftline.commands.worker:worker",
    "demo": "driftline.commands.demo:demo",
    "config": "driftline.commands.config:config",
    "monitor": "driftline.commands.monitor:monitor",
    "replay": "driftline.commands.replay:replay",
    "produce": "driftline.commands.replay:produce",
    "trainer": "driftline.commands.trainer:trainer",
    "retrain": "driftline.commands.retrain:retrain",
    "status": "driftline.commands.status:status",
}

HELP: dict[str, str] = {
    "broker": "Run a local Apache Kafka broker (start, stop, status, fetch).",
    "topics": "Create and list driftline's topics.",
    "generate": "Write synthetic sensor, demand or air-quality history as CSV.",
    "train": "Train a model family on a CSV and register the version.",
    "score": "Batch-score a CSV with the champion model (backfill).",
    "models": "List, inspect, promote, roll back, delete, export and import models.",
    "bench": "Benchmarks that print figures (stream by default; codec, models, loop).",
    "worker": "Run the stream worker: score readings, publish outputs (--processes N).",
    "demo": "Run the end-to-end demo on a local broker.",
    "config": "List every setting: environment variable, default, meaning.",
    "monitor": "Run the drift monitor; `monitor status` shows model health.",
    "replay": "Publish a CSV of readings to Kafka, in time order per entity.",
    "produce": "Drive the synthetic generator into Kafka at a given rate.",
    "trainer": "Run the trainer service; `trainer status` shows its decisions.",
    "retrain": "Ask the trainer to fine-tune or fully retrain a model.",
    "status": "Show services, consumer lag, throughput, dead letters and models.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(package_name="driftline")
def main() -> None:
    """Streaming ML inference on Apache Kafka."""
