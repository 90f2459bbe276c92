"""The state file of a detached broker: what ``driftline broker stop/status`` needs.

Each data directory holds ``broker.json``. The default instance (started without a data
directory) is also recorded by a pointer at ``$DRIFTLINE_CACHE_DIR/broker.json`` so that
``stop`` and ``status`` find it without arguments.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from broker.errors import BrokerError
from broker.jars import cache_root
from broker.process import command_line, is_alive

STATE_FILE = "broker.json"


@dataclass(frozen=True)
class BrokerState:
    """A running (or once running) broker process."""

    pid: int
    port: int
    controller_port: int
    data_dir: str
    properties_file: str
    kafka_version: str
    # The data directory was made by the start command and is deleted by stop.
    temporary: bool = False

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def is_running(self) -> bool:
        """Whether the recorded pid still runs this broker (not a reused pid)."""
        if not is_alive(self.pid):
            return False
        argv = command_line(self.pid)
        return argv is None or self.properties_file in argv  # None: no procfs to check

    def save(self) -> Path:
        path = Path(self.data_dir) / STATE_FILE
        _write_json(path, asdict(self))
        return path

    @classmethod
    def load(cls, data_dir: Path) -> BrokerState | None:
        """The state in ``data_dir``, or None if there is none."""
        path = data_dir / STATE_FILE
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise BrokerError(f"cannot read broker state {path}: {exc}") from exc


def pointer_path() -> Path:
    return cache_root() / STATE_FILE


def save_default(data_dir: Path) -> None:
    """Record ``data_dir`` as the default instance's."""
    _write_json(pointer_path(), {"data_dir": str(data_dir)})


def default_data_dir() -> Path | None:
    """The default instance's data directory, or None if none was recorded."""
    path = pointer_path()
    if not path.is_file():
        return None
    try:
        return Path(json.loads(path.read_text())["data_dir"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BrokerError(f"cannot read {path}: {exc}") from exc


def clear_default() -> None:
    pointer_path().unlink(missing_ok=True)


def _write_json(path: Path, payload: dict[str, object]) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(payload, indent=2) + "\n")
    temporary.replace(path)
