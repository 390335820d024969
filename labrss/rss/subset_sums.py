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

__all__ = ["MAX_SUBSET_SUMS_N", "sorted_subset_sums"]

#: Largest n accepted: 2**30 sums take 16 GiB (float64 sum + uint64 mask each).
MAX_SUBSET_SUMS_N = 30


@njit(cache=True)
def _merge_subset_sums(
    values: np.ndarray,
    sums_out: np.ndarray,
    masks_out: np.ndarray,
    sums_tmp: np.ndarray,
    masks_tmp: np.ndarray,
) -> None:
    """Fill ``sums_out``/``masks_out`` (length 2**n) with the sorted subset sums.

    Ties are broken by taking the element of ``L`` (without ``a_i``) first, so among
    equal sums the one using fewer high-index elements comes first; the order is a
    deterministic function of ``values``.
    """
    n = values.shape[0]
    sums_out[0] = 0.0
    masks_out[0] = 0
    size = 1
    for i in range(n):
        a = values[i]
        bit = np.uint64(1) << np.uint64(i)
        sums_tmp[:size] = sums_out[:size]
        masks_tmp[:size] = masks_out[:size]
        p = 0  # index into L
        q = 0  # index into L + a
        k = 0
        while p < size and q < size:
            s_with = sums_tmp[q] + a
            if sums_tmp[p] <= s_with:
                sums_out[k] = sums_tmp[p]
                masks_out[k] = masks_tmp[p]
                p += 1
            else:
                sums_out[k] = s_with
                masks_out[k] = masks_tmp[q] | bit
                q += 1
            k += 1
        while p < size:
            sums_out[k] = sums_tmp[p]
            masks_out[k] = masks_tmp[p]
            p += 1
            k += 1
        while q < size:
            sums_out[k] = sums_tmp[q] + a
            masks_out[k] = masks_tmp[q] | bit
            q += 1
            k += 1
        size *= 2


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
    total = 1 << n
    sums = np.empty(total, dtype=np.float64)
    masks = np.empty(total, dtype=np.uint64)
    sums_tmp = np.empty(max(total // 2, 1), dtype=np.float64)
    masks_tmp = np.empty(max(total // 2, 1), dtype=np.uint64)
    _merge_subset_sums(np.ascontiguousarray(arr), sums, masks, sums_tmp, masks_tmp)
    return sums, masks
