"""Low-rank solves (switch and routing changes through a cached factorisation) against a
factorisation of every state.

The reference `BoardModel(low_rank_updates=False)` is the solver as it was before the
low-rank path (a factorisation of every new network state); both models get the same
random sequence of switch changes, routings, DAC settings and clock steps (temperature
and aging move every element). Readings: the SMU port (g_S, i0_A, 4-wire sense) and the
column currents into the TIAs.

Tolerance: 1e-9 relative, or else a twentieth of the resolution of the emulated 2450 at
that current (6.5 digits of the range holding it: 1e-11 A on 10 uA), far below anything
a reading can show; or else, for currents so small that any nodal solve rounds them, as
close to an independent dense MNA as the reference, within a factor 4. Ten seeds of the
random sequence passed; one is kept here (test time).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse.linalg as spla  # type: ignore[import-untyped]

from simulator.board_config import load_board_config
from simulator.board_model import BoardModel, Routing
from simulator.nodal import Netlist, NodalSolver
from simulator.nodal_update import DriftedBase, LowRankChanges, ZCache
from tests.simulator.mna_reference import dense_mna

SMALL = load_board_config("small")


def _resolution_A(current_A: float) -> float:
    """6.5 digits of the 2450 current range (10 nA .. 1 A, decades) holding the current."""
    range_a = 10.0 ** np.clip(np.ceil(np.log10(max(abs(current_A), 1e-300))), -8, 0)
    return float(range_a * 1e-6)


def _agree(fast: float, full: float, what: str, dense: Callable[[], float] | None = None) -> None:
    """Within 1e-9 or a twentieth of the meter's resolution; else (currents so small
    that today's solve is itself rounding-dominated) at least as close to the dense MNA
    as today's solve, within a factor 4."""
    if abs(fast - full) <= max(1e-9 * abs(full), _resolution_A(full) / 20):
        return
    assert dense is not None, (what, fast, full)
    ref = dense()
    assert abs(fast - ref) <= 4 * abs(full - ref), (what, fast, full, ref)


def _dense_current(model: BoardModel, column: int, index: int) -> Callable[[], float]:
    """The dense MNA's current of fixed source ``index`` (excitation ``column``: 0 per
    volt of force only, 1 the board's sources only, 2 both)."""

    def current() -> float:
        netlist, excitation = model.network()
        v = excitation[:, 0] + excitation[:, 1] if column == 2 else excitation[:, column]
        return float(dense_mna(netlist, v)[1][index])

    return current


def _step(rng: np.random.Generator, models: list[BoardModel]) -> None:
    """One random operation, the same on every model."""
    rows, cols, k = SMALL.geometry.shape
    op = rng.integers(0, 10)
    if op < 5:
        r, c = int(rng.integers(rows)), int(rng.integers(cols))
        mask = int(rng.integers(0, 2**k)) if rng.random() < 0.5 else 1 << int(rng.integers(k))
        for m in models:
            m.set_cell_mask(r, c, mask)
    elif op < 8:
        mode = rng.choice(["cell", "cell", "mvm_adc", "mvm_smu"])
        if mode == "cell":
            routing = Routing(
                "cell", int(rng.integers(rows)), int(rng.integers(cols)), bool(rng.random() < 0.5)
            )
        elif mode == "mvm_smu":
            routing = Routing("mvm_smu", col=int(rng.integers(cols)))
        else:
            routing = Routing("mvm_adc")
        for m in models:
            m.set_routing(routing)
    elif op < 9:
        volts = rng.uniform(-0.1, 0.1, rows)
        for m in models:
            m.set_dac_all(volts)
    else:
        dt_s = float(rng.uniform(0.1, 2.0))
        for m in models:
            m.clock.advance(dt_s)  # element values move


@pytest.mark.parametrize("seed", [0])
def test_low_rank_readings_agree_with_a_factorisation_per_state(seed: int) -> None:
    rng = np.random.default_rng(seed)
    fast = BoardModel(SMALL, seed, low_rank_updates=True)
    full = BoardModel(SMALL, seed, low_rank_updates=False)
    fast.set_routing(Routing("cell", 0, 0))
    full.set_routing(Routing("cell", 0, 0))
    for _ in range(24):
        _step(rng, [fast, full])
        mode = full.routing.mode
        if mode in ("cell", "mvm_smu"):
            pf, pr = fast.smu_port(), full.smu_port()
            _agree(pf.current_A(1.0), pr.current_A(1.0), "I(1 V)", _dense_current(full, 2, 0))
            sign = -1.0 if mode == "mvm_smu" else 1.0  # the column flows INTO HI there
            i0 = _dense_current(full, 1, 0)
            _agree(pf.i0_A, pr.i0_A, "i0", lambda i0=i0, sign=sign: sign * i0())
            if pr.four_wire:
                assert pf.sensed_V(1.0) == pytest.approx(pr.sensed_V(1.0), rel=1e-9, abs=1e-15)
        if mode in ("mvm_adc", "mvm_smu"):
            cf, cr = fast.true_column_currents_A(), full.true_column_currents_A()
            n_front = 3 + SMALL.geometry.rows
            for c in np.flatnonzero(~np.isnan(cr)):
                tia = _dense_current(full, 1, n_front + int(c))
                _agree(cf[c], cr[c], f"column {c}", lambda tia=tia: -tia())
    # the sequence really exercised the low-rank path, with few factorisations
    assert fast.n_low_rank_updates >= 8
    assert fast.n_drift_updates >= 2  # value updates solved through the base
    assert fast.n_factorisations < full.n_factorisations


