"""Kafka connection settings shared by every service (env prefix ``KAFKA_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """How every driftline client reaches the brokers.

    Secrets are ``SecretStr``: they print as ``**********`` and only
    :meth:`client_config` reveals them, to hand them to librdkafka.
    """

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of brokers."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security.protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    ssl_ca_location: Path | None = Field(None, description="CA certificate file (PEM).")
    ssl_certificate_location: Path | None = Field(None, description="Client certificate (PEM).")
    ssl_key_location: Path | None = Field(None, description="Client private key (PEM).")
    ssl_key_password: SecretStr | None = Field(None, description="Private key password.")
    client_id: str = Field("driftline", description="client.id prefix reported to brokers.")

    def client_config(self) -> dict[str, Any]:
        """librdkafka properties common to producers, consumers and admin clients."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        optional = {
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        config.update({key: str(value) for key, value in optional.items() if value is not None})
        if self.ssl_key_password is not None:
            config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return config

    def reader_config(self, client_id: str, group_id: str) -> dict[str, Any]:
        """A consumer outside any consumer group: assign() only, never commits.

        Used to read a topic back (warm-up, recovery, replays, broadcasts). librdkafka wants
        a ``group.id`` even for assign(); nothing is ever committed to it. A start offset
        that retention already deleted reads from the oldest record.
        """
        return {
            **self.client_config(),
            "client.id": client_id,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        """Producer properties: idempotent, acks=all, Java-compatible key partitioning.

        librdkafka's default partitioner hashes keys with CRC32; Java clients (and faust's
        aiokafka) use murmur2. ``murmur2_random`` puts a key on the same partition number
        whichever client produced it, which entity co-partitioning relies on.
        """
        return {
            **self.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            **overrides,
        }


def kafka_settings(bootstrap_servers: str | None = None) -> KafkaSettings:
    """Settings from the environment, with the bootstrap servers overridden when given."""
    settings = KafkaSettings()
    if bootstrap_servers:
        settings = KafkaSettings.model_validate(
            {**settings.model_dump(), "bootstrap_servers": bootstrap_servers}
        )
    return settings
