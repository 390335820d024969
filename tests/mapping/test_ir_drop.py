"""The host-side nodal model of the crossbar in MVM routing (labrss.mapping.ir_drop).

The model must be the simulator's own physics for the same network: a linear resistor
network solved exactly on both sides (sparse LU), so the two agree to rounding (1e-9
relative is ~1e4 times the double precision of a 64-node solve, far below anything a
reading resolves).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labrss.mapping.ir_drop import Wiring, fit_wiring, transfer_jacobian, transfer_matrix
from simulator.crossbar_network import CrossbarNodes, RoutingTopology, build_crossbar_netlist
from simulator.nodal import NodalSolver


def simulator_transfer(
    g: np.ndarray, seg: float, route_row: np.ndarray, route_col: np.ndarray
) -> np.ndarray:
    """The simulator's own solve of the board in MVM ADC routing, one row driven at a time."""
    rows, cols = g.shape
    net = build_crossbar_netlist(
        g,
        RoutingTopology("mvm_adc"),
        wire_segment_ohm=seg,
        route_row_ohm=route_row,
        route_col_ohm=route_col,
        lead_ohm=0.05,
    )
    solver = NodalSolver(net, 1e-12)
    nodes = CrossbarNodes(rows, cols)
    exc = np.zeros((nodes.fixed_nodes.size, rows))
    exc[3 + np.arange(rows), np.arange(rows)] = 1.0
    cur = solver.source_currents_A(solver.solve(exc))
    return np.asarray(-cur[3 + rows :, :].T)


@settings(max_examples=15)
@given(
    seed=st.integers(0, 2**31 - 1),
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    seg=st.floats(1e-3, 5.0),
    route=st.floats(1e-3, 5.0),
    fill=st.floats(0.0, 1.0),
)
def test_transfer_matches_the_simulators_solve(  # noqa: PLR0917 (hypothesis arguments)
    seed: int, rows: int, cols: int, seg: float, route: float, fill: float
) -> None:
    rng = np.random.default_rng(seed)
    g = np.where(rng.random((rows, cols)) < fill, rng.uniform(1e-5, 1e-3, (rows, cols)), 0.0)
    g += 1e-10  # open cells leak
    r_row = route * rng.uniform(0.5, 1.5, rows)
    r_col = route * rng.uniform(0.5, 1.5, cols)
    truth = simulator_transfer(g, seg, r_row, r_col)
    model = transfer_matrix(
        g,
        Wiring(
            row_entry_ohm=r_row + seg,
            col_exit_ohm=r_col + seg,
            row_segment_ohm=seg,
            col_segment_ohm=seg,
        ),
    )
    np.testing.assert_allclose(model, truth, rtol=1e-9, atol=1e-22)


def test_ideal_wires_give_the_cells_and_wires_only_lower_the_transfer() -> None:
    rng = np.random.default_rng(3)
    g = rng.uniform(1e-5, 3e-4, (8, 8))
    ideal = transfer_matrix(g, Wiring.uniform(8, 8, segment_ohm=0, entry_ohm=0, exit_ohm=0))
    # MIN_OHM (1 uohm) per wire: 1e-6 * 8 * 3e-4 * 8 ~ 2e-8 relative at most
    np.testing.assert_allclose(ideal, g, rtol=1e-7)
    wired = transfer_matrix(g, Wiring.uniform(8, 8, segment_ohm=0.5, entry_ohm=1, exit_ohm=1))
    assert (wired < g).all()


def test_jacobian_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    g = rng.uniform(1e-5, 3e-4, (5, 7))
    w = Wiring(
        row_entry_ohm=rng.uniform(0.5, 2, 5),
        col_exit_ohm=rng.uniform(0.5, 2, 7),
        row_segment_ohm=0.3,
        col_segment_ohm=0.6,
    )
    a, jac = transfer_jacobian(g, w)
    np.testing.assert_array_equal(a, transfer_matrix(g, w))
    p = w.parameters()
    for i in range(p.size):
        h = 1e-6
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        fd = (
            transfer_matrix(g, Wiring.from_parameters(up, 5, 7))
            - transfer_matrix(g, Wiring.from_parameters(down, 5, 7))
        ) / (2 * h)
        # central differences: truncation O(h^2) is negligible, rounding ~ eps |A| / h
        rounding = 100 * np.finfo(float).eps * np.abs(a).max() / h
        np.testing.assert_allclose(jac[:, :, i], fd, rtol=2e-5, atol=rounding)


def test_fit_recovers_the_wiring_from_noisy_transfers() -> None:
    rng = np.random.default_rng(7)
    rows, cols = 12, 12
    g = rng.uniform(1e-4, 3e-4, (rows, cols))
    true = Wiring(
        row_entry_ohm=rng.uniform(2.0, 3.0, rows),
        col_exit_ohm=rng.uniform(2.0, 3.0, cols),
        row_segment_ohm=0.8,
        col_segment_ohm=1.2,
    )
    noise = 1e-5  # SMU readings at NPLC 1
    meas = transfer_matrix(g, true) * (1 + noise * rng.standard_normal((rows, cols)))
    nominal = Wiring.uniform(rows, cols, segment_ohm=1.0, entry_ohm=2.5, exit_ohm=2.5)
    fit = fit_wiring(g, meas, nominal)
    assert fit.residual_rel_rms < 2 * noise < fit.residual_rel_rms_nominal
    est = fit.wiring
    # segments: 264 readings on one parameter each: within 3 of the fit's own sigma
    assert abs(est.row_segment_ohm - 0.8) < 3 * fit.std_ohm[-2] + 1e-3
    assert abs(est.col_segment_ohm - 1.2) < 3 * fit.std_ohm[-1] + 1e-3
    # the fit's sigmas cover the truth (3 sigma, every parameter)
    err = np.abs(est.parameters() - true.parameters())
    assert (err < 3 * fit.std_ohm + 1e-9).mean() > 0.95
    # and it predicts a different array: the IR drop (a few %) to within 2 % of itself,
    # 5x better than the nominal wiring (uniform arrays leave row entries and column
    # exits partly degenerate: what stays unresolved is what such arrays cannot tell)
    g2 = rng.uniform(1e-5, 3e-4, (rows, cols))
    a2 = transfer_matrix(g2, true)
    effect = np.abs(a2 / g2 - 1).max()
    rel = np.abs(transfer_matrix(g2, est) / a2 - 1).max()
    rel_nominal = np.abs(transfer_matrix(g2, nominal) / a2 - 1).max()
    assert effect > 0.01
    assert rel < 0.02 * effect
    assert rel < 0.2 * rel_nominal


def test_bad_input_names_the_value() -> None:
    w = Wiring.uniform(2, 2, segment_ohm=0.1, entry_ohm=0.1, exit_ohm=0.1)
    with pytest.raises(ValueError, match="wiring is for"):
        transfer_matrix(np.ones((3, 2)) * 1e-4, w)
    with pytest.raises(ValueError, match=r"row_entry_ohm\[1\]"):
        transfer_matrix(
            np.ones((2, 2)),
            Wiring(np.array([0.1, np.nan]), np.array([0.1, 0.1]), 0.1, 0.1),
        )
    with pytest.raises(ValueError, match="finite and >= 0"):
        transfer_matrix(np.array([[1e-4, -1.0], [0, 0]]), w)
