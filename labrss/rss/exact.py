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
    _corank,
    build_sorted_sums,
    build_sorted_sums_with_cost,
    build_sum_levels,
    level_offsets_nb,
    recover_mask,
    recover_mask_of_sum,
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
_STOP_CHECK_STEPS = 256


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
def _va_at(src: np.ndarray, s0: int, size: int, x: float, i: int) -> float:
    """Entry ``i`` (0 .. 2 size) of ``merge(L, L + x)``, ``L = src[s0 : s0 + size]`` (L on
    ties; ``+inf`` at ``2 size``), without storing the merge: co-ranking. ``O(log size)``."""
    p = _corank(src, s0, size, x, i)
    u = src[s0 + p]
    w = src[s0 + i - p] + x
    return float(u if u <= w else w)


@njit(cache=True)
def _path_state_va(  # noqa: PLR0917 (numba kernel: positional scalars)
    sa: np.ndarray,
    a0: int,
    size: int,
    x: float,
    sb: np.ndarray,
    b0: int,
    nb: int,
    t: float,
    steps: int,
) -> tuple[int, int]:
    """`_path_state` with the first table the unstored ``merge(L, L + x)`` (`_va_at`):
    how many steps advanced ``a`` (a position in the merge) and ``b``'s position."""
    na = 2 * size
    top = b0 + nb - 1
    lo = max(0, steps - nb)
    hi = min(steps, na)
    while lo < hi:
        p = (lo + hi) // 2
        if _va_at(sa, a0, size, x, p) + sb[top - (steps - p) + 1] <= t:
            lo = p + 1
        else:
            hi = p
    return lo, top - (steps - lo)


@njit(inline="always")
def _a_next(sa: np.ndarray, pp: np.uint64, qq: np.uint64, x: float) -> tuple[float, np.uint64]:
    """Next entry of the streamed ``merge(L, L + x)`` (ascending) with the read heads at
    ``L[pp]`` and ``L[qq]``: its value and 1 if it comes from ``L`` (``L`` on ties)."""
    u = sa[pp]
    w = sa[qq] + x
    return min(u, w), np.uint64(u <= w)


@njit(inline="always")
def _b_next(sb: np.ndarray, gg: np.uint64, hh: np.uint64, y: float) -> tuple[float, np.uint64]:
    """Next entry of the streamed ``merge(L', L' + y)`` read downwards with the heads at
    ``L'[gg]`` and ``L'[hh]``: its value and 1 if it comes from ``L' + y``."""
    bl = sb[gg]
    bm = sb[hh] + y
    return max(bl, bm), np.uint64(bm >= bl)


@njit(inline="always")
def _keep(s: float, t: float, f: float, c: float) -> tuple[float, float, np.uint64]:
    """One sweep step's bookkeeping: the running floor ``f`` (largest ``s <= t``) and
    ceiling ``c`` (smallest ``s > t``) of a chain, and 1 if ``s <= t`` (``a`` advances).
    No index is tracked here (`_sweep_blocks` finds the winning step afterwards)."""
    le = s <= t
    return max(f, s if le else -np.inf), min(c, np.inf if le else s), np.uint64(le)


@njit(cache=True)
def _scan(  # noqa: PLR0917 (numba kernel: positional scalars)
    sa: np.ndarray,
    x: float,
    sb: np.ndarray,
    y: float,
    stream_b: bool,
    state: np.ndarray,
    steps: int,
    t: float,
) -> tuple[float, float, float, float]:
    """``steps`` steps of a streamed sweep, one at a time, from ``state`` (updated):
    read heads ``(p, q)`` in ``L`` for ``merge(L, L + x)`` ascending and ``(g, h)`` in
    ``L'`` for the second table read downwards (``stream_b``: ``merge(L', L' + y)``,
    else the stored table ``sb`` at ``g``). Returns its best floor and ceiling sums and
    the ``a`` of their first occurrence (``-inf`` / ``+inf``: none): the remainder of
    the four chains, and the replay of the block where a chain found its best."""
    f = -np.inf
    c = np.inf
    fa = -np.inf
    ca = np.inf
    p, q, g, h = state[0], state[1], state[2], state[3]
    for _ in range(steps):
        u = sa[p]
        w = sa[q] + x
        a = u if u <= w else w
        bl = sb[g]
        bm = sb[h] + y if stream_b else -np.inf
        from_m = stream_b and bm >= bl
        s = a + (bm if from_m else bl)
        if s <= t:
            if s > f:
                f = s
                fa = a
            if u <= w:
                p += 1
            else:
                q += 1
        else:
            if s < c:
                c = s
                ca = a
            if from_m:
                h -= 1
            else:
                g -= 1
    state[0], state[1], state[2], state[3] = p, q, g, h
    return f, fa, c, ca


