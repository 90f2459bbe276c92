"""Every loop numba compiles for driftline, compiled at once.

The compiled code is cached by numba (beside the modules, or in ``NUMBA_CACHE_DIR``), so a
process pays the compilation once per installation and only reads the cache afterwards.
``warm`` runs where that should happen off the hot path: when the image is built and when
a worker starts, before its first batch.
"""

from __future__ import annotations

from models import treewalk
from models.features import kernels


def warm() -> None:
    """Compile (or load from the cache) the forest walk and the features' kernels."""
    treewalk.warm()
    kernels.warm()
