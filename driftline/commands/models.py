"""``driftline models``: inspect and manage the model registry from a shell.

Every subcommand takes ``--store`` (default ``$MODEL_STORE`` or ``./model-store``) and
``--json`` (machine-readable output on stdout for scripts); commands that change the store
also take ``--actor`` (recorded in the history). Registry errors (unknown model or version,
refused deletion, checksum mismatch, unsafe archive) exit with status 1 and a one-line
message.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from driftline.commands.announce import Announce, Announced, ChampionChange, announce_options
from models.archive import export_archive, import_archive
from models.registry import Registry
from models.registry_errors import IntegrityError, RegistryError
from models.versions import VersionInfo, verify_files

Command = Callable[..., None]
SHOW_FIELDS: tuple[str, ...] = ("model", "key", "version", "family", "aliases", "parent")
SHOW_FIELDS += ("created_at", "training", "metrics", "features", "params", "frameworks", "path")
SHOW_FIELDS += ("integrity",)
SUMMARY_COLUMNS = ("model", "key", "family", "versions", "champion", "challenger", "latest")
VERSION_COLUMNS = {"champion", "challenger", "latest"}

key_option = click.option("--key", default=None, help="Model key (product, pollutant, ...).")
reason_option = click.option("--reason", required=True, help="Why (recorded in the history).")


def with_registry(*, writes: bool = False) -> Callable[[Command], Command]:
    """Add --store/--json (and --actor for writers); pass ``registry`` and ``as_json``.

    Registry errors raised by the command become one-line click errors (exit status 1).
    """

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def run(*args: Any, store: Path, actor: str | None = None, **kwargs: Any) -> None:
            try:
                command(*args, registry=Registry(store, actor=actor), **kwargs)
            except RegistryError as exc:
                raise click.ClickException(str(exc)) from exc

        run = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(run)
        run = click.option(
            "--store",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="MODEL_STORE",
            default="model-store",
            show_default=True,
            help="Model store directory [env MODEL_STORE].",
        )(run)
        if writes:
            help_text = "Who acts [env DRIFTLINE_ACTOR, else user@host]."
            run = click.option("--actor", default=None, help=help_text)(run)
        return run

    return decorate


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def label(value: Any, *, versioned: bool = False) -> str:
    if value is None or value == "":
        return "-"
    return f"v{value}" if versioned else str(value)


@click.group()
def models() -> None:
    """List, inspect, promote, roll back, delete, export and import models."""


@models.command("list")
@click.argument("name", required=False)
@with_registry()
def list_models(name: str | None, registry: Registry, as_json: bool) -> None:
    """List models and keys with their champion, challenger and latest version."""
    if not registry.root.is_dir():
        raise click.ClickException(f"model store {registry.root} does not exist")
    names = [name] if name else registry.models()
    rows = [_summary(registry, n, k) for n in names for k in registry.keys(n)]
    if as_json:
        emit(rows)
        return
    table = Table(*SUMMARY_COLUMNS)
    for row in rows:
        table.add_row(*(label(row[c], versioned=c in VERSION_COLUMNS) for c in SUMMARY_COLUMNS))
    Console().print(table if rows else f"no models in {registry.root}")


def _summary(registry: Registry, name: str, key: str | None) -> dict[str, Any]:
    versions = registry.versions(name, key)
    aliases = registry.aliases(name, key)
    latest = versions[-1] if versions else None
    return {
        "model": name,
        "key": key,
        "family": latest.family if latest else "",
        "versions": len(versions),
        "champion": aliases.champion,
        "challenger": aliases.challenger,
        "latest": latest.version if latest else None,
        "created_at": latest.created_at if latest else None,
    }


@models.command()
@click.argument("name")
@click.argument("version", required=False)
@key_option
@with_registry()
def show(
    name: str, version: str | None, key: str | None, registry: Registry, as_json: bool
) -> None:
    """Show a version's metadata (default: the champion) and whether its files are intact."""
    info = registry.info(name, key, version)
    aliases = registry.aliases(name, key).pointing_at(info.version)
    document = {
        **info.metadata,
        "path": str(info.path),
        "aliases": aliases,
        "integrity": _integrity(info),
    }
    if as_json:
        emit(document)
        return
    table = Table("field", "value", show_header=False)
    for field in SHOW_FIELDS:
        table.add_row(field, _text(document.get(field)))
    files = [f"{n}  {r['bytes']} B  sha256 {r['sha256'][:16]}…" for n, r in info.files.items()]
    table.add_row("files", "\n".join(files))
    Console().print(table)


def _integrity(info: VersionInfo) -> str:
    """``verified``, or why the version's files do not match their recorded checksums."""
    try:
        verify_files(info)
    except IntegrityError as exc:
        return f"FAILED: {exc}"
    return "verified"


def _text(value: Any) -> str:
    """One line per entry of a dict, comma-separated lists, '-' for nothing."""
    if value is None or value in ([], {}):
        return "-"
    if isinstance(value, dict):
        lines = (
            f"{k}: {json.dumps(v) if isinstance(v, dict) else _text(v)}" for k, v in value.items()
        )
        return "\n".join(lines)
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


