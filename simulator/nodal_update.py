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
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from simulator.nodal import Netlist, NodalSolver

from simulator.nodal import NodalSolution

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _energy(x: FloatArray, mx: FloatArray) -> FloatArray:
    """``||x_col||_M`` per column from ``x`` and ``M x``."""
    return np.asarray(np.sqrt(np.maximum(np.einsum("ij,ij->j", x, mx), 0.0)))


class Incidence:
    """``U`` (n_free x m): column ``e`` is ``e_a - e_b`` for conductance ``e`` between the
    free indices ``ia[e]`` and ``ib[e]``. Built once per base for every conductance that
    may drift, so that a value update only brings the changes ``d`` of ``E = U diag(d) U^T``.
    """

    def __init__(self, n_free: int, ia: IntArray, ib: IntArray) -> None:
        self.ia = ia = np.asarray(ia, dtype=np.int64)
        self.ib = ib = np.asarray(ib, dtype=np.int64)
        self.size = int(ia.size)
        cols = np.arange(self.size)
        self.u = sp.csr_matrix(
            (np.r_[np.ones(self.size), -np.ones(self.size)], (np.r_[ia, ib], np.r_[cols, cols])),
            shape=(n_free, self.size),
        )
        self.u_t = self.u.T.tocsr()


class LowRankChanges:
    """Conductance changes between free nodes of a factorised base, ``M = A0 + U C U^T``,
    solved by Sherman-Morrison-Woodbury: ``M^{-1} = A0^{-1} - Z (I + C W)^{-1} C Z^T``.

    Args:
        z: ``Z = A0^{-1} U`` (n_free, k), one column per change (`ZCache.columns` of the base).
        ia, ib: the free indices of each change's two ends.
        delta_S: ``C``'s diagonal, the conductance changes (S).
    """

    def __init__(self, z: FloatArray, ia: IntArray, ib: IntArray, delta_S: FloatArray) -> None:
        self.z = np.asarray(z, dtype=np.float64)
        self.ia = np.asarray(ia, dtype=np.int64)
        self.ib = np.asarray(ib, dtype=np.int64)
        self.dg = np.asarray(delta_S, dtype=np.float64)
        self.rank = int(self.dg.size)
        w = self.z[self.ia] - self.z[self.ib]  # W = U^T Z (k x k)
        self._m = np.eye(self.rank) + self.dg[:, None] * w

    def _ut(self, x: FloatArray) -> FloatArray:
        """``U^T x``: each change's potential difference (k, n_rhs)."""
        return np.asarray(x[self.ia] - x[self.ib])

    def apply(self, y: FloatArray) -> FloatArray:
        """``M^{-1} r`` from ``y = A0^{-1} r`` (n_free, n_rhs)."""
        s = np.linalg.solve(self._m, self.dg[:, None] * self._ut(y))
        return np.asarray(y - self.z @ s)

    def matrix(self, n: int) -> Any:
        """``U C U^T`` (n x n, CSR; checks)."""
        ia, ib, d = self.ia, self.ib, self.dg
        return sp.coo_matrix(
            (np.concatenate([d, d, -d, -d]), (np.r_[ia, ib, ia, ib], np.r_[ia, ib, ib, ia])),
            shape=(n, n),
        ).tocsr()


