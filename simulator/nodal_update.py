"""Low-rank changes of a factorised nodal solve (Sherman-Morrison-Woodbury).

A switch or a routing change alters a few conductances of the board's network: the new
free-node matrix is ``A = A0 + U C U^T`` with ``A0`` the factorised matrix of a base
state (`simulator.nodal.NodalSolver`), one column ``u_e`` per changed conductance
(``e_a - e_b`` between two free nodes, ``e_a`` when ``b`` is held by a source) and
``C = diag(dg)``. With ``Z = A0^{-1} U`` (one pair of triangular solves per changed
conductance, cached by the caller for as long as the base lives) and ``W = U^T Z``
(``k x k``, the inverse of the base network's Schur complement onto the changed
conductances' terminals):

    A^{-1} = A0^{-1} - Z (I + C W)^{-1} C Z^T.

A changed conductance to a source also moves the right-hand side: ``b = b0 + U beta``
with ``beta_e = dg_e v_source``. So, with ``x0 = A0^{-1} b0`` (cached per excitation),

    x = x0 + Z (beta - (I + C W)^{-1} C (U^T x0 + W beta)),

``O(n k + k^3)`` per solve instead of a factorisation: exact (no element dropped or
approximated), the same network as a fresh `NodalSolver` up to rounding.

The node groups (zero-resistance links) and the floating parts must be those of the
base; the caller checks that and re-bases otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from simulator.nodal import Netlist, NodalSolver

from simulator.nodal import NodalSolution

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class ZCache:
    """``A0^{-1} u`` columns of one base factorisation, keyed by the free indices of the
    change's two ends (``-1``: a source or ground), and ``A0^{-1} b0`` per excitation.
    Bounded: first added, first out beyond ``max_columns``."""

    def __init__(self, base: NodalSolver, max_columns: int = 512) -> None:
        self.base = base
        self.max_columns = max_columns
        self._cols: dict[tuple[int, int], FloatArray] = {}
        self._x0: dict[bytes, FloatArray] = {}
        self.solves = 0
        """Pairs of triangular solves done (for tests and benchmarks)."""

    def columns(self, ia: IntArray, ib: IntArray) -> FloatArray:
        """``Z`` (n_free, k) for changes between free indices ``ia`` and ``ib``."""
        keys = list(zip(ia.tolist(), ib.tolist(), strict=True))
        missing = [i for i, key in enumerate(keys) if key not in self._cols]
        if missing:
            n = self.base.n_free
            rhs = np.zeros((n, len(missing)))
            cols = np.arange(len(missing))
            rhs[ia[missing], cols] = 1.0
            fb = ib[missing]
            has_b = fb >= 0
            rhs[fb[has_b], cols[has_b]] = -1.0
            z = self.base.solve_free(rhs)
            self.solves += 1
            for j, i in enumerate(missing):
                self._cols[keys[i]] = z[:, j].copy()
            while len(self._cols) > self.max_columns:
                self._cols.pop(next(iter(self._cols)))
        return np.stack([self._cols[key] for key in keys], axis=1)

    def x0(self, rhs: FloatArray) -> FloatArray:
        """``A0^{-1} rhs`` for the base right-hand side ``rhs`` (n_free, n_rhs), cached."""
        key = rhs.tobytes() + bytes(str(rhs.shape), "ascii")
        hit = self._x0.get(key)
        if hit is None:
            hit = self.base.solve_free(rhs)
            self.solves += 1
            if len(self._x0) >= 8:
                self._x0.pop(next(iter(self._x0)))
            self._x0[key] = hit
        return hit


class UpdatedNodalSolver:
    """A base `NodalSolver`'s network with some conductances changed, solved exactly
    through the base factorisation (module docstring).

    Args:
        cache: the base solver's `ZCache`.
        node_a, node_b, delta_S: the changes, ``g_new - g_base`` (S) between nodes
            ``node_a[i]`` and ``node_b[i]`` (parallel conductances between one pair add).
        netlist_factory: builds the full `Netlist` of this state on demand (exports,
            independent checks); solving never needs it.
    """

    def __init__(
        self,
        cache: ZCache,
        node_a: IntArray,
        node_b: IntArray,
        delta_S: FloatArray,
        netlist_factory: Callable[[], Netlist],
    ) -> None:
        base = cache.base
        self.base = base
        self._cache = cache
        self._netlist_factory = netlist_factory
        self._netlist: Netlist | None = None
        self.group_of = base.group_of
        self.n_groups = base.n_groups
        self.n_free = base.n_free
        self.nnz_factor = base.nnz_factor
        ga = base.group_of[np.asarray(node_a, dtype=np.int64)]
        gb = base.group_of[np.asarray(node_b, dtype=np.int64)]
        dg = np.asarray(delta_S, dtype=np.float64)
        keep = (ga != gb) & (dg != 0.0)
        ga, gb, dg = ga[keep], gb[keep], dg[keep]
        fixed = base.fixed_group_flag
        swap = fixed[ga] & ~fixed[gb]  # put the free end first
        ga, gb = np.where(swap, gb, ga), np.where(swap, ga, gb)
        # changes between two sources move no free node (only source currents)
        self._src_a, self._src_b, self._src_dg = ga, gb, dg
        free_change = ~fixed[ga]
        ga, gb, dg = ga[free_change], gb[free_change], dg[free_change]
        self._ga, self._gb, self._dg = ga, gb, dg
        self._ia = base.index_in_class[ga]
        b_fixed = fixed[gb]
        self._b_fixed = b_fixed
        self._ib = np.where(b_fixed, -1, base.index_in_class[gb])
        self.rank = int(dg.size)
        if self.rank:
            self._z = cache.columns(self._ia, self._ib)
            w = self._z[self._ia] - np.where(
                b_fixed[:, None], 0.0, self._z[np.maximum(self._ib, 0)]
            )
            self._w = w
            self._m = np.eye(self.rank) + dg[:, None] * w  # I + C W

    @property
    def netlist(self) -> Netlist:
        """The full netlist of this state (built on first use)."""
        if self._netlist is None:
            self._netlist = self._netlist_factory()
        return self._netlist

    @property
    def floating_groups(self) -> IntArray:
        """Groups with no path to a source (those of the base: checked by the caller)."""
        return self.base.floating_groups

    def _apply(self, x0: FloatArray, beta: FloatArray) -> FloatArray:
        """``x0 + Z (beta - (I + C W)^{-1} C (U^T x0 + W beta))`` (n_free, n_rhs)."""
        ut_x0 = x0[self._ia] - np.where(self._b_fixed[:, None], 0.0, x0[np.maximum(self._ib, 0)])
        y = ut_x0 + self._w @ beta
        s = np.linalg.solve(self._m, self._dg[:, None] * y)
        return np.asarray(x0 + self._z @ (beta - s))

    def _matvec(self, x: FloatArray) -> FloatArray:
        """``A x`` with this state's matrix: the base matrix plus the changes."""
        out = np.asarray(self.base.a_ff @ x)
        ux = x[self._ia] - np.where(self._b_fixed[:, None], 0.0, x[np.maximum(self._ib, 0)])
        cu = self._dg[:, None] * ux
        np.add.at(out, self._ia, cu)
        free_b = ~self._b_fixed
        np.add.at(out, self._ib[free_b], -cu[free_b])
        return out

    def solve(self, fixed_potentials_V: npt.ArrayLike) -> NodalSolution:
        """Node potentials for source potentials ``(n_fixed,)`` or ``(n_fixed, n_rhs)``."""
        base = self.base
        v_groups, squeeze = base.fixed_group_potentials(fixed_potentials_V)
        rhs0 = np.ascontiguousarray(-(base.a_fx @ v_groups[base.fixed_groups]))
        if base.n_free:
            x0 = self._cache.x0(rhs0)
            if self.rank:
                beta = np.where(self._b_fixed[:, None], self._dg[:, None] * v_groups[self._gb], 0.0)
                x = self._apply(x0, beta)
            else:
                x = x0
            v_groups[base.free_groups] = x
        return NodalSolution(self, v_groups, squeeze)

    def source_currents_A(self, solution: NodalSolution) -> FloatArray:
        """Current each fixed node's source pushes into the network (A), as
        `NodalSolver.source_currents_A` (the base's currents plus the changes')."""
        base = self.base
        v = solution.group_potentials_V
        per_group = np.zeros((base.n_groups, v.shape[1]))
        per_group[base.fixed_groups] = base.laplacian_fixed_rows @ v
        fixed = base.fixed_group_flag
        ga, gb, dg = self._src_a, self._src_b, self._src_dg
        flow = dg[:, None] * (v[ga] - v[gb])  # extra current from a to b
        a_src = fixed[ga]
        b_src = fixed[gb]
        np.add.at(per_group, ga[a_src], flow[a_src])
        np.add.at(per_group, gb[b_src], -flow[b_src])
        return base.currents_per_source(per_group, solution.squeeze)
