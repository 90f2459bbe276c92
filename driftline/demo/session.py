"""Process-wide set-up of a run: the signals it answers and the log file it writes."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType


@contextmanager
def stop_signals(on_stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM call ``on_stop``; a second SIGINT raises KeyboardInterrupt.

    The run then stops in order (producers, services, broker) in its ``finally``.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        on_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def demo_log(path: Path) -> Iterator[None]:
    """The demo's own log lines (and its Kafka clients') into ``path``, not the screen."""
    logger = logging.getLogger("driftline.demo")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
