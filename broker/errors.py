"""Errors of the local Kafka broker: one root, so callers can catch everything at once."""

from __future__ import annotations


class BrokerError(Exception):
    """Root of every error raised by the ``broker`` package."""


class JarFetchError(BrokerError):
    """The broker's jars could not be resolved from Maven Central."""


class BrokerStartError(BrokerError):
    """The broker process could not be formatted, started or reached."""


class BrokerStopError(BrokerError):
    """The broker process did not exit when asked to."""
