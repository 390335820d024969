"""Subset sums beyond the exact limit: greedy fixing plus exact MITM on a free set.

For ``n`` above the exact limit (2**(n/2) tables no longer fit), each restart splits the
elements of a cell into a *free* set of ``free_n`` elements and a *fixed* set:

1. Free set: restart 0 takes the ``free_n`` elements of smallest magnitude (they give
   the finest resolution); later restarts take a seeded random choice.
2. Fixed set, per target: greedy in order of decreasing magnitude, "stay central":
   an element is taken when that keeps the residual ``x - fixed_sum`` nearer to (then
   more central in) the interval that the undecided elements plus the free set can
   still reach, so the residual ends inside the free set's range, near its centre
   where the free sums are densest, and a large element is never taken when the
   smaller ones could not undo the overshoot.
3. Free set: exact meet-in-the-middle (`labrss.rss.exact`) on the residual.

The best floor (largest sum ``<= x``) and ceiling (smallest sum ``> x``) over all
restarts are kept. The answer is not guaranteed optimal (``exact=False``); with
``free_n = 32`` and random elements its error is of the order of the free set's own
resolution, ``~2**-32`` of its range. Cost per restart: ``O(n log n + m n)`` greedy
plus one MITM of size ``free_n``.
"""

from __future__ import annotations

import numpy as np

from labrss.rss.exact import bits_to_bool, mitm_nearest, mitm_window_min_cost

__all__ = ["heuristic_nearest", "heuristic_window_min_cost"]


def _free_sets(values: np.ndarray, free_n: int, restart: int, seed: int) -> np.ndarray:
    """Indices ``(C, free_n)`` of each cell's free elements for one restart."""
    n_cells, n = values.shape
    if restart == 0:
        order = np.argsort(np.abs(values), axis=1, kind="stable")
    else:
        rng = np.random.default_rng([seed, restart])
        order = np.argsort(rng.random((n_cells, n)), axis=1)
    return np.sort(order[:, :free_n], axis=1)


