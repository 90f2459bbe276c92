"""The files of a saved sequence model: nothing in them needs pickle to read.

* ``sequence.keras``: the network in Keras' native format (JSON config + weights).
* ``scaler.json``: metric order and per-metric mean/std (``ChannelScaler``).
* ``sequence.json``: parameters, interval half-widths and training facts (``info``).
* ``training_log.csv``: the CSVLogger log of the run that produced these weights (a
  fine-tuned version holds its fine-tune run; its parent version holds the earlier one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models import sequence_net as net
from models.base import FloatArray, ModelError
from models.sequence_window import ChannelScaler

NETWORK_FILE = "sequence.keras"
SCALER_FILE = "scaler.json"
STATE_FILE = "sequence.json"
LOG_FILE = "training_log.csv"


@dataclass(frozen=True)
class SavedState:
    """Everything but the network and the scaler."""

    params: dict[str, Any]
    half_width: FloatArray
    info: dict[str, Any]
    training_log: str


def write(directory: Path, network: Any, scaler: ChannelScaler, state: SavedState) -> list[str]:
    """Write the four files into ``directory``; return their names."""
    net.save(network, directory / NETWORK_FILE)
    _write_json(directory / SCALER_FILE, scaler.to_json())
    document = {
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in state.params.items()},
        "half_width": [float(w) for w in state.half_width],
        "info": state.info,
    }
    _write_json(directory / STATE_FILE, document)
    (directory / LOG_FILE).write_text(state.training_log, encoding="utf-8")
    return [NETWORK_FILE, SCALER_FILE, STATE_FILE, LOG_FILE]


def read(directory: Path) -> tuple[Any, ChannelScaler, SavedState]:
    """Read the files written by :func:`write`; raise ModelError naming what is wrong."""
    try:
        document = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        scaler_json = json.loads((directory / SCALER_FILE).read_text(encoding="utf-8"))
        state = SavedState(
            params=dict(document["params"]),
            half_width=np.asarray(document["half_width"], dtype=np.float64),
            info=dict(document.get("info", {})),
            training_log=(directory / LOG_FILE).read_text(encoding="utf-8"),
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"sequence: cannot read model files in {directory}: {exc}") from exc
    return net.load(directory / NETWORK_FILE), ChannelScaler.from_json(scaler_json), state


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
