"""Health records in shadow mode: an unreadable store skips them instead of stopping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from events import ModelHealth, codec_for, topics
from events.samples import samples
from events.settings import KafkaSettings
from models.registry import Registry
from trainer.service import TrainerService
from trainer.settings import TrainerSettings


def test_an_unreadable_store_skips_a_health_record(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    announcer: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = TrainerSettings(model_store=tmp_path / "store", shadow=True)
    service = TrainerService(settings, kafka_settings, announcer=announcer, serve_http=False)

    def unreadable(self: Registry, name: str, key: str | None = None) -> Any:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Registry, "aliases", unreadable)
    [health] = samples(ModelHealth, 1)
    try:
        service._health(codec_for(topics.MODEL_HEALTH).encode(health), produced_ms=0)
    finally:
        service.close()
    assert service.fatal is None and len(service.runner) == 0
