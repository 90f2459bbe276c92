"""Defaults of the worker's bounds: what it accepts, what it keeps, the threads it scores on.

One place for the settings and the modules that enforce them (intake, state, pipeline) to
read.
"""

from __future__ import annotations

from typing import Final

# How far after its record's Kafka timestamp a reading may be stamped (WORKER_MAX_FUTURE_S):
# Kafka's own bound on producer times ahead of the broker (log.message.timestamp.after.max.ms
# defaults to an hour since Kafka 4.0).
DEFAULT_MAX_FUTURE_S: Final = 3600.0
# Entities of one stream held in state (WORKER_MAX_ENTITIES).
DEFAULT_MAX_ENTITIES: Final = 200_000
# Threads that score a batch (WORKER_SCORING_THREADS): with two, the maintenance model
# scores on a helper thread while the caller scores the anomaly model; their compiled
# parts (features, forest walks) release the GIL, so the two overlap.
DEFAULT_SCORING_THREADS: Final = 2
# Aborted transactions in a row after which an exactly-once worker stops
# (WORKER_TRANSACTION_ABORT_LIMIT).
DEFAULT_ABORT_LIMIT: Final = 5
