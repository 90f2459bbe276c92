"""Run the closed loop once: drift -> monitor -> retrain request -> trainer -> workers.

:class:`LoopRunner` does, against a broker and a fresh model store under ``workdir``:

1. create the run's topics and register the first demand champion, trained on the
   scenario's pre-drift history;
2. publish the history (the worker warms its windows from it), start the worker, the
   monitor and the trainer as subprocesses and wait for each ``/readyz``;
3. publish the ``before`` and ``drift`` segments in one burst, then wait until the loop
   settles: every retrain request decided by the trainer, or, with no request, the monitor
   has judged the last pair and no request is left unread;
4. publish the ``after`` segment in chunks, each once the monitor paired the previous one,
   so that a promotion (at once, or after a shadow run) is served by the workers;
5. stop everything and return what was observed (:class:`LoopOutcome`).

``progress`` is told each stage as it starts; :meth:`LoopRunner.snapshot` gives the
observed records at any time (for a live display).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pandas as pd
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from driftline.loop.environment import (
    MODEL,
    SHUTDOWN_S,
    LoopTopics,
    RunPaths,
    Tuning,
    common_env,
    monitor_env,
    trainer_env,
    worker_env,
)
from driftline.loop.observer import Observer, Snapshot
from driftline.loop.scenario import STEP, LoopConfig, LoopData, build_data
from driftline.loop.services import Service, ServiceError, free_port, service_env, stop_all
from driftline.loop.services import wait_ready as wait_services
from driftline.publish import demand_messages, publish
from events import MonitorPair, topics
from events.settings import KafkaSettings
from models.families import create
from models.frames import PRODUCT, TS
from models.history import HistoryEvent
from models.registry import Registry
from trainer.state import DecisionRecord, TrainerState

log = logging.getLogger(__name__)

# Every wait is for local processes on a local broker; these only catch hangs. Starting
# takes imports (pandas, CatBoost) on a shared machine; a retrain is a replay and a fit.
START_TIMEOUT_S: Final = 90.0
SETTLE_TIMEOUT_S: Final = 120.0
# The observed state is checked this often: it is the signal, this only paces the checks.
CHECK_INTERVAL_S: Final = 0.1
# Hours of readings published at a time after the drift: one judgement of the monitor each.
CHUNK_HOURS: Final = 6
ADMIN_TIMEOUT_S: Final = 30.0

Progress = Callable[[str], None]


class LoopError(RuntimeError):
    """The loop did not reach the state it waited for; the message says which."""


@dataclass
class LoopOutcome:
    """What one run published, observed and decided."""

    data: LoopData
    tuning: Tuning
    names: LoopTopics
    paths: RunPaths
    onset_at: float  # wall clock (epoch s) when the first drifted reading was published
    snapshot: Snapshot = field(default_factory=Snapshot)
    decisions: list[DecisionRecord] = field(default_factory=list)
    history: list[HistoryEvent] = field(default_factory=list)
    champion: int | None = None
    seconds: float = 0.0


class LoopRunner:
    """One run of the loop scenario (see the module docstring)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        workdir: Path,
        config: LoopConfig | None = None,
        tuning: Tuning | None = None,
        *,
        partitions: int = 3,
        progress: Progress | None = None,
    ) -> None:
        self.kafka = kafka
        self.config = config or LoopConfig()
        self.tuning = tuning or Tuning()
        self.partitions = partitions
        self.progress = progress or (lambda stage: log.info("loop: %s", stage))
        self.run_id = uuid.uuid4().hex[:10]
        self.names = LoopTopics.named(self.run_id)
        self.paths = RunPaths(workdir / f"loop-{self.run_id}")
        self.data = build_data(self.config)
        self._observer: Observer | None = None
        self._services: list[Service] = []

    def snapshot(self) -> Snapshot:
        return Snapshot() if self._observer is None else self._observer.snapshot()

    def run(self) -> LoopOutcome:
        started = time.monotonic()
        self.progress("creating topics and the first champion")
        self._create_topics()
        self._register_champion()
        producer = Producer(self.kafka.producer_config())
        self._publish(producer, self.data.history)
        with self._running():
            self.progress("streaming the drift")
            self._publish(producer, self.data.before)
            onset_at = time.time()
            self._publish(producer, self.data.drift)
            outcome = LoopOutcome(self.data, self.tuning, self.names, self.paths, onset_at)
            self.progress("waiting for the loop to settle")
            self._settle(self.data.drift)
            self.progress("streaming after the drift")
            self._stream_after(producer)
            outcome.snapshot = self.snapshot()
        outcome.decisions = TrainerState.load(self._state_file()).decisions()
        registry = Registry(self.paths.store)
        outcome.history = registry.history(MODEL)
        outcome.champion = registry.aliases(MODEL).champion
        outcome.seconds = time.monotonic() - started
        self.progress("done")
        return outcome

    # -- set-up --------------------------------------------------------------------------
    def _create_topics(self) -> None:
        admin = AdminClient(self.kafka.client_config())
        # Model topics are read by one consumer each; one partition keeps them in order.
        model_topics = {self.names.health, self.names.requests, self.names.updates}
        new = [
            NewTopic(name, 1 if name in model_topics else self.partitions, replication_factor=1)
            for name in self.names.all()
        ]
        for future in admin.create_topics(new, request_timeout=ADMIN_TIMEOUT_S).values():
            future.result(timeout=ADMIN_TIMEOUT_S)

    def _register_champion(self) -> None:
        model = create(MODEL, dict(self.config.params))
        training = self.data.training
        report = model.fit(training)
        Registry(self.paths.store).register(
            model, MODEL, None, report, frame=training, reason="first champion (loop scenario)"
        )

    def _publish(self, producer: Producer, frame: pd.DataFrame) -> None:
        contract = topics.READINGS_DEMAND
        publish(producer, self.names.demand, demand_messages(frame), contract=contract)

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        self.progress("starting worker, monitor and trainer")
        try:
            self._start_services()
            self._observer = Observer(self.kafka, self.names).start()
            yield
        finally:
            codes = stop_all(self._services)
            if self._observer is not None:
                self._observer.stop()
            log.info("services stopped: %s", codes)

    def _start_services(self) -> None:
        common = common_env(self.kafka.bootstrap_servers, self.paths)
        names, paths, tuning, run = self.names, self.paths, self.tuning, self.run_id
        ports = {name: free_port() for name in ("worker", "monitor", "trainer")}
        envs = {
            "worker": worker_env(run, ports["worker"], names, paths),
            "monitor": monitor_env(run, ports["monitor"], names, paths, tuning),
            "trainer": trainer_env(run, ports["trainer"], names, paths, tuning),
        }
        for name, own in envs.items():
            env = service_env(os.environ, {**common, **own})
            log_file = paths.logs / f"{name}.log"
            service = Service(name, env, log_file, ports[name], SHUTDOWN_S + 5.0)
            self._services.append(service.start())
        wait_services(self._services, START_TIMEOUT_S)

    def _state_file(self) -> Path:
        return self.paths.trainer_state / "state.json"

    # -- waiting -------------------------------------------------------------------------
    def _wait(self, done: Callable[[Snapshot], bool], what: str) -> Snapshot:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            snapshot = self.snapshot()
            if done(snapshot):
                return snapshot
            for service in self._services:
                service.check()
            if time.monotonic() > deadline:
                raise LoopError(f"timed out after {SETTLE_TIMEOUT_S:.0f} s waiting for {what}")
            time.sleep(CHECK_INTERVAL_S)

    def _settle(self, segment: pd.DataFrame) -> None:
        """Every request decided, or (none made) the whole segment judged and read."""
        last = segment[TS].max()

        def settled(snapshot: Snapshot) -> bool:
            if snapshot.requests:
                decided = {d.job_id for d in TrainerState.load(self._state_file()).decisions()}
                return all(s.message.request_id in decided for s in snapshot.requests)
            judged = any(s.message.ts >= last for s in snapshot.health)
            return (
                judged
                and self._observer is not None
                and self._observer.caught_up(self.names.requests)
            )

        self._wait(settled, "the trainer's decision, or the monitor's last judgement")

    def _stream_after(self, producer: Producer) -> None:
        after = self.data.after
        start = after[TS].min()
        products = int(after[PRODUCT].nunique())
        chunks = after.groupby((after[TS] - start) // (CHUNK_HOURS * STEP), sort=True)
        for _, chunk in chunks:
            self._publish(producer, chunk)
            # The chunk's last reading is the actual of the prediction made one step before.
            target = chunk[TS].max()

            def paired(snapshot: Snapshot, target: pd.Timestamp = target) -> bool:
                pairs: list[MonitorPair] = [s.message for s in snapshot.pairs]
                return len({p.entity_id for p in pairs if p.target_ts >= target}) >= products

            self._wait(paired, f"the pairs of the readings up to {target}")


__all__ = ["LoopError", "LoopOutcome", "LoopRunner", "ServiceError"]