def _interval_distance(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distance from ``x`` to the interval ``[lo, hi]`` (0 inside)."""
    return np.asarray(np.maximum(lo - x, 0.0) + np.maximum(x - hi, 0.0))


def _greedy_fixed(
    values: np.ndarray, free_idx: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy choice of the fixed elements for every target ("stay central").

    Fixed elements are decided in order of decreasing magnitude. Before deciding
    element ``j`` the residual ``r = x - fixed_sum`` must still be reachable by the
    elements not yet decided plus the free set, whose sums span ``[lo_j, hi_j]``
    (negative parts, positive parts). Taking ``a_j`` or not is chosen by: first the
    smaller distance of the new residual to ``[lo_{j+1}, hi_{j+1}]``, then the smaller
    distance to that interval's centre (keeping room both ways, so a large element
    is never taken when the smaller ones could not undo the overshoot).

    Returns ``fixed_mask`` bool ``(C, m, n)``, ``fixed_sum`` ``(C, m)`` and the free
    values ``(C, free_n)``.
    """
    n_cells, n = values.shape
    m = targets.shape[1]
    is_free = np.zeros((n_cells, n), dtype=bool)
    np.put_along_axis(is_free, free_idx, values=True, axis=1)
    free_vals = np.take_along_axis(values, free_idx, axis=1)
    n_fixed = n - free_idx.shape[1]
    # fixed elements by decreasing magnitude; free ones sorted last
    key = np.where(is_free, -1.0, np.abs(values))
    order = np.argsort(-key, axis=1, kind="stable")[:, :n_fixed]
    fixed_vals = np.take_along_axis(values, order, axis=1)  # (C, n_fixed)
    # reach of everything after step j: suffix sums of negative / positive parts + free
    neg = np.minimum(fixed_vals, 0.0)[:, ::-1].cumsum(1)[:, ::-1]
    pos = np.maximum(fixed_vals, 0.0)[:, ::-1].cumsum(1)[:, ::-1]
    zeros = np.zeros((n_cells, 1))
    lo_after = (
        np.concatenate([neg[:, 1:], zeros], axis=1) + np.minimum(free_vals, 0.0).sum(1)[:, None]
    )
    hi_after = (
        np.concatenate([pos[:, 1:], zeros], axis=1) + np.maximum(free_vals, 0.0).sum(1)[:, None]
    )
    fixed_mask = np.zeros((n_cells, m, n), dtype=bool)
    residual = np.array(targets, dtype=np.float64, copy=True)
    rows = np.arange(n_cells)
    for step in range(n_fixed):
        a = fixed_vals[:, step, None]
        lo = lo_after[:, step, None]
        hi = hi_after[:, step, None]
        centre = 0.5 * (lo + hi)
        r_take = residual - a
        d_take = _interval_distance(r_take, lo, hi)
        d_skip = _interval_distance(residual, lo, hi)
        take = (d_take < d_skip) | (
            (d_take == d_skip) & (np.abs(r_take - centre) < np.abs(residual - centre))
        )
        residual = np.where(take, r_take, residual)
        fixed_mask[rows, :, order[:, step]] = take
    fixed_sum = (values[:, None, :] * fixed_mask).sum(-1)
    return fixed_mask, fixed_sum, free_vals


def _scatter_free(free_mask_bits: np.ndarray, free_idx: np.ndarray, n: int) -> np.ndarray:
    """Free-set uint64 masks ``(C, m)`` -> bool ``(C, m, n)`` over all elements."""
    n_cells, m = free_mask_bits.shape
    free_bool = bits_to_bool(free_mask_bits, free_idx.shape[1])
    out = np.zeros((n_cells, m, n), dtype=bool)
    rows = np.arange(n_cells)[:, None, None]
    cols = np.arange(m)[None, :, None]
    out[rows, cols, free_idx[:, None, :]] = free_bool
    return out


def _check(values: np.ndarray, free_n: int, restarts: int) -> None:
    if values.ndim != 2:
        msg = f"heuristic: values must have shape (C, n), got {values.shape}"
        raise ValueError(msg)
    if not 2 <= free_n <= 48:
        msg = f"heuristic: free_n = {free_n} must be in 2..48 (MITM table size)"
        raise ValueError(msg)
    if restarts < 1:
        msg = f"heuristic: restarts = {restarts} must be >= 1"
        raise ValueError(msg)


def heuristic_nearest(
    values: np.ndarray,
    targets: np.ndarray,
    *,
    free_n: int = 32,
    restarts: int = 8,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Floor and ceiling candidates for every target (not guaranteed optimal).

    ``values`` (C, n) any sign, ``targets`` (C, m). Returns ``floor_sum`` (C, m),
    ``floor_mask`` bool (C, m, n), ``ceil_sum``, ``ceil_mask``; a missing side has sum
    ``-inf`` / ``+inf``. When ``n <= free_n`` this is the exact MITM answer.
    Deterministic for a given ``seed``.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    targets = np.ascontiguousarray(targets, dtype=np.float64)
    _check(values, free_n, restarts)
    n_cells, n = values.shape
    m = targets.shape[1]
    free_n = min(free_n, n)
    best_lo = np.full((n_cells, m), -np.inf)
    best_hi = np.full((n_cells, m), np.inf)
    mask_lo = np.zeros((n_cells, m, n), dtype=bool)
    mask_hi = np.zeros((n_cells, m, n), dtype=bool)
    for restart in range(restarts if free_n < n else 1):
        free_idx = _free_sets(values, free_n, restart, seed)
        fixed_mask, fixed_sum, free_vals = _greedy_fixed(values, free_idx, targets)
        f_lo, fm_lo, f_hi, fm_hi = mitm_nearest(
            np.ascontiguousarray(free_vals), np.ascontiguousarray(targets - fixed_sum)
        )
        lo = fixed_sum + f_lo
        hi = fixed_sum + f_hi
        better_lo = lo > best_lo
        better_hi = hi < best_hi
        if better_lo.any():
            cand = fixed_mask | _scatter_free(fm_lo, free_idx, n)
            mask_lo = np.where(better_lo[..., None], cand, mask_lo)
            best_lo = np.where(better_lo, lo, best_lo)
        if better_hi.any():
            cand = fixed_mask | _scatter_free(fm_hi, free_idx, n)
            mask_hi = np.where(better_hi[..., None], cand, mask_hi)
            best_hi = np.where(better_hi, hi, best_hi)
    return best_lo, mask_lo, best_hi, mask_hi


def heuristic_window_min_cost(
    values: np.ndarray,
    costs: np.ndarray,
    centre: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    free_n: int = 32,
    restarts: int = 8,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest subset with sum in ``[lo, hi]`` found by the restarts above.

    Uses the same free sets and greedy fixed parts as `heuristic_nearest` (aimed at
    ``centre``, the target), and an exact window search on each free set. Returns
    ``mask`` bool (C, m, n) and ``found`` bool (C, m).
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    costs = np.ascontiguousarray(costs, dtype=np.float64)
    centre = np.ascontiguousarray(centre, dtype=np.float64)
    _check(values, free_n, restarts)
    n_cells, n = values.shape
    m = centre.shape[1]
    free_n = min(free_n, n)
    best_cost = np.full((n_cells, m), np.inf)
    best_mask = np.zeros((n_cells, m, n), dtype=bool)
    for restart in range(restarts if free_n < n else 1):
        free_idx = _free_sets(values, free_n, restart, seed)
        fixed_mask, fixed_sum, free_vals = _greedy_fixed(values, free_idx, centre)
        free_costs = np.ascontiguousarray(np.take_along_axis(costs, free_idx, axis=1))
        fm, found = mitm_window_min_cost(
            np.ascontiguousarray(free_vals),
            free_costs,
            np.ascontiguousarray(lo - fixed_sum),
            np.ascontiguousarray(hi - fixed_sum),
        )
        cand = fixed_mask | _scatter_free(fm, free_idx, n)
        cost = np.where(cand, costs[:, None, :], 0.0).sum(-1)
        better = found & (cost < best_cost)
        best_mask = np.where(better[..., None], cand, best_mask)
        best_cost = np.where(better, cost, best_cost)
    return best_mask, np.isfinite(best_cost)
