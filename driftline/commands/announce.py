"""Announcing an operator's champion change on ``model.updates`` (``driftline models``).

Workers swap at once on the update; without one (``--no-announce``, or a broker that did
not take it) they still serve the new champion at their next alias check
(``WORKER_ALIAS_CHECK_S``), since the store is the truth. So a failed announcement is a
warning, not an error: the registry change is made and must not be repeated (a second
``rollback`` would go one version further back).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import click
from confluent_kafka import KafkaException

from events import topics
from events.lifecycle import UpdateAction
from events.settings import kafka_settings

# One small record; 10 s flags a broker that is not taking writes without a long hang.
ANNOUNCE_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class ChampionChange:
    """What an operator's promote or rollback did to a key's champion."""

    model: str
    key: str | None
    version: int
    previous: int | None
    action: UpdateAction
    reason: str


@dataclass(frozen=True)
class Announced:
    """Whether the change went out on ``model.updates``; why not, when it did not."""

    sent: bool
    error: str | None = None


Announce = Callable[[ChampionChange], Announced]


def announce_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add --announce/--no-announce, --updates-topic and --bootstrap; pass ``announce``."""

    @functools.wraps(command)
    def run(
        *args: Any, announce: bool, updates_topic: str, bootstrap: str | None, **kw: Any
    ) -> None:
        def send(change: ChampionChange) -> Announced:
            if not announce:
                return Announced(False)
            return publish(change, updates_topic, bootstrap)

        command(*args, announce=send, **kw)

    run = click.option(
        "--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Brokers (host:port,...)."
    )(run)
    run = click.option(
        "--updates-topic",
        default=topics.MODEL_UPDATES,
        show_default=True,
        help="Topic the workers follow for hot swaps.",
    )(run)
    return click.option(
        "--announce/--no-announce",
        default=True,
        show_default=True,
        help="Publish the change on the updates topic (without it, workers follow at their "
        "next alias check, WORKER_ALIAS_CHECK_S).",
    )(run)


def publish(change: ChampionChange, topic: str, bootstrap: str | None) -> Announced:
    """Announce ``change``; a failure is reported, not raised."""
    if change.version == change.previous:
        return Announced(False)  # nothing changed: the workers serve it already
    # Imported here: only announcing needs the Kafka client.
    from trainer.errors import PublishError
    from trainer.updates import UpdatePublisher

    try:
        publisher = UpdatePublisher(
            kafka_settings(bootstrap), topic, ANNOUNCE_TIMEOUT_S, client="operator"
        )
        publisher.publish(
            change.model, change.key, change.version, change.action, {}, change.reason
        )
    except (PublishError, KafkaException, ValueError) as exc:
        return Announced(
            False,
            f"the change is made but was not announced ({exc}); workers serve "
            f"v{change.version} at their next alias check (WORKER_ALIAS_CHECK_S)",
        )
    return Announced(True)
