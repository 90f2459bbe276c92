"""Ring buffers of every entity that shares one metric layout, in one array.

:class:`Rings` holds ``[slots, length, width]`` values and one write position per slot; an
entity owns a slot while it is in state. A slot's ring is full from the start (NaN where
nothing was pushed yet), and its write position is also its oldest row, so a window,
oldest first, is the ring read from the write position on.

A whole batch of pushes runs as one compiled loop (:meth:`Rings.push`), in batch order,
taking each reading's window right after its push when asked: the same windows as one
``models.features.EntityWindow`` push and copy per reading, without Python's cost per
reading.

Slots are reused once released. When every slot is taken the array doubles, up to
``limit`` slots (the state's entity bound), and past it grows by an eighth: the memory
held stays close to what the bound allows. When releases leave at most a quarter of the
slots taken (a revoked partition, evictions), :meth:`Rings.compact` moves the rings into
an array twice the size of what is left, and says where each one went.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from models.base import FloatArray

IntArray = npt.NDArray[np.int64]

# Slots of a new layout's array; it doubles when they are all taken. One: a fleet whose
# entities report many different metric sets holds one layout per set, most of them small.
FIRST_SLOTS = 1


@njit(nogil=True, cache=True)
def _push(
    buffer: Any, head: Any, slots: Any, values: Any, windows: Any
) -> None:  # pragma: no cover - compiled
    length = buffer.shape[1]
    take = windows.shape[0] > 0
    for k in range(slots.shape[0]):
        s = slots[k]
        h = head[s]
        buffer[s, h, :] = values[k, :]
        h += 1
        if h == length:
            h = 0
        head[s] = h
        if take:
            older = length - h
            windows[k, :older, :] = buffer[s, h:, :]
            windows[k, older:, :] = buffer[s, :h, :]


class Rings:
    """Ring buffers of ``length`` readings of ``width`` values, one per slot."""

    def __init__(
        self, length: int, width: int, slots: int = FIRST_SLOTS, limit: int | None = None
    ) -> None:
        if length < 1 or width < 0 or slots < 1:
            raise ValueError(f"Rings need length and slots >= 1, got {length}x{width}x{slots}")
        self.buffer: FloatArray = np.full((slots, length, width), np.nan)
        self.head: IntArray = np.zeros(slots, dtype=np.int64)
        self.limit = limit  # slots the array doubles up to (None: no limit)
        self._free = list(range(slots - 1, -1, -1))  # popped from the end: lowest first

    @property
    def length(self) -> int:
        return int(self.buffer.shape[1])

    @property
    def width(self) -> int:
        return int(self.buffer.shape[2])

    @property
    def slots(self) -> int:
        return int(self.buffer.shape[0])

    @property
    def used(self) -> int:
        """Slots taken."""
        return self.slots - len(self._free)

    @property
    def sparse(self) -> bool:
        """At most a quarter of the slots are taken (of more than the first)."""
        return self.slots > FIRST_SLOTS and 4 * self.used <= self.slots

    def allocate(self) -> int:
        """A free slot (its ring all NaN)."""
        if not self._free:
            taken = self.slots
            if self.limit is None or 2 * taken <= self.limit:
                size = 2 * taken
            else:
                size = max(self.limit, taken + max(taken // 8, 1))
            self._resize(size, np.arange(taken))
            self._free = list(range(size - 1, taken - 1, -1))
        return self._free.pop()

    def release(self, slot: int) -> None:
        """Give ``slot`` back, emptied."""
        self.buffer[slot] = np.nan
        self.head[slot] = 0
        self._free.append(slot)

    def compact(self) -> dict[int, int]:
        """Move the taken slots to the front of an array twice their number (at least the
        first slot); where each slot went (old -> new)."""
        taken = np.setdiff1d(np.arange(self.slots), self._free)
        size = max(FIRST_SLOTS, 2 * taken.size)
        self._resize(size, taken)
        self._free = list(range(size - 1, taken.size - 1, -1))
        return dict(zip(taken.tolist(), range(taken.size), strict=True))

    def _resize(self, size: int, keep: IntArray) -> None:
        """A ``size``-slot array holding the rings of ``keep``, in order, then empty ones."""
        buffer = np.full((size, self.length, self.width), np.nan)
        buffer[: keep.size] = self.buffer[keep]
        head = np.zeros(size, dtype=np.int64)
        head[: keep.size] = self.head[keep]
        self.buffer, self.head = buffer, head

    def window(self, slot: int) -> FloatArray:
        """``[length, width]`` copy of a slot's ring, oldest first."""
        h = int(self.head[slot])
        return np.concatenate((self.buffer[slot, h:], self.buffer[slot, :h]))

    def adopt(self, slot: int, other: Rings, theirs: int) -> None:
        """Copy ``other``'s ring at ``theirs`` into ``slot``: its columns first, the rest NaN
        (``other`` is as long and at most as wide)."""
        self.buffer[slot] = np.nan
        self.buffer[slot, :, : other.width] = other.buffer[theirs]
        self.head[slot] = other.head[theirs]

    def lengthen(self, length: int) -> None:
        """Hold ``length`` readings per slot, keeping the newest held (NaN in front)."""
        if length <= self.length:
            return
        order = (self.head[:, np.newaxis] + np.arange(self.length)) % self.length
        grown = np.full((self.slots, length, self.width), np.nan)
        every = np.arange(self.slots)[:, np.newaxis]
        grown[:, length - self.length :] = self.buffer[every, order]
        self.buffer = grown
        self.head[:] = 0

    def push(self, slots: IntArray, values: FloatArray, windows: bool) -> FloatArray:
        """Push row k of ``values`` ``[n, width]`` into ``slots[k]``, in order; with
        ``windows``, each slot's ``[length, width]`` window right after its push
        (``[n, length, width]``), else an empty array."""
        # the compiled loop does not check bounds: a bad slot would write anywhere
        if slots.size and not (int(slots.min()) >= 0 and int(slots.max()) < self.slots):
            raise IndexError(f"slots {slots.min()}..{slots.max()} outside 0..{self.slots - 1}")
        if values.shape != (slots.shape[0], self.width):
            raise ValueError(
                f"{slots.shape[0]} slots need [{slots.shape[0]}, {self.width}] "
                f"values, got {list(values.shape)}"
            )
        taken = slots.shape[0] if windows else 0
        out = np.empty((taken, self.length, self.width))
        _push(self.buffer, self.head, slots, values, out)
        return out


def warm() -> None:
    """Compile the push loop (or read it from numba's cache) before the first batch."""
    rings = Rings(2, 1, 1)
    rings.push(np.zeros(1, dtype=np.int64), np.zeros((1, 1)), windows=True)
