"""`solve`: the best subset of measured elements for every cell and target.

Front end of the RSS solver: validates and broadcasts the inputs, turns the circuit
(leakage, series resistance, resistance or conductance target, parallel bank or series
chain) into a plain subset-sum problem ``min_S |x(S) - x*|`` with

    x(S) = base + sum_{i in S} a_i,

dispatches it to an exact kernel (`labrss.rss.exact`) or the heuristic
(`labrss.rss.heuristic`), maps the answer back to the target's unit and applies the
secondary objective. The derivations are in ``docs/rss.md``.

Exactness in the target's unit: the map ``v(x)`` from the subset sum to the realised
value is monotone (increasing or decreasing), so the subset that minimises
``|v(x(S)) - T|`` is either the largest sum ``<= x*`` or the smallest sum ``> x*``
(with ``x* = v^-1(T)``). The kernels return both; both are evaluated in the target's
unit and the nearer wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from labrss.rss.exact import (
    bits_to_bool,
    enumerate_nearest,
    enumerate_window_min_cost,
    masked_sums,
    masked_sums_bits,
    mitm_nearest,
    mitm_nearest_within,
    mitm_window_min_cost,
)
from labrss.rss.heuristic import heuristic_nearest, heuristic_window_min_cost
from labrss.rss.result import RSSResult
from labrss.rss.subset_sums import MAX_SUBSET_SUMS_N

__all__ = ["MAX_MITM_N", "solve"]

Topology = Literal["parallel", "series"]
TargetKind = Literal["conductance", "resistance"]
Secondary = Literal["variance", "switches"]
Method = Literal["auto", "enumerate", "mitm", "heuristic"]

#: Largest number of elements in use for meet-in-the-middle: two tables of 2**24 sums
#: take 1 GiB with their buffers.
MAX_MITM_N = 48
#: Heuristic: size of the exactly solved free set, and number of restarts.
HEURISTIC_FREE_N = 32
HEURISTIC_RESTARTS = 8
#: method="auto" enumerates only up to this many elements in use (memory).
_AUTO_ENUMERATE_MAX_N = 24
#: Tolerance mode: free-set sizes of the quick passes tried before the exact sweep
#: (greedy fixing of the other elements + exact MITM of the free set, `heuristic`).
_TOLERANCE_FREE_NS = (16, 24, 32)
#: Slack of the near-optimal window, in units of the sum magnitude's ulp, so that
#: rounding of the window ends never drops the optimum itself.
_WINDOW_ULPS = 8.0
_EPS = float(np.finfo(np.float64).eps)

_TOPOLOGIES = ("parallel", "series")
_KINDS = ("conductance", "resistance")
_SECONDARIES = (None, "variance", "switches")
_METHODS = ("auto", "enumerate", "mitm", "heuristic")


# --------------------------------------------------------------------------- transforms
@dataclass(frozen=True)
class Transform:
    """Map between the subset-sum variable ``x`` and the realised value ``v``.

    ``x`` is the summed quantity including ``base`` (parallel: the bank conductance in S;
    series: the chain resistance in ohm); ``r`` is the series resistance (ohm) of each
    cell, shape ``(C, 1)``. Out-of-domain values map to ``+inf`` (a resistance target
    at or below ``r`` needs an infinite bank conductance: the largest sum is nearest).
    """

    topology: Topology
    kind: TargetKind

    @property
    def increasing(self) -> bool:
        """Whether ``v`` grows with ``x``."""
        return (self.topology == "parallel") == (self.kind == "conductance")

    def forward(self, x: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Realised value from the subset-sum variable."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.topology == "parallel" and self.kind == "conductance":
                # G_cell = 1 / (r + 1/x) = x / (1 + r x); exactly x when r = 0
                return np.asarray(x / (1.0 + r * x))
            if self.topology == "parallel":
                return np.where(x > 0, r + 1.0 / x, np.inf)
            if self.kind == "resistance":
                return np.asarray(r + x)
            return np.where(r + x > 0, 1.0 / (r + x), np.inf)

    def inverse(self, v: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Subset-sum variable that would realise ``v`` exactly (``+inf`` if none)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.topology == "parallel" and self.kind == "conductance":
                # G* = 1 / (1/G_t - r) = G_t / (1 - r G_t)
                den = 1.0 - r * v
                return np.where(den > 0, v / den, np.inf)
            if self.topology == "parallel":
                # G* = 1 / (R* - r)
                return np.where(v > r, 1.0 / (v - r), np.inf)
            if self.kind == "resistance":
                return np.asarray(v - r)
            return np.where(v > 0, 1.0 / v - r, np.inf)

    def slope(self, x: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``dv/dx``, for propagating uncertainties."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.topology == "parallel" and self.kind == "conductance":
                return np.asarray(1.0 / (1.0 + r * x) ** 2)
            if self.topology == "parallel":
                return np.asarray(-1.0 / x**2)
            if self.kind == "resistance":
                return np.ones_like(x)
            return np.asarray(-1.0 / (r + x) ** 2)


# --------------------------------------------------------------------------- validation
def as_float_array(name: str, data: object) -> np.ndarray:
    """``data`` as a float64 array, or a ValueError naming ``name``."""
    try:
        return np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        msg = f"{name}: cannot be read as an array of numbers ({exc})"
        raise ValueError(msg) from exc


def _where(index: tuple[int, ...], per_element: bool) -> str:
    if per_element:
        return f"cell {index[:-1]}, element {index[-1]}"
    return f"cell {index}"


def check_values(
    name: str, arr: np.ndarray, unit: str, *, per_element: bool, allow_negative: bool
) -> None:
    """Raise ValueError at the first NaN, inf or (unless allowed) negative entry."""
    bad = ~np.isfinite(arr)
    if not allow_negative:
        bad |= arr < 0
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        what = "finite" if allow_negative else "finite and >= 0"
        where = _where(index, per_element)
        msg = f"{name}[{where}] = {float(arr[index])!r} {unit}: values must be {what}"
        raise ValueError(msg)


def broadcast_option(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast an option to ``shape`` with a message that gives both shapes."""
    try:
        return np.broadcast_to(arr, shape)
    except ValueError:
        msg = f"{name} has shape {arr.shape}, which does not broadcast to {shape}"
        raise ValueError(msg) from None