def test_one_by_one_sequence_on_the_default_board_needs_one_factorisation() -> None:
    """A one-by-one calibration's pattern (route a cell, close each branch alone, read)
    with the clock moving as the instrument would (element values move every second):
    one factorisation for the whole run, readings as accurate as a factorisation per
    state."""
    cfg = load_board_config("default")
    fast = BoardModel(cfg, 3, low_rank_updates=True)
    full = BoardModel(cfg, 3, low_rank_updates=False)
    for r, c in [(0, 1), (5, 2), (15, 15)]:
        for k in range(cfg.geometry.branches):
            for m in (fast, full):
                m.set_routing(Routing("cell", r, c))
                m.set_cell_mask(r, c, 1 << k)
            pf, pr = fast.smu_port(), full.smu_port()
            _agree(pf.g_S, pr.g_S, f"cell ({r},{c}) branch {k}", _dense_current(full, 0, 0))
            for m in (fast, full):
                m.clock.advance(0.1)
        for m in (fast, full):
            m.set_cell_mask(r, c, 0)
            m.clock.advance(30.0)  # the temperature walks: drifts up to ~1e-3 (leakage)
    # the first state, and at most one more where the drift outgrew max_drift: each
    # value update (every 1 s) is solved through the base (a DriftedBase)
    assert fast.n_factorisations <= 2
    assert fast.n_drift_updates >= 2


@pytest.mark.parametrize("eps", [1e-6, 1e-3, 0.2])
def test_drifted_base_solves_the_drifted_matrix(eps: float) -> None:
    """`DriftedBase` (every conductance moved by up to ``eps`` of its value, solved through
    the base's factorisation) against a factorisation of the drifted matrix itself."""
    rng = np.random.default_rng(7)
    n = 60
    a = rng.integers(0, n, 240)
    b = (a + rng.integers(1, n, 240)) % n
    net = Netlist.from_resistors(n, a, b, 10.0 ** rng.uniform(0, 9, 240), fixed_nodes=[0, 1])
    base = NodalSolver(net)
    free = ~base.fixed_group_flag[base.group_of[a]] & ~base.fixed_group_flag[base.group_of[b]]
    ia = base.index_in_class[base.group_of[a[free]]]
    ib = base.index_in_class[base.group_of[b[free]]]
    delta = net.conductance_S[free] * rng.uniform(-eps, eps, int(free.sum()))
    drifted = DriftedBase(base, ia, ib, delta, eps)
    rhs = rng.standard_normal((base.n_free, 3))
    x = drifted.solve_free(rhs)
    exact = spla.spsolve(drifted.a_ff, rhs)
    np.testing.assert_allclose(x, exact, rtol=1e-10, atol=1e-12 * np.abs(exact).max())
    # each term gains log10(1/eps) digits at least: few solves for small drifts
    assert drifted.solves <= {1e-6: 4, 1e-3: 7, 0.2: 30}[eps]


def test_a_value_update_solves_what_the_next_reading_needs_in_one_batch() -> None:
    """After a value update the columns and excitation the previous state used are solved
    in one batched drift series (`ZCache` warm start): one reading of the same cell costs
    one batch, and the same batch serves a mask change of that cell."""
    cfg = load_board_config("default")
    fast = BoardModel(cfg, 3, low_rank_updates=True)
    full = BoardModel(cfg, 3, low_rank_updates=False)
    for m in (fast, full):
        m.set_routing(Routing("cell", 2, 3))
        m.set_cell_mask(2, 3, 0b1)
        m.smu_port()  # the base state
        m.set_cell_mask(2, 3, 0b10)
        m.smu_port()  # a low-rank update of it
        m.clock.advance(1.5)  # element values move: a drift update
        m.set_cell_mask(2, 3, 0b100)
    pf, pr = fast.smu_port(), full.smu_port()
    _agree(pf.g_S, pr.g_S, "after the value update", _dense_current(full, 0, 0))
    cache = fast._solvers._cache  # the solve count is what is tested
    assert cache is not None
    assert fast.n_drift_updates == 1
    assert cache.solves == 1
    for m in (fast, full):
        m.set_cell_mask(2, 3, 0b1000)
    _agree(fast.smu_port().g_S, full.smu_port().g_S, "next mask", _dense_current(full, 0, 0))
    assert cache.solves == 1


