"""Coarse levels for RSS over memristor banks: what each branch is programmed to (pure).

RSS over a memristor bank (docs/memristor.md) programs every branch of a cell loosely to a
*coarse level*, measures each branch precisely, then lets the subset choice
(`labrss.rss.solve`) do the fine part. The levels only need to be spread so that the bank's
``2**K`` subset sums cover the targets densely; their exact values do not matter because
they are measured.

The plan is a geometric ladder from ``low_fraction`` to ``high_fraction`` of the device range
``[g_min, g_max]`` (largest first). Why a ladder: a sub-binary ratio (< 2) leaves overlap
between subset sums, so targets in the middle of the bank's range are covered without holes
(rss_slth.md); why not the ends of the range: near g_min and g_max the pulse response
saturates (NeuroSim's law) and a stuck device sits there, so levels 5 % inside the bottom
and 25 % below the top are both cheap to reach and tell a healthy device from a stuck one.
On the simulated CMO devices (8-90 uS, K = 8) this gives 12-70 uS and a working range of
68-204 uS, where 50 random draws of +-5 % coarse errors give a median RSS error of 0.15 %
and a 95th percentile of 0.6 % (docs/memristor.md).

Complexity O(K).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["CoarsePlan", "coarse_levels"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CoarsePlan:
    """The coarse levels of one bank and the targets it serves best.

    Attributes:
        levels_S: (K,) coarse level of each branch (S), largest first.
        tolerance: relative band each branch is programmed to (write-verify).
        target_lo_S, target_hi_S: the working range of cell targets (S): the middle half
            of ``[0, sum(levels_S)]``, where subset sums are densest.
    """

    levels_S: FloatArray
    tolerance: float
    target_lo_S: float
    target_hi_S: float

    def covers(self, target_S: float) -> bool:
        """Whether ``target_S`` lies in the working range."""
        return self.target_lo_S <= target_S <= self.target_hi_S


def coarse_levels(
    g_min_S: float,
    g_max_S: float,
    branches: int,
    *,
    tolerance: float = 0.1,
    low_fraction: float = 0.05,
    high_fraction: float = 0.75,
) -> CoarsePlan:
    """The coarse plan for a bank of ``branches`` memristors of range [g_min_S, g_max_S].

    Level k is ``hi * (lo / hi) ** (k / (K - 1))`` with ``lo = g_min + low_fraction *
    (g_max - g_min)`` and ``hi = g_min + high_fraction * (g_max - g_min)`` (one branch:
    ``hi``).

    Raises:
        ValueError: naming the bad value (non-positive or inverted range, fractions not in
            0 < low < high < 1, no branches, tolerance not in (0, 1)).
    """
    if not (math.isfinite(g_min_S) and math.isfinite(g_max_S) and 0 < g_min_S < g_max_S):
        raise ValueError(
            f"memristor range g_min_S = {g_min_S!r}, g_max_S = {g_max_S!r}: need "
            "0 < g_min_S < g_max_S"
        )
    if isinstance(branches, bool) or not isinstance(branches, int) or branches < 1:
        raise ValueError(f"branches = {branches!r}: need an integer >= 1")
    if not 0 < low_fraction < high_fraction < 1:
        raise ValueError(
            f"low_fraction = {low_fraction!r}, high_fraction = {high_fraction!r}: need "
            "0 < low_fraction < high_fraction < 1"
        )
    if not 0 < tolerance < 1:
        raise ValueError(f"coarse tolerance = {tolerance!r}: need 0 < tolerance < 1")
    span = g_max_S - g_min_S
    lo = g_min_S + low_fraction * span
    hi = g_min_S + high_fraction * span
    if branches == 1:
        levels = np.array([hi])
    else:
        levels = hi * (lo / hi) ** (np.arange(branches) / (branches - 1))
    total = float(levels.sum())
    return CoarsePlan(
        levels_S=levels, tolerance=tolerance, target_lo_S=0.25 * total, target_hi_S=0.75 * total
    )