def split_targets(
    targets: np.ndarray, elements_shape: tuple[int, ...], name: str = "elements"
) -> tuple[tuple[int, ...], bool, int]:
    """Cell shape of the targets, whether they carry an ``m`` axis, and ``m``.

    Targets of shape ``(...)`` give one target per cell; ``(..., m)`` (as many
    dimensions as the elements) gives ``m`` per cell.
    """
    nd = len(elements_shape)
    if targets.ndim == nd:
        return targets.shape[:-1], True, targets.shape[-1]
    if targets.ndim < nd:
        return targets.shape, False, 1
    msg = (
        f"targets shape {targets.shape} has more dimensions than {name} shape "
        f"{elements_shape} allows: give targets as (...) for one target per cell or "
        f"(..., m) for m targets per cell, where {name} is (..., n)"
    )
    raise ValueError(msg)


def cell_shape_of(
    targets_shape: tuple[int, ...],
    target_cells: tuple[int, ...],
    has_m: bool,
    elements: list[tuple[str, tuple[int, ...]]],
) -> tuple[int, ...]:
    """Broadcast cell shape of the elements and the targets, or an explained error."""
    shapes = [s[:-1] for _, s in elements] + [target_cells]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        given = ", ".join(f"{name} {shape}" for name, shape in elements)
        nd = len(elements[0][1])
        hint = (
            f"for m targets shared by every cell use shape {(1,) * (nd - 1) + ('m',)}"
            if not has_m
            else "the leading (cell) dimensions must broadcast"
        )
        msg = (
            f"targets shape {targets_shape} does not broadcast against the cells of "
            f"{given} (last axis = n elements): {hint}"
        )
        raise ValueError(msg) from None


# --------------------------------------------------------------------------- the core
@dataclass(frozen=True)
class Problem:
    """A flattened batch: ``x(S) = base + sum_{i in S} a_i`` for ``C`` cells.

    ``a``, ``var``, ``active`` (C, n); ``base`` (C,); ``targets`` (C, m) in the target's
    unit; ``r`` (C, 1) series resistance in ohm; ``var`` the variance of each ``a_i``
    (None without uncertainties); ``active`` False for elements never to be used.
    """

    a: np.ndarray
    base: np.ndarray
    var: np.ndarray | None
    active: np.ndarray
    targets: np.ndarray
    r: np.ndarray
    transform: Transform


@dataclass(frozen=True)
class CoreResult:
    """Flattened solution: masks (C, m, n) and (C, m) arrays, (C,) interval ends."""

    mask: np.ndarray
    value: np.ndarray
    error: np.ndarray
    exact: np.ndarray
    reachable: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    sigma: np.ndarray | None
    method: str


