"""Errors of the ``monitor`` package, under one root: :class:`MonitorError`."""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error raised by the monitor."""


class RecoveryError(MonitorError):
    """The monitor could not rebuild its state from its topics at start."""


class DeliveryError(MonitorError):
    """A record the monitor produced was not acknowledged; offsets stay where they were."""


class StatusReadError(MonitorError):
    """``model.health`` could not be read for ``driftline monitor status``."""