@models.command()
@click.argument("name")
@key_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the newest N events.")
@with_registry()
def history(
    name: str, key: str | None, limit: int | None, registry: Registry, as_json: bool
) -> None:
    """Show the history of registrations, promotions, rollbacks and deletions."""
    events = registry.history(name, key)
    events = events[-limit:] if limit else events
    if as_json:
        emit([e.to_dict() for e in events])
        return
    table = Table("time (UTC)", "action", "version", "previous", "actor", "reason")
    table.columns[0].no_wrap = True
    for e in events:
        when = e.ts[:19].replace("T", " ")
        versions = label(e.version, versioned=True), label(e.previous, versioned=True)
        table.add_row(when, e.action, *versions, e.actor, e.reason)
    Console().print(table)


@models.command()
@click.argument("name")
@click.argument("version")
@key_option
@reason_option
@announce_options
@with_registry(writes=True)
def promote(
    name: str,
    version: str,
    key: str | None,
    reason: str,
    announce: Announce,
    registry: Registry,
    as_json: bool,
) -> None:
    """Make VERSION the champion and announce it to the workers."""
    previous = registry.aliases(name, key).champion
    info = registry.promote(name, version, key, reason)
    change = ChampionChange(name, key, info.version, previous, "promoted", reason)
    _report_champion(change, announce(change), as_json)


@models.command()
@click.argument("name")
@key_option
@reason_option
@announce_options
@with_registry(writes=True)
def rollback(
    name: str, key: str | None, reason: str, announce: Announce, registry: Registry, as_json: bool
) -> None:
    """Re-point the champion at the previous champion and announce it to the workers."""
    previous = registry.aliases(name, key).champion
    info = registry.rollback(name, key, reason)
    change = ChampionChange(name, key, info.version, previous, "rolled_back", reason)
    _report_champion(change, announce(change), as_json)


def _report_champion(change: ChampionChange, announced: Announced, as_json: bool) -> None:
    if as_json:
        emit(
            {
                "model": change.model,
                "key": change.key,
                "champion": change.version,
                "previous": change.previous,
                "announced": announced.sent,
                "announce_error": announced.error,
            }
        )
    else:
        where = change.model if change.key is None else f"{change.model}[{change.key}]"
        was = label(change.previous, versioned=True)
        click.echo(f"{where}: champion is now v{change.version} (was {was})")
    if announced.error is not None:
        click.echo(f"warning: {announced.error}", err=True)


@models.command()
@click.argument("name")
@click.argument("version")
@key_option
@click.option("--reason", default="deleted by operator", show_default=True, help="Why.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_registry(writes=True)
def delete(
    name: str,
    version: str,
    key: str | None,
    reason: str,
    yes: bool,
    registry: Registry,
    as_json: bool,
) -> None:
    """Delete VERSION (never the champion)."""
    number = registry.info(name, key, version).version
    if not yes:
        click.confirm(f"Delete {name} v{number} for good?", abort=True)
    registry.delete(name, number, key, reason)
    if as_json:
        emit({"model": name, "key": key, "deleted": [number]})
    else:
        click.echo(f"deleted {name} v{number}")


@models.command()
@click.argument("name")
@key_option
@click.option("--all-keys", is_flag=True, help="Apply to every key of the model.")
@click.option("--keep", type=click.IntRange(min=1), required=True, help="Versions to keep.")
@with_registry(writes=True)
def retain(
    name: str, key: str | None, all_keys: bool, keep: int, registry: Registry, as_json: bool
) -> None:
    """Delete all but the newest --keep versions (champion and challenger always stay)."""
    keys = registry.keys(name) if all_keys else [key]
    deleted = [(k, registry.keep_last(name, keep, k)) for k in keys]
    if as_json:
        emit({"model": name, "keys": [{"key": k, "deleted": d} for k, d in deleted]})
        return
    for k, numbers in deleted:
        gone = ", ".join(f"v{v}" for v in numbers) or "nothing"
        click.echo(f"{name} [{label(k)}]: deleted {gone}")


@models.command("export")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("name", required=False)
@key_option
@click.option("--version", "version", default=None, help="Only this version (needs NAME).")
@with_registry()
def export_command(
    destination: Path,
    name: str | None,
    key: str | None,
    version: str | None,
    registry: Registry,
    as_json: bool,
) -> None:
    """Write the store, a model (or one --key of it) or one --version to a tar.gz."""
    if (version is not None or key is not None) and name is None:
        raise click.UsageError("--version and --key need a model NAME")
    summary = export_archive(registry, destination, name, key, version)
    if as_json:
        emit(summary.to_dict())
    else:
        click.echo(f"exported {len(summary.versions)} version(s) to {destination}")


@models.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_registry(writes=True)
def import_command(source: Path, registry: Registry, as_json: bool) -> None:
    """Verify and add the versions of a tar.gz archive to the store."""
    summary = import_archive(registry, source)
    if as_json:
        emit(summary.to_dict())
        return
    found = f"{len(summary.versions)} version(s), {len(summary.skipped)} already present"
    click.echo(f"imported {found}, from {source}")


@models.command()
@with_registry(writes=True)
def gc(registry: Registry, as_json: bool) -> None:
    """Remove scratch directories left behind by crashed writers."""
    removed = registry.gc()
    if as_json:
        emit({"removed": [str(p) for p in removed]})
    else:
        click.echo(f"removed {len(removed)} leftover(s)")