def _choose_method(method: Method, n_used: int, m: int, max_exact_n: int) -> str:
    if method == "enumerate":
        if n_used > MAX_SUBSET_SUMS_N:
            msg = (
                f"method='enumerate': {n_used} elements in use need a table of 2**{n_used} "
                f"sums; at most {MAX_SUBSET_SUMS_N} (use 'mitm' or 'auto')"
            )
            raise ValueError(msg)
        return "enumerate"
    if method == "mitm":
        if n_used > MAX_MITM_N:
            msg = (
                f"method='mitm': {n_used} elements in use exceed the meet-in-the-middle "
                f"limit of {MAX_MITM_N} (use 'heuristic' or 'auto')"
            )
            raise ValueError(msg)
        return "mitm"
    if method == "heuristic":
        return "heuristic"
    if n_used > max_exact_n:
        return "heuristic"
    # One table of 2**n sums answers each target in O(n); MITM pays ~2**(n/2+1) per
    # target but only 2**(n/2+1) to build: enumeration wins for many targets per cell
    # (and stays within 2**24 * 32 bytes = 512 MiB of table).
    if n_used <= _AUTO_ENUMERATE_MAX_N and m >= 4 * 2 ** (n_used / 2):
        return "enumerate"
    return "mitm"


def _canonical_x(prob: Problem, mask: np.ndarray) -> np.ndarray:
    """``base + sum a_i`` over each mask (C, m, n), added in index order."""
    return np.asarray(masked_sums(np.ascontiguousarray(prob.a), mask, prob.base))


@dataclass(frozen=True)
class Compaction:
    """Each cell's usable elements (active, non-zero ``a``) moved first.

    Unusable elements can never improve a sum (zero) or must not be used (excluded),
    so the kernels only see ``n_used`` (the largest usable count over cells) columns.
    ``order`` is the permutation per cell (None when every element is usable),
    ``used`` (C, n_used) marks the real entries of the compact rows.
    """

    order: np.ndarray | None
    used: np.ndarray
    n_used: int

    @classmethod
    def of(cls, prob: Problem) -> Compaction:
        usable = prob.active & (prob.a != 0.0)
        if usable.all():
            return cls(None, usable, usable.shape[1])
        order = np.argsort(~usable, axis=1, kind="stable")
        n_used = int(usable.sum(1).max()) if usable.size else 0
        used = np.take_along_axis(usable, order, axis=1)[:, :n_used]
        return cls(order, used, n_used)

    def take(self, arr: np.ndarray) -> np.ndarray:
        """Per-element array (C, n) -> compact (C, n_used), zero where unused."""
        if self.order is None:
            return np.ascontiguousarray(arr, dtype=np.float64)
        picked = np.take_along_axis(arr, self.order, axis=1)[:, : self.n_used]
        return np.ascontiguousarray(np.where(self.used, picked, 0.0))

    def put(self, mask_c: np.ndarray, n: int) -> np.ndarray:
        """Compact masks (C, m, n_used) -> (C, m, n) in element order."""
        if self.order is None:
            return mask_c
        n_cells, m, n_used = mask_c.shape
        out = np.zeros((n_cells, m, n), dtype=bool)
        rows = np.arange(n_cells)[:, None, None]
        cols = np.arange(m)[None, :, None]
        out[rows, cols, self.order[:, None, :n_used]] = mask_c & self.used[:, None, :]
        return out


