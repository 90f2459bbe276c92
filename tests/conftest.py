"""Shared fixtures: one real Kafka broker per test session, and unique topics on it.

The broker is, in order of preference: the one named by ``KAFKA_BOOTSTRAP_SERVERS``; a
testcontainers KafkaContainer when a Docker engine answers; else a ``LocalBroker`` (the
project's own Apache Kafka JVM) in a temporary directory. Every test that uses
``kafka_bootstrap`` (directly or through another fixture) is marked ``integration``, so
``pytest -m 'not integration'`` runs without a broker.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from broker import LocalBroker
from events.settings import KafkaSettings

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
# A Docker engine that does not answer a ping within 2 s is treated as absent.
DOCKER_PING_TIMEOUT_S = 2
# Topic creation on a single local broker takes milliseconds; 30 s flags a broken broker.
ADMIN_TIMEOUT_S = 30.0

TopicFactory = Callable[..., str]


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM (a CI time limit, a closed session) stops the run as Ctrl-C does, so the
    fixtures' teardown stops the brokers and services they started."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the broker as ``integration``."""
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_S)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no permission, no engine: all mean "no Docker"
        return False


@contextmanager
def _container_broker() -> Iterator[str]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers before 4.x
        from testcontainers.kafka import KafkaContainer
    with KafkaContainer().with_kraft() as container:
        yield str(container.get_bootstrap_server())


@contextmanager
def _local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with LocalBroker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a real Kafka broker shared by the whole session."""
    configured = os.environ.get(BOOTSTRAP_ENV)
    if configured:
        yield configured
        return
    source: AbstractContextManager[str] = (
        _container_broker() if _docker_answers() else _local_broker(tmp_path_factory)
    )
    with source as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Client settings that reach the session's broker."""
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


@pytest.fixture
def unique_topic(kafka_settings: KafkaSettings) -> Iterator[TopicFactory]:
    """Factory that creates a topic with a name no other test uses and returns the name.

    ``unique_topic("readings", partitions=3, config={"cleanup.policy": "compact"})``.
    The topics are deleted after the test.
    """
    admin = AdminClient(kafka_settings.client_config())
    created: list[str] = []

    def create(
        prefix: str = "test", partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        topic = NewTopic(
            name, num_partitions=partitions, replication_factor=1, config=dict(config or {})
        )
        futures: dict[str, Any] = admin.create_topics([topic], request_timeout=ADMIN_TIMEOUT_S)
        futures[name].result(timeout=ADMIN_TIMEOUT_S)
        created.append(name)
        return name

    yield create
    if created:
        # Best effort (the broker is discarded at the end of the session anyway), but wait
        # for the answers so that the request is not dropped with the client.
        deleted = admin.delete_topics(created, request_timeout=ADMIN_TIMEOUT_S)
        for future in deleted.values():
            future.exception(timeout=ADMIN_TIMEOUT_S)
