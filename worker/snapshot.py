"""The windows of one micro-batch: one per accepted reading, taken right after its push.

Entities of one feed share a metric layout (the metrics they report), so the windows are
stacked per layout: ``[readings of the layout, length, metrics of the layout]``. A model
asks for its spec's inputs and window length with :meth:`Snapshot.windows` and gets the
``[rows, W, inputs]`` array ``models.features.frame_rows`` would have cut from a history
frame: the last W readings, oldest first, NaN where an input was never reported. The
work is one gather per layout, never one per reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.base import FloatArray
from models.features.stats import forward_fill

IntArray = npt.NDArray[np.int64]
Rows = Sequence[int] | IntArray


@dataclass(frozen=True)
class Group:
    """Stacked windows of the readings whose entities share one metric layout."""

    names: tuple[str, ...]
    index: Mapping[str, int]
    windows: FloatArray  # [readings, length, len(names)]


class Snapshot:
    """Windows of the accepted readings of one batch (row i = the i-th accepted reading)."""

    def __init__(
        self, length: int, groups: list[Group], group_of: IntArray, position: IntArray
    ) -> None:
        self.length = length
        self.groups = groups
        self._group_of = group_of
        self._position = position

    def __len__(self) -> int:
        return int(self._group_of.shape[0])

    def windows(self, inputs: Sequence[str], length: int, rows: Rows | None = None) -> FloatArray:
        """``[rows, length, len(inputs)]`` windows of ``inputs`` (NaN where never reported).

        A ``length`` above the state's holds NaN in front, like a young entity's window.
        The array is read-only: when one layout reports every input of the rows asked for
        (the usual case), it may be a view of the snapshot's windows.
        """
        picked = self._rows(rows)
        numbers = np.unique(self._group_of[picked]).tolist()
        if len(numbers) == 1 and all(name in self.groups[numbers[0]].index for name in inputs):
            out = self._one_layout(self.groups[numbers[0]], inputs, length, picked)
        else:
            out = self._scattered(numbers, inputs, length, picked)
        out.flags.writeable = False
        return out

    def metrics(self, rows: Rows | None = None) -> tuple[str, ...]:
        """Every metric reported by the entities of ``rows``, in order of first appearance."""
        picked = self._rows(rows)
        seen: dict[str, None] = {}
        for number in np.unique(self._group_of[picked]).tolist():
            seen.update(dict.fromkeys(self.groups[number].names))
        return tuple(seen)

    def last_observed(self, metric: str, rows: Rows) -> FloatArray:
        """The latest non-missing value of ``metric`` in each row's window (NaN if none)."""
        window = self.windows((metric,), self.length, rows)
        return forward_fill(window)[:, -1, 0]

    def _one_layout(
        self, group: Group, inputs: Sequence[str], length: int, picked: IntArray
    ) -> FloatArray:
        """Windows of rows whose layout reports every input: slices where they can be."""
        depth = min(length, self.length)
        positions = self._position[picked]
        stacked = group.windows
        if positions.size == stacked.shape[0] and (positions == np.arange(positions.size)).all():
            block = stacked[:, self.length - depth :]  # every row of the layout, in order
        else:
            block = stacked[positions, self.length - depth :]
        sources = [group.index[name] for name in inputs]
        first = sources[0] if sources else 0
        if sources == list(range(first, first + len(sources))):
            block = block[:, :, first : first + len(sources)]
        else:
            block = block[:, :, sources]
        if depth == length:
            return block.view()  # a view: its flags are the caller's, not the snapshot's
        out = np.full((picked.shape[0], length, len(inputs)), np.nan)
        out[:, length - depth :, :] = block
        return out

    def _scattered(
        self, numbers: list[int], inputs: Sequence[str], length: int, picked: IntArray
    ) -> FloatArray:
        """Windows of rows of several layouts, or of layouts missing an input."""
        out = np.full((picked.shape[0], length, len(inputs)), np.nan)
        depth = min(length, self.length)
        steps = np.arange(length - depth, length)
        for number in numbers:
            group = self.groups[number]
            targets = [j for j, name in enumerate(inputs) if name in group.index]
            if not targets:
                continue
            sources = [group.index[inputs[j]] for j in targets]
            at = np.flatnonzero(self._group_of[picked] == number)
            block = group.windows[self._position[picked[at]], self.length - depth :][:, :, sources]
            out[np.ix_(at, steps, np.asarray(targets, dtype=np.int64))] = block
        return out

    def _rows(self, rows: Rows | None) -> IntArray:
        if rows is None:
            return np.arange(len(self), dtype=np.int64)
        return np.asarray(rows, dtype=np.int64)
