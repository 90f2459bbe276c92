"""One demo run from an empty directory to the summary, leaving no process behind.

Phases: broker (started on a thread while the champions train), topics, output-topic
reader, history, services (worker, monitor, trainer as subprocesses), the live stream with
the dashboard, then the stop, which always runs in this order whatever ended the run
(time up, Ctrl-C, a failure): producers, a last scrape, services (SIGTERM, wait, kill),
reader, broker.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.live import Live

from broker import BrokerError, LocalBroker
from driftline.demo import environment as env
from driftline.demo import outcome
from driftline.demo.bootstrap import train_champions
from driftline.demo.dashboard import View, plain, render
from driftline.demo.observer import Observer, Seen
from driftline.demo.scenario import Scenario, ScenarioConfig, build_scenario
from driftline.demo.scrape import Figures, figures, metrics_text
from driftline.demo.session import demo_log, stop_signals
from driftline.demo.stream import Producers
from driftline.demo.summary import RunFacts, Summary, summarize
from driftline.demo.timeline import Timeline
from driftline.loop.services import Service, free_port, service_env, stop_all
from driftline.loop.services import wait_ready as wait_services
from events.admin import TopicSettings, ensure_topics
from events.settings import KafkaSettings

log = logging.getLogger(__name__)

READY_TIMEOUT_S: Final = 180.0  # services import TensorFlow and warm up on a busy machine
PLAIN_EVERY_S: Final = 5.0  # a log line this often without a terminal
REFRESH_S: Final = 1.0  # scrape and redraw interval
MIN_STREAM_S: Final = 20.0  # below this the stream could show nothing; the run still ends
STOP_GRACE_S: Final = 1.0  # lets the last outputs reach the topics before the final scrape


@dataclass(frozen=True)
class DemoOptions:
    """What ``driftline demo`` asked for."""

    seconds: float
    out: Path
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    tuning: env.Tuning = field(default_factory=env.Tuning)
    bootstrap: str | None = None  # an existing broker instead of a local one
    live: bool | None = None  # None: a rich dashboard when stdout is a terminal


class Demo:
    """Runs the demo once; :meth:`run` returns its summary."""

    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.layout = env.Layout(options.out.resolve())  # services may run elsewhere
        self.stop = threading.Event()
        self.started = time.time()
        self.deadline = self.started + options.seconds
        self.timeline = Timeline()
        self.broker: LocalBroker | None = None
        self.services: list[Service] = []
        self.observer: Observer | None = None
        self.producers: Producers | None = None
        self.scenario: Scenario | None = None
        self.problems: list[str] = []
        self._announced = False  # the first score was reported

    # -- the run -------------------------------------------------------------------------
    def run(self) -> Summary:
        self.layout.prepare()
        with stop_signals(self._interrupt), demo_log(self.layout.logs / "demo.log"):
            try:
                self._run()
            except Exception as exc:  # reported in the summary; the stop below always runs
                log.exception("the demo failed")
                self.problems.append(f"{type(exc).__name__}: {exc}")
                self.console.print(f"[red]the demo failed: {exc}[/] (details in demo.log)")
            finally:
                self._shutdown()
        return self._finish()

    def _run(self) -> None:
        config = self.options.scenario
        self.scenario = build_scenario(config, self.options.seconds)
        bootstrap = self._broker_and_champions()
        if self.stop.is_set():
            return
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        report = ensure_topics(kafka, TopicSettings())
        self._say(f"topics: {len(report.created)} created, {len(report.existing)} existed")
        self.observer = Observer(kafka)
        self.observer.start()
        self.producers = Producers(kafka, self.scenario, self.stop)
        self._say(f"history published: {self.producers.history():,} readings")
        self._start_services(bootstrap)
        if self.stop.is_set():
            return
        streaming = max(MIN_STREAM_S, self.deadline - time.time())
        self.scenario = self.scenario.with_onset(streaming)
        self.producers.start(self.scenario)
        onset = time.time() - self.started + streaming * config.drift_at
        self._say(
            f"streaming {config.tick_rate:g} simulated hours a second; "
            f"{config.drift_kind} drift on demand at about {onset:.0f} s"
        )
        self._watch()

    def _broker_and_champions(self) -> str:
        """Start the broker on a thread while the champions train; its bootstrap servers."""
        if self.options.bootstrap:
            self._train()
            return self.options.bootstrap
        failure: list[BaseException] = []

        def start() -> None:
            try:
                self.broker = LocalBroker(data_dir=self.layout.broker_dir).start()
            except BaseException as exc:  # reported in the main thread
                failure.append(exc)

        starter = threading.Thread(target=start, name="demo-broker", daemon=True)
        starter.start()
        try:
            self._train()
        finally:
            starter.join()
        if failure:
            raise BrokerError(f"the local broker did not start: {failure[0]}") from failure[0]
        assert self.broker is not None
        self._say(f"broker up at {self.broker.bootstrap_servers} (pid {self.broker.pid})")
        return self.broker.bootstrap_servers

    def _train(self) -> None:
        assert self.scenario is not None
        for champion in train_champions(self.layout.store, self.scenario, self.console):
            mae = champion.metrics.get("mae")
            figure = "" if mae is None else f", holdout MAE {mae:.3g}"
            self._say(f"{champion.label} v{champion.version} champion{figure}")

    def _start_services(self, bootstrap: str) -> None:
        run = f"{int(self.started)}"
        tuning, layout = self.options.tuning, self.layout
        common = env.common_env(bootstrap, layout)
        for name in ("worker", "monitor", "trainer"):
            port = free_port()
            if name == "worker":
                specific = env.worker_env(run, port, layout)
            elif name == "monitor":
                specific = env.monitor_env(run, port, layout, tuning)
            else:
                specific = env.trainer_env(run, port, layout, tuning)
            (layout.logs / f"{name}.env").write_text(env.describe(specific) + "\n")
            merged = service_env(os.environ, {**common, **specific})
            grace = env.SHUTDOWN_S + env.KILL_MARGIN_S
            service = Service(name, merged, layout.logs / f"{name}.log", port, grace)
            self.services.append(service.start())
        wait_services(self.services, READY_TIMEOUT_S)
        ports = ", ".join(f"{s.name} :{s.port}" for s in self.services)
        self._say(f"services ready: {ports}; logs in {self.layout.logs}")

    # -- watching ------------------------------------------------------------------------
    def _watch(self) -> None:
        live = self.options.live
        if live is None:
            live = self.console.is_terminal
        if live:
            with Live(render(self._view()), console=self.console, refresh_per_second=4) as board:
                while self._tick():
                    board.update(render(self._view()))
            return
        last_line = 0.0
        while self._tick():
            if time.time() - last_line >= PLAIN_EVERY_S:
                last_line = time.time()
                self.console.print(plain(self._view()), highlight=False, soft_wrap=True)

    def _tick(self) -> bool:
        """Scrape, check the services; False when the run should end."""
        if self.stop.wait(REFRESH_S) or time.time() >= self.deadline:
            return False
        self._scrape()
        self._announce_first_score()
        dead = [s for s in self.services if s.process is None or s.process.poll() is not None]
        if dead:
            for service in dead:
                self.problems.append(f"{service.name} exited early; see {service.log}")
            return False
        return True

    @property
    def _seen(self) -> Seen:
        """What the output-topic reader has read (nothing before it starts)."""
        return self.observer.seen if self.observer is not None else Seen()

    def _announce_first_score(self) -> None:
        seen = self._seen
        if seen.first_prediction_at is None or self._announced:
            return
        self._announced = True
        self._say(f"first scored reading after {seen.first_prediction_at - self.started:.1f} s")

    def _scrape(self, plotted: bool = True) -> Figures:
        texts = {s.name: metrics_text(s.port) for s in self.services}
        found = figures(texts.get("worker"), texts.get("monitor"), texts.get("trainer"))
        if not plotted:
            self.timeline.keep_latest(found)
            return found
        published = 0 if self.producers is None else self.producers.stats.published
        self.timeline.add(time.time() - self.started, published, found)
        return found

    def _view(self) -> View:
        facts = self._facts()
        summary = summarize(facts)
        seen = self._seen
        health = {(h.model, h.key): h for _, h in list(seen.health)}  # latest per model key
        alerts = [a for _, a in list(seen.alerts)]
        sim = None
        if self.scenario is not None and self.producers is not None:
            sim = self.scenario.tick_time(max(0, self.producers.stats.ticks - 1))
        return View(
            elapsed_s=time.time() - self.started,
            duration_s=self.options.seconds,
            sim_time=sim,
            sample=self.timeline.last,
            serving=self.timeline.latest.serving,
            health=[health[k] for k in sorted(health, key=lambda k: (k[0], k[1] or ""))],
            alerts=Counter(a.type for a in alerts),
            recent_alerts=alerts[-5:],
            onset_s=summary.onset_s,
            detected_s=summary.detected_s,
            requests=len(facts.requests),
            decisions=self.timeline.latest.decisions,
            promotions=outcome.promotions(seen, self.started),
            training=self.timeline.latest.job_running,
        )

    # -- the end -------------------------------------------------------------------------
    def _interrupt(self) -> None:
        if not self.stop.is_set():
            self.console.print("\n[yellow]stopping: producers, services, broker[/]")
        self.stop.set()

    def _shutdown(self) -> None:
        self.stop.set()
        # Stopping takes seconds: a Ctrl-C now would leave processes behind, so it waits.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if self.producers is not None:
            self.producers.close()
            self.problems += [f"producer: {f}" for f in self.producers.stats.failures[:3]]
        running = [s for s in self.services if s.process and s.process.poll() is None]
        if running:
            time.sleep(STOP_GRACE_S)  # pacing only: outputs in flight reach the topics
            self._scrape(plotted=False)
        codes = stop_all(self.services)
        failed = {name: code for name, code in codes.items() if code not in (0, None)}
        if failed:
            self.problems.append(f"services exited with {failed}")
        if self.observer is not None:
            self.observer.stop()
        if self.broker is not None:
            self.broker.stop()

    def _finish(self) -> Summary:
        facts = self._facts()
        summary = summarize(facts)
        data = outcome.report_data(summary, self.timeline, self._seen, self.started)
        outcome.write(self.layout, summary, data, self.problems, self.started)
        return summary

    def _facts(self) -> RunFacts:
        return outcome.gather(
            self.started,
            self.stop.is_set() and time.time() < self.deadline,
            self.scenario,
            self.producers.stats if self.producers is not None else None,
            self._seen,
            self.timeline.latest,
        )

    def _say(self, text: str) -> None:
        elapsed = time.time() - self.started
        self.console.print(f"[dim]{elapsed:6.1f} s[/] {text}", highlight=False, soft_wrap=True)