@njit(inline="always")
def _note_block(  # noqa: PLR0917 (numba kernel: positional scalars)
    r: int,
    f: float,
    c: float,
    best: np.ndarray,
    start: np.ndarray,
    rec: np.ndarray,
    steps: int,
) -> None:
    """At the end of a block of ``steps`` steps: where chain ``r``'s running floor ``f``
    rose (ceiling ``c`` fell) in it, remember the block's start state, so that the
    step that found it can be replayed (`_scan`) instead of tracked at every step."""
    if f > best[0, r]:
        best[0, r] = f
        for i in range(4):  # element by element: a slice would be a refcounted view
            rec[0, r, i] = start[r, i]
        rec[0, r, 4] = steps
    if c < best[1, r]:
        best[1, r] = c
        for i in range(4):
            rec[1, r, i] = start[r, i]
        rec[1, r, 4] = steps


@njit(cache=True)
def _pick_chains(  # noqa: PLR0917 (numba kernel: positional scalars)
    sa: np.ndarray,
    x: float,
    sb: np.ndarray,
    y: float,
    stream_b: bool,
    t: float,
    lo: tuple[float, float],
    hi: tuple[float, float],
    best: np.ndarray,
    rec: np.ndarray,
) -> tuple[float, float, float, float]:
    """Best floor and ceiling ``(sum, a)`` over the remainder's (``lo``, ``hi``) and the
    four chains' (``best``), in that order, ties to the earlier (the order of `_sweep`);
    the winning chain's ``a`` from a replay of its recorded block (first occurrence)."""
    lo_s, lo_a = lo
    hi_s, hi_a = hi
    win_f = -1
    win_c = -1
    for r in range(4):
        if best[0, r] > lo_s:
            lo_s = best[0, r]
            win_f = r
        if best[1, r] < hi_s:
            hi_s = best[1, r]
            win_c = r
    state = np.empty(4, dtype=np.int64)
    if win_f >= 0:
        state[:] = rec[0, win_f, :4]
        lo_a = _scan(sa, x, sb, y, stream_b, state, rec[0, win_f, 4], t)[1]
    if win_c >= 0:
        state[:] = rec[1, win_c, :4]
        hi_a = _scan(sa, x, sb, y, stream_b, state, rec[1, win_c, 4], t)[3]
    return lo_s, lo_a, hi_s, hi_a


@njit(cache=True)
def _sweep_va(  # noqa: PLR0917 (numba kernel: positional scalars, one loop)
    sa: np.ndarray,
    a0: int,
    size: int,
    x: float,
    sb: np.ndarray,
    b0: int,
    nb: int,
    t: float,
    w_lo: float,
    w_hi: float,
) -> tuple[float, float, float, float, bool]:
    """`_sweep` whose first table is the top level ``merge(L, L + x)`` of its half, read
    as it is merged instead of stored (``L = sa[a0 : a0 + size]``, the level below,
    with its sentinels): the same sequence of sums, one merge step more per sweep step,
    but the top level (half of the table memory: 8 MB per half at n = 40, past the
    caches) is never written nor read back. Returns the best floor and ceiling sums and
    the first-table entries ``a`` they use (``-inf`` / ``+inf`` sums: none), and whether
    the window stopped it.

    The four chains keep only their running floor and ceiling (`_keep`); which step
    found them is recovered afterwards by replaying one block of at most
    ``_STOP_CHECK_STEPS`` steps (`_note_block`, `_pick_chains`): ~1.3x faster than
    tracking the winning ``a`` at every step (measured side by side), same answers."""
    na = 2 * size
    total = na + nb
    run = total // 4
    one = np.uint64(1)
    # chain starts: positions in the merge -> positions (p in L, q in L + x)
    i2, j2 = _path_state_va(sa, a0, size, x, sb, b0, nb, t, run)
    i3, j3 = _path_state_va(sa, a0, size, x, sb, b0, nb, t, 2 * run)
    i4, j4 = _path_state_va(sa, a0, size, x, sb, b0, nb, t, 3 * run)
    p2 = _corank(sa, a0, size, x, i2)
    p3 = _corank(sa, a0, size, x, i3)
    p4 = _corank(sa, a0, size, x, i4)
    # the last chain first runs the remainder of total / 4, one step at a time
    state = np.array([a0 + p4, a0 + i4 - p4, j4, j4], dtype=np.int64)
    lo_s, lo_a, hi_s, hi_a = _scan(sa, x, sb, 0.0, False, state, total - 4 * run, t)
    pp1 = np.uint64(a0)
    qq1 = np.uint64(a0)
    v1 = np.uint64(b0 + nb - 1)
    pp2 = np.uint64(a0 + p2)
    qq2 = np.uint64(a0 + i2 - p2)
    v2 = np.uint64(j2)
    pp3 = np.uint64(a0 + p3)
    qq3 = np.uint64(a0 + i3 - p3)
    v3 = np.uint64(j3)
    pp4 = np.uint64(state[0])
    qq4 = np.uint64(state[1])
    v4 = np.uint64(state[2])
    f1 = f2 = f3 = f4 = -np.inf
    c1 = c2 = c3 = c4 = np.inf
    start = np.zeros((4, 4), dtype=np.int64)  # each chain's (p, q, g, h) at a block start
    best = np.empty((2, 4), dtype=np.float64)
    best[0] = -np.inf
    best[1] = np.inf
    rec = np.zeros((2, 4, 5), dtype=np.int64)  # (floor / ceiling, chain): start, steps
    stopped = False
    left = run
    while left > 0:
        block = min(left, _STOP_CHECK_STEPS)
        left -= block
        start[0, 0], start[0, 1], start[0, 2] = pp1, qq1, v1
        start[1, 0], start[1, 1], start[1, 2] = pp2, qq2, v2
        start[2, 0], start[2, 1], start[2, 2] = pp3, qq3, v3
        start[3, 0], start[3, 1], start[3, 2] = pp4, qq4, v4
        for _ in range(block):
            a1, k1 = _a_next(sa, pp1, qq1, x)
            a2, k2 = _a_next(sa, pp2, qq2, x)
            a3, k3 = _a_next(sa, pp3, qq3, x)
            a4, k4 = _a_next(sa, pp4, qq4, x)
            f1, c1, t1 = _keep(a1 + sb[v1], t, f1, c1)
            f2, c2, t2 = _keep(a2 + sb[v2], t, f2, c2)
            f3, c3, t3 = _keep(a3 + sb[v3], t, f3, c3)
            f4, c4, t4 = _keep(a4 + sb[v4], t, f4, c4)
            pp1 += t1 & k1
            qq1 += t1 & (one - k1)
            pp2 += t2 & k2
            qq2 += t2 & (one - k2)
            pp3 += t3 & k3
            qq3 += t3 & (one - k3)
            pp4 += t4 & k4
            qq4 += t4 & (one - k4)
            v1 -= one - t1
            v2 -= one - t2
            v3 -= one - t3
            v4 -= one - t4
        _note_block(0, f1, c1, best, start, rec, block)
        _note_block(1, f2, c2, best, start, rec, block)
        _note_block(2, f3, c3, best, start, rec, block)
        _note_block(3, f4, c4, best, start, rec, block)
        if max(f1, f2, f3, f4) >= w_lo or min(c1, c2, c3, c4) <= w_hi:
            stopped = True
            break
    lo_s, lo_a, hi_s, hi_a = _pick_chains(
        sa, x, sb, 0.0, False, t, (lo_s, lo_a), (hi_s, hi_a), best, rec
    )
    return lo_s, lo_a, hi_s, hi_a, stopped


