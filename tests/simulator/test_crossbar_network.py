"""The crossbar netlist in every routing mode: the model's answers against a dense MNA."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.board_config import BoardConfig, Geometry
from simulator.board_model import BoardModel, Routing
from simulator.crossbar_network import CrossbarNodes
from tests.simulator.mna_reference import dense_mna


def test_node_numbering_is_a_bijection() -> None:
    nodes = CrossbarNodes(3, 5)
    rr, cc = np.meshgrid(np.arange(3), np.arange(5), indexing="ij")
    numbered = np.concatenate(
        [
            nodes.row(rr, cc).ravel(),
            nodes.col(rr, cc).ravel(),
            nodes.row_edge(np.arange(3)),
            nodes.col_edge(np.arange(5)),
            [nodes.hi_conn, nodes.lo_conn, nodes.guard_conn],
            nodes.fixed_nodes,
        ]
    )
    assert sorted(numbered.tolist()) == list(range(nodes.n_nodes))


ROUTINGS = st.one_of(
    st.builds(
        lambda r, c, w: Routing("cell", r, c, four_wire=w),
        st.integers(0, 2),
        st.integers(0, 3),
        st.booleans(),
    ),
    st.just(Routing("mvm_adc")),
    st.builds(lambda c: Routing("mvm_smu", col=c), st.integers(0, 3)),
)


@given(
    seed=st.integers(0, 2**16),
    routing=ROUTINGS,
    wire_ohm=st.sampled_from([0.0, 0.01, 3.0]),
    lead_ohm=st.sampled_from([0.0, 0.05]),
    density=st.floats(0.0, 1.0),
)
def test_port_and_columns_match_dense_mna(
    seed: int, routing: Routing, wire_ohm: float, lead_ohm: float, density: float
) -> None:
    cfg = BoardConfig(Geometry(3, 4, 2)).replace(
        wiring={"wire_segment_ohm": wire_ohm, "lead_ohm": lead_ohm}
    )
    model = BoardModel(cfg, seed)
    rng = np.random.default_rng(seed)
    model.set_switches(rng.random(cfg.geometry.shape) < density)
    model.set_dac_all(rng.uniform(-1, 1, 3))
    model.set_routing(routing)
    netlist, excitation = model.network()
    nodes = model.nodes
    _, i_own = dense_mna(netlist, excitation[:, 1])
    v_both, i_both = dense_mna(netlist, excitation[:, 0] + excitation[:, 1])
    port = model.smu_port()
    # Dense and sparse agree to rounding: a relative 1e-9 of the largest source current,
    # plus an absolute floor for currents that cross the stiffest element (g_max, up to
    # 100 S for a 0.01 ohm wire): potentials carry ~1e-16 V per volt of rounding, times
    # g_max (600 random boards of this size showed at most 1.1e-15 * g_max; 100x margin).
    g_max = netlist.conductance_S.max()
    tol = 1e-9 * np.abs(i_both).max() + 1e-13 * g_max
    assert abs(port.i0_A - i_own[0]) <= tol
    assert abs(port.current_A(1.0) - i_both[0]) <= tol
    if routing.four_wire:
        assert routing.row is not None and routing.col is not None
        v_sense = v_both[nodes.row_edge(routing.row)] - v_both[nodes.col_edge(routing.col)]
        assert port.sensed_V(1.0) == pytest.approx(v_sense, abs=1e-9)
    if routing.mode in ("mvm_adc", "mvm_smu"):
        currents = model.true_column_currents_A()
        expected = -i_own[3 + 3 :]
        on_tia = ~np.isnan(currents)
        assert on_tia.sum() == (4 if routing.mode == "mvm_adc" else 3)
        np.testing.assert_allclose(currents[on_tia], expected[on_tia], rtol=0, atol=tol)
    else:
        with pytest.raises(RuntimeError):
            model.true_column_currents_A()
