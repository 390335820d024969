"""All subset sums of a set of values, sorted, with their subsets as bit patterns.

The primitive under every exact solver here (full enumeration, meet-in-the-middle) and
under the precision study (the worst-case error over a target interval is half the
largest gap between consecutive sorted sums).

Algorithm: start from the single empty sum ``[0]`` and, for each value ``a_i``, merge the
sorted list ``L`` with the sorted list ``L + a_i`` (adding a constant keeps a list sorted,
whatever the sign of ``a_i``). The merge is linear, so the total work is
``sum_i 2**i = O(2**n)`` time and ``O(2**n)`` memory (16 bytes per sum: float64 + uint64),
against ``O(n 2**n)`` for sorting the enumerated sums.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "MAX_SUBSET_SUMS_N",
    "build_sorted_sums",
    "build_sorted_sums_with_cost",
    "sorted_subset_sums",
]

#: Largest n accepted: 2**30 sums take 16 GiB (float64 sum + uint64 mask each).
MAX_SUBSET_SUMS_N = 30
#: Merges of runs shorter than this use a branch (cheap while the data sit in L1);
#: longer ones an index select without data-dependent branches, ~20 % faster there
#: because the comparison outcome is a coin flip the branch predictor cannot learn.
_BRANCHY_BELOW = 4096


@njit(cache=True)
def build_sorted_sums(  # noqa: PLR0917 (numba kernel: positional arrays)
    values: np.ndarray,
    bits: np.ndarray,
    buf_a: np.ndarray,
    mask_a: np.ndarray,
    buf_b: np.ndarray,
    mask_b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted subset sums of ``values`` (k,), returned as views into the buffers.

    ``bits`` (k,) holds the uint64 bit that marks element ``j`` in a mask, so that a
    half of a larger set can use its global bit positions. The four buffers need
    ``2**k + 1`` entries each (ping-pong: each merge reads one pair and writes the
    other; a sentinel ``+inf`` ends the runs, so the loop has no bounds tests; long
    runs are merged without data-dependent branches).
    Returns ``(sums, masks)`` of length ``2**k``.

    Each sum is accumulated in increasing element order. Among equal sums the one
    without ``values[j]`` comes first at each step: the order is a deterministic
    function of the inputs.
    """
    k = values.shape[0]
    src, msrc, dst, mdst = buf_a, mask_a, buf_b, mask_b
    src[0] = 0.0
    msrc[0] = 0
    size = 1
    for j in range(k):
        a = values[j]
        bit = bits[j]
        src[size] = np.inf
        p = 0  # next entry of L
        q = 0  # next entry of L + a
        if size < _BRANCHY_BELOW:
            for out in range(2 * size):
                sp = src[p]
                sq = src[q] + a
                if sp <= sq:
                    dst[out] = sp
                    mdst[out] = msrc[p]
                    p += 1
                else:
                    dst[out] = sq
                    mdst[out] = msrc[q] | bit
                    q += 1
        else:
            for out in range(2 * size):
                t = int(src[p] <= src[q] + a)  # 1: take from L
                u = 1 - t
                idx = q + (p - q) * t
                dst[out] = src[idx] + a * u  # + 0.0 is exact
                mdst[out] = msrc[idx] | (bit * np.uint64(u))
                p += t
                q += u
        size *= 2
        src, msrc, dst, mdst = dst, mdst, src, msrc
    return src[:size], msrc[:size]


@njit(cache=True)
def build_sorted_sums_with_cost(  # noqa: PLR0917 (numba kernel: positional arrays)
    values: np.ndarray,
    bits: np.ndarray,
    costs: np.ndarray,
    buf_a: np.ndarray,
    mask_a: np.ndarray,
    cost_a: np.ndarray,
    buf_b: np.ndarray,
    mask_b: np.ndarray,
    cost_b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As `build_sorted_sums`, also carrying an additive per-element cost.

    ``costs`` (k,) is the cost of each element; the returned third array holds, next
    to each sum, the total cost of its subset (the secondary objective).
    """
    k = values.shape[0]
    src, msrc, csrc = buf_a, mask_a, cost_a
    dst, mdst, cdst = buf_b, mask_b, cost_b
    src[0] = 0.0
    msrc[0] = 0
    csrc[0] = 0.0
    size = 1
    for j in range(k):
        a = values[j]
        bit = bits[j]
        c = costs[j]
        src[size] = np.inf
        p = 0
        q = 0
        if size < _BRANCHY_BELOW:
            for out in range(2 * size):
                sp = src[p]
                sq = src[q] + a
                if sp <= sq:
                    dst[out] = sp
                    mdst[out] = msrc[p]
                    cdst[out] = csrc[p]
                    p += 1
                else:
                    dst[out] = sq
                    mdst[out] = msrc[q] | bit
                    cdst[out] = csrc[q] + c
                    q += 1
        else:
            for out in range(2 * size):
                t = int(src[p] <= src[q] + a)
                u = 1 - t
                idx = q + (p - q) * t
                dst[out] = src[idx] + a * u
                mdst[out] = msrc[idx] | (bit * np.uint64(u))
                cdst[out] = csrc[idx] + c * u
                p += t
                q += u
        size *= 2
        src, msrc, csrc, dst, mdst, cdst = dst, mdst, cdst, src, msrc, csrc
    return src[:size], msrc[:size], csrc[:size]


def sorted_subset_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return all ``2**n`` subset sums of ``values``, ascending, with their subsets.

    Parameters
    ----------
    values : array_like, shape (n,)
        Finite real numbers (any sign, any unit; the sums carry the same unit).
        ``n <= 30``.

    Returns
    -------
    sums : ndarray, float64, shape (2**n,)
        Every subset sum, sorted ascending (duplicates kept: one per subset).
    masks : ndarray, uint64, shape (2**n,)
        ``masks[k]`` has bit ``i`` set iff ``values[i]`` is in the subset giving
        ``sums[k]``. Each of the ``2**n`` patterns occurs exactly once.

    Each sum is accumulated in the order of increasing element index, so it is the
    floating-point value of ``sum(values[i] for i in subset)`` added left to right.

    Complexity: ``O(2**n)`` time (linear merges of ``L`` with ``L + a_i``) and
    ``O(2**n)`` memory (32 bytes per sum during the build).

    Raises
    ------
    ValueError
        If ``values`` is not 1-D, has more than 30 entries, or holds NaN or inf.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        msg = f"sorted_subset_sums: values must be 1-D, got shape {arr.shape}"
        raise ValueError(msg)
    n = arr.shape[0]
    if n > MAX_SUBSET_SUMS_N:
        msg = (
            f"sorted_subset_sums: n = {n} values would give 2**{n} sums; "
            f"at most n = {MAX_SUBSET_SUMS_N} is supported (use meet-in-the-middle)"
        )
        raise ValueError(msg)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        msg = f"sorted_subset_sums: values[{i}] = {arr[i]} is not finite"
        raise ValueError(msg)
    size = (1 << n) + 1
    bits = np.left_shift(np.uint64(1), np.arange(n, dtype=np.uint64))
    sums, masks = build_sorted_sums(
        np.ascontiguousarray(arr),
        bits,
        np.empty(size, dtype=np.float64),
        np.empty(size, dtype=np.uint64),
        np.empty(size, dtype=np.float64),
        np.empty(size, dtype=np.uint64),
    )
    return sums, masks
