"""``driftline bench``: benchmarks that print figures (speed goals live here, not in tests).

Subcommands defined in this module are registered on the group directly. A benchmark that
imports a heavy framework is listed in :data:`LAZY` instead, so that ``driftline bench
--help`` and ``driftline bench codec`` never import it.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from events.bench import CodecFigures

# name -> "module:attribute" of a click command imported only when it runs.
LAZY: dict[str, str] = {
    "models": "driftline.commands.bench_models:models",
    "stream": "driftline.commands.bench_stream:stream",
    "loop": "driftline.commands.bench_loop:loop",
}
# What plain ``driftline bench`` runs.
DEFAULT: Final = "stream"


class BenchGroup(click.Group):
    """A group of benchmarks: direct subcommands plus the lazily imported ones in LAZY."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in LAZY:
            return command
        module_name, attribute = LAZY[cmd_name].split(":")
        loaded = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(loaded, click.Command):
            raise TypeError(f"{LAZY[cmd_name]} is not a click command")
        return loaded


@click.group(cls=BenchGroup, invoke_without_command=True)
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Benchmarks that print figures (codec, models, stream); alone, runs stream."""
    if ctx.invoked_subcommand is None:
        command = bench.get_command(ctx, DEFAULT)
        if command is None:  # LAZY names it; only a broken install gets here
            raise click.ClickException(f"benchmark {DEFAULT!r} is not available")
        ctx.invoke(command)


def environment() -> dict[str, Any]:
    """Where a benchmark ran: reported next to every set of figures."""
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write figures as indented JSON, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@bench.command("codec")
@click.option("--messages", default=20_000, show_default=True, type=click.IntRange(1))
@click.option(
    "--batch-size",
    default=500,
    show_default=True,
    type=click.IntRange(1),
    help="Records per decode_batch call (the worker's consume batch).",
)
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
def codec(messages: int, batch_size: int, repeats: int, json_path: Path | None) -> None:
    """Encode and decode throughput of every message contract."""
    import msgspec

    from events.bench import measure_all

    figures = measure_all(messages=messages, batch_size=batch_size, repeats=repeats)
    console = Console()
    console.print(_encode_table(figures, messages, repeats))
    console.print(_decode_table(figures, batch_size))
    if json_path is not None:
        write_json(
            json_path,
            {
                "benchmark": "codec",
                "messages": messages,
                "batch_size": batch_size,
                "repeats": repeats,
                "environment": {**environment(), "msgspec": msgspec.__version__},
                "results": [f.to_dict() for f in figures],
            },
        )
        click.echo(f"figures written to {json_path}")


def _table(title: str, caption: str, headers: tuple[str, ...]) -> Table:
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    table.add_column(headers[0])
    for header in headers[1:]:
        table.add_column(header, justify="right")
    return table


def _encode_table(figures: list[CodecFigures], messages: int, repeats: int) -> Table:
    table = _table(
        f"encode: {messages:,} messages per type, best of {repeats}",
        "checked = encoded, then decoded again to validate (the default)",
        ("message", "bytes", "msg/s", "MB/s", "checked msg/s", "checked MB/s"),
    )
    for f in figures:
        table.add_row(
            f.message_type,
            f"{f.bytes_per_message:,.0f}",
            f"{f.encode_per_s:,.0f}",
            f"{f.megabytes_per_s(f.encode_per_s):,.1f}",
            f"{f.encode_checked_per_s:,.0f}",
            f"{f.megabytes_per_s(f.encode_checked_per_s):,.1f}",
        )
    return table


def _decode_table(figures: list[CodecFigures], batch_size: int) -> Table:
    from events.bench import BAD_RECORD_EVERY

    table = _table(
        "decode (strict validation)",
        f"batch = decode_batch of {batch_size} records; "
        f"1% bad = one bad record in {BAD_RECORD_EVERY}",
        ("message", "msg/s", "MB/s", "batch msg/s", "batch MB/s", "1% bad msg/s"),
    )
    for f in figures:
        table.add_row(
            f.message_type,
            f"{f.decode_per_s:,.0f}",
            f"{f.megabytes_per_s(f.decode_per_s):,.1f}",
            f"{f.batch_decode_per_s:,.0f}",
            f"{f.megabytes_per_s(f.batch_decode_per_s):,.1f}",
            f"{f.dirty_batch_decode_per_s:,.0f}",
        )
    return table
