"""The producers: history into the topics, then the live stream at a steady pace.

History records carry their reading's time as Kafka timestamp (they happened then), so a
replay by time, as the trainer does, tells them from the live stream. Live records are
stamped when produced. Every tick publishes one reading per machine, station and product;
every ``BAD_EVERY`` ticks a broken producer sends one malformed record, which the worker
dead-letters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import pandas as pd
from confluent_kafka import KafkaException, Producer

from driftline.demo.scenario import Scenario, sensor_columns
from driftline.publish import PublishError, demand_messages, produce_waiting, sensor_messages
from events import Message, codec_for, topics
from events.settings import KafkaSettings
from models.frames import ENTITY, PRODUCT, TS

log = logging.getLogger(__name__)
# librdkafka's own log lines (retries, disconnects at shutdown) go to the demo's log file.
CLIENT_LOG: Final = logging.getLogger("driftline.demo.kafka")

BAD_EVERY: Final = 40  # ticks between malformed records: ten seconds at four ticks a second
FLUSH_TIMEOUT_S: Final = 15.0  # a local broker acknowledges everything in well under this
# What a broken producer sends: a timestamp that is not one.
MALFORMED: Final = (
    b'{"schema":1,"entity_id":"machine-000","kind":"machine","ts":"yesterday","values":{}}'
)

EPOCH: Final = pd.Timestamp(0, tz="UTC")
Record = tuple[str, bytes, bytes, int | None]  # topic, key, value, Kafka timestamp (ms)


@dataclass
class StreamStats:
    """What the producers did (read by the dashboard while the stream runs)."""

    history: int = 0
    published: int = 0
    malformed: int = 0
    ticks: int = 0
    started_at: float | None = None  # wall clock (time.time) of the first live tick
    onset_at: float | None = None  # wall clock of the first drifted tick
    failures: list[str] = field(default_factory=list)


def encode(messages: Iterable[Message], topic: str, stamps: Iterable[int | None]) -> list[Record]:
    """``(topic, key, value, timestamp)`` records of ``messages``, one stamp each."""
    codec = codec_for(topic)
    return [
        (topic, codec.key(m), codec.encode(m), stamp)
        for m, stamp in zip(messages, stamps, strict=True)
    ]


def _frames(scenario: Scenario, live: bool) -> list[tuple[pd.DataFrame, str]]:
    """(frame, kind) of machines, air and demand: the history or the live part."""
    start = pd.Timestamp(scenario.start)
    parts: list[tuple[pd.DataFrame, str]] = []
    for frame, kind in ((scenario.machines, "machine"), (scenario.air, "air")):
        chosen = frame[(frame[TS] >= start) == live]
        parts.append((chosen[sensor_columns(chosen)], kind))
    demand = scenario.demand
    parts.append((demand[(demand[TS] >= start) == live], "demand"))
    return parts


def _encoded(frame: pd.DataFrame, kind: str, stamped: bool) -> tuple[pd.Series, list[Record]]:
    """The frame's readings in time order, encoded (Kafka timestamp = reading time if
    ``stamped``, else the time of producing); with the readings' times."""
    entity = PRODUCT if kind == "demand" else ENTITY
    ordered = frame.sort_values([TS, entity], kind="stable")
    times = ordered[TS]
    millis: list[int | None] = [None] * len(times)
    if stamped:
        millis = list(((times - EPOCH) // pd.Timedelta(milliseconds=1)).tolist())
    if kind == "demand":
        return times, encode(demand_messages(ordered), topics.READINGS_DEMAND, millis)
    messages = sensor_messages(ordered, "air" if kind == "air" else "machine")
    return times, encode(messages, topics.READINGS_SENSOR, millis)


class Producers:
    """Publishes the scenario: :meth:`history` at once, then :meth:`start` the live ticks."""

    def __init__(self, kafka: KafkaSettings, scenario: Scenario, stop: threading.Event) -> None:
        self.scenario = scenario
        self.stats = StreamStats()
        self._stop = stop
        config = kafka.producer_config(**{"linger.ms": 5, "logger": CLIENT_LOG})
        self._producer = Producer(config)
        self._thread: threading.Thread | None = None

    def history(self) -> int:
        """Publish every history reading (stamped with its own time); how many.

        Raises PublishError when the broker did not acknowledge all of them: the worker
        would warm up on a partial history.
        """
        records = [r for f, k in _frames(self.scenario, False) for r in _encoded(f, k, True)[1]]
        records.sort(key=lambda r: r[3] or 0)  # time order across entities
        for record in records:
            self._produce(record)
        self._flush()
        if self.stats.failures:
            raise PublishError(f"history not published: {self.stats.failures[0]}")
        self.stats.history = len(records)
        return len(records)

    def start(self, scenario: Scenario) -> None:
        """Stream ``scenario``'s live ticks (its onset chosen now) on a thread until they run
        out or ``stop`` is set."""
        self.scenario = scenario
        ticks = self._by_tick()
        self._thread = threading.Thread(target=self._run, args=(ticks,), name="demo-producer")
        self._thread.start()

    def close(self) -> None:
        """Wait for the stream thread, flush, and close the producer."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._flush()
        self._producer.close()

    def _by_tick(self) -> list[list[Record]]:
        """The live records grouped by tick (one simulated hour each)."""
        frames = _frames(self.scenario, live=True)
        times = sorted(set().union(*(set(f[TS]) for f, _ in frames)))
        index = {ts: i for i, ts in enumerate(times)}
        grouped: list[list[Record]] = [[] for _ in times]
        for frame, kind in frames:
            stamps, records = _encoded(frame, kind, stamped=False)
            for ts, record in zip(stamps, records, strict=True):
                grouped[index[ts]].append(record)
        return grouped

    def _run(self, ticks: list[list[Record]]) -> None:
        rate = self.scenario.config.tick_rate
        onset = self.scenario.onset_tick
        began = time.monotonic()
        self.stats.started_at = time.time()
        try:
            for tick, records in enumerate(ticks):
                if self._stop.wait(max(0.0, began + tick / rate - time.monotonic())):
                    break
                if tick == onset:
                    self.stats.onset_at = time.time()
                for record in records:
                    self._produce(record)
                if tick % BAD_EVERY == BAD_EVERY - 1:
                    self._produce((topics.READINGS_SENSOR, b"machine-000", MALFORMED, None))
                    self.stats.malformed += 1
                self.stats.published += len(records)
                self.stats.ticks = tick + 1
                self._producer.poll(0)
        except (KafkaException, PublishError) as exc:
            self.stats.failures.append(str(exc))
            log.error("the producer failed: %s", exc)

    def _produce(self, record: Record) -> None:
        topic, key, value, timestamp = record
        stamp = {} if timestamp is None else {"timestamp": timestamp}
        produce_waiting(self._producer, topic, value, key, self._delivered, **stamp)

    def _delivered(self, error: object, _message: object) -> None:
        if error is not None:
            self.stats.failures.append(str(error))

    def _flush(self) -> None:
        remaining = self._producer.flush(FLUSH_TIMEOUT_S)
        if remaining:
            self.stats.failures.append(f"{remaining} record(s) not acknowledged at flush")
