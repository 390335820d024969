"""Compile (and cache on disk) the RSS kernels the solver and the study use, in one process.

numba compiles a kernel on its first call in every process whose on-disk cache
(``__pycache__`` next to the module, or ``NUMBA_CACHE_DIR``) does not hold it yet: ~60 s
for every path on one core. Run this once per node whose cache directory is local
(docs/cluster.md), so that Dask workers started at the same moment load the kernels
instead of each compiling them. ``python -m labrss.rss.precompile``.
"""

from __future__ import annotations

import numpy as np

from labrss.rss.signed import solve_signed
from labrss.rss.solver import solve
from labrss.rss.study import MODELS, run_point
from labrss.rss.subset_sums import sorted_subset_sums

#: Sizes that reach every solver path: enumeration (8), stored meet-in-the-middle tables
#: (16, 24, 32) and top levels produced window by window (36, from n = 35).
SIZES = (8, 16, 24, 32, 36)


def precompile(seed: int = 0) -> None:
    """Call every solver path once on small random banks (results discarded)."""
    rng = np.random.default_rng(seed)
    for n in SIZES:
        g_S = rng.uniform(1e-5, 2e-5, size=(2, n))
        one = g_S.sum(axis=1, keepdims=True) * 0.4
        two = np.concatenate([one, 0.5 * one], axis=1)
        solve(g_S, one)
        solve(g_S, one, error_tolerance=one * 1e-5)
        solve(g_S, two)
        solve(g_S, one, secondary="switches", near_optimal_tol=one * 1e-3)
        solve(g_S, one, secondary="variance", sigma_S=g_S * 1e-3, near_optimal_tol=one * 1e-3)
        if n <= 16:
            solve(g_S, one, method="enumerate")
            solve(g_S, one, method="enumerate", secondary="switches", near_optimal_tol=one)
        half = n // 2
        solve_signed(g_S[:, :half], g_S[:, half:], one * 0.1)
    sorted_subset_sums(rng.uniform(size=10))
    for model in MODELS:
        run_point(MODELS[model], 10, 4, seed=seed)


if __name__ == "__main__":
    precompile()
