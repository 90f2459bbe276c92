"""The trainer's persisted state: jobs in flight, handled request ids, recent decisions.

One small JSON file (``<store>/.trainer/state.json``), replaced atomically after every
change (``models.atomic.write_atomic``: temp file, fsync, rename), so a crash leaves the old
or the new document, never a torn one. It holds:

* ``pending``: jobs accepted but not finished, in arrival order, with their attempts and
  stage. A request is written here *before* its Kafka offset is committed, so a crash
  never loses it; at the next start every pending job runs again (an attempt interrupted
  by a crash counts; one interrupted by a graceful stop does not).
* ``processed``: the ids of finished jobs (the newest ``processed_kept``): a request id
  seen again does nothing.
* ``decisions``: the newest ``decisions_kept`` decisions with their reasons.
* ``models``: per model key, the last attempt (scheduled checks back off from it) and when
  the current challenger started its shadow run.

Lineage facts (last full retrain, last update, fine-tunes since full) are read from the
registry instead (``trainer.lineage``): an operator may promote or roll back by hand.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from models.atomic import write_atomic
from models.registry_errors import StoreWriteError
from trainer.errors import StateError

STATE_FORMAT: Final = 1

log = logging.getLogger(__name__)


@contextmanager
def single_instance(directory: Path) -> Iterator[None]:
    """Hold ``directory``'s lock: one active trainer per state file.

    A second trainer on the same store waits here and takes over when the first exits (the
    kernel releases a flock when its process dies, so a crash never leaves it held).
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another trainer holds %s; waiting for it to exit", directory)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def model_label(model: str, key: str | None) -> str:
    """``model`` or ``model/key``: the model topics' record key, used as the state key."""
    return model if key is None else f"{model}/{key}"


@dataclass
class Job:
    """One unit of work: a retrain request, or a job a scheduled check created."""

    job_id: str
    model: str
    key: str | None
    trigger: str  # request | schedule | bootstrap
    action: str | None  # the requested action (fine_tune | full_retrain) if any
    reason: str
    evidence: dict[str, float | str] = field(default_factory=dict)
    family: str | None = None  # bootstrap: the family of a model with no version yet
    params: dict[str, Any] = field(default_factory=dict)  # bootstrap hyper-parameters
    enqueued_at: str = field(default_factory=now_iso)
    attempts: int = 0
    stage: str = "queued"
    window_end: str | None = None  # fixed at the first attempt: a retry sees the same data

    @property
    def label(self) -> str:
        return model_label(self.model, self.key)


@dataclass
class DecisionRecord:
    """What was decided for a job, why, and how it ended."""

    job_id: str
    model: str
    key: str | None
    trigger: str
    action: str  # full_retrain | fine_tune | none | shadow
    outcome: str  # promoted | challenger | rejected | nothing | skipped | failed | abandoned
    reason: str
    rule: str = ""
    version: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    ts: str = field(default_factory=now_iso)

    @classmethod
    def unfinished(cls, job: Job, outcome: str, reason: str) -> DecisionRecord:
        """The record of a job that ended without a decision (failed, abandoned)."""
        action = job.action or "none"
        return cls(
            job.job_id,
            job.model,
            job.key,
            job.trigger,
            action,
            outcome,
            reason,
            attempts=job.attempts,
        )


def record_label(record: DecisionRecord) -> str:
    return model_label(record.model, record.key)