class DriftedBase:
    """A factorised base network whose conductances all moved a little (element values:
    temperature, aging), solved through the base's factorisation without refactorising.

    The drifted matrix is ``A = A0 + E`` with ``E = sum_e d_e u_e u_e^T`` over the moved
    conductances (``u_e = e_a - e_b`` between free nodes), each by at most ``eps`` of its
    base value: ``|d_e| <= eps g_e``. Both are sums of positive semidefinite terms, so
    ``-eps A0 <= E <= eps A0`` and ``K = A0^{-1} E`` is self-adjoint in the ``A0``
    inner product with norm at most ``eps``. Hence the Neumann series

        A^{-1} b = sum_j (-K)^j A0^{-1} b

    converges, every term at most ``eps`` times the previous one in the energy norm
    ``||v||_A0 = sqrt(v^T A0 v)``, and after the term ``t_j`` the rest is at most
    ``||t_j|| eps / (1 - eps)``: the series stops when that bound is below ``tol`` of the
    first term (a guaranteed relative error in the energy norm, not an estimate). With
    the board's drift (``eps`` ~ 1e-5 between value updates, 1e-3 at most before the
    caller refactorises) that is 2 to 6 pairs of triangular solves, against a
    factorisation 50 times as long on the large board.

    ``changes``: conductances the state changed beyond a drift (a switched cell, a routing
    switch), each between two free nodes, folded into the series' own matrix: ``M = A0 +
    U C U^T`` (`LowRankChanges`, solved by Sherman-Morrison-Woodbury through columns
    ``A0^{-1} U`` that stay valid for the base's whole life), and the series runs on
    ``A = M + E``. ``M`` is the Laplacian of a real network (every edge's conductance >= 0)
    that holds each drifted conductance at its base value, so the bound above holds in the
    ``M`` norm unchanged. A state's switch and routing changes then cost no columns after
    a value update: only what differs from this state does.

    Duck-types the parts of `NodalSolver` that `ZCache` and `UpdatedNodalSolver` use;
    the moved and changed conductances must join free nodes (the caller checks), so the
    source rows (``a_fx``, ``laplacian_fixed_rows``) are the base's.
    """

    def __init__(
        self,
        base: NodalSolver,
        ia: IntArray,
        ib: IntArray,
        delta_S: FloatArray,
        eps: float,
        *,
        tol: float = 1e-15,
        changes: LowRankChanges | None = None,
        incidence: Incidence | None = None,
    ) -> None:
        if not 0.0 <= eps < 0.5:
            raise ValueError(f"drift bound eps must be in [0, 0.5), got {eps}")
        self.base = base
        self.eps = float(eps)
        self.tol = float(tol)
        self._d = np.asarray(delta_S, dtype=np.float64)
        if incidence is None:
            incidence = Incidence(base.n_free, ia, ib)
        elif not (np.array_equal(incidence.ia, ia) and np.array_equal(incidence.ib, ib)):
            raise ValueError("the incidence given is not that of ia, ib")
        if incidence.size != self._d.size:
            raise ValueError(f"{self._d.size} changes for {incidence.size} conductances")
        self._inc = incidence
        """``U`` of ``E = U diag(d) U^T`` (one column per conductance that may drift)."""
        self.changes = changes if changes is not None and changes.rank else None
        self.group_of = base.group_of
        self.n_groups = base.n_groups
        self.n_free = base.n_free
        self.nnz_factor = base.nnz_factor
        self.floating_groups = base.floating_groups
        self.netlist = base.netlist
        self.solves = 0
        """Pairs of triangular solves done (for tests and benchmarks)."""

    # the base's structure, unchanged by the drift
    @property
    def a_fx(self) -> Any:
        """Free-by-fixed block of the group Laplacian (S), the base's."""
        return self.base.a_fx

    @property
    def laplacian_fixed_rows(self) -> Any:
        """Rows of the fixed groups in the group Laplacian, the base's."""
        return self.base.laplacian_fixed_rows

    @property
    def fixed_groups(self) -> IntArray:
        """Groups holding a source."""
        return self.base.fixed_groups

    @property
    def free_groups(self) -> IntArray:
        """Groups solved for."""
        return self.base.free_groups

    @property
    def fixed_group_flag(self) -> npt.NDArray[np.bool_]:
        """Per group: True when a source holds it."""
        return self.base.fixed_group_flag

    @property
    def index_in_class(self) -> IntArray:
        """Per group: its position among the free or among the fixed groups."""
        return self.base.index_in_class

    def fixed_group_potentials(self, fixed_potentials_V: npt.ArrayLike) -> tuple[FloatArray, bool]:
        """As `NodalSolver.fixed_group_potentials`."""
        return self.base.fixed_group_potentials(fixed_potentials_V)

    def currents_per_source(self, per_group: FloatArray, squeeze: bool) -> FloatArray:
        """As `NodalSolver.currents_per_source`."""
        return self.base.currents_per_source(per_group, squeeze)

    @property
    def a_ff(self) -> Any:
        """The free-node matrix ``A0 + U C U^T + E`` (S), CSC (built on demand: checks)."""
        inc = self._inc.u
        a = self.base.a_ff + inc @ sp.diags(self._d) @ inc.T
        if self.changes is not None:
            a = a + self.changes.matrix(self.base.n_free)
        return a.tocsc()

    def _e_times(self, x: FloatArray) -> FloatArray:
        """``E x`` (A per V of ``x``): the drifted conductances' currents."""
        return np.asarray(self._inc.u @ (self._d[:, None] * (self._inc.u_t @ x)))

    def _m_solve(self, rhs: FloatArray) -> FloatArray:
        """``M^{-1} rhs``: a pair of triangular solves of the base, then the changes."""
        y = self.base.solve_free(rhs)
        self.solves += 1
        if self.changes is not None:
            y = self.changes.apply(y)
        return np.asarray(y)

    chunk = 8
    """Columns per triangular solve: SuperLU's multi-column solve costs ~0.4 ms per
    column of the large board up to 8 columns, 1-3 ms per column beyond (measured)."""

    def solve_free(self, rhs: FloatArray, *, a0_solution: FloatArray | None = None) -> FloatArray:
        """``A^{-1} rhs`` (n_free, n_rhs) by the Neumann series (class docstring).

        ``a0_solution``: ``A0^{-1} rhs`` when the caller has it (the base's cached solves):
        the first term then costs no triangular solve."""
        rhs = np.asarray(rhs, dtype=np.float64)
        if rhs.shape[1] > self.chunk:
            return np.concatenate(
                [
                    self.solve_free(
                        rhs[:, j : j + self.chunk],
                        a0_solution=None
                        if a0_solution is None
                        else a0_solution[:, j : j + self.chunk],
                    )
                    for j in range(0, rhs.shape[1], self.chunk)
                ],
                axis=1,
            )
        if a0_solution is None:
            term = self._m_solve(rhs)
        elif self.changes is not None:
            term = self.changes.apply(np.asarray(a0_solution, dtype=np.float64))
        else:
            term = np.array(a0_solution, dtype=np.float64)
        total = term.copy()
        if self.eps == 0.0 or self._d.size == 0:
            return total
        # Energy norms from what each term solved: M t0 = rhs and M t_(j+1) = -E t_j, so
        # ||t||_M^2 is a dot product, no product with M.
        first = norm = _energy(term, rhs)
        ratio = self.eps / (1.0 - self.eps)
        live = np.arange(rhs.shape[1])  # columns whose series goes on
        for _ in range(200):
            going = norm * ratio > self.tol * first[live]
            live, term = live[going], term[:, going]
            if not live.size:
                return total
            e_term = self._e_times(term)
            term = -self._m_solve(e_term)
            total[:, live] += term
            norm = _energy(term, -e_term)
        raise RuntimeError(f"drift series did not converge (eps = {self.eps})")


