"""Every tree of a fitted forest in one flat node table, walked by compiled code.

scikit-learn scores a forest tree by tree: one ``apply`` call per tree, then a gather and a
sum per tree in NumPy. On a worker's batch of a hundred rows those 300 calls (anomaly and
maintenance forests) cost more than the trees themselves. Here the trees are laid out once,
when a model is loaded, as arrays of every node of every tree, and one compiled call
(numba) walks them all:

* a node's two children sit side by side in ``children``, so a step is
  ``node = children[2 * node + goes_right]`` without a branch on the direction;
* a leaf is its own child on both sides, with an infinite threshold, so every row takes
  exactly ``depth`` steps in each tree and the rows of a batch advance level by level,
  independent of each other (the CPU overlaps them);
* trees are walked one after the other, over every row: one tree's nodes stay in cache;
* a node takes 17 bytes (int32 column and children, float32 threshold, one flag) instead
  of scikit-learn's 64, so a forest's nodes fit a core's cache.

A row goes left when its value is at most the node's threshold, or when it is NaN and the
node sends missing values left: scikit-learn's rule. A batch without NaN (a worker's steady
state: every window full) is walked without reading the missing-value flags; one load and
one test fewer per step make it about a third faster.

scikit-learn compares float32 input with float64 thresholds; a float32 value is at most a
threshold exactly when it is at most the largest float32 not above it, so the thresholds are
stored rounded down to float32 and every comparison gives scikit-learn's answer. Leaf
values are added tree by tree in the forest's order, as scikit-learn adds them, so the sums
are bit for bit the same (``tests/models/test_forest.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from models.base import FloatArray

# (the compiled tree, the columns it reads or None for all, per-node values [nodes, k])
Tree = tuple[Any, npt.NDArray[np.intp] | None, FloatArray]


@njit(nogil=True, cache=True, inline="always")
def _add_leaves(node: Any, value: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Add the values of the leaves the rows reached in one tree to their sums."""
    for i in range(node.shape[0]):
        for j in range(value.shape[1]):
            out[i, j] += value[node[i], j]


@njit(nogil=True, cache=True)
def _walk(
    x: Any,
    feature: Any,
    threshold: Any,
    missing_left: Any,
    children: Any,
    value: Any,
    roots: Any,
    depths: Any,
    out: Any,
    any_nan: bool,
) -> None:  # pragma: no cover - compiled; the scorers' tests run it
    """Walk every row through every tree and add the leaves reached to ``out``. Without
    NaN in ``x`` a value goes right exactly when it is above the threshold; only
    ``any_nan`` batches read the missing-value flags."""
    rows = x.shape[0]
    node = np.empty(rows, dtype=np.int32)
    for tree in range(roots.shape[0]):
        node[:] = roots[tree]
        for _ in range(depths[tree]):
            if any_nan:
                for i in range(rows):
                    at = node[i]
                    v = x[i, feature[at]]
                    right = (v > threshold[at]) | ((v != v) & (missing_left[at] == 0))
                    node[i] = children[2 * at + right]
            else:
                for i in range(rows):
                    at = node[i]
                    node[i] = children[2 * at + (x[i, feature[at]] > threshold[at])]
        _add_leaves(node, value, out)


