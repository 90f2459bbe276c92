"""The compiled ring buffers behind per-entity state (their windows: test_state.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

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
    with pytest.raises(IndexError, match="outside"):
        rings.push(np.array([rings.slots]), np.array([[0.0, 0.0]]), windows=False)
    with pytest.raises(ValueError, match="values"):
        rings.push(np.array([first, second]), np.array([[0.0, 0.0]]), windows=False)


def test_the_array_doubles_up_to_its_limit_then_grows_by_an_eighth() -> None:
    rings = Rings(2, 1, slots=8, limit=20)
    sizes = []
    for _ in range(40):
        rings.allocate()
        sizes.append(rings.slots)
    assert sorted(set(sizes)) == [8, 16, 20, 22, 24, 27, 30, 33, 37, 41]


def test_compacting_keeps_every_ring_taken_and_says_where_it_went() -> None:
    rings = Rings(3, 2, slots=8)
    slots = [rings.allocate() for _ in range(40)]  # 64 slots
    values = np.array([[float(s), -float(s)] for s in slots])
    rings.push(np.array(slots), values, windows=False)
    kept = slots[::10]
    for slot in set(slots) - set(kept):
        rings.release(slot)
    assert rings.sparse
    before = {slot: rings.window(slot) for slot in kept}
    moved = rings.compact()
    assert sorted(moved) == kept and rings.slots == 8 and rings.used == len(kept)
    for slot, window in before.items():
        np.testing.assert_array_equal(rings.window(moved[slot]), window)
    assert not rings.sparse and len({rings.allocate() for _ in range(4)}) == 4


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
