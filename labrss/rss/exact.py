"""Exact subset-sum kernels, vectorised over cells and targets (numba).

Every kernel works on plain arrays: ``values`` of shape ``(C, n)`` (one row per cell,
any sign, finite) and targets ``x`` of shape ``(C, m)``. Masks are uint64 bit patterns
(bit ``i`` set iff ``values[c, i]`` is in the subset), so ``n <= 64``.

Nearest-sum kernels return, for every (cell, target), the *floor* (the largest subset
sum ``<= x``) and the *ceiling* (the smallest subset sum ``> x``), with their masks; a
missing side has sum ``-inf`` / ``+inf`` and mask 0. The optimum for any error measure
that is monotone in the sum on each side of ``x`` (the target transforms of
`labrss.rss.solver` are) is one of the two, which is why both are returned.

* `enumerate_nearest`: one sorted table of all ``2**n`` sums per cell, then a binary
  search per target. ``O(2**n)`` time and memory per cell, ``O(n)`` per target.
* `mitm_nearest`: Horowitz-Sahni meet-in-the-middle. Sorted tables of the sums of the
  first ``h = n // 2`` and of the last ``n - h`` elements, then, per target, one
  two-pointer sweep (first table ascending, second descending). ``O(2**(n/2))`` time and
  memory per cell, ``O(2**(n/2))`` per target.

Window kernels solve the secondary objective: among subsets whose sum lies in
``[lo, hi]``, the one with the smallest additive cost ``sum_{i in S} cost_i``
(variance, or one per closed switch). Enumeration scans the window in the sorted table;
meet-in-the-middle sweeps the first table and queries the cheapest partner in a window
of the second with a sparse-table range-minimum structure (``O(2**(n/2) n)`` memory).

Both methods are exact; floating-point sums are accumulated in a different order by the
two, so their optima agree to a few ulps of the sum magnitude.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from labrss.rss.subset_sums import build_sorted_sums, build_sorted_sums_with_cost

__all__ = [
    "bits_to_bool",
    "enumerate_nearest",
    "enumerate_window_min_cost",
    "masked_sums",
    "masked_sums_bits",
    "mitm_nearest",
    "mitm_window_min_cost",
]


def bits_to_bool(masks: np.ndarray, n: int) -> np.ndarray:
    """uint64 masks ``(...)`` -> bool ``(..., n)`` (element ``i`` <-> bit ``i``)."""
    shifts = np.arange(n, dtype=np.uint64)
    return ((masks[..., None] >> shifts) & np.uint64(1)).astype(bool)


@njit(cache=True)
def masked_sums_bits(values: np.ndarray, bits: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``base[c] + sum of values[c, i]`` over the set bits of ``bits[c, k]``.

    ``values`` (C, n), ``bits`` (C, m) uint64, ``base`` (C,). The terms are added one by
    one in increasing index order (zeros add exactly nothing), the same order as
    `masked_sums`: the canonical value of a subset, whichever kernel found it.
    """
    n_cells, n = values.shape
    m = bits.shape[1]
    out = np.empty((n_cells, m), dtype=np.float64)
    for c in range(n_cells):
        for k in range(m):
            s = base[c]
            b = bits[c, k]
            for i in range(n):
                if (b >> np.uint64(i)) & np.uint64(1):
                    s += values[c, i]
            out[c, k] = s
    return out


@njit(cache=True)
def masked_sums(values: np.ndarray, mask: np.ndarray, base: np.ndarray) -> np.ndarray:
    """As `masked_sums_bits` for bool masks ``(C, m, n)``."""
    n_cells, m, n = mask.shape
    out = np.empty((n_cells, m), dtype=np.float64)
    for c in range(n_cells):
        for k in range(m):
            s = base[c]
            for i in range(n):
                if mask[c, k, i]:
                    s += values[c, i]
            out[c, k] = s
    return out