def solve_problem(
    prob: Problem,
    *,
    secondary: Secondary | None,
    near_optimal_tol: np.ndarray | None,
    method: Method,
    max_exact_n: int,
    error_tolerance: np.ndarray | None = None,
) -> CoreResult:
    """Solve a flattened problem (see `Problem`): optimum, then secondary objective.

    ``error_tolerance`` (C, m), target's unit: tolerance mode (see `solve`).
    """
    n_cells, n = prob.a.shape
    m = prob.targets.shape[1]
    tr = prob.transform
    x_target = tr.inverse(prob.targets, prob.r)  # (C, m), may be +inf
    comp = Compaction.of(prob)
    n_used = comp.n_used
    a_c = comp.take(prob.a)
    kernel_targets = np.ascontiguousarray(x_target - prob.base[:, None])
    chosen = _choose_method(method, n_used, m, max_exact_n)

    if chosen == "heuristic":
        _, floor_c, _, ceil_c = heuristic_nearest(
            a_c, kernel_targets, free_n=HEURISTIC_FREE_N, restarts=HEURISTIC_RESTARTS
        )
        # every heuristic candidate is a real subset (the empty one at worst)
        floor_ok = ceil_ok = np.ones((n_cells, m), dtype=bool)
        x_floor = masked_sums(a_c, floor_c, prob.base)
        x_ceil = masked_sums(a_c, ceil_c, prob.base)
    else:
        proven = np.ones((n_cells, m), dtype=bool)
        if chosen == "mitm" and error_tolerance is not None:
            f_sum, f_bits, c_sum, c_bits, proven = _mitm_within_tolerance(
                prob, a_c, kernel_targets, error_tolerance
            )
        else:
            kernel = enumerate_nearest if chosen == "enumerate" else mitm_nearest
            f_sum, f_bits, c_sum, c_bits = kernel(a_c, kernel_targets)
        # a missing side is flagged by an infinite sum; its mask is unused
        floor_ok = np.isfinite(f_sum)
        ceil_ok = np.isfinite(c_sum)
        x_floor = masked_sums_bits(a_c, f_bits, prob.base)
        x_ceil = masked_sums_bits(a_c, c_bits, prob.base)
    with np.errstate(invalid="ignore"):
        err_floor = np.where(floor_ok, np.abs(tr.forward(x_floor, prob.r) - prob.targets), np.inf)
        err_ceil = np.where(ceil_ok, np.abs(tr.forward(x_ceil, prob.r) - prob.targets), np.inf)
    take_ceil = err_ceil < err_floor
    if chosen == "heuristic":
        mask_c = np.where(take_ceil[..., None], ceil_c, floor_c)
    else:
        mask_c = bits_to_bool(np.where(take_ceil, c_bits, f_bits), n_used)
    mask = comp.put(mask_c, n)
    x = np.where(take_ceil, x_ceil, x_floor)
    value = tr.forward(x, prob.r)

    sigma = None
    if prob.var is not None:
        sigma = _sigma(prob, mask, x)

    if secondary is not None:
        mask = _apply_secondary(
            prob,
            mask,
            value,
            sigma,
            x_target,
            secondary=secondary,
            tol=near_optimal_tol,
            chosen=chosen,
            comp=comp,
        )
        x = _canonical_x(prob, mask)
        value = tr.forward(x, prob.r)
        if prob.var is not None:
            sigma = _sigma(prob, mask, x)

    # interval ends: all negative / all positive terms in use, summed canonically so
    # that a target equal to an end's realised value counts as reachable
    usable = prob.active & (prob.a != 0.0)
    a_full = np.ascontiguousarray(prob.a)
    ends = np.stack([usable & (prob.a < 0), usable & (prob.a > 0)], axis=1)  # (C, 2, n)
    x_ends = masked_sums(a_full, ends, prob.base)
    v1 = tr.forward(x_ends[:, :1], prob.r)[:, 0]
    v2 = tr.forward(x_ends[:, 1:], prob.r)[:, 0]
    lo = np.minimum(v1, v2)
    hi = np.maximum(v1, v2)
    reachable = (prob.targets >= lo[:, None]) & (prob.targets <= hi[:, None])
    with np.errstate(invalid="ignore"):
        error = value - prob.targets
    exact = np.full((n_cells, m), False) if chosen == "heuristic" else proven
    return CoreResult(mask, value, error, exact, reachable, lo, hi, sigma, chosen)