@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_drifted_base_with_switched_conductances_solves_that_network(eps: float) -> None:
    """`DriftedBase` with `LowRankChanges` (conductances added, raised, lowered and removed
    between free nodes, as a switched cell or a moved routing switch) and every other
    conductance drifted: its matrix is that of the network rebuilt from scratch with those
    conductances, and its solves are that network's."""
    rng = np.random.default_rng(11)
    n = 80
    a = rng.integers(0, n, 320)
    b = (a + rng.integers(1, n, 320)) % n
    g = 10.0 ** rng.uniform(-6, 2, 320)
    net = Netlist.from_resistors(n, a, b, 1.0 / g, fixed_nodes=[0, 1])
    base = NodalSolver(net)
    grp = base.group_of
    free = ~base.fixed_group_flag[grp[a]] & ~base.fixed_group_flag[grp[b]] & (grp[a] != grp[b])
    idx = np.flatnonzero(free)
    switched = idx[:6]  # lowered, removed, raised (x 1e3: beyond any drift)
    new_g = g.copy()
    new_g[switched] = g[switched] * np.array([0.5, 0.0, 1e3, 0.0, 0.1, 2.0])
    drifted = idx[6:]
    new_g[drifted] = g[drifted] * (1.0 + rng.uniform(-eps, eps, drifted.size))
    added = (int(a[idx[0]]), int(b[idx[3]]), 7.0)  # a conductance the base does not have
    ia_d = base.index_in_class[grp[a[drifted]]]
    ib_d = base.index_in_class[grp[b[drifted]]]
    ia_s = base.index_in_class[grp[np.r_[a[switched], added[0]]]]
    ib_s = base.index_in_class[grp[np.r_[b[switched], added[1]]]]
    z = ZCache(base).columns(ia_s, ib_s)
    changes = LowRankChanges(z, ia_s, ib_s, np.r_[new_g[switched] - g[switched], added[2]])
    solver = DriftedBase(
        base, ia_d, ib_d, new_g[drifted] - g[drifted], eps * 1.0000001, changes=changes
    )
    keep = new_g > 0
    rebuilt = NodalSolver(
        Netlist(
            n_nodes=n,
            node_a=np.r_[net.node_a[keep], added[0]],
            node_b=np.r_[net.node_b[keep], added[1]],
            conductance_S=np.r_[new_g[keep], added[2]],
            short_a=net.short_a,
            short_b=net.short_b,
            fixed_nodes=net.fixed_nodes,
        )
    )
    assert np.array_equal(rebuilt.group_of, base.group_of)
    diff = (solver.a_ff - rebuilt.a_ff).toarray()
    assert np.abs(diff).max() <= 1e-12 * np.abs(rebuilt.a_ff.toarray()).max()
    rhs = rng.standard_normal((base.n_free, 3))
    x = solver.solve_free(rhs)
    exact = rebuilt.solve_free(rhs)
    np.testing.assert_allclose(x, exact, rtol=1e-9, atol=1e-11 * np.abs(exact).max())


def test_a_value_update_in_a_cell_routing_re_solves_the_excitation_and_the_cell_alone() -> None:
    """After a value update, the cell-routed state (its cell switched, its routing moved
    from the base's) is the reference of the next states: the update solves the excitation
    and the read cell's column only (one batch of two columns), not one per routing switch
    and switched cell, and the next masks of that cell cost nothing more."""
    cfg = load_board_config("default")
    fast = BoardModel(cfg, 5, low_rank_updates=True)
    full = BoardModel(cfg, 5, low_rank_updates=False)
    for m in (fast, full):
        m.set_routing(Routing("cell", 0, 1))
        m.set_cell_mask(0, 1, 0b11)
        m.smu_port()  # the base state
        m.set_cell_mask(0, 1, 0)
        m.set_routing(Routing("cell", 3, 6))  # four routing switches moved, two cells
        m.set_cell_mask(3, 6, 0b1)
        m.smu_port()
        m.clock.advance(1.5)  # a value update
    pf, pr = fast.smu_port(), full.smu_port()
    _agree(pf.g_S, pr.g_S, "after the value update", _dense_current(full, 0, 0))
    cache = fast._solvers._cache  # what it solved is what is tested
    assert cache is not None
    assert fast.n_drift_updates == 1
    assert (cache.solves, cache.columns_solved) == (1, 2)
    for k in range(1, cfg.geometry.branches):
        for m in (fast, full):
            m.set_cell_mask(3, 6, 1 << k)
        _agree(fast.smu_port().g_S, full.smu_port().g_S, f"mask {k}", _dense_current(full, 0, 0))
    assert (cache.solves, cache.columns_solved) == (1, 2)
    assert fast.n_factorisations == 1
    # The series start from the base's own solutions of the excitation and the cell's
    # column, solved once for the base's life: the next value update solves none of them
    # on the base, only the series' later terms.
    base_cache = fast._solvers._base_cache
    assert base_cache is not None
    base_solves = base_cache.solves
    for m in (fast, full):
        m.clock.advance(1.5)
        m.set_cell_mask(3, 6, 0b101)
    _agree(fast.smu_port().g_S, full.smu_port().g_S, "next update", _dense_current(full, 0, 0))
    assert fast.n_drift_updates == 2
    assert base_cache.solves == base_solves
    drifted = fast._solvers._cache.base
    assert isinstance(drifted, DriftedBase)
    # one pair of triangular solves: the drift's first-order term (two with the first
    # term solved too)
    assert drifted.solves == 1
