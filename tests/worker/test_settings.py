"""Worker settings refuse combinations that cannot work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from worker.settings import WorkerSettings


def test_liveness_must_outlast_a_wait_for_the_broker() -> None:
    # A batch waits up to delivery_timeout_ms for its acknowledgements while the broker is
    # away; a liveness probe shorter than that restarts a worker that is only waiting.
    with pytest.raises(ValidationError, match="must exceed delivery_timeout_ms"):
        WorkerSettings(liveness_timeout_s=60, delivery_timeout_ms=120_000)
    defaults = WorkerSettings()
    assert defaults.liveness_timeout_s > defaults.delivery_timeout_ms / 1000
