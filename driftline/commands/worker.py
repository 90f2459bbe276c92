"""``driftline worker``: run the stream worker, as one process or N in one group.

Settings come from the environment (``WORKER_*``, ``KAFKA_*``, see worker/settings.py); the
options override the most common ones. Exit status: 0 after a clean stop (SIGTERM/SIGINT),
1 when the worker (or, with ``--processes``, any child) failed, 2 for bad settings,
3 when a graceful stop overran ``WORKER_SHUTDOWN_TIMEOUT_S`` or a second signal cut it short.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Final

import click
from pydantic import ValidationError

from driftline.logs import configure_logging
from events.settings import KafkaSettings

if TYPE_CHECKING:  # imported when the command runs: the settings pull in the model store
    from worker.settings import WorkerSettings

log = logging.getLogger("driftline.worker")

EXIT_FAILED: Final = 1
EXIT_SETTINGS: Final = 2
EXIT_SHUTDOWN_TIMEOUT: Final = 3
# Children get the stop signal's shutdown timeout plus this before they are killed.
CHILD_GRACE_MARGIN_S: Final = 5.0


@click.command()
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Worker processes to run in the group on this machine (one core each).",
)
@click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Brokers (host:port,...).")
@click.option("--group", help="Consumer group [WORKER_GROUP_ID, driftline-worker].")
@click.option(
    "--guarantee",
    type=click.Choice(["at_least_once", "exactly_once"]),
    help="Delivery guarantee [WORKER_PROCESSING_GUARANTEE, at_least_once].",
)
def worker(processes: int, bootstrap: str | None, group: str | None, guarantee: str | None) -> None:
    """Score readings from Kafka with cached models and publish the outputs."""
    configure_logging()
    # Overrides go through the environment so that child processes inherit them too.
    overrides = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WORKER_GROUP_ID": group,
        "WORKER_PROCESSING_GUARANTEE": guarantee,
    }
    os.environ.update({name: value for name, value in overrides.items() if value})
    from worker.settings import WorkerSettings

    try:
        settings, kafka = WorkerSettings(), KafkaSettings()
    except ValidationError as exc:
        click.echo(f"invalid worker settings: {exc}", err=True)
        raise SystemExit(EXIT_SETTINGS) from exc
    if processes > 1:
        raise SystemExit(supervise(processes, settings))
    raise SystemExit(serve(settings, kafka))


def supervise(processes: int, settings: WorkerSettings) -> int:
    """Run ``processes`` single-process workers as children; their combined exit status."""
    from worker.supervisor import Supervisor, child_specs

    specs = child_specs(processes, settings.instance_id, settings.http_port)
    command = [sys.executable, "-m", "driftline.commands.worker", "--processes", "1"]
    grace = settings.shutdown_timeout_s + CHILD_GRACE_MARGIN_S
    return Supervisor(command, specs, os.environ, grace).run()


def serve(settings: WorkerSettings, kafka: KafkaSettings) -> int:
    """Run one worker in this process until SIGTERM/SIGINT; the exit status."""
    from worker.runner import build_runner

    stop = threading.Event()
    watchdog = threading.Timer(settings.shutdown_timeout_s, _shutdown_overran, (settings,))
    watchdog.daemon = True
    on_signal = StopOnSignal(stop, watchdog.start, _exit_now)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        runner = build_runner(settings, kafka, stop_event=stop)
        runner.run()
    except Exception:
        log.exception("worker %s failed", settings.instance_id)
        return EXIT_FAILED
    finally:
        watchdog.cancel()
    return 0


class StopOnSignal:
    """SIGTERM/SIGINT: finish the batch in flight and stop, within the shutdown timeout.

    A second Ctrl-C exits at once: the operator does not want to wait. A repeated SIGTERM
    is ignored: process managers send it more than once (systemd signals every process of
    the unit while the supervisor forwards its own), and the stop under way is bounded.
    """

    def __init__(
        self,
        stop: threading.Event,
        start_watchdog: Callable[[], None],
        exit_now: Callable[[], None],
    ) -> None:
        self.stop = stop
        self.start_watchdog = start_watchdog
        self.exit_now = exit_now

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            if signum == signal.SIGINT:
                log.warning("second SIGINT: exiting without a clean close")
                self.exit_now()
            return
        log.info("received %s; finishing the batch in flight", signal.Signals(signum).name)
        self.stop.set()
        self.start_watchdog()


def _shutdown_overran(settings: WorkerSettings) -> None:
    log.error(
        "worker %s did not stop within %.0f s; exiting without a clean close",
        settings.instance_id,
        settings.shutdown_timeout_s,
    )
    _exit_now()


def _exit_now() -> None:
    """Exit at once. Nothing stored is lost: uncommitted batches are consumed again."""
    logging.shutdown()
    os._exit(EXIT_SHUTDOWN_TIMEOUT)


if __name__ == "__main__":  # the entry point of --processes children
    worker()