@njit(cache=True)
def _bits(start: int, count: int) -> np.ndarray:
    """uint64 bits ``1 << start`` ... ``1 << (start + count - 1)``."""
    out = np.empty(count, dtype=np.uint64)
    for j in range(count):
        out[j] = np.uint64(1) << np.uint64(start + j)
    return out


@njit(cache=True)
def enumerate_nearest(
    values: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Floor and ceiling subset sums of every target by full sorted enumeration.

    ``values`` (C, n), ``targets`` (C, m) float64. Returns ``floor_sum``, ``floor_mask``,
    ``ceil_sum``, ``ceil_mask``, each (C, m). ``O(2**n)`` per cell + ``O(n)`` per target.
    """
    n_cells, n = values.shape
    m = targets.shape[1]
    floor_sum = np.empty((n_cells, m), dtype=np.float64)
    ceil_sum = np.empty((n_cells, m), dtype=np.float64)
    floor_mask = np.zeros((n_cells, m), dtype=np.uint64)
    ceil_mask = np.zeros((n_cells, m), dtype=np.uint64)
    size = (1 << n) + 2  # build_sorted_sums layout: sentinels at both ends
    buf_a = np.empty(size, dtype=np.float64)
    mask_a = np.empty(size, dtype=np.uint64)
    buf_b = np.empty(size, dtype=np.float64)
    mask_b = np.empty(size, dtype=np.uint64)
    bits = _bits(0, n)
    total = 1 << n
    for c in range(n_cells):
        sums, masks = build_sorted_sums(values[c], bits, buf_a, mask_a, buf_b, mask_b)
        for k in range(m):
            t = targets[c, k]
            idx = np.searchsorted(sums, t, side="right")  # sums[:idx] <= t < sums[idx:]
            if idx > 0:
                floor_sum[c, k] = sums[idx - 1]
                floor_mask[c, k] = masks[idx - 1]
            else:
                floor_sum[c, k] = -np.inf
            if idx < total:
                ceil_sum[c, k] = sums[idx]
                ceil_mask[c, k] = masks[idx]
            else:
                ceil_sum[c, k] = np.inf
    return floor_sum, floor_mask, ceil_sum, ceil_mask


@njit(cache=True)
def mitm_nearest(
    values: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Floor and ceiling subset sums of every target by meet-in-the-middle.

    Same contract as `enumerate_nearest`. Per cell: two sorted half tables
    (``O(2**(n/2))``); per target a two-pointer sweep: for each first-half sum ``a``
    (ascending) the pointer ``j`` into the second half (descending) stops at the largest
    ``b_j`` with ``a + b_j <= x``; ``a + b_j`` is a floor candidate and ``a + b_{j+1}`` a
    ceiling candidate, and every pair skipped is dominated by one of them.
    """
    n_cells, n = values.shape
    m = targets.shape[1]
    h = n // 2
    floor_sum = np.empty((n_cells, m), dtype=np.float64)
    ceil_sum = np.empty((n_cells, m), dtype=np.float64)
    floor_mask = np.zeros((n_cells, m), dtype=np.uint64)
    ceil_mask = np.zeros((n_cells, m), dtype=np.uint64)
    size_a = (1 << h) + 2  # build_sorted_sums layout: sentinels at both ends
    size_b = (1 << (n - h)) + 2
    a1 = np.empty(size_a, dtype=np.float64)
    am1 = np.empty(size_a, dtype=np.uint64)
    a2 = np.empty(size_a, dtype=np.float64)
    am2 = np.empty(size_a, dtype=np.uint64)
    b1 = np.empty(size_b, dtype=np.float64)
    bm1 = np.empty(size_b, dtype=np.uint64)
    b2 = np.empty(size_b, dtype=np.float64)
    bm2 = np.empty(size_b, dtype=np.uint64)
    bits_a = _bits(0, h)
    bits_b = _bits(h, n - h)
    for c in range(n_cells):
        sa, ma = build_sorted_sums(values[c, :h], bits_a, a1, am1, a2, am2)
        sb, mb = build_sorted_sums(values[c, h:], bits_b, b1, bm1, b2, bm2)
        na = sa.shape[0]
        nb = sb.shape[0]
        for k in range(m):
            t = targets[c, k]
            best_lo = -np.inf
            best_lo_mask = np.uint64(0)
            best_hi = np.inf
            best_hi_mask = np.uint64(0)
            j = nb - 1
            for i in range(na):
                ai = sa[i]
                while j >= 0 and ai + sb[j] > t:
                    j -= 1
                if j >= 0:
                    s = ai + sb[j]
                    if s > best_lo:
                        best_lo = s
                        best_lo_mask = ma[i] | mb[j]
                if j + 1 < nb:
                    s = ai + sb[j + 1]
                    if s < best_hi:
                        best_hi = s
                        best_hi_mask = ma[i] | mb[j + 1]
                if j < 0:
                    break  # every later a + b exceeds this ceiling candidate
            floor_sum[c, k] = best_lo
            floor_mask[c, k] = best_lo_mask
            ceil_sum[c, k] = best_hi
            ceil_mask[c, k] = best_hi_mask
    return floor_sum, floor_mask, ceil_sum, ceil_mask


@njit(cache=True)
def enumerate_window_min_cost(
    values: np.ndarray, costs: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest subset with sum in ``[lo, hi]`` by full sorted enumeration.

    ``values``, ``costs`` (C, n); ``lo``, ``hi`` (C, m). Returns ``mask`` (C, m) uint64
    and ``found`` (C, m) bool (False when no sum lies in the window). Among equal costs
    the sum nearest the window centre wins. ``O(2**n)`` per cell + window size per target.
    """
    n_cells, n = values.shape
    m = lo.shape[1]
    out_mask = np.zeros((n_cells, m), dtype=np.uint64)
    found = np.zeros((n_cells, m), dtype=np.bool_)
    size = (1 << n) + 2  # build_sorted_sums layout: sentinels at both ends
    buf_a = np.empty(size, dtype=np.float64)
    mask_a = np.empty(size, dtype=np.uint64)
    cost_a = np.empty(size, dtype=np.float64)
    buf_b = np.empty(size, dtype=np.float64)
    mask_b = np.empty(size, dtype=np.uint64)
    cost_b = np.empty(size, dtype=np.float64)
    bits = _bits(0, n)
    for c in range(n_cells):
        sums, masks, cost = build_sorted_sums_with_cost(
            values[c], bits, costs[c], buf_a, mask_a, cost_a, buf_b, mask_b, cost_b
        )
        for k in range(m):
            i0 = np.searchsorted(sums, lo[c, k], side="left")
            i1 = np.searchsorted(sums, hi[c, k], side="right")
            centre = 0.5 * (lo[c, k] + hi[c, k])
            best_cost = np.inf
            best_dist = np.inf
            for i in range(i0, i1):
                dist = abs(sums[i] - centre)
                if cost[i] < best_cost or (cost[i] == best_cost and dist < best_dist):
                    best_cost = cost[i]
                    best_dist = dist
                    out_mask[c, k] = masks[i]
                    found[c, k] = True
    return out_mask, found


@njit(cache=True)
def _sparse_argmin_table(cost: np.ndarray, table: np.ndarray) -> int:
    """Fill ``table[level, j]`` = argmin of ``cost[j : j + 2**level]``; return levels."""
    nb = cost.shape[0]
    for j in range(nb):
        table[0, j] = j
    level = 1
    while (1 << level) <= nb:
        half = 1 << (level - 1)
        for j in range(nb - (1 << level) + 1):
            x = table[level - 1, j]
            y = table[level - 1, j + half]
            table[level, j] = x if cost[x] <= cost[y] else y
        level += 1
    return level


@njit(cache=True)
def _range_argmin(cost: np.ndarray, table: np.ndarray, i0: int, i1: int) -> int:
    """Argmin of ``cost[i0 : i1 + 1]`` (inclusive, ``i0 <= i1``) from the sparse table."""
    length = i1 - i0 + 1
    if length <= 8:
        best = i0
        for j in range(i0 + 1, i1 + 1):
            if cost[j] < cost[best]:
                best = j
        return best
    level = 0
    while (2 << level) <= length:
        level += 1
    x: int = table[level, i0]
    y: int = table[level, i1 - (1 << level) + 1]
    return x if cost[x] <= cost[y] else y


@njit(cache=True)
def mitm_window_min_cost(
    values: np.ndarray, costs: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest subset with sum in ``[lo, hi]`` by meet-in-the-middle.

    Same contract as `enumerate_window_min_cost` (ties between equal costs broken by
    the sweep order, not by distance). For each first-half sum ``a`` the partners ``b``
    with ``lo <= a + b <= hi`` form a contiguous run of the sorted second half whose
    ends only move down as ``a`` grows; the cheapest partner comes from a sparse-table
    range-minimum query. ``O(2**(n/2) n)`` per cell, ``O(2**(n/2))`` per target.
    """
    n_cells, n = values.shape
    m = lo.shape[1]
    h = n // 2
    out_mask = np.zeros((n_cells, m), dtype=np.uint64)
    found = np.zeros((n_cells, m), dtype=np.bool_)
    size_a = (1 << h) + 2  # build_sorted_sums layout: sentinels at both ends
    size_b = (1 << (n - h)) + 2
    a1 = np.empty(size_a, dtype=np.float64)
    am1 = np.empty(size_a, dtype=np.uint64)
    ac1 = np.empty(size_a, dtype=np.float64)
    a2 = np.empty(size_a, dtype=np.float64)
    am2 = np.empty(size_a, dtype=np.uint64)
    ac2 = np.empty(size_a, dtype=np.float64)
    b1 = np.empty(size_b, dtype=np.float64)
    bm1 = np.empty(size_b, dtype=np.uint64)
    bc1 = np.empty(size_b, dtype=np.float64)
    b2 = np.empty(size_b, dtype=np.float64)
    bm2 = np.empty(size_b, dtype=np.uint64)
    bc2 = np.empty(size_b, dtype=np.float64)
    levels = 1
    while (1 << levels) <= size_b:
        levels += 1
    table = np.empty((levels, size_b), dtype=np.int32)
    bits_a = _bits(0, h)
    bits_b = _bits(h, n - h)
    for c in range(n_cells):
        sa, ma, ca = build_sorted_sums_with_cost(
            values[c, :h], bits_a, costs[c, :h], a1, am1, ac1, a2, am2, ac2
        )
        sb, mb, cb = build_sorted_sums_with_cost(
            values[c, h:], bits_b, costs[c, h:], b1, bm1, bc1, b2, bm2, bc2
        )
        _sparse_argmin_table(cb, table)
        na = sa.shape[0]
        nb = sb.shape[0]
        for k in range(m):
            x_lo = lo[c, k]
            x_hi = hi[c, k]
            best_cost = np.inf
            j_hi = nb - 1  # last j with a + b_j <= x_hi
            j_lo = nb  # first j with a + b_j >= x_lo
            for i in range(na):
                ai = sa[i]
                while j_hi >= 0 and ai + sb[j_hi] > x_hi:
                    j_hi -= 1
                if j_hi < 0:
                    break
                while j_lo > 0 and ai + sb[j_lo - 1] >= x_lo:
                    j_lo -= 1
                if j_lo <= j_hi:
                    j = _range_argmin(cb, table, j_lo, j_hi)
                    total = ca[i] + cb[j]
                    if total < best_cost:
                        best_cost = total
                        out_mask[c, k] = ma[i] | mb[j]
                        found[c, k] = True
    return out_mask, found
