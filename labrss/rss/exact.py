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

from labrss.rss.subset_sums import (
    build_sorted_sums,
    build_sorted_sums_with_cost,
    build_sum_levels,
    level_offsets_nb,
    recover_mask,
)

__all__ = [
    "bits_to_bool",
    "enumerate_nearest",
    "enumerate_window_min_cost",
    "masked_sums",
    "masked_sums_bits",
    "mitm_nearest",
    "mitm_nearest_within",
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
def _floor_index(arena: np.ndarray, b0: int, nb: int, a: float, t: float) -> int:
    """Position of the largest ``b`` in ``arena[b0 : b0 + nb]`` with ``a + b <= t``
    (``b0 - 1``, the ``-inf`` sentinel, when there is none). Binary search."""
    lo = b0
    hi = b0 + nb
    while lo < hi:
        mid = (lo + hi) // 2
        if a + arena[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


#: Steps of the sweep between two checks of the tolerance window.
_STOP_CHECK_STEPS = 64


@njit(cache=True)
def _path_state(  # noqa: PLR0917 (numba kernel: positional scalars)
    sa: np.ndarray, a0: int, na: int, sb: np.ndarray, b0: int, nb: int, t: float, steps: int
) -> tuple[int, int]:
    """Positions ``(i, j)`` of the sweep of `_sweep` after ``steps`` steps.

    The sweep is a merge of the first table (ascending ``a``) with the second read
    downwards, ordered by the exact test ``a + b <= t`` (monotone in both, since
    ``fl(a + b)`` is): so its state after any number of steps is found by binary search
    over how many of them advanced ``a`` (merge-path co-ranking). ``O(log(na + nb))``.
    """
    top = b0 + nb - 1
    lo = max(0, steps - nb)
    hi = min(steps, na)
    while lo < hi:
        p = (lo + hi) // 2  # p steps advanced a, steps - p moved b down
        # is a_p taken before the b of step steps - p (b_{top - (steps - p) + 1})?
        if sa[a0 + p] + sb[top - (steps - p) + 1] <= t:
            lo = p + 1
        else:
            hi = p
    return a0 + lo, top - (steps - lo)


@njit(cache=True)
def _sweep(  # noqa: PLR0917 (numba kernel: positional scalars)
    sa: np.ndarray,
    a0: int,
    na: int,
    sb: np.ndarray,
    b0: int,
    nb: int,
    t: float,
    w_lo: float,
    w_hi: float,
) -> tuple[int, int, bool]:
    """Floor and ceiling of ``t`` over the sums ``a + b`` of two sorted tables.

    ``sa[a0 : a0 + na]`` and ``sb[b0 : b0 + nb]`` ascending, with ``-inf`` / ``+inf``
    sentinels just outside each. Two pointers, ``a`` ascending and ``b`` descending:
    each step finds either ``a + b > t`` (a ceiling candidate; no later ``a`` pairs
    with this ``b`` below ``t``, so ``b`` moves down) or ``a + b <= t`` (the largest
    such ``b`` for this ``a``: a floor candidate; ``a`` moves up). Every pair skipped is
    dominated by a candidate, so the best candidates are the floor and the ceiling.

    The ``na + nb`` steps are cut in four equal runs (`_path_state`), swept by four
    branch-free chains in one loop: the CPU overlaps independent dependency chains,
    while one chain waits on load, add, compare at every step (3.5x faster here than
    one branchy sweep, measured side by side). ``O(na + nb)``.

    Tolerance mode: with ``w_lo <= t <= w_hi`` the sweep stops (at most
    ``_STOP_CHECK_STEPS`` steps later) once a candidate lies in the window; an empty
    window (``w_lo > w_hi``) never stops it. Returns the positions (into ``sa``) of the
    first-table entries of the best floor and ceiling (-1: none) and whether it stopped.
    """
    total = na + nb
    run = total // 4
    one = np.uint64(1)
    i1, j1 = a0, b0 + nb - 1
    i2, j2 = _path_state(sa, a0, na, sb, b0, nb, t, run)
    i3, j3 = _path_state(sa, a0, na, sb, b0, nb, t, 2 * run)
    i4, j4 = _path_state(sa, a0, na, sb, b0, nb, t, 3 * run)
    # the last chain also takes the remainder of total / 4
    lo_s = -np.inf
    hi_s = np.inf
    lo_i = -1
    hi_i = -1
    i5, j5 = i4, j4
    for _ in range(total - 4 * run):
        s = sa[i5] + sb[j5]
        if s <= t:
            if s > lo_s:
                lo_s = s
                lo_i = i5
            i5 += 1
        else:
            if s < hi_s:
                hi_s = s
                hi_i = i5
            j5 -= 1
    # unsigned positions: numba skips its negative-index wraparound
    u1 = np.uint64(i1)
    v1 = np.uint64(j1)
    u2 = np.uint64(i2)
    v2 = np.uint64(j2)
    u3 = np.uint64(i3)
    v3 = np.uint64(j3)
    u4 = np.uint64(i5)
    v4 = np.uint64(j5)
    ninf = -np.inf
    pinf = np.inf
    f1 = f2 = f3 = f4 = ninf
    c1 = c2 = c3 = c4 = pinf
    fi1 = fi2 = fi3 = fi4 = ci1 = ci2 = ci3 = ci4 = np.uint64(0)
    stopped = False
    left = run
    while left > 0:
        block = min(left, _STOP_CHECK_STEPS)
        left -= block
        for _ in range(block):
            s1 = sa[u1] + sb[v1]
            s2 = sa[u2] + sb[v2]
            s3 = sa[u3] + sb[v3]
            s4 = sa[u4] + sb[v4]
            l1 = s1 <= t
            l2 = s2 <= t
            l3 = s3 <= t
            l4 = s4 <= t
            fi1 = u1 if l1 & (s1 > f1) else fi1
            fi2 = u2 if l2 & (s2 > f2) else fi2
            fi3 = u3 if l3 & (s3 > f3) else fi3
            fi4 = u4 if l4 & (s4 > f4) else fi4
            ci1 = u1 if (s1 > t) & (s1 < c1) else ci1
            ci2 = u2 if (s2 > t) & (s2 < c2) else ci2
            ci3 = u3 if (s3 > t) & (s3 < c3) else ci3
            ci4 = u4 if (s4 > t) & (s4 < c4) else ci4
            f1 = max(f1, s1 if l1 else ninf)
            f2 = max(f2, s2 if l2 else ninf)
            f3 = max(f3, s3 if l3 else ninf)
            f4 = max(f4, s4 if l4 else ninf)
            c1 = min(c1, pinf if l1 else s1)
            c2 = min(c2, pinf if l2 else s2)
            c3 = min(c3, pinf if l3 else s3)
            c4 = min(c4, pinf if l4 else s4)
            t1 = np.uint64(l1)
            t2 = np.uint64(l2)
            t3 = np.uint64(l3)
            t4 = np.uint64(l4)
            u1 += t1
            v1 -= one - t1
            u2 += t2
            v2 -= one - t2
            u3 += t3
            v3 -= one - t3
            u4 += t4
            v4 -= one - t4
        best_f = max(f1, f2, f3, f4)
        best_c = min(c1, c2, c3, c4)
        if best_f >= w_lo or best_c <= w_hi:
            stopped = True
            break
    for f, fi in ((f1, fi1), (f2, fi2), (f3, fi3), (f4, fi4)):
        if f > lo_s:
            lo_s = f
            lo_i = int(np.int64(fi))
    for c, ci in ((c1, ci1), (c2, ci2), (c3, ci3), (c4, ci4)):
        if c < hi_s:
            hi_s = c
            hi_i = int(np.int64(ci))
    return lo_i, hi_i, stopped


@njit(cache=True)
def mitm_nearest_within(
    values: np.ndarray, targets: np.ndarray, w_lo: np.ndarray, w_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mitm_nearest` that may stop at the first sum inside ``[w_lo, w_hi]`` (C, m).

    Returns the four arrays of `mitm_nearest` and ``stopped`` (C, m) bool: True where
    the sweep stopped early, so that floor and ceiling are the best found so far (one of
    them in the window) and not proven nearest. An empty window (``w_lo > w_hi``) never
    stops: the answer is then exact.
    """
    n_cells, n = values.shape
    m = targets.shape[1]
    h = n // 2
    floor_sum = np.empty((n_cells, m), dtype=np.float64)
    ceil_sum = np.empty((n_cells, m), dtype=np.float64)
    floor_mask = np.zeros((n_cells, m), dtype=np.uint64)
    ceil_mask = np.zeros((n_cells, m), dtype=np.uint64)
    stopped = np.zeros((n_cells, m), dtype=np.bool_)
    off_a = level_offsets_nb(h)
    off_b = level_offsets_nb(n - h)
    arena_a = np.empty(off_a[h + 1], dtype=np.float64)
    arena_b = np.empty(off_b[n - h + 1], dtype=np.float64)
    bits_a = _bits(0, h)
    bits_b = _bits(h, n - h)
    a0 = off_a[h] + 1
    b0 = off_b[n - h] + 1
    na = 1 << h
    nb = 1 << (n - h)
    for c in range(n_cells):
        va = values[c, :h]
        vb = values[c, h:]
        build_sum_levels(va, arena_a, off_a)
        build_sum_levels(vb, arena_b, off_b)
        for k in range(m):
            t = targets[c, k]
            lo_i, hi_i, stop = _sweep(arena_a, a0, na, arena_b, b0, nb, t, w_lo[c, k], w_hi[c, k])
            stopped[c, k] = stop
            # each winner's partner: the largest b with a + b <= t (floor), the next one
            # (ceiling; the sweep's best ceiling for this a is that pair or an equal sum)
            floor_sum[c, k] = -np.inf
            ceil_sum[c, k] = np.inf
            if lo_i >= 0:
                lo_j = _floor_index(arena_b, b0, nb, arena_a[lo_i], t)
                floor_sum[c, k] = arena_a[lo_i] + arena_b[lo_j]
                floor_mask[c, k] = recover_mask(va, bits_a, arena_a, off_a, lo_i - a0) | (
                    recover_mask(vb, bits_b, arena_b, off_b, lo_j - b0)
                )
            if hi_i >= 0:
                hi_j = _floor_index(arena_b, b0, nb, arena_a[hi_i], t) + 1
                ceil_sum[c, k] = arena_a[hi_i] + arena_b[hi_j]
                ceil_mask[c, k] = recover_mask(va, bits_a, arena_a, off_a, hi_i - a0) | (
                    recover_mask(vb, bits_b, arena_b, off_b, hi_j - b0)
                )
    return floor_sum, floor_mask, ceil_sum, ceil_mask, stopped


@njit(cache=True)
def _mitm_nearest_masks(
    values: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mitm_nearest` for small n: tables carrying masks, one branchy sweep per target.

    Below `_SMALL_MITM_N` elements the tables fit in L1 and the four-chain machinery's
    fixed costs (co-ranking, mask recovery) dominate: this plain kernel is ~2x faster at
    n = 16 (measured side by side), the four-chain one ~1.8x faster from n = 24. Per cell:
    two sorted half tables (``O(2**(n/2))``); per target a two-pointer sweep: for each
    first-half sum ``a`` (ascending) the pointer ``j`` into the second half (descending)
    stops at the largest ``b_j`` with ``a + b_j <= x``; ``a + b_j`` is a floor candidate
    and ``a + b_{j+1}`` a ceiling candidate, and every pair skipped is dominated by one
    of them.
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


#: Below this many elements `mitm_nearest` uses `_mitm_nearest_masks`.
_SMALL_MITM_N = 21


@njit(cache=True)
def mitm_nearest(
    values: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Floor and ceiling subset sums of every target by meet-in-the-middle.

    Same contract as `enumerate_nearest`. Per cell: the sorted sums of each half
    (`build_sum_levels`, no masks carried: ``O(2**(n/2))``); per target a two-pointer
    sweep (`_sweep`, ``O(2**(n/2))``), then the subsets of the two winning sums are
    recovered from the level tables (`recover_mask`, ``O(n**2)``).
    """
    if values.shape[1] < _SMALL_MITM_N:
        return _mitm_nearest_masks(values, targets)
    empty_lo = np.full(targets.shape, np.inf)
    empty_hi = np.full(targets.shape, -np.inf)
    f_sum, f_mask, c_sum, c_mask, _ = mitm_nearest_within(values, targets, empty_lo, empty_hi)
    return f_sum, f_mask, c_sum, c_mask


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
