"""A broker that demands a SASL login, and the environment of clients that have one.

The broker is a ``LocalBroker`` with an extra ``SASL_PLAINTEXT`` listener using the PLAIN
mechanism (users in the listener's JAAS config); its own broker-to-broker and controller
listeners stay PLAINTEXT. The password is random per session, so finding it anywhere in
an output means it leaked.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from broker import LocalBroker

USER = "driftline"


@dataclass(frozen=True)
class SaslBroker:
    """Where the SASL listener is and the credentials it accepts."""

    bootstrap: str
    username: str
    password: str

    def env(self, password: str | None = None, **extra: str) -> dict[str, str]:
        """A process environment whose Kafka settings log in (with ``password`` if given)."""
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KAFKA_", "WORKER_", "MONITOR_", "TRAINER_"))
        }
        return {
            **base,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_USERNAME": self.username,
            "KAFKA_SASL_PASSWORD": self.password if password is None else password,
            **extra,
        }


@pytest.fixture(scope="session")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    password = f"pw-{secrets.token_hex(12)}"
    admin = f"admin-{secrets.token_hex(12)}"
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="admin" password="{admin}" user_admin="{admin}" user_{USER}="{password}";'
    )
    broker = LocalBroker(
        tmp_path_factory.mktemp("sasl-kafka"),
        extra_listeners={"SASL": "SASL_PLAINTEXT"},
        extra_properties={
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl.plain.sasl.jaas.config": jaas,
        },
    )
    with broker:
        yield SaslBroker(broker.listener_address("SASL"), USER, password)
