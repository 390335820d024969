"""The board as a SPICE netlist, for an independent check of the nodal solver (ngspice).

`board_netlist(model, force_V)` writes the network the `BoardModel` solves in its current
switch, routing and DAC state, at branch level: every branch is its element (resistor or
memristor at its true value now) in series with its switch (on-resistance when
effectively closed, off-resistance when open: the leakage), the branches of a cell in
parallel between its row and column line; the wire segments, the routing switches, the
SMU leads; ideal sources for the SMU terminals (HI and GUARD at ``force_V``, LO at 0 V),
the DAC outputs (true values: gain and offset errors) and the TIA inputs (their offsets),
each against SPICE ground ``0``. Parts with no path to a source get the simulator's
``float_conductance_S`` to ground; zero-ohm links are 0 V sources. The simulator merges
each cell's branches into one conductance; SPICE sees them one by one, so the two agree
only if the physics does.

Node names: ``r<R>_<C>`` (row line r at column c), ``c<R>_<C>`` (column line c at row r),
``re<R>`` / ``ce<C>`` (line edges), ``hic``/``loc``/``guc`` (SMU connectors), ``hit``/
``lot``/``gut`` (SMU terminals), ``dac<R>``, ``tia<C>``, ``b<R>_<C>_<K>`` (between a
branch's element and its switch), ``a<R>_<C>_<K>`` (between a metered branch's ammeter
and its element).

The SMU current is the current of source ``VHI`` (SPICE: into its + node from the
circuit, so the current the SMU pushes is ``-i(vhi)``). That current is the difference
of two potentials near the force voltage across the 50 mohm lead: any solver rounds it to
~(1e-13 V / 50 mohm), 1e-8 relative on a 20 uA reading (ngspice and a dense MNA alike).
So every branch of the line HI is routed to (the routed row in cell routing, the routed
column in MVM SMU routing) carries an ammeter, a 0 V source ``VM<R>_<C>_<K>`` from the
line into the branch: by Kirchhoff's current law the SMU current is their sum (cell
routing: ``sum i(vm...)``; MVM SMU routing: ``-sum i(vm...)``), each the read voltage
across an element, which keeps every digit (how `BoardModel` computes it too). Up to
`PARTIAL_PIVOTING_MAX_BRANCHES` branches the netlist sets ``.options pivrel=1``: ngspice's
default threshold pivoting left the ammeters at ~2e-9, partial pivoting at ~1e-13. On
the large board (65,536 branches) its fill-in took ngspice from 9 s of CPU to more than
3 minutes, so that netlist keeps the default (its SMU current agreed to 8e-10 there).

    labrss sim --board large --netlist board.cir    # then: ngspice -b board.cir
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from simulator.board_model import BoardModel
from simulator.crossbar_network import CrossbarNodes
from simulator.nodal import NodalSolver

FloatArray = npt.NDArray[np.float64]


def node_names(nodes: CrossbarNodes) -> list[str]:
    """SPICE name of every node of the simulator's numbering (`CrossbarNodes`)."""
    rows, cols = nodes.rows, nodes.cols
    names = [""] * nodes.n_nodes
    for r in range(rows):
        for c in range(cols):
            names[int(nodes.row(r, c))] = f"r{r}_{c}"
            names[int(nodes.col(r, c))] = f"c{r}_{c}"
    for r in range(rows):
        names[int(nodes.row_edge(r))] = f"re{r}"
        names[int(nodes.dac(r))] = f"dac{r}"
    for c in range(cols):
        names[int(nodes.col_edge(c))] = f"ce{c}"
        names[int(nodes.tia(c))] = f"tia{c}"
    for attr, name in (
        ("hi_conn", "hic"),
        ("lo_conn", "loc"),
        ("guard_conn", "guc"),
        ("hi_term", "hit"),
        ("lo_term", "lot"),
        ("guard_term", "gut"),
    ):
        names[int(getattr(nodes, attr))] = name
    return names


PARTIAL_PIVOTING_MAX_BRANCHES = 16_384
"""Boards up to this many branches get ``.options pivrel=1`` (module docstring)."""


