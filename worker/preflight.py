"""Before a worker joins its group: the topics it writes must exist.

A worker whose output or dead-letter topic is missing runs until the first record that
goes there (for a dead-letter topic: the first malformed reading, maybe days later), then
stops on the delivery error, and again after every restart, since the batch is consumed
again. So the pipeline names the topics it may write (``output_topics``) and they are
checked once, at start: the error comes at once and names every missing topic.

The shadow topic only receives records while a challenger is in shadow mode, so a missing
one is a warning. A broker that cannot be reached is not an error here: the worker starts
and its clients keep trying, as they would later on. A broker that creates topics on first
use (``auto.create.topics.enable``) would create them with its default partition count,
which breaks the co-partitioning of entity topics; they must be created beforehand.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from confluent_kafka import KafkaError

from events.admin import TopicError, connect
from events.settings import KafkaSettings
from worker.errors import WorkerError

log = logging.getLogger(__name__)


class MissingTopicsError(WorkerError):
    """Topics the worker writes do not exist."""


@dataclass(frozen=True)
class OutputTopics:
    """What a pipeline writes: always (outputs, dead letters), and in shadow mode."""

    required: tuple[str, ...]
    shadow: tuple[str, ...] = ()


def check_outputs(pipeline: object, kafka: KafkaSettings, timeout_s: float) -> None:
    """Raise MissingTopicsError naming the missing topics ``pipeline`` writes; warn about a
    missing shadow topic. A pipeline without ``output_topics`` is not checked."""
    declared = getattr(pipeline, "output_topics", None)
    if declared is None:
        return
    outputs: OutputTopics = declared()
    try:
        _, metadata = connect(kafka, timeout_s)
    except TopicError as exc:
        log.warning("could not check that the output topics exist: %s", exc)
        return
    # a topic that exists may still report an error (no leader yet, not authorised to
    # describe it): the producer's own errors say more, later
    existing = {
        name
        for name, topic in metadata.topics.items()
        if topic.error is None or topic.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART
    }
    missing = _missing(outputs.required, existing)
    if missing:
        raise MissingTopicsError(
            f"topic(s) {', '.join(missing)} that this worker writes do not exist: create "
            "them before starting it ('driftline topics create' creates the standard ones; "
            "a dead-letter topic dlq.<input> takes its input topic's partition count)"
        )
    for topic in _missing(outputs.shadow, existing):
        log.warning(
            "shadow topic %s does not exist: create it before a challenger goes into shadow "
            "mode, or the worker stops on its first shadow prediction",
            topic,
        )


def _missing(wanted: Collection[str], existing: Collection[str]) -> list[str]:
    return sorted(set(wanted) - set(existing))
