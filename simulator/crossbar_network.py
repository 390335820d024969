"""The crossbar board as a resistor netlist: node numbering and routing topology.

Nodes (R rows, C columns):

* ``row(r, c)``: row line ``r`` at cell column ``c``; ``col(r, c)``: column line ``c`` at
  cell row ``r``. Cell ``(r, c)``'s bank (its branches in parallel) joins the two.
* Wire segments (``wiring.wire_segment_ohm``) join ``row(r, c)``-``row(r, c+1)`` and
  ``col(r, c)``-``col(r+1, c)``. A row enters the board at its left end (edge node
  ``row_edge(r)``, one segment before ``row(r, 0)``), a column leaves at its bottom end
  (``col_edge(c)``, one segment after ``col(R-1, c)``).
* The routing matrix joins an edge node to a destination through that line's routing
  switch (``route_row_ohm[r]`` / ``route_col_ohm[c]``): the SMU's HI, LO or GUARD
  connector, the row's DAC or the column's TIA.
* Each SMU connector reaches its terminal through one lead (``wiring.lead_ohm``), shared
  by every line routed to it: the guard current of a fully programmed board flows through
  the GUARD and LO leads.
* Fixed potentials (ideal sources): the SMU HI terminal and GUARD terminal (both at the
  force voltage), the LO terminal (0 V, the board ground), each DAC output and each TIA
  input (its virtual ground, at the TIA's offset voltage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from simulator.nodal import Netlist, NodalSolver
from simulator.nodal_update import (
    DriftedBase,
    Incidence,
    LowRankChanges,
    UpdatedNodalSolver,
    ZCache,
)

FloatArray = npt.NDArray[np.float64]
RoutingMode = Literal["open", "cell", "mvm_adc", "mvm_smu"]


@dataclass(frozen=True)
class CrossbarNodes:
    """Node numbering of an R x C crossbar netlist."""

    rows: int
    cols: int

    def row(self, r: int | np.ndarray, c: int | np.ndarray) -> np.ndarray:
        """Node of row line r at cell column c."""
        return np.asarray(np.asarray(r) * self.cols + np.asarray(c))

    def col(self, r: int | np.ndarray, c: int | np.ndarray) -> np.ndarray:
        """Node of column line c at cell row r."""
        return np.asarray(self.rows * self.cols + np.asarray(r) * self.cols + np.asarray(c))

    def row_edge(self, r: int | np.ndarray) -> np.ndarray:
        return 2 * self.rows * self.cols + np.asarray(r)

    def col_edge(self, c: int | np.ndarray) -> np.ndarray:
        return 2 * self.rows * self.cols + self.rows + np.asarray(c)

    @property
    def _base(self) -> int:
        return 2 * self.rows * self.cols + self.rows + self.cols

    @property
    def hi_conn(self) -> int:
        return self._base

    @property
    def lo_conn(self) -> int:
        return self._base + 1

    @property
    def guard_conn(self) -> int:
        return self._base + 2

    @property
    def hi_term(self) -> int:
        """SMU force HI terminal (fixed at V_force)."""
        return self._base + 3

    @property
    def lo_term(self) -> int:
        """SMU force LO terminal = board ground (fixed at 0 V)."""
        return self._base + 4

    @property
    def guard_term(self) -> int:
        """SMU GUARD terminal (fixed at V_force)."""
        return self._base + 5

    def dac(self, r: int | np.ndarray) -> np.ndarray:
        return self._base + 6 + np.asarray(r)

    def tia(self, c: int | np.ndarray) -> np.ndarray:
        return self._base + 6 + self.rows + np.asarray(c)

    @property
    def n_nodes(self) -> int:
        return self._base + 6 + self.rows + self.cols

    @property
    def fixed_nodes(self) -> np.ndarray:
        """Source nodes in the order of `source_potentials`: HI, LO, GUARD, DACs, TIAs."""
        return np.concatenate(
            [
                [self.hi_term, self.lo_term, self.guard_term],
                self.dac(np.arange(self.rows)),
                self.tia(np.arange(self.cols)),
            ]
        ).astype(np.int64)


@dataclass(frozen=True)
class RoutingTopology:
    """Where every line's edge is connected (the routing matrix state)."""

    mode: RoutingMode
    row: int | None = None
    col: int | None = None


