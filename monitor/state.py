"""Rebuilding the monitor's state at start by replaying its own output topics.

The monitor keeps no state store. What it needs after a restart is rebuilt from Kafka:

* **cooldowns and known request ids** from ``retrain.requests`` over the cooldown period or
  the recovery horizon, whichever is longer (its own requests and operators'), so a
  restarted monitor does not ask again;
* **rolling windows, hysteresis and request decisions** by replaying ``monitor.pairs``
  produced within ``recovery_horizon_s`` through the evaluator in replay mode, each pair at
  the time it was written: a drift handled three hours ago is judged against the cooldown
  of its own request, not against the time of the restart. A decision over the same
  evidence gets the same id (the judged window's end), so a request decided just before
  the restart is not repeated either: its id and its cooldown were read back first. One
  decided and never published (a crash in between) is published now;
* **the join** (unmatched predictions, buffered actuals) by the group consumer itself: the
  service never commits past a record the join still holds (``monitor.offsets``), so the
  inputs re-read after a restart rebuild it; predictions whose pair was replayed here are
  remembered and not paired twice.

What is not rebuilt exactly: expirations counted before the restart for predictions
behind the committed offsets (label coverage is recounted from the restart on), and
pairs older than the horizon (choose it to cover ``count_window`` pairs).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Message

from events import MonitorPair, RetrainRequest, codec_for, topics
from events.settings import KafkaSettings
from monitor.evaluator import Evaluator
from monitor.join import Joiner
from monitor.replay import read_topic
from monitor.settings import MonitorSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovery:
    """What the start-up replay read."""

    requests: int
    pairs: int
    undecodable: int
    seconds: float


def recover(
    settings: MonitorSettings,
    kafka: KafkaSettings,
    joiner: Joiner,
    evaluator: Evaluator,
    now: datetime,
) -> Recovery:
    """Replay the requests and pairs topics into ``evaluator`` and ``joiner``."""
    started = time.monotonic()
    now_ms = int(now.timestamp() * 1000)
    lookback_s = max(settings.cooldown_s, settings.recovery_horizon_s)
    requests, bad_requests = _replay_requests(
        settings, kafka, evaluator, now_ms - int(lookback_s * 1000)
    )
    evaluator.replaying = True
    try:
        pairs, bad_pairs = _replay_pairs(
            settings,
            kafka,
            joiner,
            evaluator,
            now,
            now_ms - int(settings.recovery_horizon_s * 1000),
        )
    finally:
        evaluator.replaying = False
    recovery = Recovery(requests, pairs, bad_requests + bad_pairs, time.monotonic() - started)
    log.info(
        "recovered from %s and %s: %d request(s), %d pair(s), %d undecodable, %.2f s",
        settings.requests_topic,
        settings.pairs_topic,
        recovery.requests,
        recovery.pairs,
        recovery.undecodable,
        recovery.seconds,
    )
    return recovery


def _replay_requests(
    settings: MonitorSettings, kafka: KafkaSettings, evaluator: Evaluator, since_ms: int
) -> tuple[int, int]:
    codec = codec_for(topics.RETRAIN_REQUESTS)
    config = settings.reader_config(kafka, "recover-requests")
    read = bad = 0
    for batch in read_topic(config, settings.requests_topic, since_ms, settings.recovery_timeout_s):
        decoded = codec.decode_batch([m.value() for m in batch])
        request: RetrainRequest
        for request in decoded.messages:
            evaluator.note_request(request)
        read += len(decoded.messages)
        bad += len(decoded.failures)
    return read, bad


def _written_at(message: Message, now: datetime) -> datetime:
    """When ``message`` was written (its broker timestamp), never later than ``now``."""
    _, ms = message.timestamp()
    return now if ms <= 0 else min(datetime.fromtimestamp(ms / 1000, UTC), now)


def _replay_pairs(
    settings: MonitorSettings,
    kafka: KafkaSettings,
    joiner: Joiner,
    evaluator: Evaluator,
    now: datetime,
    since_ms: int,
) -> tuple[int, int]:
    codec = codec_for(topics.MONITOR_PAIRS)
    config = settings.reader_config(kafka, "recover-pairs")
    read = bad = 0
    for batch in read_topic(config, settings.pairs_topic, since_ms, settings.recovery_timeout_s):
        decoded = codec.decode_batch([m.value() for m in batch])
        pair: MonitorPair
        for pair, index in zip(decoded.messages, decoded.indices, strict=True):
            joiner.remember((pair.prediction_id,))
            evaluator.add_pair(pair, _written_at(batch[index], now))
        read += len(decoded.messages)
        bad += len(decoded.failures)
    return read, bad
