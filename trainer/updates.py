"""Announce registry changes on ``model.updates``: every worker instance hot-swaps on them.

The producer is idempotent with ``acks=all`` (``KafkaSettings.producer_config``) and every
update is flushed before the trainer records its decision: a job that could not announce a
promotion fails and runs again, and announcing the same version twice is harmless (a
worker already serving it swaps nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from confluent_kafka import KafkaException, Producer

from events import ModelUpdate, codec_for, topics
from events.lifecycle import UpdateAction
from events.settings import KafkaSettings
from trainer.errors import PublishError

MAX_METRICS: Final = 64  # ModelUpdate.metrics holds at most 64 figures
MAX_REASON: Final = 1024  # free text fields hold at most 1024 characters


def update_metrics(figures: Mapping[str, float | None]) -> dict[str, float]:
    """The finite figures, as ModelUpdate accepts them (NaN means "not measurable")."""
    finite = {k: float(v) for k, v in figures.items() if v is not None and math.isfinite(v)}
    return dict(list(finite.items())[:MAX_METRICS])


class Announcer(Protocol):
    """Anything that announces a registry change (the publisher, or a fake in tests)."""

    def publish(
        self,
        model: str,
        key: str | None,
        version: int,
        action: UpdateAction,
        metrics: Mapping[str, float | None],
        reason: str,
    ) -> object: ...


class UpdatePublisher:
    """Produces :class:`events.ModelUpdate` records and waits for their acknowledgement."""

    def __init__(
        self, kafka: KafkaSettings, topic: str, timeout_s: float, client: str = "trainer"
    ) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._codec = codec_for(topics.MODEL_UPDATES)
        self._producer: Any = Producer(
            kafka.producer_config(**{"client.id": f"{kafka.client_id}-{client}"})
        )

    def publish(
        self,
        model: str,
        key: str | None,
        version: int,
        action: UpdateAction,
        metrics: Mapping[str, float | None],
        reason: str,
    ) -> ModelUpdate:
        """Announce ``version`` and wait until the broker acknowledged it."""
        update = ModelUpdate(
            model=model,
            key=key,
            version=version,
            action=action,
            ts=datetime.now(UTC),
            metrics=update_metrics(metrics),
            reason=reason[:MAX_REASON] or None,
        )
        failures: list[str] = []

        def delivered(error: object, _message: object) -> None:
            if error is not None:
                failures.append(str(error))

        try:
            self._producer.produce(
                self.topic,
                self._codec.encode(update),
                self._codec.key(update),
                on_delivery=delivered,
            )
        except (KafkaException, BufferError) as exc:
            raise PublishError(
                f"cannot announce {model} v{version} on {self.topic}: {exc}"
            ) from exc
        if self._producer.flush(self.timeout_s) or failures:
            detail = failures[0] if failures else f"not acknowledged within {self.timeout_s:g} s"
            raise PublishError(f"cannot announce {model} v{version} on {self.topic}: {detail}")
        return update

    def close(self) -> None:
        self._producer.flush(self.timeout_s)