@njit(cache=True)
def _sweep_va2(  # noqa: PLR0917 (numba kernel: positional scalars, one loop)
    sa: np.ndarray,
    a0: int,
    size: int,
    x: float,
    sb: np.ndarray,
    b0: int,
    nb: int,
    t: float,
    w_lo: float,
    w_hi: float,
) -> tuple[float, float, float, float, bool]:
    """`_sweep` whose first table is the top level ``merge(L, L + x)`` of its half, read
    as it is merged instead of stored (``L = sa[a0 : a0 + size]``, the level below,
    with its sentinels): the same sequence of sums, one merge step more per sweep step,
    but the top level (half of the table memory: 8 MB per half at n = 40, past the
    caches) is never written nor read back. Returns the best floor and ceiling sums and
    the first-table entries ``a`` they use (``-inf`` / ``+inf`` sums: none), and whether
    the window stopped it.

    The four chains keep only their running floor and ceiling (`_keep`); which step
    found them is recovered afterwards by replaying one block of at most
    ``_STOP_CHECK_STEPS`` steps (`_note_block`, `_pick_chains`): ~1.3x faster than
    tracking the winning ``a`` at every step (measured side by side), same answers."""
    na = 2 * size
    total = na + nb
    run = total // 4
    one = np.uint64(1)
    # chain starts: positions in the merge -> positions (p in L, q in L + x)
    i2, j2 = _path_state_va(sa, a0, size, x, sb, b0, nb, t, run)
    i3, j3 = _path_state_va(sa, a0, size, x, sb, b0, nb, t, 2 * run)
    i4, j4 = _path_state_va(sa, a0, size, x, sb, b0, nb, t, 3 * run)
    p2 = _corank(sa, a0, size, x, i2)
    p3 = _corank(sa, a0, size, x, i3)
    p4 = _corank(sa, a0, size, x, i4)
    # the last chain first runs the remainder of total / 4, one step at a time
    state = np.array([a0 + p4, a0 + i4 - p4, j4, j4], dtype=np.int64)
    lo_s, lo_a, hi_s, hi_a = _scan(sa, x, sb, 0.0, False, state, total - 4 * run, t)
    pp1 = np.uint64(a0)
    qq1 = np.uint64(a0)
    pp2 = np.uint64(a0 + p2)
    qq2 = np.uint64(a0 + i2 - p2)
    pp3 = np.uint64(a0 + p3)
    qq3 = np.uint64(a0 + i3 - p3)
    pp4 = np.uint64(state[0])
    qq4 = np.uint64(state[1])
    # b's position follows from a's: v = k - steps + pp + qq (each step moves one of them)
    k1 = np.uint64(b0 + nb - 1) - pp1 - qq1
    k2 = np.uint64(j2) - pp2 - qq2
    k3 = np.uint64(j3) - pp3 - qq3
    k4 = np.uint64(state[2]) - pp4 - qq4
    f1 = f2 = f3 = f4 = -np.inf
    c1 = c2 = c3 = c4 = np.inf
    start = np.zeros((4, 4), dtype=np.int64)  # each chain's (p, q, g, h) at a block start
    best = np.empty((2, 4), dtype=np.float64)
    best[0] = -np.inf
    best[1] = np.inf
    rec = np.zeros((2, 4, 5), dtype=np.int64)  # (floor / ceiling, chain): start, steps
    stopped = False
    left = run
    while left > 0:
        block = min(left, _STOP_CHECK_STEPS)
        left -= block
        start[0, 0], start[0, 1], start[0, 2] = pp1, qq1, k1 + pp1 + qq1
        start[1, 0], start[1, 1], start[1, 2] = pp2, qq2, k2 + pp2 + qq2
        start[2, 0], start[2, 1], start[2, 2] = pp3, qq3, k3 + pp3 + qq3
        start[3, 0], start[3, 1], start[3, 2] = pp4, qq4, k4 + pp4 + qq4
        for _ in range(block):
            a1, m1 = _a_next(sa, pp1, qq1, x)
            a2, m2 = _a_next(sa, pp2, qq2, x)
            a3, m3 = _a_next(sa, pp3, qq3, x)
            a4, m4 = _a_next(sa, pp4, qq4, x)
            f1, c1, t1 = _keep(a1 + sb[k1 + pp1 + qq1], t, f1, c1)
            f2, c2, t2 = _keep(a2 + sb[k2 + pp2 + qq2], t, f2, c2)
            f3, c3, t3 = _keep(a3 + sb[k3 + pp3 + qq3], t, f3, c3)
            f4, c4, t4 = _keep(a4 + sb[k4 + pp4 + qq4], t, f4, c4)
            k1 -= one
            k2 -= one
            k3 -= one
            k4 -= one
            pp1 += t1 & m1
            qq1 += t1 & (one - m1)
            pp2 += t2 & m2
            qq2 += t2 & (one - m2)
            pp3 += t3 & m3
            qq3 += t3 & (one - m3)
            pp4 += t4 & m4
            qq4 += t4 & (one - m4)
        _note_block(0, f1, c1, best, start, rec, block)
        _note_block(1, f2, c2, best, start, rec, block)
        _note_block(2, f3, c3, best, start, rec, block)
        _note_block(3, f4, c4, best, start, rec, block)
        if max(f1, f2, f3, f4) >= w_lo or min(c1, c2, c3, c4) <= w_hi:
            stopped = True
            break
    lo_s, lo_a, hi_s, hi_a = _pick_chains(
        sa, x, sb, 0.0, False, t, (lo_s, lo_a), (hi_s, hi_a), best, rec
    )
    return lo_s, lo_a, hi_s, hi_a, stopped


