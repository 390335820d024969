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
  two-pointer sweep (first table ascending, second descending; `_lean_sweep`).
  ``O(2**(n/2))`` time and memory per cell, ``O(2**(n/2))`` per target. From n = 35 the
  tables' top levels are produced window by window just ahead of the sweep instead of
  stored (`_sweep_windows`): same answers, cache-sized memory traffic.

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
    _corank_within,
    build_sorted_sums,
    build_sorted_sums_with_cost,
    build_sum_levels,
    level_offsets_nb,
    merge_range,
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _bits(start: int, count: int) -> np.ndarray:
    """uint64 bits ``1 << start`` ... ``1 << (start + count - 1)``."""
    out = np.empty(count, dtype=np.uint64)
    for j in range(count):
        out[j] = np.uint64(1) << np.uint64(start + j)
    return out


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


#: Steps of each sweep chain between two checks of the tolerance window (with a
#: window) or between two looks at its running floor and ceiling (exact: longer blocks,
#: less bookkeeping; 256 measured 1.1x faster than 64 at n = 32).
_STOP_CHECK_STEPS = 64
_EXACT_BLOCK_STEPS = 256


@njit(cache=True, nogil=True)
def _path_state(  # noqa: PLR0917 (numba kernel: positional scalars)
    sa: np.ndarray, a0: int, na: int, sb: np.ndarray, b0: int, nb: int, t: float, steps: int
) -> tuple[int, int]:
    """Positions ``(i, j)`` of the sweep of `_lean_sweep` after ``steps`` steps from
    ``(a0, b0 + nb - 1)``.

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


@njit(inline="always")
def _keep(s: float, t: float, f: float, c: float) -> tuple[float, float, np.uint64]:
    """One sweep step's bookkeeping: the running floor ``f`` (largest ``s <= t``) and
    ceiling ``c`` (smallest ``s > t``) of a chain, and 1 if ``s <= t`` (``a`` advances).
    Which step found them is not tracked here (see `_lean_sweep`)."""
    le = s <= t
    return max(f, s if le else -np.inf), min(c, np.inf if le else s), np.uint64(le)


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
    rose (ceiling ``c`` fell) in it, remember the block's start ``start[r]`` (global
    ``a`` and ``b`` indices), so that the step that found it can be replayed (`_scan`)."""
    if f > best[0, r]:
        best[0, r] = f
        rec[0, r, 0] = start[r, 0]  # element by element: a slice is a refcounted view
        rec[0, r, 1] = start[r, 1]
        rec[0, r, 2] = steps
    if c < best[1, r]:
        best[1, r] = c
        rec[1, r, 0] = start[r, 0]
        rec[1, r, 1] = start[r, 1]
        rec[1, r, 2] = steps


