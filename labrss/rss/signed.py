"""`solve_signed`: signed targets through differential column pairs.

A signed weight is realised as ``G+ - G-``: the positive column's bank minus the
negative column's bank. Both subsets are chosen jointly, exactly: with leakage,

    G+ - G- = (sum h+ - sum h-) + sum_{i in S+} (g+_i - h+_i) - sum_{j in S-} (g-_j - h-_j),

a single subset-sum over the ``n+ + n-`` values ``{g+ - h+} U {-(g- - h-)}`` (values of
both signs: the centred Random Subset Sum of the theory), solved by the same kernels as
`labrss.rss.solve`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from labrss.rss.result import SignedRSSResult
from labrss.rss.solver import (
    Method,
    Problem,
    Secondary,
    Transform,
    as_float_array,
    broadcast_option,
    cell_shape_of,
    check_values,
    prepare_tol,
    reshape_out,
    solve_problem,
    split_targets,
)

__all__ = ["solve_signed"]

#: A per-element option of a differential pair: one array for both columns, or a
#: ``(positive, negative)`` tuple (None: not given for that column).
ColumnOption = ArrayLike | tuple[ArrayLike | None, ArrayLike | None] | None


def _side(option: ColumnOption, index: int) -> ArrayLike | None:
    """The option for one column: a 2-tuple gives (positive, negative), else shared."""
    if isinstance(option, tuple) and len(option) == 2:
        return option[index]
    return option


def solve_signed(
    pos_elements: ArrayLike,
    neg_elements: ArrayLike,
    targets: ArrayLike,
    *,
    leakage_S: ColumnOption = None,
    series_resistance_ohm: ArrayLike | None = None,
    exclude: ColumnOption = None,
    sigma_S: ColumnOption = None,
    target_kind: str = "conductance",
    topology: str = "parallel",
    secondary: Secondary | None = None,
    near_optimal_tol: ArrayLike | None = None,
    method: Method = "auto",
    max_exact_n: int = 44,
    error_tolerance: ArrayLike | None = None,
) -> SignedRSSResult:
    """Best joint subsets of a differential pair for each signed target ``G+ - G-`` (S).

    Parameters
    ----------
    pos_elements, neg_elements : array_like, shapes (..., n_pos) and (..., n_neg)
        Branch conductances (S) of the positive and negative column of each cell.
    targets : array_like, shape (...) or (..., m)
        Signed conductance targets (S), as in `labrss.rss.solve`.
    leakage_S, exclude, sigma_S : optional
        As in `labrss.rss.solve`; a 2-tuple ``(positive, negative)`` gives each column
        its own array, anything else applies to both columns.
    near_optimal_tol, secondary, method, max_exact_n, error_tolerance :
        As in `labrss.rss.solve`; the exact limit counts the elements of both columns.
    series_resistance_ohm, target_kind, topology :
        Only ``None``/0, ``"conductance"`` and ``"parallel"``: with a series resistance
        the two columns' values are no longer additive (``1/(r + 1/G+) - 1/(r + 1/G-)``
        is not a subset sum), and a differential pair is a pair of parallel banks.

    Returns
    -------
    SignedRSSResult

    Complexity: as `labrss.rss.solve` with ``n = n_pos + n_neg``.
    """
    if target_kind != "conductance" or topology != "parallel":
        msg = (
            f"solve_signed: target_kind={target_kind!r}, topology={topology!r}: a "
            "differential pair realises a signed conductance G+ - G- with two parallel "
            "banks; only target_kind='conductance', topology='parallel' apply"
        )
        raise ValueError(msg)
    if series_resistance_ohm is not None:
        rs = as_float_array("series_resistance_ohm", series_resistance_ohm)
        if np.any(rs != 0):
            msg = (
                "solve_signed: series_resistance_ohm must be None or 0: with a series "
                "resistance r, 1/(r + 1/G+) - 1/(r + 1/G-) is not a subset sum; give "
                "series-corrected branch conductances instead"
            )
            raise ValueError(msg)
    if secondary not in (None, "variance", "switches"):
        msg = f"secondary = {secondary!r}: expected None, 'variance' or 'switches'"
        raise ValueError(msg)
    if secondary == "variance" and sigma_S is None:
        msg = "secondary='variance' needs the element uncertainties sigma_S"
        raise ValueError(msg)
    pos = as_float_array("pos_elements", pos_elements)
    neg = as_float_array("neg_elements", neg_elements)
    for name, arr in (("pos_elements", pos), ("neg_elements", neg)):
        if arr.ndim < 1:
            msg = f"{name} must have shape (..., n), got a scalar {arr!r}"
            raise ValueError(msg)
        check_values(name, arr, "S", per_element=True, allow_negative=False)
    if pos.ndim != neg.ndim:
        msg = (
            f"pos_elements shape {pos.shape} and neg_elements shape {neg.shape} need the "
            "same number of dimensions (..., n_pos) and (..., n_neg)"
        )
        raise ValueError(msg)
    tg = as_float_array("targets", targets)
    check_values("targets", tg, "S", per_element=False, allow_negative=True)
    target_cells, has_m, m = split_targets(tg, pos.shape, "pos_elements")
    cell_shape = cell_shape_of(
        tg.shape,
        target_cells,
        has_m,
        [("pos_elements", pos.shape), ("neg_elements", neg.shape)],
    )
    n_cells = int(np.prod(cell_shape, dtype=np.int64))

    a_parts: list[np.ndarray] = []
    var_parts: list[np.ndarray] = []
    act_parts: list[np.ndarray] = []
    base = np.zeros(n_cells)
    for index, (side, arr, sign) in enumerate((("pos", pos, 1.0), ("neg", neg, -1.0))):
        n = arr.shape[-1]
        full = (*cell_shape, n)
        g = np.ascontiguousarray(np.broadcast_to(arr, full)).reshape(n_cells, n)
        h = np.zeros_like(g)
        leak = _side(leakage_S, index)
        if leak is not None:
            la = as_float_array(f"leakage_S ({side})", leak)
            check_values(
                f"leakage_S ({side})", la, "S", per_element=la.ndim >= 1, allow_negative=False
            )
            h = np.ascontiguousarray(broadcast_option(f"leakage_S ({side})", la, full)).reshape(
                n_cells, n
            )
        ex = np.zeros((n_cells, n), dtype=bool)
        excl = _side(exclude, index)
        if excl is not None:
            ea = np.asarray(excl)
            if ea.dtype != np.bool_:
                msg = f"exclude ({side}) must be a boolean array, got dtype {ea.dtype}"
                raise ValueError(msg)
            ex = np.ascontiguousarray(broadcast_option(f"exclude ({side})", ea, full)).reshape(
                n_cells, n
            )
        over = (h > g) & ~ex
        if over.any():
            c, i = (int(v) for v in np.argwhere(over)[0])
            msg = (
                f"leakage_S ({side})[cell {c}, element {i}] = {float(h[c, i])!r} S exceeds "
                f"the closed-branch conductance {float(g[c, i])!r} S of {side}_elements"
            )
            raise ValueError(msg)
        a_parts.append(sign * np.where(ex, 0.0, g - h))
        base += sign * h.sum(1)
        act_parts.append(~ex)
        sig = _side(sigma_S, index)
        if sig is not None:
            sa = as_float_array(f"sigma_S ({side})", sig)
            check_values(
                f"sigma_S ({side})", sa, "S", per_element=sa.ndim >= 1, allow_negative=False
            )
            s = np.ascontiguousarray(broadcast_option(f"sigma_S ({side})", sa, full)).reshape(
                n_cells, n
            )
            var_parts.append(s**2)
    if len(var_parts) == 1:
        msg = "sigma_S: give uncertainties for both columns (a 2-tuple with no None)"
        raise ValueError(msg)
    n_pos = pos.shape[-1]
    tg_shape = (*cell_shape, m) if has_m else cell_shape
    tg_flat = np.ascontiguousarray(np.broadcast_to(tg, tg_shape)).reshape(n_cells, m)
    prob = Problem(
        a=np.concatenate(a_parts, axis=1),
        base=base,
        var=np.concatenate(var_parts, axis=1) if len(var_parts) == 2 else None,
        active=np.concatenate(act_parts, axis=1),
        targets=tg_flat,
        r=np.zeros((n_cells, 1)),
        transform=Transform("parallel", "conductance"),
    )
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
    mask = reshape_out(core.mask, cell_shape, has_m)
    return SignedRSSResult(
        mask_pos=mask[..., :n_pos],
        mask_neg=mask[..., n_pos:],
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