@njit(cache=True)
def _mitm_within_streamed_v2(
    values: np.ndarray, targets: np.ndarray, w_lo: np.ndarray, w_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mitm_nearest_within` with the first half's top level streamed (`_sweep_va`): the
    same sweep over the same sequence of sums, so the same answers."""
    n_cells, n = values.shape
    m = targets.shape[1]
    h = n // 2
    floor_sum = np.empty((n_cells, m), dtype=np.float64)
    ceil_sum = np.empty((n_cells, m), dtype=np.float64)
    floor_mask = np.zeros((n_cells, m), dtype=np.uint64)
    ceil_mask = np.zeros((n_cells, m), dtype=np.uint64)
    stopped = np.zeros((n_cells, m), dtype=np.bool_)
    off_a = level_offsets_nb(h - 1)  # levels 0 .. h - 1 of the first half
    off_b = level_offsets_nb(n - h)
    arena_a = np.empty(off_a[h], dtype=np.float64)
    arena_b = np.empty(off_b[n - h + 1], dtype=np.float64)
    bits_a = _bits(0, h)
    bits_b = _bits(h, n - h)
    a0 = off_a[h - 1] + 1
    size_a = 1 << (h - 1)
    b0 = off_b[n - h] + 1
    nb = 1 << (n - h)
    for c in range(n_cells):
        va = values[c, :h]
        vb = values[c, h:]
        build_sum_levels(va[: h - 1], arena_a, off_a)
        build_sum_levels(vb, arena_b, off_b)
        x = va[h - 1]
        for k in range(m):
            t = targets[c, k]
            lo_s, lo_a, hi_s, hi_a, stop = _sweep_va2(
                arena_a, a0, size_a, x, arena_b, b0, nb, t, w_lo[c, k], w_hi[c, k]
            )
            stopped[c, k] = stop
            floor_sum[c, k] = -np.inf
            ceil_sum[c, k] = np.inf
            if lo_s > -np.inf:
                lo_j = _floor_index(arena_b, b0, nb, lo_a, t)
                floor_sum[c, k] = lo_a + arena_b[lo_j]
                floor_mask[c, k] = recover_mask_of_sum(va, bits_a, arena_a, off_a, lo_a) | (
                    recover_mask(vb, bits_b, arena_b, off_b, lo_j - b0)
                )
            if hi_s < np.inf:
                hi_j = _floor_index(arena_b, b0, nb, hi_a, t) + 1
                ceil_sum[c, k] = hi_a + arena_b[hi_j]
                ceil_mask[c, k] = recover_mask_of_sum(va, bits_a, arena_a, off_a, hi_a) | (
                    recover_mask(vb, bits_b, arena_b, off_b, hi_j - b0)
                )
    return floor_sum, floor_mask, ceil_sum, ceil_mask, stopped


@njit(cache=True)
def _vb_state(src: np.ndarray, s0: int, size: int, y: float, idx: int) -> tuple[int, int]:
    """Descending-stream state at entry ``idx`` (-1 .. 2 size - 1) of ``merge(L, L + y)``
    (L first on ties, so read downwards ``L + y`` comes first): the positions in ``src``
    of the last ``L`` and the last ``L`` behind an ``L + y`` among entries ``0 .. idx``
    (``s0 - 1``, the ``-inf`` sentinel, when none)."""
    cp = _corank(src, s0, size, y, idx + 1)
    return s0 + cp - 1, s0 + idx - cp


@njit(cache=True)
def _vb_floor(  # noqa: PLR0917 (numba kernel: positional scalars)
    src: np.ndarray, s0: int, size: int, y: float, a: float, t: float
) -> int:
    """`_floor_index` over the unstored ``merge(L, L + y)``: the index (-1 .. 2 size - 1)
    of its largest entry ``b`` with ``a + b <= t``. Binary search with co-ranking."""
    lo = 0
    hi = 2 * size
    while lo < hi:
        mid = (lo + hi) // 2
        if a + _va_at(src, s0, size, y, mid) <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


@njit(cache=True)
def _sweep_vv(  # noqa: PLR0917 (numba kernel: positional scalars, one loop)
    sa: np.ndarray,
    a0: int,
    size_a: int,
    x: float,
    sb: np.ndarray,
    b0: int,
    size_b: int,
    y: float,
    t: float,
    w_lo: float,
    w_hi: float,
) -> tuple[float, float, float, float, bool]:
    """`_sweep_va` with the second table streamed too: its top level ``merge(L', L' +
    y)`` read downwards as it is merged (``L' = sb[b0 : b0 + size_b]``). Returns the
    best floor and ceiling sums and the first-table entries ``a`` they use."""
    na = 2 * size_a
    nb = 2 * size_b
    total = na + nb
    run = total // 4
    one = np.uint64(1)
    # _path_state over the two unstored merges: (a position, b index)
    starts_a = np.empty(4, dtype=np.int64)
    starts_b = np.empty(4, dtype=np.int64)
    starts_a[0] = 0
    starts_b[0] = nb - 1
    for r in range(1, 4):
        steps = r * run
        lo = max(0, steps - nb)
        hi = min(steps, na)
        while lo < hi:
            p = (lo + hi) // 2
            av = _va_at(sa, a0, size_a, x, p)
            bv = _va_at(sb, b0, size_b, y, nb - steps + p)
            if av + bv <= t:
                lo = p + 1
            else:
                hi = p
        starts_a[r] = lo
        starts_b[r] = nb - 1 - (steps - lo)
    # each chain's read heads (p, q) in L and (g, h) in L'
    heads = np.empty((4, 4), dtype=np.int64)
    for r in range(4):
        cp = _corank(sa, a0, size_a, x, starts_a[r])
        heads[r, 0] = a0 + cp
        heads[r, 1] = a0 + starts_a[r] - cp
        heads[r, 2], heads[r, 3] = _vb_state(sb, b0, size_b, y, starts_b[r])
    # the last chain first runs the remainder of total / 4, one step at a time
    lo_s, lo_a, hi_s, hi_a = _scan(sa, x, sb, y, True, heads[3], total - 4 * run, t)
    pp1 = np.uint64(heads[0, 0])
    qq1 = np.uint64(heads[0, 1])
    gg1 = np.uint64(heads[0, 2])
    hh1 = np.uint64(heads[0, 3])
    pp2 = np.uint64(heads[1, 0])
    qq2 = np.uint64(heads[1, 1])
    gg2 = np.uint64(heads[1, 2])
    hh2 = np.uint64(heads[1, 3])
    pp3 = np.uint64(heads[2, 0])
    qq3 = np.uint64(heads[2, 1])
    gg3 = np.uint64(heads[2, 2])
    hh3 = np.uint64(heads[2, 3])
    pp4 = np.uint64(heads[3, 0])
    qq4 = np.uint64(heads[3, 1])
    gg4 = np.uint64(heads[3, 2])
    hh4 = np.uint64(heads[3, 3])
    f1 = f2 = f3 = f4 = -np.inf
    c1 = c2 = c3 = c4 = np.inf
    best = np.empty((2, 4), dtype=np.float64)
    best[0] = -np.inf
    best[1] = np.inf
    rec = np.zeros((2, 4, 5), dtype=np.int64)
    stopped = False
    left = run
    while left > 0:
        block = min(left, _STOP_CHECK_STEPS)
        left -= block
        heads[0, 0], heads[0, 1], heads[0, 2], heads[0, 3] = pp1, qq1, gg1, hh1
        heads[1, 0], heads[1, 1], heads[1, 2], heads[1, 3] = pp2, qq2, gg2, hh2
        heads[2, 0], heads[2, 1], heads[2, 2], heads[2, 3] = pp3, qq3, gg3, hh3
        heads[3, 0], heads[3, 1], heads[3, 2], heads[3, 3] = pp4, qq4, gg4, hh4
        for _ in range(block):
            a1, k1 = _a_next(sa, pp1, qq1, x)
            a2, k2 = _a_next(sa, pp2, qq2, x)
            a3, k3 = _a_next(sa, pp3, qq3, x)
            a4, k4 = _a_next(sa, pp4, qq4, x)
            b1, e1 = _b_next(sb, gg1, hh1, y)
            b2, e2 = _b_next(sb, gg2, hh2, y)
            b3, e3 = _b_next(sb, gg3, hh3, y)
            b4, e4 = _b_next(sb, gg4, hh4, y)
            f1, c1, t1 = _keep(a1 + b1, t, f1, c1)
            f2, c2, t2 = _keep(a2 + b2, t, f2, c2)
            f3, c3, t3 = _keep(a3 + b3, t, f3, c3)
            f4, c4, t4 = _keep(a4 + b4, t, f4, c4)
            pp1 += t1 & k1
            qq1 += t1 & (one - k1)
            pp2 += t2 & k2
            qq2 += t2 & (one - k2)
            pp3 += t3 & k3
            qq3 += t3 & (one - k3)
            pp4 += t4 & k4
            qq4 += t4 & (one - k4)
            hh1 -= (one - t1) & e1
            gg1 -= (one - t1) & (one - e1)
            hh2 -= (one - t2) & e2
            gg2 -= (one - t2) & (one - e2)
            hh3 -= (one - t3) & e3
            gg3 -= (one - t3) & (one - e3)
            hh4 -= (one - t4) & e4
            gg4 -= (one - t4) & (one - e4)
        _note_block(0, f1, c1, best, heads, rec, block)
        _note_block(1, f2, c2, best, heads, rec, block)
        _note_block(2, f3, c3, best, heads, rec, block)
        _note_block(3, f4, c4, best, heads, rec, block)
        if max(f1, f2, f3, f4) >= w_lo or min(c1, c2, c3, c4) <= w_hi:
            stopped = True
            break
    lo_s, lo_a, hi_s, hi_a = _pick_chains(
        sa, x, sb, y, True, t, (lo_s, lo_a), (hi_s, hi_a), best, rec
    )
    return lo_s, lo_a, hi_s, hi_a, stopped


@njit(cache=True)
def _sweep_ss(  # noqa: PLR0917 (numba kernel: positional scalars, one loop)
    sa: np.ndarray,
    a0: int,
    na: int,
    sb: np.ndarray,
    b0: int,
    nb: int,
    t: float,
    w_lo: float,
    w_hi: float,
) -> tuple[float, float, float, float, bool]:
    """Lean stored-table sweep."""
    total = na + nb
    run = total // 4
    one = np.uint64(1)
    i2, j2 = _path_state(sa, a0, na, sb, b0, nb, t, run)
    i3, j3 = _path_state(sa, a0, na, sb, b0, nb, t, 2 * run)
    i4, j4 = _path_state(sa, a0, na, sb, b0, nb, t, 3 * run)
    # a stored first table is the stream merge(L, L + inf) with q at its +inf sentinel
    qinf = a0 + na
    state = np.array([i4, qinf, j4, j4], dtype=np.int64)
    lo_s, lo_a, hi_s, hi_a = _scan(sa, np.inf, sb, 0.0, False, state, total - 4 * run, t)
    u1 = np.uint64(a0)
    v1 = np.uint64(b0 + nb - 1)
    u2 = np.uint64(i2)
    v2 = np.uint64(j2)
    u3 = np.uint64(i3)
    v3 = np.uint64(j3)
    u4 = np.uint64(state[0])
    v4 = np.uint64(state[2])
    f1 = f2 = f3 = f4 = -np.inf
    c1 = c2 = c3 = c4 = np.inf
    start = np.zeros((4, 4), dtype=np.int64)
    start[:, 1] = qinf
    best = np.empty((2, 4), dtype=np.float64)
    best[0] = -np.inf
    best[1] = np.inf
    rec = np.zeros((2, 4, 5), dtype=np.int64)
    stopped = False
    left = run
    while left > 0:
        block = min(left, _STOP_CHECK_STEPS)
        left -= block
        start[0, 0], start[0, 2] = u1, v1
        start[1, 0], start[1, 2] = u2, v2
        start[2, 0], start[2, 2] = u3, v3
        start[3, 0], start[3, 2] = u4, v4
        for _ in range(block):
            f1, c1, t1 = _keep(sa[u1] + sb[v1], t, f1, c1)
            f2, c2, t2 = _keep(sa[u2] + sb[v2], t, f2, c2)
            f3, c3, t3 = _keep(sa[u3] + sb[v3], t, f3, c3)
            f4, c4, t4 = _keep(sa[u4] + sb[v4], t, f4, c4)
            u1 += t1
            v1 -= one - t1
            u2 += t2
            v2 -= one - t2
            u3 += t3
            v3 -= one - t3
            u4 += t4
            v4 -= one - t4
        _note_block(0, f1, c1, best, start, rec, block)
        _note_block(1, f2, c2, best, start, rec, block)
        _note_block(2, f3, c3, best, start, rec, block)
        _note_block(3, f4, c4, best, start, rec, block)
        if max(f1, f2, f3, f4) >= w_lo or min(c1, c2, c3, c4) <= w_hi:
            stopped = True
            break
    lo_s, lo_a, hi_s, hi_a = _pick_chains(
        sa, np.inf, sb, 0.0, False, t, (lo_s, lo_a), (hi_s, hi_a), best, rec
    )
    return lo_s, lo_a, hi_s, hi_a, stopped


@njit(cache=True)
def _mitm_within_stored2(
    values: np.ndarray, targets: np.ndarray, w_lo: np.ndarray, w_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """lean stored"""
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
            lo_s, lo_a, hi_s, hi_a, stop = _sweep_ss(
                arena_a, a0, na, arena_b, b0, nb, t, w_lo[c, k], w_hi[c, k]
            )
            stopped[c, k] = stop
            floor_sum[c, k] = -np.inf
            ceil_sum[c, k] = np.inf
            if lo_s > -np.inf:
                lo_j = _floor_index(arena_b, b0, nb, lo_a, t)
                floor_sum[c, k] = lo_a + arena_b[lo_j]
                floor_mask[c, k] = recover_mask_of_sum(va, bits_a, arena_a, off_a, lo_a) | (
                    recover_mask(vb, bits_b, arena_b, off_b, lo_j - b0)
                )
            if hi_s < np.inf:
                hi_j = _floor_index(arena_b, b0, nb, hi_a, t) + 1
                ceil_sum[c, k] = hi_a + arena_b[hi_j]
                ceil_mask[c, k] = recover_mask_of_sum(va, bits_a, arena_a, off_a, hi_a) | (
                    recover_mask(vb, bits_b, arena_b, off_b, hi_j - b0)
                )
    return floor_sum, floor_mask, ceil_sum, ceil_mask, stopped


@njit(cache=True)
def _mitm_within_streamed2(
    values: np.ndarray, targets: np.ndarray, w_lo: np.ndarray, w_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mitm_nearest_within` with both halves' top levels streamed (`_sweep_vv`)."""
    n_cells, n = values.shape
    m = targets.shape[1]
    h = n // 2
    hb = n - h
    floor_sum = np.empty((n_cells, m), dtype=np.float64)
    ceil_sum = np.empty((n_cells, m), dtype=np.float64)
    floor_mask = np.zeros((n_cells, m), dtype=np.uint64)
    ceil_mask = np.zeros((n_cells, m), dtype=np.uint64)
    stopped = np.zeros((n_cells, m), dtype=np.bool_)
    off_a = level_offsets_nb(h - 1)
    off_b = level_offsets_nb(hb - 1)
    arena_a = np.empty(off_a[h], dtype=np.float64)
    arena_b = np.empty(off_b[hb], dtype=np.float64)
    bits_a = _bits(0, h)
    bits_b = _bits(h, hb)
    a0 = off_a[h - 1] + 1
    size_a = 1 << (h - 1)
    b0 = off_b[hb - 1] + 1
    size_b = 1 << (hb - 1)
    for c in range(n_cells):
        va = values[c, :h]
        vb = values[c, h:]
        build_sum_levels(va[: h - 1], arena_a, off_a)
        build_sum_levels(vb[: hb - 1], arena_b, off_b)
        x = va[h - 1]
        y = vb[hb - 1]
        for k in range(m):
            t = targets[c, k]
            lo_s, lo_a, hi_s, hi_a, stop = _sweep_vv(
                arena_a, a0, size_a, x, arena_b, b0, size_b, y, t, w_lo[c, k], w_hi[c, k]
            )
            stopped[c, k] = stop
            floor_sum[c, k] = -np.inf
            ceil_sum[c, k] = np.inf
            if lo_s > -np.inf:
                lo_j = _vb_floor(arena_b, b0, size_b, y, lo_a, t)
                b = _va_at(arena_b, b0, size_b, y, lo_j)
                floor_sum[c, k] = lo_a + b
                floor_mask[c, k] = recover_mask_of_sum(va, bits_a, arena_a, off_a, lo_a) | (
                    recover_mask_of_sum(vb, bits_b, arena_b, off_b, b)
                )
            if hi_s < np.inf:
                hi_j = _vb_floor(arena_b, b0, size_b, y, hi_a, t) + 1
                b = _va_at(arena_b, b0, size_b, y, hi_j)
                ceil_sum[c, k] = hi_a + b
                ceil_mask[c, k] = recover_mask_of_sum(va, bits_a, arena_a, off_a, hi_a) | (
                    recover_mask_of_sum(vb, bits_b, arena_b, off_b, b)
                )
    return floor_sum, floor_mask, ceil_sum, ceil_mask, stopped


#: Up to this many targets per cell, `mitm_nearest_within` streams the top level of the
#: first half (`_sweep_va`), from `_STREAM_BOTH_FROM_N` elements of both halves
#: (`_sweep_vv`), through the sweep instead of storing it: with more targets the stored
#: level is read by every target's sweep and costs less than a merge per step.
#: Measured side by side (thread CPU time, same instances, answers identical): first
#: half streamed 1.13-1.16x at n = 32-38, 1.08x at n = 40, equal at n = 22-24; both
#: halves 1.28x at n = 40 (the 8 MB top levels are past the caches), 1.05-1.13x below.
_STREAMED_TOP_MAX_TARGETS = 2
_STREAM_BOTH_FROM_N = 39


@njit(cache=True)
def _mitm_within_streamed(
    values: np.ndarray, targets: np.ndarray, w_lo: np.ndarray, w_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mitm_nearest_within` with the first half's top level streamed (`_sweep_va`): the
    same sweep over the same sequence of sums, so the same answers."""
    n_cells, n = values.shape
    m = targets.shape[1]
    h = n // 2
    floor_sum = np.empty((n_cells, m), dtype=np.float64)
    ceil_sum = np.empty((n_cells, m), dtype=np.float64)
    floor_mask = np.zeros((n_cells, m), dtype=np.uint64)
    ceil_mask = np.zeros((n_cells, m), dtype=np.uint64)
    stopped = np.zeros((n_cells, m), dtype=np.bool_)
    off_a = level_offsets_nb(h - 1)  # levels 0 .. h - 1 of the first half
    off_b = level_offsets_nb(n - h)
    arena_a = np.empty(off_a[h], dtype=np.float64)
    arena_b = np.empty(off_b[n - h + 1], dtype=np.float64)
    bits_a = _bits(0, h)
    bits_b = _bits(h, n - h)
    a0 = off_a[h - 1] + 1
    size_a = 1 << (h - 1)
    b0 = off_b[n - h] + 1
    nb = 1 << (n - h)
    for c in range(n_cells):
        va = values[c, :h]
        vb = values[c, h:]
        build_sum_levels(va[: h - 1], arena_a, off_a)
        build_sum_levels(vb, arena_b, off_b)
        x = va[h - 1]
        for k in range(m):
            t = targets[c, k]
            lo_s, lo_a, hi_s, hi_a, stop = _sweep_va(
                arena_a, a0, size_a, x, arena_b, b0, nb, t, w_lo[c, k], w_hi[c, k]
            )
            stopped[c, k] = stop
            floor_sum[c, k] = -np.inf
            ceil_sum[c, k] = np.inf
            if lo_s > -np.inf:
                lo_j = _floor_index(arena_b, b0, nb, lo_a, t)
                floor_sum[c, k] = lo_a + arena_b[lo_j]
                floor_mask[c, k] = recover_mask_of_sum(va, bits_a, arena_a, off_a, lo_a) | (
                    recover_mask(vb, bits_b, arena_b, off_b, lo_j - b0)
                )
            if hi_s < np.inf:
                hi_j = _floor_index(arena_b, b0, nb, hi_a, t) + 1
                ceil_sum[c, k] = hi_a + arena_b[hi_j]
                ceil_mask[c, k] = recover_mask_of_sum(va, bits_a, arena_a, off_a, hi_a) | (
                    recover_mask(vb, bits_b, arena_b, off_b, hi_j - b0)
                )
    return floor_sum, floor_mask, ceil_sum, ceil_mask, stopped


@njit(cache=True)
def _mitm_within_stored(
    values: np.ndarray, targets: np.ndarray, w_lo: np.ndarray, w_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mitm_nearest_within` with both halves' top levels stored (`_sweep`)."""
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
def mitm_nearest_within(
    values: np.ndarray, targets: np.ndarray, w_lo: np.ndarray, w_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mitm_nearest` that may stop at the first sum inside ``[w_lo, w_hi]`` (C, m).

    Returns the four arrays of `mitm_nearest` and ``stopped`` (C, m) bool: True where
    the sweep stopped early, so that floor and ceiling are the best found so far (one of
    them in the window) and not proven nearest. An empty window (``w_lo > w_hi``) never
    stops: the answer is then exact.
    """
    n = values.shape[1]
    if targets.shape[1] <= _STREAMED_TOP_MAX_TARGETS and n >= 4:
        if n >= _STREAM_BOTH_FROM_N:
            return _mitm_within_streamed2(values, targets, w_lo, w_hi)
        return _mitm_within_streamed(values, targets, w_lo, w_hi)
    return _mitm_within_stored(values, targets, w_lo, w_hi)


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