@njit(cache=True, nogil=True)
def _lean_sweep(  # noqa: PLR0917 (numba kernel: positional scalars, one loop)
    sa: np.ndarray,
    ia: int,
    na: int,
    sb: np.ndarray,
    jb: int,
    nb: int,
    steps: int,
    t: float,
    w_lo: float,
    w_hi: float,
    da: int,
    db: int,
    gbest: np.ndarray,
    grec: np.ndarray,
) -> tuple[int, int, bool]:
    """``steps`` steps of the two-pointer sweep for the floor and ceiling of ``t``.

    From ``a = sa[ia]`` (ascending; ``na`` entries, then ``+inf``) and ``b = sb[jb]``
    (read downwards; ``nb`` entries, then ``-inf``): each step finds either ``a + b >
    t`` (a ceiling candidate; no later ``a`` pairs with this ``b`` below ``t``: ``b``
    moves down) or ``a + b <= t`` (the largest such ``b`` for this ``a``: a floor
    candidate; ``a`` moves up). Every pair skipped is dominated by a candidate.

    The steps are cut in four runs (`_path_state`) swept by four branch-free chains in
    one loop (the CPU overlaps their dependency chains), the remainder one at a time
    (`_scan`). Each chain keeps only its running floor and ceiling; every
    ``_EXACT_BLOCK_STEPS`` (``_STOP_CHECK_STEPS`` with a window) it notes the block where
    they improved (`_note_block`), and the winning step is replayed afterwards: ~1.4x
    fewer instructions per step than tracking the winner at every step.

    Updates ``gbest`` (best floor, best ceiling so far) and ``grec`` (each one's block:
    global ``a`` index ``i - da``, global ``b`` index ``j - db``, steps), ties to the
    first along the path (the answer does not depend on how the path is cut). Tolerance
    mode: with ``w_lo <= t <= w_hi`` it stops after the block where a candidate lies in
    the window. Returns the end positions and whether it stopped. ``O(steps)``.
    """
    block_len = _STOP_CHECK_STEPS if w_lo <= w_hi else _EXACT_BLOCK_STEPS
    run = steps // 4
    one = np.uint64(1)
    b0 = jb - nb + 1
    i2, j2 = _path_state(sa, ia, na, sb, b0, nb, t, run)
    i3, j3 = _path_state(sa, ia, na, sb, b0, nb, t, 2 * run)
    i4, j4 = _path_state(sa, ia, na, sb, b0, nb, t, 3 * run)
    u1 = np.uint64(ia)  # unsigned positions: numba skips its negative-index wraparound
    v1 = np.uint64(jb)
    u2 = np.uint64(i2)
    v2 = np.uint64(j2)
    u3 = np.uint64(i3)
    v3 = np.uint64(j3)
    u4 = np.uint64(i4)
    v4 = np.uint64(j4)
    f1 = f2 = f3 = f4 = -np.inf
    c1 = c2 = c3 = c4 = np.inf
    start = np.empty((4, 2), dtype=np.int64)
    best = np.empty((2, 4), dtype=np.float64)
    best[0] = -np.inf
    best[1] = np.inf
    rec = np.zeros((2, 4, 3), dtype=np.int64)
    stopped = False
    left = run
    while left > 0:
        block = min(left, block_len)
        left -= block
        start[0, 0], start[0, 1] = np.int64(u1) - da, np.int64(v1) - db
        start[1, 0], start[1, 1] = np.int64(u2) - da, np.int64(v2) - db
        start[2, 0], start[2, 1] = np.int64(u3) - da, np.int64(v3) - db
        start[3, 0], start[3, 1] = np.int64(u4) - da, np.int64(v4) - db
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
    i = np.int64(u4)
    j = np.int64(v4)
    rem = 0 if stopped else steps - 4 * run
    # the remainder continues the fourth chain, one step at a time
    f5 = -np.inf
    c5 = np.inf
    i5, j5 = i, j
    for _ in range(rem):
        s = sa[i] + sb[j]
        if s <= t:
            f5 = max(f5, s)
            i += 1
        else:
            c5 = min(c5, s)
            j -= 1
    # in path order (chains 1..4, then the remainder), ties to the first
    for r in range(4):
        if best[0, r] > gbest[0]:
            gbest[0] = best[0, r]
            grec[0, 0], grec[0, 1], grec[0, 2] = rec[0, r, 0], rec[0, r, 1], rec[0, r, 2]
        if best[1, r] < gbest[1]:
            gbest[1] = best[1, r]
            grec[1, 0], grec[1, 1], grec[1, 2] = rec[1, r, 0], rec[1, r, 1], rec[1, r, 2]
    if f5 > gbest[0]:
        gbest[0] = f5
        grec[0, 0], grec[0, 1], grec[0, 2] = i5 - da, j5 - db, rem
    if c5 < gbest[1]:
        gbest[1] = c5
        grec[1, 0], grec[1, 1], grec[1, 2] = i5 - da, j5 - db, rem
    return int(i), int(j), stopped


@njit(cache=True, nogil=True)
def _scan(  # noqa: PLR0917 (numba kernel: positional scalars)
    sa: np.ndarray,
    x: float,
    sb: np.ndarray,
    y: float,
    streamed: bool,
    state: np.ndarray,
    steps: int,
    t: float,
) -> tuple[float, float, float, float]:
    """Replay ``steps`` sweep steps one at a time from ``state``: the best floor and
    ceiling sums and the ``a`` of their first occurrence (``-inf`` / ``+inf``: none).

    Stored tables (``streamed`` False): ``a = sa[state[0]]``, ``b = sb[state[2]]``.
    Streamed: the tables are the unstored top levels ``merge(L, L + x)`` (read heads
    ``L[state[0]]``, ``L[state[1]]``) and ``merge(L', L' + y)`` read downwards (heads
    ``L'[state[2]]``, ``L'[state[3]] + y``; `_vb_state`)."""
    f = -np.inf
    c = np.inf
    fa = -np.inf
    ca = np.inf
    p, q, g, h = state[0], state[1], state[2], state[3]
    for _ in range(steps):
        u = sa[p]
        w = sa[q] + x if streamed else np.inf
        a = u if u <= w else w
        bl = sb[g]
        bm = sb[h] + y if streamed else -np.inf
        s = a + (bm if bm >= bl else bl)
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
            if bm >= bl:
                h -= 1
            else:
                g -= 1
    return f, fa, c, ca


@njit(cache=True, nogil=True)
def _va_at(src: np.ndarray, s0: int, size: int, x: float, i: int) -> float:
    """Entry ``i`` (0 .. 2 size) of ``merge(L, L + x)``, ``L = src[s0 : s0 + size]`` (L on
    ties; ``+inf`` at ``2 size``), without storing the merge: co-ranking. ``O(log size)``."""
    p = _corank(src, s0, size, x, i)
    u = src[s0 + p]
    w = src[s0 + i - p] + x
    return float(u if u <= w else w)


