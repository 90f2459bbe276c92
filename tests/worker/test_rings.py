"""The compiled ring buffers behind per-entity state (their windows: test_state.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from worker.rings import Rings


def test_a_slot_released_and_taken_again_starts_empty() -> None:
    rings = Rings(3, 2, slots=1)
    first = rings.allocate()
    rings.push(np.array([first]), np.array([[1.0, 2.0]]), windows=False)
    second = rings.allocate()  # every slot taken: the array doubles, keeping the first
    assert rings.used == 2 and rings.window(first)[-1].tolist() == [1.0, 2.0]
    rings.release(first)
    assert rings.allocate() == first and np.isnan(rings.window(first)).all()
    assert second != first


def test_warming_compiles_every_layout_a_batch_passes() -> None:
    """After ``rings.warm`` (the pipeline calls it as it starts) pushing a batch compiles
    nothing more: numba compiles once per argument layout."""
    code = """
import json
from worker import rings
from worker.state import StreamState
rings.warm()
before = len(rings._push.signatures)
state = StreamState(4)
state.warm(["a", "b"], [{"x": 1.0}, {"x": 2.0, "y": None}], [1, 1], [("t", 0)] * 2)
state.push_batch(["a", "b"], [{"x": 3.0}, {}], [2, 2], [("t", 0)] * 2)
print(json.dumps([before, len(rings._push.signatures)]))
"""
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    before, after = json.loads(run.stdout.strip().splitlines()[-1])
    assert after == before, f"a batch compiled {after} signatures, warm-up {before}"
