"""Batch scoring of fitted scikit-learn forests without per-tree dispatch.

scikit-learn scores a forest through joblib, one task per tree, even with ``n_jobs=1``; each
task re-checks the tree, sets warning filters and a config context. On a worker's batch of
a few hundred rows that bookkeeping costs more than the trees themselves (a 200-tree
IsolationForest spent ~80% of its ``decision_function`` time outside the trees). The
scorers here precompute, once per fitted forest, what every leaf contributes and lay the
trees out as one node table that compiled code walks in a single call
(:mod:`models.treewalk`): the same comparisons and the same sums in the same order, so the
results are identical to scikit-learn's (``tests/models/test_forest.py`` checks it).

>>> import numpy as np
>>> from sklearn.ensemble import IsolationForest
>>> x = np.random.default_rng(0).normal(size=(300, 4))
>>> forest = IsolationForest(n_estimators=20, random_state=0).fit(x)
>>> bool(np.array_equal(IsolationScorer(forest).decision_function(x),
...                     forest.decision_function(x)))
True
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from models.base import FloatArray
from models.treewalk import NodeTable, Tree


def _tree_input(matrix: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """What a compiled tree reads: C-contiguous float32 (scikit-learn's own conversion)."""
    return np.ascontiguousarray(matrix, dtype=np.float32)


def average_path_length(samples: npt.ArrayLike) -> FloatArray:
    """Mean path length of an unsuccessful search in a binary tree of ``samples`` points.

    The normaliser c(n) of the isolation forest paper, as scikit-learn computes it: 0 for
    n <= 1, 1 for n == 2, else 2 (ln(n - 1) + Euler's gamma) - 2 (n - 1) / n.
    """
    n = np.asarray(samples, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    many = n > 2
    out[many] = 2.0 * (np.log(n[many] - 1.0) + np.euler_gamma) - 2.0 * (n[many] - 1.0) / n[many]
    return out


class Decides(Protocol):
    """What scores an isolation forest: :class:`IsolationScorer`, or the fitted forest."""

    def decision_function(self, matrix: FloatArray) -> FloatArray: ...


class ScoresProba(Protocol):
    """What scores a forest classifier: :class:`ProbaScorer`, or the fitted forest."""

    def predict_proba(self, matrix: FloatArray) -> FloatArray: ...


class IsolationScorer:
    """``decision_function`` of a fitted ``IsolationForest`` (dense input)."""

    def __init__(self, forest: Any) -> None:
        trees: list[Tree] = []
        for estimator, features in zip(
            forest.estimators_, forest.estimators_features_, strict=True
        ):
            tree = estimator.tree_
            # path length of a leaf: its depth (root = 1) plus c(samples in it), minus 1
            depth = tree.compute_node_depths() + average_path_length(tree.n_node_samples) - 1.0
            columns = None if len(features) == forest.n_features_in_ else np.asarray(features)
            trees.append((tree, columns, depth))
        self._table = NodeTable.of(trees, int(forest.n_features_in_))
        self._denominator = len(trees) * float(average_path_length(forest.max_samples_))
        self._offset = float(forest.offset_)

    def decision_function(self, matrix: FloatArray) -> FloatArray:
        """Negative for outliers, positive for inliers (scikit-learn's convention)."""
        depths = self._table.sum_leaves(_tree_input(matrix))[:, 0]
        if self._denominator == 0:
            # fitted on one sample: scikit-learn takes the normalised depth as 1, so 2**-1
            scores = np.full_like(depths, 0.5)
        else:
            scores = 2.0 ** (-(depths / self._denominator))
        result: FloatArray = -scores - self._offset
        return result


class ProbaScorer:
    """``predict_proba`` of a fitted single-output forest classifier (dense input)."""

    def __init__(self, forest: Any) -> None:
        classes = int(forest.n_classes_)
        self._table = NodeTable.of(
            [(e.tree_, None, e.tree_.value[:, 0, :classes]) for e in forest.estimators_],
            int(forest.n_features_in_),
        )
        self._trees = len(forest.estimators_)

    def predict_proba(self, matrix: FloatArray) -> FloatArray:
        """``[rows, classes]``: the mean over trees of each leaf's class fractions."""
        proba = self._table.sum_leaves(_tree_input(matrix))
        proba /= self._trees
        return proba