def _lines(model: BoardModel, force_V: float) -> Iterator[str]:
    nodes = model.nodes
    names = node_names(nodes)
    netlist, excitation = model.network()
    vals = model.element_values()
    closed = model.effective_switches()
    rows, cols, branches = model.geometry.shape
    yield f"* labrss board {model.config.name} seed {model.seed}: {model.routing.describe()}"
    yield f"* virtual time {vals.time_s!r} s, board at {vals.temperature_C!r} degC"
    yield f"* SMU force {force_V!r} V; branch = element + switch (on or off resistance)"
    # cells, branch by branch (the simulator's cell conductance is their parallel sum);
    # the branches of the line HI is routed to get an ammeter (0 V source) in series
    routing = model.routing
    for r in range(rows):
        for c in range(cols):
            metered = (routing.mode == "cell" and r == routing.row) or (
                routing.mode == "mvm_smu" and c == routing.col
            )
            for k in range(branches):
                r_el = float(vals.resistance_ohm[r, c, k])
                if not np.isfinite(r_el):
                    continue  # an open element: no branch
                sw = vals.r_on_ohm[r, c, k] if closed[r, c, k] else vals.r_off_ohm[r, c, k]
                mid = f"b{r}_{c}_{k}"
                start = f"r{r}_{c}"
                if metered:
                    start = f"a{r}_{c}_{k}"
                    yield f"VM{r}_{c}_{k} r{r}_{c} {start} DC 0"
                yield f"RE{r}_{c}_{k} {start} {mid} {r_el!r}"
                yield f"RS{r}_{c}_{k} {mid} c{r}_{c} {float(sw)!r}"
    # wires, routing switches, leads: every non-cell conductance of the solved netlist
    cell_pairs = {
        (int(nodes.row(r, c)), int(nodes.col(r, c))) for r in range(rows) for c in range(cols)
    }
    for i, (a, b, g) in enumerate(
        zip(
            netlist.node_a.tolist(),
            netlist.node_b.tolist(),
            netlist.conductance_S.tolist(),
            strict=True,
        )
    ):
        if (a, b) in cell_pairs:
            continue
        yield f"RW{i} {names[a]} {names[b]} {1.0 / g!r}"
    for i, (a, b) in enumerate(
        zip(netlist.short_a.tolist(), netlist.short_b.tolist(), strict=True)
    ):
        yield f"VZ{i} {names[a]} {names[b]} DC 0"
    # parts with no path to a source: the simulator's tiny conductance to 0 V
    solver = NodalSolver(netlist, model.config.wiring.float_conductance_S)
    float_r = 1.0 / model.config.wiring.float_conductance_S
    floating = set(solver.floating_groups.tolist())
    for n in range(nodes.n_nodes):
        if int(solver.group_of[n]) in floating:
            yield f"RF{n} {names[n]} 0 {float_r!r}"
    # ngspice's sparse LU pivots only when the diagonal falls below 1e-3 of its column's
    # largest entry (pivrel, a sparsity trade-off): across nine decades of conductance
    # that cost the ammeters' currents ~2e-9; partial pivoting keeps them to ~1e-13, but
    # its fill-in on the large board (65,536 branches) took ngspice from 9 s to minutes
    if rows * cols * branches <= PARTIAL_PIVOTING_MAX_BRANCHES:
        yield ".options pivrel=1"
    else:
        yield "* ngspice's default pivoting (pivrel=1 costs minutes at this size)"
    # sources: HI, LO, GUARD, DACs, TIAs
    v = excitation[:, 0] * force_V + excitation[:, 1]
    labels = ["VHI", "VLO", "VGU"] + [f"VDAC{r}" for r in range(rows)]
    labels += [f"VTIA{c}" for c in range(cols)]
    for label, node, volts in zip(labels, netlist.fixed_nodes.tolist(), v.tolist(), strict=True):
        yield f"{label} {names[node]} 0 DC {volts!r}"


def smu_current_A(vectors: dict[str, float], routing_mode: str) -> float:
    """The SMU current (A, pushed into the board by HI) from ngspice's operating point
    ``vectors`` (``{"i(vm0_1_2)": ..., ...}``) of a `board_netlist`: the sum of the
    routed line's ammeters (module docstring). NaN unless routed in cell or MVM SMU."""
    total = sum(v for name, v in vectors.items() if name.lower().startswith("i(vm"))
    if routing_mode == "cell":
        return float(total)
    if routing_mode == "mvm_smu":
        return float(-total)
    return math.nan


def board_netlist(model: BoardModel, force_V: float = 1.0) -> str:
    """The SPICE netlist (text) of ``model`` in its current state, SMU forcing ``force_V``."""
    body = "\n".join(_lines(model, float(force_V)))
    return f"{body}\n.end\n"


def write_board_netlist(model: BoardModel, path: str | Path, force_V: float = 1.0) -> Path:
    """Write `board_netlist` to ``path``; returns the path."""
    out = Path(path)
    out.write_text(board_netlist(model, force_V), encoding="ascii")
    return out