def routing_edges(
    nodes: CrossbarNodes,
    routing: RoutingTopology,
    route_row_ohm: FloatArray,
    route_col_ohm: FloatArray,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
    """The routing matrix's closed switches: node pairs and resistances (ohm)."""
    rows, cols = nodes.rows, nodes.cols
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    res: list[np.ndarray] = []

    def add(na: npt.ArrayLike, nb: npt.ArrayLike, r_ohm: npt.ArrayLike) -> None:
        na_arr, nb_arr, r_arr = np.broadcast_arrays(
            np.asarray(na, dtype=np.int64),
            np.asarray(nb, dtype=np.int64),
            np.asarray(r_ohm, dtype=np.float64),
        )
        a.append(na_arr.ravel())
        b.append(nb_arr.ravel())
        res.append(r_arr.ravel())

    all_rows, all_cols = np.arange(rows), np.arange(cols)
    mode = routing.mode
    if mode == "cell":
        assert routing.row is not None and routing.col is not None
        r0, c0 = routing.row, routing.col
        other_rows = all_rows[all_rows != r0]
        other_cols = all_cols[all_cols != c0]
        add(nodes.row_edge(r0), nodes.hi_conn, route_row_ohm[r0])
        add(nodes.col_edge(c0), nodes.lo_conn, route_col_ohm[c0])
        add(nodes.row_edge(other_rows), nodes.lo_conn, route_row_ohm[other_rows])
        add(nodes.col_edge(other_cols), nodes.guard_conn, route_col_ohm[other_cols])
    elif mode in ("mvm_adc", "mvm_smu"):
        add(nodes.row_edge(all_rows), nodes.dac(all_rows), route_row_ohm)
        tia_cols = all_cols
        if mode == "mvm_smu":
            assert routing.col is not None
            c0 = routing.col
            add(nodes.col_edge(c0), nodes.hi_conn, route_col_ohm[c0])
            tia_cols = all_cols[all_cols != c0]
        add(nodes.col_edge(tia_cols), nodes.tia(tia_cols), route_col_ohm[tia_cols])
    elif mode != "open":
        raise ValueError(f"unknown routing mode {mode!r}")
    if not a:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    return np.concatenate(a), np.concatenate(b), np.concatenate(res)


def build_crossbar_netlist(
    cell_conductance_S: FloatArray,
    routing: RoutingTopology,
    *,
    wire_segment_ohm: float,
    route_row_ohm: FloatArray,
    route_col_ohm: FloatArray,
    lead_ohm: float,
) -> Netlist:
    """The netlist of the board with cell conductances ``G[r, c]`` (S) and ``routing``."""
    rows, cols = cell_conductance_S.shape
    nodes = CrossbarNodes(rows, cols)
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    res: list[np.ndarray] = []

    def add(na: npt.ArrayLike, nb: npt.ArrayLike, r_ohm: npt.ArrayLike) -> None:
        na_arr, nb_arr, r_arr = np.broadcast_arrays(
            np.asarray(na, dtype=np.int64),
            np.asarray(nb, dtype=np.int64),
            np.asarray(r_ohm, dtype=np.float64),
        )
        a.append(na_arr.ravel())
        b.append(nb_arr.ravel())
        res.append(r_arr.ravel())

    # Wires: along rows, along columns, and from each edge to the line's first cell.
    add(nodes.row(rr[:, :-1], cc[:, :-1]), nodes.row(rr[:, 1:], cc[:, 1:]), wire_segment_ohm)
    add(nodes.col(rr[:-1], cc[:-1]), nodes.col(rr[1:], cc[1:]), wire_segment_ohm)
    add(nodes.row_edge(np.arange(rows)), nodes.row(np.arange(rows), 0), wire_segment_ohm)
    add(nodes.col_edge(np.arange(cols)), nodes.col(rows - 1, np.arange(cols)), wire_segment_ohm)
    # Leads from the SMU connectors to the terminals.
    add(
        [nodes.hi_conn, nodes.lo_conn, nodes.guard_conn],
        [nodes.hi_term, nodes.lo_term, nodes.guard_term],
        lead_ohm,
    )
    # Routing.
    ra, rb, rr_ohm = routing_edges(nodes, routing, route_row_ohm, route_col_ohm)
    add(ra, rb, rr_ohm)

    # Conductances of the cells.
    g = cell_conductance_S.ravel()
    keep = g > 0
    wire_net = Netlist.from_resistors(
        nodes.n_nodes, np.concatenate(a), np.concatenate(b), np.concatenate(res), nodes.fixed_nodes
    )
    return Netlist(
        n_nodes=nodes.n_nodes,
        node_a=np.concatenate([wire_net.node_a, nodes.row(rr, cc).ravel()[keep]]),
        node_b=np.concatenate([wire_net.node_b, nodes.col(rr, cc).ravel()[keep]]),
        conductance_S=np.concatenate([wire_net.conductance_S, g[keep]]),
        short_a=wire_net.short_a,
        short_b=wire_net.short_b,
        fixed_nodes=wire_net.fixed_nodes,
    )


def source_potentials(
    nodes: CrossbarNodes, dac_out_V: FloatArray, tia_offset_V: FloatArray
) -> FloatArray:
    """Source potentials as two excitations: column 0 per volt of SMU force (HI and GUARD at
    1 V), column 1 the board's own sources (DAC outputs, TIA offsets) with the SMU at 0 V.

    The potential of any node at force voltage V is ``x[:, 0] * V + x[:, 1]`` (superposition).
    """
    per_volt = np.zeros(nodes.fixed_nodes.size)
    per_volt[[0, 2]] = 1.0  # HI and GUARD follow V_force; LO is ground
    own = np.concatenate([[0.0, 0.0, 0.0], dac_out_V, tia_offset_V])
    return np.stack([per_volt, own], axis=1)


class CrossbarSolverCache:
    """The board's nodal solver for any switch and routing state, refactorising rarely.

    Holds one factorised base state (`NodalSolver`). A new state (cell conductances
    ``G`` (R, C) in S and a routing) differs from it in the cells whose conductance
    changed and in the routing switches that differ: when at most ``max_rank`` such
    conductances changed, the state is solved exactly as a low-rank update of the base
    (`UpdatedNodalSolver`, Sherman-Morrison-Woodbury). When the element values move
    (temperature, aging: every cell a little, every ``update_step_s``), the base stays:
    the cells that moved by at most ``max_drift`` since it was factorised are solved
    through it by a convergent series (`DriftedBase`, stopped by a guaranteed bound),
    and the state's own changes (switched cells, routing switches between free nodes)
    are folded into that series' matrix through columns of the base, which stay valid
    for its whole life: the new values' state becomes the reference that later states
    are low-rank updates of, so a value update re-solves only the excitation and the
    cell being read instead of every column the state needs. Beyond ``max_rank`` changes
    (many switches), or when the node groups could differ (a zero-ohm routing switch, or
    open routing where parts float), the state becomes the new base and is factorised. A
    cell routed alone is the extreme case: the whole network seen from that cell's
    terminals reduces to the ``k x k`` matrix ``W`` of the update, so each switch change
    of the cell costs ``O(n k)`` with no triangular solve.
    """

    default_max_rank = 48
    """Most changed conductances solved as an update (-1: factorise every state, the
    reference that benchmarks compare with)."""

    max_drift = 2e-3
    """Largest relative change of a cell's conductance since the base factorisation that
    a value update (temperature, aging) may bring and still be solved through it
    (`DriftedBase`: its series gains at least log10(1/max_drift) digits per pair of
    triangular solves); cells that moved more count as low-rank changes, and the state
    is factorised anew when too many did."""

    min_free_nodes = 2000
    """Smallest network (free nodes) kept as a base when not forced: below it a
    factorisation costs about one pair of triangular solves (the default 16x16 board:
    547 nodes, ~1 ms), so updates save nothing; the large board has 8323."""

    def __init__(
        self,
        nodes: CrossbarNodes,
        *,
        wire_segment_ohm: float,
        route_row_ohm: FloatArray,
        route_col_ohm: FloatArray,
        lead_ohm: float,
        float_conductance_S: float,
        max_rank: int | None = None,
        force: bool = False,
    ) -> None:
        self.nodes = nodes
        self._wire_segment_ohm = wire_segment_ohm
        self._route_row_ohm = route_row_ohm
        self._route_col_ohm = route_col_ohm
        self._lead_ohm = lead_ohm
        self._float_S = float_conductance_S
        self.max_rank = self.default_max_rank if max_rank is None else max_rank
        self._force = force
        self._base: NodalSolver | None = None
        self._base_g: FloatArray | None = None
        self._eff_g: FloatArray | None = None
        self._base_route: dict[tuple[int, int], float] = {}
        self._ref_route: dict[tuple[int, int], float] = {}
        """The routing switches of the reference state that updates are relative to (the
        base's, with the changes a value update folded in)."""
        self._values_key: object = None
        self._base_routing: RoutingTopology | None = None
        self._cache: ZCache | None = None
        self._route_maps: dict[RoutingTopology, dict[tuple[int, int], float] | None] = {}
        self._route_changes_memo: (
            tuple[
                dict[tuple[int, int], float],
                dict[tuple[int, int], float],
                list[tuple[tuple[int, int], float]],
            ]
            | None
        ) = None
        self._base_cache: ZCache | None = None
        self._incidence: Incidence | None = None
        """The cells that may drift, as `DriftedBase`'s ``E = U diag(d) U^T`` (per base)."""
        self._cell_slot: npt.NDArray[np.int64] | None = None
        """Per cell (row-major): its column in ``_incidence``, -1 when it has none."""
        """Columns of the base factorisation itself (no drift): they build each value
        update's `LowRankChanges` and stay valid until the next factorisation."""
        self.factorisations = 0
        """How many base states were factorised."""
        self.updates = 0
        """How many states were solved as low-rank updates."""
        self.drift_updates = 0
        """How many element value updates were solved through the base (`DriftedBase`)."""

    def _netlist(self, g_S: FloatArray, routing: RoutingTopology) -> Netlist:
        return build_crossbar_netlist(
            g_S,
            routing,
            wire_segment_ohm=self._wire_segment_ohm,
            route_row_ohm=self._route_row_ohm,
            route_col_ohm=self._route_col_ohm,
            lead_ohm=self._lead_ohm,
        )

    def _route_map(self, routing: RoutingTopology) -> dict[tuple[int, int], float] | None:
        """Routing switches as {(node_a, node_b): conductance S}; None if one is 0 ohm.

        Memoised per topology (the routing resistances are the board's, fixed): every
        reading's state asks, and the same map object lets `_update` reuse its routing
        changes. The maps are shared: never modified."""
        if routing in self._route_maps:
            return self._route_maps[routing]
        a, b, r = routing_edges(self.nodes, routing, self._route_row_ohm, self._route_col_ohm)
        out: dict[tuple[int, int], float] | None = None
        if not np.any(r == 0.0):
            out = {}
            for na, nb, g in zip(a.tolist(), b.tolist(), (1.0 / r).tolist(), strict=True):
                if np.isfinite(g) and g > 0:
                    key = (na, nb)
                    out[key] = out.get(key, 0.0) + g
        if len(self._route_maps) >= 4 * (self.nodes.rows + self.nodes.cols):
            self._route_maps.clear()
        self._route_maps[routing] = out
        return out

    def _route_changes(
        self, route: dict[tuple[int, int], float]
    ) -> list[tuple[tuple[int, int], float]]:
        """The routing switches that differ from the reference state's, with the change
        of conductance (S); the last answer is kept (consecutive states share a routing)."""
        memo = self._route_changes_memo
        if memo is not None and memo[0] is route and memo[1] is self._ref_route:
            return memo[2]
        ref = self._ref_route
        changes = [
            (k, route.get(k, 0.0) - ref.get(k, 0.0))
            for k in sorted(set(route) | set(ref))
            if route.get(k, 0.0) != ref.get(k, 0.0)
        ]
        self._route_changes_memo = (route, ref, changes)
        return changes

    def solver(
        self, g_S: FloatArray, routing: RoutingTopology, *, values_key: object
    ) -> NodalSolver | UpdatedNodalSolver:
        """A solver of the network with cell conductances ``g_S`` (R, C; S) and ``routing``.

        ``values_key`` changes whenever the element values do (temperature, aging,
        pulses): every cell then moves a little, a full-rank change, so the state is
        factorised anew.
        """
        g_S = np.asarray(g_S, dtype=np.float64)
        route = self._route_map(routing) if routing.mode != "open" else None
        # a routing mode change re-bases: it changes every line's routing (rank 2 (R + C),
        # beyond max_rank on large boards), and potentials of another scale (cell reads
        # at the force voltage, MVM at the DAC inputs) lose digits through a far base
        base_mode = self._base_routing.mode if self._base_routing is not None else "open"
        same_mode = base_mode == routing.mode or {base_mode, routing.mode} == {
            "mvm_adc",
            "mvm_smu",
        }
        if (
            self._base is not None
            and route is not None
            and same_mode
            and (values_key is self._values_key or self._drift(g_S, routing, route, values_key))
        ):
            if (
                routing.mode == "cell"
                and route is not self._ref_route
                and self._cache is not None
                and isinstance(self._cache.base, DriftedBase)
            ):
                # a cell routed anew under drifted values: this state becomes the
                # reference (the excitation and the cell's column through the series)
                # rather than its routing switches and cells as columns of the old one
                self._drift(g_S, routing, route, values_key, value_update=False)
            updated = self._update(g_S, routing, route)
            if updated is not None:
                return updated
        return self._rebase(g_S, routing, route, values_key)

    def _drift(
        self,
        g_S: FloatArray,
        routing: RoutingTopology,
        route: dict[tuple[int, int], float],
        values_key: object,
        *,
        value_update: bool = True,
    ) -> bool:
        """New element values: keep the base factorisation, the moved cells solved as a
        `DriftedBase` (the cells that moved by at most ``max_drift``), the state's other
        changes between free nodes folded into it (`LowRankChanges`), so that this state
        becomes the reference of the next updates. False when a moved cell ends on a
        source (re-base). ``value_update`` False: the same values, a new reference state
        (not counted in ``drift_updates``)."""
        assert self._base is not None and self._base_g is not None
        assert self._base_cache is not None
        base = self._base
        ref = self._base_g.ravel()
        g = g_S.ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(g - ref) / ref
        moved = (g != ref) & (ref > 0) & (g > 0) & (rel <= self.max_drift)
        cells = np.flatnonzero(moved)
        r, c = np.divmod(cells, self.nodes.cols)
        ga = base.group_of[self.nodes.row(r, c)]
        gb = base.group_of[self.nodes.col(r, c)]
        fixed = base.fixed_group_flag
        if np.any(fixed[ga] | fixed[gb]):
            return False
        assert self._incidence is not None and self._cell_slot is not None
        slots = self._cell_slot[cells]
        drift_S = np.zeros(self._incidence.size)
        drift_S[slots[slots >= 0]] = (g - ref)[cells[slots >= 0]]  # (shorted across: none)
        eff = ref.copy()
        eff[cells] = g[cells]
        eps = float(rel[cells].max()) if cells.size else 0.0
        # The state's switched cells and routing switches: into the series' matrix when
        # both ends are free (then the source rows stay the base's); the others remain
        # changes of every later state.
        switched = np.flatnonzero((g != ref) & ~moved)
        if switched.size > self.max_rank:
            return False  # too many cells moved beyond a drift: factorise this state
        sr, sc = np.divmod(switched, self.nodes.cols)
        pa = base.group_of[self.nodes.row(sr, sc)]
        pb = base.group_of[self.nodes.col(sr, sc)]
        fold = ~fixed[pa] & ~fixed[pb] & (pa != pb)
        eff[switched[fold]] = g[switched[fold]]
        # Routing: all of its changes or none, so that the series' matrix is the network
        # of a real state (a route moved from a TIA to the SMU, half folded, would leave
        # a column nearly floating there and the matrix nearly singular).
        route_a: list[int] = []
        route_b: list[int] = []
        route_d: list[float] = []
        for key in sorted(set(route) | set(self._base_route)):
            d = route.get(key, 0.0) - self._base_route.get(key, 0.0)
            if d == 0.0:
                continue
            ka, kb = base.group_of[key[0]], base.group_of[key[1]]
            if ka == kb:
                continue
            route_a.append(int(ka))
            route_b.append(int(kb))
            route_d.append(d)
        if np.any(fixed[np.array(route_a + route_b, dtype=np.int64)]):
            route_a, route_b, route_d = [], [], []
            ref_route = self._base_route
        else:
            ref_route = route
        fa = np.concatenate([pa[fold], np.array(route_a, dtype=np.int64)])
        fb = np.concatenate([pb[fold], np.array(route_b, dtype=np.int64)])
        ia = base.index_in_class[fa]
        ib = base.index_in_class[fb]
        changes = (
            LowRankChanges(
                self._base_cache.columns(ia, ib),
                ia,
                ib,
                np.concatenate([(g - ref)[switched[fold]], np.array(route_d)]),
            )
            if ia.size
            else None
        )
        inc = self._incidence
        drifted = DriftedBase(base, inc.ia, inc.ib, drift_S, eps, changes=changes, incidence=inc)
        # the next states usually switch the routed cell again (a calibration reading
        # its subsets): its column comes in the same batch as the excitation
        warm: list[tuple[int, int]] = []
        if routing.mode == "cell" and routing.row is not None and routing.col is not None:
            ga_c = base.group_of[self.nodes.row(routing.row, routing.col)]
            gb_c = base.group_of[self.nodes.col(routing.row, routing.col)]
            if ga_c != gb_c and not (fixed[ga_c] or fixed[gb_c]):
                warm = [(int(base.index_in_class[ga_c]), int(base.index_in_class[gb_c]))]
        self._cache = ZCache(drifted, warm=self._cache, warm_cols=warm, first=self._base_cache)
        self._eff_g = eff.reshape(g_S.shape)
        self._ref_route = ref_route
        self._values_key = values_key
        self.drift_updates += int(value_update)
        return True

    def _rebase(
        self,
        g_S: FloatArray,
        routing: RoutingTopology,
        route: dict[tuple[int, int], float] | None,
        values_key: object,
    ) -> NodalSolver:
        """Factorise this state; keep it as the base when later states can update it."""
        low_rank = route is not None and self.max_rank >= 0
        solver = NodalSolver(self._netlist(g_S, routing), self._float_S)
        self.factorisations += 1
        self._base = None
        large = self._force or solver.n_free >= self.min_free_nodes
        if low_rank and large and solver.floating_groups.size == 0:
            # nothing floats, so no later state in cell or MVM routing floats either
            # (every line is routed to a source)
            self._base = solver
            self._base_g = g_S.copy()
            self._eff_g = self._base_g
            self._base_route = route if route is not None else {}
            self._ref_route = self._base_route
            self._base_routing = routing
            self._values_key = values_key
            self._base_cache = ZCache(solver)
            self._cache = self._base_cache
            # every cell that can drift between two free node groups, once per base
            cells = np.arange(g_S.size)
            r, c = np.divmod(cells, self.nodes.cols)
            ga = solver.group_of[self.nodes.row(r, c)]
            gb = solver.group_of[self.nodes.col(r, c)]
            fixed = solver.fixed_group_flag
            usable = ~fixed[ga] & ~fixed[gb] & (ga != gb)
            self._cell_slot = np.full(g_S.size, -1, dtype=np.int64)
            self._cell_slot[usable] = np.arange(int(usable.sum()))
            self._incidence = Incidence(
                solver.n_free,
                solver.index_in_class[ga[usable]],
                solver.index_in_class[gb[usable]],
            )
        return solver

    def _update(
        self, g_S: FloatArray, routing: RoutingTopology, route: dict[tuple[int, int], float]
    ) -> UpdatedNodalSolver | None:
        """This state as a low-rank update of the base, or None if too many conductances
        differ."""
        assert self._base is not None and self._eff_g is not None
        ref = self._eff_g  # the reference state's conductances at the current values
        cells = np.flatnonzero(g_S.ravel() != ref.ravel())
        r_changes = self._route_changes(route)
        if cells.size + len(r_changes) > self.max_rank:
            return None
        r, c = np.divmod(cells, self.nodes.cols)
        node_a = np.concatenate(
            [self.nodes.row(r, c), np.array([k[0] for k, _ in r_changes], dtype=np.int64)]
        ).astype(np.int64)
        node_b = np.concatenate(
            [self.nodes.col(r, c), np.array([k[1] for k, _ in r_changes], dtype=np.int64)]
        ).astype(np.int64)
        delta = np.concatenate([g_S.ravel()[cells] - ref.ravel()[cells], [d for _, d in r_changes]])
        assert self._cache is not None
        g_copy = g_S.copy()
        solver = UpdatedNodalSolver(
            self._cache, node_a, node_b, delta, lambda: self._netlist(g_copy, routing)
        )
        self.updates += 1
        return solver