def _tolerance_window(prob: Problem, tol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sums ``x - base`` (kernel variable) whose value is within ``tol`` of the target.

    ``|v(x) - T| <= tol`` mapped through the monotone inverse transform; no slack (a
    sum found in it is good enough up to rounding). Empty (``lo > hi``) where the
    target is unreachable in ``x`` (the exact search then runs in full).
    """
    tr = prob.transform
    v_lo = prob.targets - tol
    v_hi = prob.targets + tol
    if tr.increasing:
        x_lo, x_hi = tr.inverse(v_lo, prob.r), tr.inverse(v_hi, prob.r)
    else:
        x_lo, x_hi = tr.inverse(v_hi, prob.r), tr.inverse(v_lo, prob.r)
    base = prob.base[:, None]
    ok = np.isfinite(x_lo) & np.isfinite(x_hi)
    lo = np.where(ok, x_lo - base, np.inf)
    hi = np.where(ok, x_hi - base, -np.inf)
    return np.ascontiguousarray(lo), np.ascontiguousarray(hi)


def _mitm_within_tolerance(
    prob: Problem, a_c: np.ndarray, kernel_targets: np.ndarray, tol: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Floor/ceiling sums and bit masks, stopping at the first sum within ``tol``.

    Quick passes first (`_TOLERANCE_FREE_NS`: the heuristic's greedy fixing plus an
    exact MITM of a small free set, ``O(2**(k/2))`` per target); the (cell, target)
    pairs they leave outside the window get the exact sweep, which also stops at the
    first sum inside. Returns ``f_sum, f_bits, c_sum, c_bits`` (C, m) and ``proven``
    (C, m): False where the search stopped early (good enough, not proven optimal).
    """
    n_cells, n_used = a_c.shape
    m = kernel_targets.shape[1]
    w_lo, w_hi = _tolerance_window(prob, tol)
    f_sum = np.full((n_cells, m), -np.inf)
    c_sum = np.full((n_cells, m), np.inf)
    f_bits = np.zeros((n_cells, m), dtype=np.uint64)
    c_bits = np.zeros((n_cells, m), dtype=np.uint64)
    proven = np.zeros((n_cells, m), dtype=bool)
    todo = np.ones((n_cells, m), dtype=bool)
    weights = np.left_shift(np.uint64(1), np.arange(n_used, dtype=np.uint64))
    for free_n in _TOLERANCE_FREE_NS:
        cells = np.flatnonzero(todo.any(axis=1))
        if free_n >= n_used or cells.size == 0:
            break
        lo_s, lo_m, hi_s, hi_m = heuristic_nearest(
            a_c[cells], kernel_targets[cells], free_n=free_n, restarts=1
        )
        hit_lo = (lo_s >= w_lo[cells]) & (lo_s <= w_hi[cells])
        hit_hi = (hi_s >= w_lo[cells]) & (hi_s <= w_hi[cells])
        done = (hit_lo | hit_hi) & todo[cells]
        if done.any():
            rows, cols = np.nonzero(done)
            sel = (cells[rows], cols)
            f_sum[sel] = lo_s[rows, cols]
            c_sum[sel] = hi_s[rows, cols]
            f_bits[sel] = (lo_m[rows, cols] * weights).sum(-1, dtype=np.uint64)
            c_bits[sel] = (hi_m[rows, cols] * weights).sum(-1, dtype=np.uint64)
            todo[sel] = False
    cells = np.flatnonzero(todo.any(axis=1))
    if cells.size:
        # targets already settled get an empty window: their kernel answer is not used
        lo_k = np.where(todo[cells], w_lo[cells], np.inf)
        hi_k = np.where(todo[cells], w_hi[cells], -np.inf)
        fs, fb, cs, cb, stopped = mitm_nearest_within(
            np.ascontiguousarray(a_c[cells]),
            np.ascontiguousarray(kernel_targets[cells]),
            np.ascontiguousarray(lo_k),
            np.ascontiguousarray(hi_k),
        )
        keep = todo[cells]
        rows, cols = np.nonzero(keep)
        sel = (cells[rows], cols)
        f_sum[sel] = fs[rows, cols]
        c_sum[sel] = cs[rows, cols]
        f_bits[sel] = fb[rows, cols]
        c_bits[sel] = cb[rows, cols]
        proven[sel] = ~stopped[rows, cols]
    return f_sum, f_bits, c_sum, c_bits, proven


def _sigma(prob: Problem, mask: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Predicted std of the realised value: sqrt(sum closed var_i), times |dv/dx|."""
    assert prob.var is not None
    sigma_x = np.sqrt(np.where(mask, prob.var[:, None, :], 0.0).sum(-1))
    with np.errstate(invalid="ignore"):
        sigma_v = np.abs(prob.transform.slope(x, prob.r)) * sigma_x
    # no uncertain element in use: the value is as certain as the model (even if inf)
    return np.where(sigma_x == 0.0, 0.0, sigma_v)


def _apply_secondary(
    prob: Problem,
    mask: np.ndarray,
    value: np.ndarray,
    sigma: np.ndarray | None,
    x_target: np.ndarray,
    *,
    secondary: Secondary,
    tol: np.ndarray | None,
    chosen: str,
    comp: Compaction,
) -> np.ndarray:
    """Cheapest subset (variance or switch count) within the near-optimal window.

    Window: ``|v(S) - T| <= e* + tol`` with ``e*`` the optimum's error and ``tol``
    given, or by default the optimum's predicted sigma (uncertainties given) or ``e*``.
    The window is mapped to ``x`` through the monotone inverse transform and widened
    by a few ulps so that rounding never drops the optimum. The optimum is kept unless
    a strictly cheaper subset exists in the window.
    """
    n = prob.a.shape[1]
    tr = prob.transform
    with np.errstate(invalid="ignore"):
        e_opt = np.abs(value - prob.targets)
    if tol is None:
        tol = sigma if sigma is not None else e_opt
    width = e_opt + tol
    v_lo = prob.targets - width
    v_hi = prob.targets + width
    if tr.increasing:
        x_lo, x_hi = tr.inverse(v_lo, prob.r), tr.inverse(v_hi, prob.r)
    else:
        x_lo, x_hi = tr.inverse(v_hi, prob.r), tr.inverse(v_lo, prob.r)
    scale = (np.abs(prob.base) + np.abs(prob.a).sum(1))[:, None]
    with np.errstate(invalid="ignore"):
        slack = _WINDOW_ULPS * _EPS * (scale + np.abs(np.where(np.isfinite(x_lo), x_lo, 0.0)))
        x_lo = x_lo - slack
        x_hi = x_hi + slack
    if secondary == "variance":
        assert prob.var is not None
        cost = prob.var
    else:
        cost = np.ones_like(prob.a)
    cost_c = comp.take(cost)
    a_c = comp.take(prob.a)
    lo_k = np.ascontiguousarray(x_lo - prob.base[:, None])
    hi_k = np.ascontiguousarray(x_hi - prob.base[:, None])
    if chosen == "heuristic":
        cand_c, found = heuristic_window_min_cost(
            a_c,
            cost_c,
            np.ascontiguousarray(x_target - prob.base[:, None]),
            lo_k,
            hi_k,
            free_n=HEURISTIC_FREE_N,
            restarts=HEURISTIC_RESTARTS,
        )
    else:
        kernel = enumerate_window_min_cost if chosen == "enumerate" else mitm_window_min_cost
        bits, found = kernel(a_c, cost_c, lo_k, hi_k)
        cand_c = bits_to_bool(bits, comp.n_used)
    cand = comp.put(cand_c, n)
    cost_new = np.where(cand, cost[:, None, :], 0.0).sum(-1)
    cost_old = np.where(mask, cost[:, None, :], 0.0).sum(-1)
    better = found & (cost_new < cost_old)
    return np.where(better[..., None], cand, mask)


# --------------------------------------------------------------------------- front end
def _element_terms(
    topology: Topology,
    elements: np.ndarray,
    *,
    leakage: np.ndarray | None,
    sigma: np.ndarray | None,
    exclude: np.ndarray,
    name: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-element terms ``a`` (C, n), ``base`` (C,), variance of ``a`` (C, n)."""
    if topology == "parallel" and leakage is None:
        a = np.where(exclude, 0.0, elements) if exclude.any() else elements
        return a, np.zeros(elements.shape[0]), None if sigma is None else sigma**2
    if topology == "parallel":
        h = np.asarray(leakage)
        over = (h > elements) & ~exclude
        if over.any():
            c, i = (int(v) for v in np.argwhere(over)[0])
            msg = (
                f"leakage_S[cell {c}, element {i}] = {float(h[c, i])!r} S exceeds the "
                f"closed-branch conductance {name}[cell {c}, element {i}] = "
                f"{float(elements[c, i])!r} S: an open "
                "switch cannot conduct more than a closed branch (swapped arrays?)"
            )
            raise ValueError(msg)
        # G(S) = sum h + sum_{i in S} (g_i - h_i)   (docs/rss.md, parallel bank)
        a = np.where(exclude, 0.0, elements - h)
        base = h.sum(1)
        var = None if sigma is None else sigma**2
        return a, base, var
    # series chain: an element in the path is R_i in parallel with its open bypass
    # switch (off-conductance h_i): R_eff = R_i / (1 + R_i h_i)
    if leakage is None:
        a = np.where(exclude, 0.0, elements)
        var = None if sigma is None else sigma**2
    else:
        den = 1.0 + elements * leakage
        a = np.where(exclude, 0.0, elements / den)
        var = None if sigma is None else (sigma / den**2) ** 2
    return a, np.zeros(elements.shape[0]), var


def _validate_choices(
    target_kind: str, topology: str, secondary: str | None, method: str, max_exact_n: int
) -> None:
    if target_kind not in _KINDS:
        msg = f"target_kind = {target_kind!r}: expected one of {_KINDS}"
        raise ValueError(msg)
    if topology not in _TOPOLOGIES:
        msg = f"topology = {topology!r}: expected one of {_TOPOLOGIES}"
        raise ValueError(msg)
    if secondary not in _SECONDARIES:
        msg = f"secondary = {secondary!r}: expected one of {_SECONDARIES}"
        raise ValueError(msg)
    if method not in _METHODS:
        msg = f"method = {method!r}: expected one of {_METHODS}"
        raise ValueError(msg)
    if not 0 <= max_exact_n <= MAX_MITM_N:
        msg = f"max_exact_n = {max_exact_n}: must be in 0..{MAX_MITM_N}"
        raise ValueError(msg)


def prepare_tol(
    near_optimal_tol: object,
    cell_shape: tuple[int, ...],
    has_m: bool,
    m: int,
    *,
    name: str = "near_optimal_tol",
) -> np.ndarray | None:
    """A tolerance option as a (C, m) array (target's unit), or None."""
    if near_optimal_tol is None:
        return None
    tol = as_float_array(name, near_optimal_tol)
    out_shape = (*cell_shape, m) if has_m else cell_shape
    tol = broadcast_option(name, tol, out_shape)
    check_values(name, tol, "", per_element=False, allow_negative=False)
    return np.ascontiguousarray(tol).reshape(-1, m)


def reshape_out(arr: np.ndarray, cell_shape: tuple[int, ...], has_m: bool) -> np.ndarray:
    """(C, m, ...) -> cell shape (+ (m,)) + trailing dims."""
    trailing = arr.shape[2:]
    if has_m:
        return arr.reshape((*cell_shape, arr.shape[1], *trailing))
    return arr.reshape((*cell_shape, *trailing))


def solve(
    elements: ArrayLike,
    targets: ArrayLike,
    *,
    leakage_S: ArrayLike | None = None,
    series_resistance_ohm: ArrayLike | None = None,
    exclude: ArrayLike | None = None,
    sigma_S: ArrayLike | None = None,
    target_kind: TargetKind = "conductance",
    topology: Topology = "parallel",
    secondary: Secondary | None = None,
    near_optimal_tol: ArrayLike | None = None,
    method: Method = "auto",
    max_exact_n: int = 44,
    error_tolerance: ArrayLike | None = None,
) -> RSSResult:
    """Best subset of each cell's elements for each target.

    Parameters
    ----------
    elements : array_like, shape (..., n)
        One row per cell. Parallel topology: branch conductances (S) with the switch
        closed. Series topology: element resistances (ohm). Finite and >= 0.
    targets : array_like, shape (...) or (..., m)
        One target per cell, or ``m`` per cell (as many dimensions as ``elements``), in
        S (``target_kind="conductance"``) or ohm (``"resistance"``); broadcast against
        the cells.
    leakage_S : array_like, broadcast to (..., n), optional
        Off-conductance (S) of each open switch. Parallel: the open branch still
        conducts ``h_i`` (``G = sum h + sum_{i in S} (g_i - h_i)``); series: the open
        bypass switch shunts its element (``R_eff = R / (1 + R h)``).
    series_resistance_ohm : array_like, broadcast to (...), optional
        Common series resistance of each cell (wiring, routing, meter). A resistance
        target ``R*`` needs ``G* = 1/(R* - r_s)``; a conductance target ``G_t`` of the
        whole cell needs ``G* = 1/(1/G_t - r_s)``.
    exclude : bool array_like, broadcast to (..., n), optional
        Elements never to use (faulty parts). In a parallel bank their leakage still
        counts.
    sigma_S : array_like, broadcast to (..., n), optional
        Standard uncertainty of each element, in the elements' unit (S, or ohm for the
        series topology). Gives ``sigma`` in the result and enables
        ``secondary="variance"``.
    target_kind : {"conductance", "resistance"}
    topology : {"parallel", "series"}
        Parallel bank (conductances add) or series chain with bypass switches
        (resistances add).
    secondary : {None, "variance", "switches"}
        Among subsets within ``near_optimal_tol`` of the optimum's error, take the one
        with the lowest predicted variance ``sum_{i in S} sigma_i**2``, or the fewest
        elements in use. The optimum is kept unless a strictly better one exists.
    near_optimal_tol : array_like, optional
        Extra error allowed, target's unit, broadcast to the result shape: the window
        is ``|error| <= |optimum error| + tol``. Default: the optimum's predicted sigma
        when ``sigma_S`` is given, else the optimum's error (``|error| <= 2 e*``).
    method : {"auto", "enumerate", "mitm", "heuristic"}
        ``auto``: exact (enumeration for many targets per cell, meet-in-the-middle
        otherwise) when at most ``max_exact_n`` elements are in use, else the heuristic.
    max_exact_n : int
        Exact limit for ``method="auto"`` (at most 48).
    error_tolerance : array_like, optional
        Tolerance mode (meet-in-the-middle only), target's unit, broadcast to the
        result shape: stop at the first subset whose ``|error| <= error_tolerance`` (up
        to rounding), for example the calibration's uncertainty, below which a better
        optimum means nothing. Quick passes on a small free set come first, then the
        exact sweep stops at the first sum inside. Such a result has ``exact`` False
        (good enough, not proven optimal); where nothing is within the tolerance the
        search runs in full and the result is the proven optimum (``exact`` True).
        Enumeration ignores it (already ``O(n)`` per target).

    Returns
    -------
    RSSResult

    Complexity (per cell, ``n`` elements in use, ``m`` targets): enumeration
    ``O(2**n)`` time and memory + ``O(m n)``; meet-in-the-middle ``O(2**(n/2))`` memory
    and ``O(m 2**(n/2))`` time; heuristic ``8 x`` MITM of 32 elements.

    Raises
    ------
    ValueError
        NaN, inf or negative inputs (naming cell and element), shapes that do not
        broadcast (giving both), unknown options, or an explicit method beyond its size.
    """
    _validate_choices(target_kind, topology, secondary, method, max_exact_n)
    unit = "S" if topology == "parallel" else "ohm"
    el = as_float_array("elements", elements)
    if el.ndim < 1:
        msg = f"elements must have shape (..., n), got a scalar {el!r}"
        raise ValueError(msg)
    check_values("elements", el, unit, per_element=True, allow_negative=False)
    tg = as_float_array("targets", targets)
    check_values(
        "targets",
        tg,
        "S" if target_kind == "conductance" else "ohm",
        per_element=False,
        allow_negative=True,
    )
    n = el.shape[-1]
    target_cells, has_m, m = split_targets(tg, el.shape)
    cell_shape = cell_shape_of(tg.shape, target_cells, has_m, [("elements", el.shape)])
    full = (*cell_shape, n)
    n_cells = int(np.prod(cell_shape, dtype=np.int64))

    def per_element(name: str, data: object, unit_: str) -> np.ndarray | None:
        if data is None:
            return None
        arr = as_float_array(name, data)
        check_values(name, arr, unit_, per_element=arr.ndim >= 1, allow_negative=False)
        return np.ascontiguousarray(broadcast_option(name, arr, full)).reshape(n_cells, n)

    leak = per_element("leakage_S", leakage_S, "S")
    sig = per_element("sigma_S", sigma_S, unit)
    if exclude is None:
        excl = np.zeros((n_cells, n), dtype=bool)
    else:
        ex = np.asarray(exclude)
        if ex.dtype != np.bool_:
            msg = f"exclude must be a boolean array, got dtype {ex.dtype}"
            raise ValueError(msg)
        excl = np.ascontiguousarray(broadcast_option("exclude", ex, full)).reshape(n_cells, n)
    if series_resistance_ohm is None:
        r = np.zeros((n_cells, 1))
    else:
        rs = as_float_array("series_resistance_ohm", series_resistance_ohm)
        check_values("series_resistance_ohm", rs, "ohm", per_element=False, allow_negative=False)
        r = np.ascontiguousarray(broadcast_option("series_resistance_ohm", rs, cell_shape)).reshape(
            n_cells, 1
        )
    if secondary == "variance" and sig is None:
        msg = "secondary='variance' needs the element uncertainties sigma_S"
        raise ValueError(msg)

    el_flat = np.ascontiguousarray(np.broadcast_to(el, full)).reshape(n_cells, n)
    tg_shape = (*cell_shape, m) if has_m else cell_shape
    tg_flat = np.ascontiguousarray(np.broadcast_to(tg, tg_shape)).reshape(n_cells, m)
    a, base, var = _element_terms(
        topology, el_flat, leakage=leak, sigma=sig, exclude=excl, name="elements"
    )
    prob = Problem(a, base, var, ~excl, tg_flat, r, Transform(topology, target_kind))
    tol = prepare_tol(near_optimal_tol, cell_shape, has_m, m)
    stop_tol = prepare_tol(error_tolerance, cell_shape, has_m, m, name="error_tolerance")
    core = solve_problem(
        prob,
        secondary=secondary,
        near_optimal_tol=tol,
        method=method,
        max_exact_n=max_exact_n,
        error_tolerance=stop_tol,
    )
    return RSSResult(
        mask=reshape_out(core.mask, cell_shape, has_m),
        value=reshape_out(core.value, cell_shape, has_m),
        error=reshape_out(core.error, cell_shape, has_m),
        exact=reshape_out(core.exact, cell_shape, has_m),
        reachable=reshape_out(core.reachable, cell_shape, has_m),
        reachable_lo=reshape_out(np.repeat(core.lo[:, None], m, 1), cell_shape, has_m),
        reachable_hi=reshape_out(np.repeat(core.hi[:, None], m, 1), cell_shape, has_m),
        sigma=None if core.sigma is None else reshape_out(core.sigma, cell_shape, has_m),
        n_closed=reshape_out(core.mask.sum(-1), cell_shape, has_m),
        target=reshape_out(tg_flat, cell_shape, has_m),
        method=core.method,
    )
