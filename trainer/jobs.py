"""Work off the consumer's thread: one job thread runs queued work items in order.

Training takes seconds to an hour; the consume loop must keep polling meanwhile, or the
group evicts the trainer after ``max.poll.interval.ms`` and its partitions move. The loop
therefore only accepts and queues work; this thread trains. One thread, because

* jobs of one model key must not overlap (two candidates validated against one champion);
* CatBoost, scikit-learn forests and TensorFlow already use every core of the machine
  during a fit, so running two fits at once would only make both slower.

The heavy parts of every family's fit run in native code that releases the GIL (CatBoost,
scikit-learn's tree builders, TensorFlow), so the polling thread keeps its pace while a job
trains; the pandas feature code in between holds it only briefly.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

log = logging.getLogger(__name__)

# The job thread checks for new work this often while idle (a stop is noticed within it).
IDLE_POLL_S: Final = 0.5


@dataclass(frozen=True)
class Work:
    """A queued item: what it is about (for status output) and what to run."""

    label: str
    run: Callable[[], None]
    job_id: str | None = None


class JobRunner:
    """A FIFO of :class:`Work` run by one daemon thread."""

    def __init__(self, name: str = "trainer-jobs") -> None:
        self._queue: queue.Queue[Work] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting: list[Work] = []
        self._current: Work | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, work: Work) -> None:
        with self._lock:
            self._waiting.append(work)
        self._queue.put(work)

    def waiting(self) -> list[Work]:
        with self._lock:
            return list(self._waiting)

    @property
    def current(self) -> Work | None:
        with self._lock:
            return self._current

    def idle(self) -> bool:
        with self._lock:
            return self._current is None and not self._waiting

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting) + (self._current is not None)

    def stop(self, timeout_s: float) -> Work | None:
        """Stop after the item in flight; return it if it did not finish within the timeout."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return self.current if self._thread.is_alive() else None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                work = self._queue.get(timeout=IDLE_POLL_S)
            except queue.Empty:
                continue
            if self._stop.is_set():
                return
            with self._lock:
                self._waiting.remove(work)
                self._current = work
            try:
                work.run()
            except Exception:  # a work item handles its own errors; this is the last resort
                log.exception("work item %s failed", work.label)
            finally:
                with self._lock:
                    self._current = None
