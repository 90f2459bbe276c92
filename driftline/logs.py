"""Logging set-up shared by every command: plain lines, or JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LogSettings(BaseSettings):
    """Logging (env prefix ``LOG_``)."""

    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    level: str = Field("INFO", description="Root log level (DEBUG, INFO, WARNING, ERROR).")
    json_lines: bool = Field(False, alias="LOG_JSON", description="One JSON object per line.")


class JsonFormatter(logging.Formatter):
    """Minimal JSON-lines formatter: time, level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: LogSettings | None = None) -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    settings = settings or LogSettings()
    handler = logging.StreamHandler(sys.stderr)
    if settings.json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