@njit(cache=True, nogil=True)
def _vb_state(src: np.ndarray, s0: int, size: int, y: float, idx: int) -> tuple[int, int]:
    """Descending-stream state at entry ``idx`` (-1 .. 2 size - 1) of ``merge(L, L + y)``
    (L first on ties, so read downwards ``L + y`` comes first): the positions in ``src``
    of the last ``L`` and the last ``L`` behind an ``L + y`` among entries ``0 .. idx``
    (``s0 - 1``, the ``-inf`` sentinel, when none)."""
    cp = _corank(src, s0, size, y, idx + 1)
    return s0 + cp - 1, s0 + idx - cp


@njit(cache=True, nogil=True)
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


#: Steps of the sweep per window (`_mitm_within_windows`): two windows of 2 x 16,384
#: floats (512 kB in all) stay in the cache (8,192 to 32,768 measured alike at n = 40).
_WINDOW_STEPS = 16384


@njit(cache=True, nogil=True)
def _sweep_windows(  # noqa: PLR0917 (numba kernel: positional scalars)
    la: np.ndarray,
    a0: int,
    size_a: int,
    x: float,
    lb: np.ndarray,
    b0: int,
    size_b: int,
    y: float,
    t: float,
    w_lo: float,
    w_hi: float,
    wa: np.ndarray,
    wb: np.ndarray,
) -> tuple[float, float, float, float, bool]:
    """The sweep over the top levels ``A = merge(L, L + x)`` and ``B = merge(L', L' +
    y)`` of the two halves, never stored whole: they are produced window by window
    (`merge_range`, four chains) into ``wa`` and ``wb`` (``2 _WINDOW_STEPS + 2``
    floats each, reused) just ahead of the sweep (`_lean_sweep`), which reads them in
    the cache. ``L = la[a0 : a0 + size_a]``, ``L' = lb[b0 : b0 + size_b]`` (levels below
    the top, with sentinels). Returns the best floor and ceiling sums, the ``a`` they
    use (``-inf`` / ``+inf`` sums: none), and whether the window stopped it."""
    na = 2 * size_a
    nb = 2 * size_b
    cap = wa.shape[0]
    window = (cap - 2) // 2  # steps per window
    gbest = np.array([-np.inf, np.inf])
    grec = np.zeros((2, 3), dtype=np.int64)
    # window of A: global [alo, ahi) at wa[g - alo]; of B: [blo, bhi) at wb[g + db]
    alo = 0
    ahi = 0
    pa_hi = 0  # co-rank of ahi in A's merge
    blo = nb
    db = cap - nb
    pb_lo = size_b  # co-rank of blo in B's merge
    ga = 0  # the sweep's global position in A (ascending) and B (descending)
    gb = nb - 1
    left = na + nb
    stopped = False
    while left > 0 and not stopped:
        k = min(left, window)
        # A: [ga, min(ga + k, na + 1)), where A[na] is the +inf sentinel
        need = min(ga + k, na + 1)
        if need > ahi:
            if need - alo > cap:  # keep the unread part, moved to the front
                for i in range(ahi - ga):
                    wa[i] = wa[ga - alo + i]
                alo = ga
            top = min(need, na)
            if top > ahi:
                p_top = _corank_within(la, a0, size_a, x, top, pa_hi, pa_hi + top - ahi)
                merge_range(la, a0, size_a, x, ahi, top, pa_hi, p_top, wa, ahi - alo)
                pa_hi = p_top
            if need == na + 1:
                wa[na - alo] = np.inf
            ahi = need
        # B: [max(gb - k + 1, -1), gb], where B[-1] is the -inf sentinel
        need = max(gb - k + 1, -1)
        if need < blo:
            if need + db < 0:  # keep the unread part, moved to the back
                shift = cap - (gb + 1) - db
                for i in range(gb + db, blo + db - 1, -1):
                    wb[i + shift] = wb[i]
                db += shift
            bot = max(need, 0)
            if bot < blo:
                p_bot = _corank_within(lb, b0, size_b, y, bot, pb_lo - (blo - bot), pb_lo)
                merge_range(lb, b0, size_b, y, bot, blo, p_bot, pb_lo, wb, bot + db)
                pb_lo = p_bot
            if need == -1:
                wb[db - 1] = -np.inf
            blo = need
        i, j, stopped = _lean_sweep(
            wa,
            ga - alo,
            min(na - ga, k),
            wb,
            gb + db,
            min(gb + 1, k),
            k,
            t,
            w_lo,
            w_hi,
            -alo,
            db,
            gbest,
            grec,
        )
        ga = i + alo
        gb = j - db
        left -= k
    state = np.empty(4, dtype=np.int64)
    lo_a = -np.inf
    hi_a = np.inf
    for side in range(2):
        if (side == 0 and gbest[0] > -np.inf) or (side == 1 and gbest[1] < np.inf):
            p = _corank(la, a0, size_a, x, grec[side, 0])
            state[0] = a0 + p
            state[1] = a0 + grec[side, 0] - p
            state[2], state[3] = _vb_state(lb, b0, size_b, y, grec[side, 1])
            _, fa, _, ca = _scan(la, x, lb, y, True, state, grec[side, 2], t)
            if side == 0:
                lo_a = fa
            else:
                hi_a = ca
    return gbest[0], lo_a, gbest[1], hi_a, stopped


