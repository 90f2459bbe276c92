"""``driftline broker``: run a local Apache Kafka broker for tests and the demo.

``start`` leaves the broker running in the background and prints its bootstrap address on
stdout (``BOOTSTRAP=$(driftline broker start)`` works); ``stop`` and ``status`` find it
again through the state file in its data directory, or, for the default instance (started
without ``--data-dir``), through ``$DRIFTLINE_CACHE_DIR/broker.json``.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import click

from broker import state as broker_state
from broker.errors import BrokerError
from broker.jars import KafkaJars
from broker.local import STOP_TIMEOUT_S, LocalBroker, build_class_archives
from broker.process import terminate
from broker.state import BrokerState

DATA_DIR_OPTION = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Broker data directory (default: a new temporary directory, the default instance).",
)


@click.group()
def broker() -> None:
    """Run a local Apache Kafka broker (single node, KRaft) for tests and the demo."""


@broker.command()
@click.option("--port", type=click.IntRange(1, 65535), help="Client port (default: a free one).")
@DATA_DIR_OPTION
def start(port: int | None, data_dir: Path | None) -> None:
    """Start a broker in the background and print its bootstrap address."""
    _refuse_if_running(data_dir)
    local = LocalBroker(data_dir, port=port, tied=False)  # it outlives this command
    try:
        local.start()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    if data_dir is None:
        broker_state.save_default(local.data_dir)
    click.echo(
        f"Kafka {local.state.kafka_version} broker started in {local.start_seconds:.1f} s "
        f"(pid {local.pid}); data in {local.data_dir}, log {local.log_file}",
        err=True,
    )
    click.echo(local.bootstrap_servers)


@broker.command()
@DATA_DIR_OPTION
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=STOP_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait after SIGTERM before SIGKILL.",
)
def stop(data_dir: Path | None, timeout: float) -> None:
    """Stop a broker started with `driftline broker start`."""
    state = _recorded_state(data_dir)
    if state is None or not state.is_running():
        click.echo("no broker is running")
    else:
        try:
            graceful = terminate(state.pid, timeout)
        except BrokerError as exc:
            raise click.ClickException(str(exc)) from exc
        how = "stopped" if graceful else f"killed (still running {timeout:.0f} s after SIGTERM)"
        click.echo(f"broker at {state.bootstrap_servers} (pid {state.pid}) {how}")
    _forget(state, default=data_dir is None)


@broker.command()
@DATA_DIR_OPTION
def status(data_dir: Path | None) -> None:
    """Say whether the broker runs (exit status 1 if it does not)."""
    state = _recorded_state(data_dir)
    if state is None or not state.is_running():
        click.echo("not running")
        sys.exit(1)
    click.echo(
        f"running at {state.bootstrap_servers} (pid {state.pid}, Kafka {state.kafka_version}, "
        f"data in {state.data_dir})"
    )


@broker.command()
@click.option(
    "--class-archives/--no-class-archives",
    default=True,
    show_default=True,
    help="Also build the AppCDS archives that make each broker start ~1 s faster.",
)
def fetch(class_archives: bool) -> None:
    """Fetch the broker's jars from Maven Central into the cache (once)."""
    jars = KafkaJars()
    began = time.monotonic()
    was_cached = jars.is_fetched()
    try:
        libs = jars.fetch()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    how = "already cached" if was_cached else f"fetched in {time.monotonic() - began:.1f} s"
    click.echo(f"Kafka {jars.version} jars in {libs} ({how})")
    if not class_archives:
        return
    began = time.monotonic()
    try:
        archives = build_class_archives(jars)
    except BrokerError as exc:
        # The archives only speed up start-up: report, but do not fail the fetch.
        click.echo(f"warning: class-data archives not built: {exc}", err=True)
        return
    if archives is not None:
        took = time.monotonic() - began
        click.echo(f"class-data archives in {archives.directory} ({took:.1f} s)")


def _recorded_state(data_dir: Path | None) -> BrokerState | None:
    """The state of the broker in ``data_dir``, or of the default instance."""
    try:
        directory = data_dir if data_dir is not None else broker_state.default_data_dir()
        return BrokerState.load(directory.resolve()) if directory is not None else None
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc


def _refuse_if_running(data_dir: Path | None) -> None:
    state = _recorded_state(data_dir)
    if state is None:
        return
    if state.is_running():
        where = f"--data-dir {data_dir}" if data_dir is not None else "the default instance"
        raise click.ClickException(
            f"a broker already runs at {state.bootstrap_servers} (pid {state.pid}) for {where}; "
            "stop it first with `driftline broker stop`"
        )
    _forget(state, default=data_dir is None)


def _forget(state: BrokerState | None, *, default: bool) -> None:
    """Drop what a stopped broker left: its temporary data directory, the pointer."""
    if state is not None and state.temporary:
        shutil.rmtree(state.data_dir, ignore_errors=True)
    if default:
        broker_state.clear_default()