class ZCache:
    """``A0^{-1} u`` columns of one base factorisation, keyed by the free indices of the
    change's two ends (``-1``: a source or ground), and ``A0^{-1} b0`` per excitation.
    Bounded: first added, first out beyond ``max_columns``.

    ``warm``: the cache this one replaces (the previous element values of the same base).
    The right-hand sides that its last solves used, and the columns ``warm_cols`` (default:
    its last solves' columns), are solved here in one batch with the first miss: after a
    value update the next states usually need the same ones (the excitation, the cell
    being read), and one batched drift series costs little more than one column's
    (`DriftedBase.solve_free`).

    ``first``: for a `DriftedBase`, the cache of its base factorisation: each series starts
    from the base's exact solution of the same right-hand side, solved there once and kept
    for the base's life (the excitation, the columns of the cells read), so a value update
    costs the series' later terms only."""

    def __init__(
        self,
        base: NodalSolver | DriftedBase,
        max_columns: int = 512,
        *,
        warm: ZCache | None = None,
        warm_cols: list[tuple[int, int]] | None = None,
        first: ZCache | None = None,
    ) -> None:
        self.base = base
        self.max_columns = max_columns
        self._first = first
        self._cols: dict[tuple[int, int], FloatArray] = {}
        self._x0: dict[bytes, FloatArray] = {}
        self._rhs: dict[bytes, FloatArray] = {}  # the right-hand sides of ``_x0``
        self._recent_cols: list[tuple[int, int]] = []
        self._recent_rhs: dict[bytes, FloatArray] = {}
        if warm_cols is None:
            warm_cols = list(warm._recent_cols) if warm else []
        self._warm_cols: list[tuple[int, int]] = list(warm_cols)
        self._warm_rhs: dict[bytes, FloatArray] = dict(warm._recent_rhs) if warm else {}
        self.solves = 0
        """Batches solved (for tests and benchmarks)."""
        self.columns_solved = 0
        """Right-hand-side columns solved, all batches (for tests and benchmarks)."""

    @staticmethod
    def _rhs_key(rhs: FloatArray) -> bytes:
        return rhs.tobytes() + bytes(str(rhs.shape), "ascii")

    def _solve_batch(
        self, keys: list[tuple[int, int]], rhs_list: list[tuple[bytes, FloatArray]]
    ) -> None:
        """Solve the columns ``keys`` and the right-hand sides ``rhs_list`` in one batch
        (plus what the warm start still holds), and cache them."""
        keys = list(dict.fromkeys(keys + [k for k in self._warm_cols if k not in self._cols]))
        for key, rhs in self._warm_rhs.items():
            if key not in self._x0 and all(key != k for k, _ in rhs_list):
                rhs_list = [*rhs_list, (key, rhs)]
        self._warm_cols, self._warm_rhs = [], {}
        n = self.base.n_free
        blocks = [rhs for _, rhs in rhs_list]
        if keys:
            z_rhs = np.zeros((n, len(keys)))
            ia = np.array([k[0] for k in keys], dtype=np.int64)
            ib = np.array([k[1] for k in keys], dtype=np.int64)
            cols = np.arange(len(keys))
            z_rhs[ia, cols] = 1.0
            has_b = ib >= 0
            z_rhs[ib[has_b], cols[has_b]] = -1.0
            blocks.append(z_rhs)
        rhs_all = np.concatenate(blocks, axis=1)
        # an excitation that drives nothing (the board's own sources in cell routing,
        # where no DAC or TIA is connected) is solved by zeros, not by a series
        live = np.flatnonzero(np.any(rhs_all != 0.0, axis=0))
        x = np.zeros_like(rhs_all)
        if live.size:
            if self._first is not None and isinstance(self.base, DriftedBase):
                # the series starts from the base's own solutions (exact, cached there for
                # every later value update of the same base): no triangular solve here
                parts = [self._first.x0(rhs, key=key) for key, rhs in rhs_list]
                if keys:
                    parts.append(self._first.columns(ia, ib))
                first = np.concatenate(parts, axis=1)[:, live]
                x[:, live] = self.base.solve_free(rhs_all[:, live], a0_solution=first)
            else:
                x[:, live] = self.base.solve_free(rhs_all[:, live])
            self.solves += 1
            self.columns_solved += int(live.size)
        at = 0
        for rhs_key, rhs in rhs_list:
            if len(self._x0) >= 8:
                self._rhs.pop(next(iter(self._x0)))
                self._x0.pop(next(iter(self._x0)))
            self._x0[rhs_key] = x[:, at : at + rhs.shape[1]].copy()
            self._rhs[rhs_key] = rhs
            at += rhs.shape[1]
        for j, col_key in enumerate(keys):
            self._cols[col_key] = x[:, at + j].copy()
        while len(self._cols) > self.max_columns:
            self._cols.pop(next(iter(self._cols)))

    def columns(self, ia: IntArray, ib: IntArray) -> FloatArray:
        """``Z`` (n_free, k) for changes between free indices ``ia`` and ``ib``."""
        keys = list(zip(ia.tolist(), ib.tolist(), strict=True))
        missing = [key for key in keys if key not in self._cols]
        if missing:
            self._solve_batch(missing, [])
        self._recent_cols = keys
        return np.stack([self._cols[key] for key in keys], axis=1)

    def x0(
        self, rhs: FloatArray | Callable[[], FloatArray], key: bytes | None = None
    ) -> FloatArray:
        """``A0^{-1} rhs`` for the base right-hand side ``rhs`` (n_free, n_rhs), cached.

        ``key``: what identifies ``rhs`` (default: its bytes); with a key, ``rhs`` may be
        a function that builds it, called only when it is not cached."""
        if key is None:
            assert not callable(rhs)
            key = self._rhs_key(rhs)
        if key not in self._x0:
            self._solve_batch([], [(key, rhs() if callable(rhs) else rhs)])
        self._recent_rhs = {key: self._rhs[key]}
        return self._x0[key]


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
        v_fixed = np.ascontiguousarray(v_groups[base.fixed_groups])
        if base.n_free:
            # keyed by the source potentials (a few), not the right-hand side they make
            x0 = self._cache.x0(
                lambda: np.ascontiguousarray(-(base.a_fx @ v_fixed)),
                key=v_fixed.tobytes() + bytes(str(v_fixed.shape), "ascii"),
            )
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