@njit(cache=True, nogil=True)
def _mitm_within_windows(
    values: np.ndarray,
    targets: np.ndarray,
    w_lo: np.ndarray,
    w_hi: np.ndarray,
    window_steps: int = _WINDOW_STEPS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mitm_nearest_within` with neither half's top level stored (`_sweep_windows`,
    ``window_steps`` sweep steps per window)."""
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
    wa = np.empty(2 * window_steps + 2, dtype=np.float64)  # reused by every target
    wb = np.empty(2 * window_steps + 2, dtype=np.float64)
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
            lo_s, lo_a, hi_s, hi_a, stop = _sweep_windows(
                arena_a, a0, size_a, x, arena_b, b0, size_b, y, t, w_lo[c, k], w_hi[c, k], wa, wb
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


#: From `_WINDOWS_FROM_N` elements and up to `_WINDOWED_MAX_TARGETS` targets per cell,
#: `mitm_nearest_within` never stores the halves' top levels (`_mitm_within_windows`):
#: from n = 35 a stored top level (2**17 floats, 1 MB) outgrows this machine's share of
#: the cache, and writing it and reading it back costs more than producing it window by
#: window (measured side by side, same answers: windows 1.3-1.4x the stored tables at
#: n = 40, the stored tables 1.05x the windows at n = 32). With more targets, storing
#: them once per cell costs less than producing them again for every target's sweep.
_WINDOWS_FROM_N = 35
_WINDOWED_MAX_TARGETS = 2


@njit(cache=True, nogil=True)
def _mitm_within_stored(
    values: np.ndarray, targets: np.ndarray, w_lo: np.ndarray, w_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mitm_nearest_within` with both halves' top levels stored, one `_lean_sweep` per
    target over them."""
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
    gbest = np.empty(2, dtype=np.float64)
    grec = np.zeros((2, 3), dtype=np.int64)
    state = np.zeros(4, dtype=np.int64)
    for c in range(n_cells):
        va = values[c, :h]
        vb = values[c, h:]
        build_sum_levels(va, arena_a, off_a)
        build_sum_levels(vb, arena_b, off_b)
        for k in range(m):
            t = targets[c, k]
            gbest[0] = -np.inf
            gbest[1] = np.inf
            _, _, stop = _lean_sweep(
                arena_a,
                a0,
                na,
                arena_b,
                b0 + nb - 1,
                nb,
                na + nb,
                t,
                w_lo[c, k],
                w_hi[c, k],
                a0,
                b0,
                gbest,
                grec,
            )
            stopped[c, k] = stop
            floor_sum[c, k] = -np.inf
            ceil_sum[c, k] = np.inf
            for side in range(2):
                if (side == 0 and gbest[0] == -np.inf) or (side == 1 and gbest[1] == np.inf):
                    continue
                state[0] = a0 + grec[side, 0]
                state[2] = b0 + grec[side, 1]
                _, fa, _, ca = _scan(arena_a, 0.0, arena_b, 0.0, False, state, grec[side, 2], t)
                a = fa if side == 0 else ca
                j = _floor_index(arena_b, b0, nb, a, t) + side
                mask_a = recover_mask_of_sum(va, bits_a, arena_a, off_a, a)
                mask_b = recover_mask(vb, bits_b, arena_b, off_b, j - b0)
                if side == 0:
                    floor_sum[c, k] = a + arena_b[j]
                    floor_mask[c, k] = mask_a | mask_b
                else:
                    ceil_sum[c, k] = a + arena_b[j]
                    ceil_mask[c, k] = mask_a | mask_b
    return floor_sum, floor_mask, ceil_sum, ceil_mask, stopped


@njit(cache=True, nogil=True)
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
    if targets.shape[1] <= _WINDOWED_MAX_TARGETS and n >= _WINDOWS_FROM_N:
        return _mitm_within_windows(values, targets, w_lo, w_hi, _WINDOW_STEPS)
    return _mitm_within_stored(values, targets, w_lo, w_hi)


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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