@dataclass(frozen=True)
class NodeTable:
    """The nodes of every tree of a forest, concatenated (see the module docstring)."""

    feature: npt.NDArray[np.int32]  # column read by the node (0 at leaves)
    threshold: npt.NDArray[np.float32]  # rounded down; +inf at leaves: rows stay there
    missing_left: npt.NDArray[np.uint8]  # 1: NaN goes left (always 1 at leaves)
    children: npt.NDArray[np.int32]  # [2 * nodes]: left, right; a leaf points at itself
    value: FloatArray  # [nodes, k]: what a row ending at the node adds
    roots: npt.NDArray[np.int64]  # first node of each tree
    depths: npt.NDArray[np.int64]  # steps from a root to its deepest leaf

    @classmethod
    def of(cls, trees: Sequence[Tree], features: int) -> NodeTable:
        """Lay out ``trees`` (scikit-learn ``Tree`` objects with their per-node values) of a
        forest reading ``features`` columns, and have the walk compiled (:meth:`warm`)."""
        parts: dict[str, list[Any]] = {name: [] for name in ("f", "t", "m", "c", "v")}
        roots, depths, base = [], [], 0
        for tree, columns, value in trees:
            count = int(tree.node_count)
            left, right = tree.children_left, tree.children_right
            leaf = left < 0
            own = np.arange(count)
            feature = np.where(leaf, 0, tree.feature)
            if columns is not None:  # the tree was fitted on a subset of the columns
                feature = np.asarray(columns)[feature]
            parts["f"].append(feature)
            parts["t"].append(np.where(leaf, np.inf, tree.threshold))
            missing = np.asarray(tree.missing_go_to_left, dtype=np.uint8)
            parts["m"].append(np.where(leaf, 1, missing))
            pairs = np.column_stack([np.where(leaf, own, left), np.where(leaf, own, right)])
            parts["c"].append(pairs.ravel() + base)
            parts["v"].append(np.asarray(value, dtype=np.float64).reshape(count, -1))
            roots.append(base)
            depths.append(int(tree.max_depth))
            base += count
        if 2 * base > np.iinfo(np.int32).max:
            raise ValueError(f"a forest of {base:,} nodes is too large for 32-bit node indices")
        table = cls(
            feature=np.concatenate(parts["f"]).astype(np.int32),
            threshold=float32_at_most(np.concatenate(parts["t"])),
            missing_left=np.concatenate(parts["m"]).astype(np.uint8),
            children=np.concatenate(parts["c"]).astype(np.int32),
            value=np.ascontiguousarray(np.concatenate(parts["v"])),
            roots=np.asarray(roots, dtype=np.int64),
            depths=np.asarray(depths, dtype=np.int64),
        )
        table.warm(features)
        return table

    def warm(self, columns: int) -> None:
        """Score one row of ``columns`` zeros and one of NaN: the walk is compiled (or read
        from numba's cache) now, once per process, and both of its paths are run, not in
        the first batch that needs them."""
        self.sum_leaves(np.zeros((1, columns), dtype=np.float32))
        self.sum_leaves(np.full((1, columns), np.nan, dtype=np.float32))

    @property
    def width(self) -> int:
        return int(self.value.shape[1])

    def sum_leaves(self, x: npt.NDArray[np.float32]) -> FloatArray:
        """``[rows, k]``: per row, the values of the leaves it reaches, summed over trees."""
        out = np.zeros((x.shape[0], self.width))
        if not (x.shape[0] and self.roots.size):
            return out
        _walk(
            x,
            self.feature,
            self.threshold,
            self.missing_left,
            self.children,
            self.value,
            self.roots,
            self.depths,
            out,
            bool(np.isnan(x).any()),
        )
        return out


def float32_at_most(values: FloatArray) -> npt.NDArray[np.float32]:
    """The largest float32 at most each float64 value (infinities kept).

    >>> float32_at_most(np.array([0.1, 0.5, np.inf])).tolist() == [
    ...     float(np.nextafter(np.float32(0.1), np.float32(0))), 0.5, float("inf")]
    True
    """
    nearest = np.asarray(values, dtype=np.float64).astype(np.float32)
    above = nearest.astype(np.float64) > values
    nearest[above] = np.nextafter(nearest[above], np.float32(-np.inf))
    return nearest


def warm() -> None:
    """Compile the walk (or read it from numba's cache) now, on a one-node forest."""
    table = NodeTable(
        feature=np.zeros(1, dtype=np.int32),
        threshold=np.full(1, np.inf, dtype=np.float32),
        missing_left=np.ones(1, dtype=np.uint8),
        children=np.zeros(2, dtype=np.int32),
        value=np.zeros((1, 1)),
        roots=np.zeros(1, dtype=np.int64),
        depths=np.zeros(1, dtype=np.int64),
    )
    table.warm(1)
