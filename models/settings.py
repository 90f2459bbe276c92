"""Where models live and how much memory their cache may use (env prefix ``MODEL_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RegistrySettings(BaseSettings):
    """The model store shared by worker, trainer and CLI."""

    model_config = SettingsConfigDict(env_prefix="MODEL_", extra="ignore")

    store: Path = Field(
        Path("model-store"), description="Model store directory (a volume in docker-compose)."
    )
    cache_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1024 * 1024,
        description="Byte budget of each process's in-memory model cache (LRU).",
    )
