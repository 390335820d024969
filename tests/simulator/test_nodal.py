"""The sparse nodal solver against hand results and an independent dense MNA."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.nodal import Netlist, NodalSolver
from tests.simulator.mna_reference import dense_mna


def test_divider_matches_ohms_law() -> None:
    # 0 --1k-- 1 --3k-- 2, node 0 at 4 V, node 2 at 0 V: node 1 at 3 V, 1 mA.
    net = Netlist.from_resistors(3, [0, 1], [1, 2], [1e3, 3e3], fixed_nodes=[0, 2])
    solver = NodalSolver(net)
    sol = solver.solve([4.0, 0.0])
    assert sol.potentials_V == pytest.approx([4.0, 3.0, 0.0], rel=1e-14)
    assert solver.source_currents_A(sol) == pytest.approx([1e-3, -1e-3], rel=1e-12)


def test_zero_ohm_links_merge_nodes_exactly() -> None:
    # A 0-ohm wire in series with 1 kohm: the wire carries the full 1 mA with 0 V across.
    net = Netlist.from_resistors(3, [0, 1], [1, 2], [0.0, 1e3], fixed_nodes=[0, 2])
    solver = NodalSolver(net)
    sol = solver.solve([1.0, 0.0])
    assert sol.potentials_V[1] == 1.0
    assert solver.source_currents_A(sol)[0] == pytest.approx(1e-3, rel=1e-14)


def test_superposition_columns_are_independent_excitations() -> None:
    net = Netlist.from_resistors(3, [0, 1], [1, 2], [2e3, 2e3], fixed_nodes=[0, 2])
    sol = NodalSolver(net).solve(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert sol.potentials_V[1] == pytest.approx([0.5, 0.5], rel=1e-14)


def test_floating_part_settles_at_zero_and_is_reported() -> None:
    # Nodes 2-3 have no path to a source: without the tiny shunt the matrix is singular.
    net = Netlist.from_resistors(4, [0, 2], [1, 3], [1e3, 1e3], fixed_nodes=[0])
    solver = NodalSolver(net, float_conductance_S=1e-12)
    sol = solver.solve([5.0])
    assert sol.potentials_V.tolist() == [5.0, 5.0, 0.0, 0.0]
    assert sorted(solver.group_of[solver.floating_groups].tolist()) == sorted(
        solver.group_of[[2, 3]].tolist()
    )


def test_two_sources_shorted_at_different_potentials_is_an_error() -> None:
    net = Netlist.from_resistors(2, [0], [1], [0.0], fixed_nodes=[0, 1])
    solver = NodalSolver(net)
    solver.solve([1.0, 1.0])  # equal potentials: consistent
    with pytest.raises(ValueError, match="zero-resistance path"):
        solver.solve([1.0, 0.0])


def test_bad_netlists_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="node_b"):
        Netlist.from_resistors(2, [0], [5], [1.0], fixed_nodes=[0])
    with pytest.raises(ValueError, match="resistances"):
        Netlist.from_resistors(2, [0], [1], [-1.0], fixed_nodes=[0])


@st.composite
def random_networks(draw: st.DrawFn) -> tuple[Netlist, np.ndarray]:
    """A random connected network: a spanning chain plus extra resistors, shorts, sources."""
    n = draw(st.integers(3, 14))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    a = list(perm[:-1])
    b = list(perm[1:])
    n_extra = int(rng.integers(0, 2 * n))
    a += list(rng.integers(0, n, n_extra))
    b += list(rng.integers(0, n, n_extra))
    # Resistances over 9 decades (wire to leakage scale), some exactly 0 (shorts).
    r = 10.0 ** rng.uniform(-2, 7, len(a))
    n_fixed = int(rng.integers(1, 4))
    fixed = rng.choice(n, n_fixed, replace=False)
    # Shorts only where the dense MNA stays regular: no loop of shorts, no short between
    # two sources (both are singular in MNA, as in SPICE).
    comp = list(range(n))
    has_source = [i in set(fixed.tolist()) for i in range(n)]

    def root(i: int) -> int:
        while comp[i] != i:
            i = comp[i]
        return i

    for e in np.flatnonzero(rng.random(len(a)) < 0.15):
        ra, rb = root(int(a[e])), root(int(b[e]))
        if ra != rb and not (has_source[ra] and has_source[rb]):
            comp[ra] = rb
            has_source[rb] = has_source[ra] or has_source[rb]
            r[e] = 0.0
    keep = np.asarray(a) != np.asarray(b)
    net = Netlist.from_resistors(n, np.asarray(a)[keep], np.asarray(b)[keep], r[keep], fixed)
    return net, rng.uniform(-1, 1, n_fixed)


@given(random_networks())
def test_sparse_solve_matches_dense_mna(case: tuple[Netlist, np.ndarray]) -> None:
    net, v_src = case
    solver = NodalSolver(net)
    # Shorts may join two sources; give them one potential (the solver demands it).
    v = v_src.copy()
    groups = solver.group_of[net.fixed_nodes]
    for g in np.unique(groups):
        v[groups == g] = v[groups == g][0]
    sol = solver.solve(v)
    v_ref, i_ref = dense_mna(net, v)
    # Potentials are bounded by the sources (|V| <= 1): compare absolutely at 1e-9 V.
    # Double precision and a condition number up to ~1e9 (9 decades of resistance) leave
    # about 1e-16 * 1e9 = 1e-7 relative in the worst case; 1e-9 V holds with margin here
    # because the errors scale with the *ratio* of conductances meeting at one node.
    assert np.max(np.abs(sol.potentials_V - v_ref)) < 1e-9
    # Source currents (sum per group: the dense MNA splits a group's current arbitrarily).
    i_sparse = solver.source_currents_A(sol)
    for g in np.unique(groups):
        sel = groups == g
        scale = max(np.abs(i_ref[sel]).max(), np.abs(net.conductance_S).max() * 1e-6)
        assert abs(i_sparse[sel].sum() - i_ref[sel].sum()) <= 1e-7 * scale


def test_process_that_factorised_exits_with_status_0(tmp_path: Path) -> None:
    """A process that factorised on the SuperLU thread exits cleanly: the thread still
    waiting at interpreter finalisation made it print "Exception ignored ... TypeError"
    and exit with status 120 after completing (`simulator.nodal._drain_at_exit`)."""
    script = tmp_path / "factorise.py"
    script.write_text(
        "import numpy as np\n"
        "from simulator.nodal import Netlist, NodalSolver\n"
        "net = Netlist.from_resistors(3, np.array([0, 1]), np.array([1, 2]),\n"
        "                             np.array([1.0, 2.0]), np.array([0]))\n"
        "solver = NodalSolver(net)\n"
        "print(solver.solve([1.0]).potentials_V)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Exception ignored" not in done.stderr
    assert done.stdout.strip() == "[1. 1. 1.]"