def _build(cls: Any, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


class TrainerState:
    """Thread-safe view of the state file; every change is written through at once."""

    def __init__(self, path: Path, processed_kept: int = 10_000, decisions_kept: int = 500) -> None:
        self.path = path
        self.processed_kept = processed_kept
        self.decisions_kept = decisions_kept
        self._lock = threading.RLock()
        self._pending: dict[str, Job] = {}
        self._processed: dict[str, None] = {}  # insertion-ordered set
        self._decisions: list[DecisionRecord] = []
        self._models: dict[str, dict[str, Any]] = {}

    @classmethod
    def load(
        cls, path: Path, processed_kept: int = 10_000, decisions_kept: int = 500
    ) -> TrainerState:
        """The state at ``path`` (empty when the file does not exist yet)."""
        state = cls(path, processed_kept, decisions_kept)
        try:
            document = json.loads(path.read_bytes())
        except FileNotFoundError:
            return state
        except (OSError, ValueError) as exc:
            raise StateError(
                f"cannot read the trainer state {path}: {exc}; fix or move the file (deleting "
                "it forgets which requests were handled)"
            ) from exc
        state._restore(document)
        return state

    def reload(self) -> None:
        """Read the file again (another process may have written it since it was loaded)."""
        fresh = TrainerState.load(self.path, self.processed_kept, self.decisions_kept)
        with self._lock:
            self._pending, self._processed = fresh._pending, fresh._processed
            self._decisions, self._models = fresh._decisions, fresh._models

    def _restore(self, document: dict[str, Any]) -> None:
        if document.get("format") != STATE_FORMAT:
            raise StateError(f"{self.path}: unsupported state format {document.get('format')!r}")
        self._pending = {j["job_id"]: _build(Job, j) for j in document.get("pending", [])}
        self._processed = dict.fromkeys(document.get("processed", []))
        self._decisions = [_build(DecisionRecord, d) for d in document.get("decisions", [])]
        self._models = dict(document.get("models", {}))

    # -- jobs ----------------------------------------------------------------------------
    def seen(self, job_id: str) -> bool:
        """True if the job is pending or was handled: a repeat of it must do nothing."""
        with self._lock:
            return job_id in self._pending or job_id in self._processed

    def enqueue(self, job: Job) -> bool:
        """Persist a new job; False (and no change) when its id was seen before."""
        with self._changing():
            if job.job_id in self._pending or job.job_id in self._processed:
                return False
            self._pending[job.job_id] = job
            return True

    def begin(self, job_id: str, window_end: str) -> Job:
        """Count an attempt and fix the job's data window (kept from an earlier attempt)."""
        with self._changing():
            job = self._pending[job_id]
            job.attempts += 1
            job.stage = "started"
            job.window_end = job.window_end or window_end
            return Job(**asdict(job))

    def set_stage(self, job_id: str, stage: str) -> None:
        with self._changing():
            if job_id in self._pending:
                self._pending[job_id].stage = stage

    def release(self, job_id: str) -> None:
        """A graceful stop interrupted the job: it runs again without counting an attempt."""
        with self._changing():
            job = self._pending.get(job_id)
            if job is not None:
                job.attempts = max(0, job.attempts - 1)
                job.stage = "queued"

    def finish(self, record: DecisionRecord) -> None:
        """Record the job's decision; its id joins the handled ones."""
        with self._changing():
            self._pending.pop(record.job_id, None)
            self._processed[record.job_id] = None
            while len(self._processed) > self.processed_kept:
                del self._processed[next(iter(self._processed))]
            self._append(record)
            self._models.setdefault(record_label(record), {})["last_attempt"] = record.ts

    def record(self, record: DecisionRecord) -> None:
        """Record a decision that belongs to no pending job (a shadow verdict)."""
        with self._changing():
            self._append(record)

    def _append(self, record: DecisionRecord) -> None:
        self._decisions.append(record)
        del self._decisions[: -self.decisions_kept]

    # -- per model key -------------------------------------------------------------------
    def set_model(self, model: str, key: str | None, **values: Any) -> None:
        with self._changing():
            self._models.setdefault(model_label(model, key), {}).update(values)

    def model_value(self, model: str, key: str | None, name: str) -> Any:
        with self._lock:
            return self._models.get(model_label(model, key), {}).get(name)

    # -- views ---------------------------------------------------------------------------
    def pending(self) -> list[Job]:
        with self._lock:
            return [Job(**asdict(job)) for job in self._pending.values()]

    def pending_for(self, model: str, key: str | None) -> bool:
        with self._lock:
            return any(j.model == model and j.key == key for j in self._pending.values())

    def decisions(self, limit: int | None = None) -> list[DecisionRecord]:
        with self._lock:
            chosen = self._decisions if limit is None else self._decisions[-limit:]
            return list(chosen)

    def processed_count(self) -> int:
        with self._lock:
            return len(self._processed)

    def models(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {label: dict(values) for label, values in self._models.items()}

    # -- persistence ---------------------------------------------------------------------
    @contextmanager
    def _changing(self) -> Iterator[None]:
        with self._lock:
            yield
            self._save()

    def _save(self) -> None:
        document = {
            "format": STATE_FORMAT,
            "pending": [asdict(job) for job in self._pending.values()],
            "processed": list(self._processed),
            "decisions": [asdict(record) for record in self._decisions],
            "models": self._models,
        }
        data = json.dumps(document, indent=1, sort_keys=True).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, data, "trainer state")
        except (OSError, StoreWriteError) as exc:
            raise StateError(f"cannot write the trainer state {self.path}: {exc}") from exc
