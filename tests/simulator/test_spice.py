"""The board's nodal solve against ngspice: an independent check of the board physics.

`simulator.spice.board_netlist` writes the board at branch level (each element in series
with its switch, wires, routing switches, leads, sources, ammeters on the routed line);
ngspice solves it (``.op``) and its node voltages and SMU current are compared with the
simulator's (`BoardModel.solved_state`) on every preset in random switch, routing and DAC
states.

Tolerances: node voltages 1e-9 relative (plus 1e-15 V for nodes at 0 V); measured
agreement 8e-14 to 4e-12. The SMU current 1e-9 relative: ngspice's, the sum of the routed
line's ammeters (measured agreement ~1e-13). ngspice's current in the HI source itself
(``i(vhi)``) is a difference of two potentials near the force voltage across the 50 mohm
lead: any solver rounds it to ~1e-13 V / 50 mohm (1e-8 of a 20 uA reading, ngspice and a
dense MNA alike), so it is held to that: it checks the source's sign and wiring.

ngspice is a Debian package (`.ci/run` installs it); without it these tests skip, saying
so. Every preset (`PRESETS`), three random states each; the large presets as their
parameters on an 8 x 8 cut of their geometry (its full 64 x 64 x 16 netlist, ~140k
resistors, takes ngspice 15-60 s: `python -m benchmarks.bench_spice_check` checks it,
voltages and current, with the same aims).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from simulator.board_config import PRESETS, Geometry, load_board_config
from simulator.board_model import BoardModel, Routing
from simulator.spice import board_netlist, node_names, smu_current_A

NGSPICE = shutil.which("ngspice")
needs_ngspice = pytest.mark.skipif(
    NGSPICE is None,
    reason="ngspice is not installed: the SPICE cross-check of the nodal solver cannot run "
    "(Debian: apt-get install ngspice; .ci/run installs it)",
)


def run_ngspice(netlist: str, workdir: Path) -> dict[str, float]:
    """Operating point of ``netlist``: every vector ngspice writes (``v(node)``, ``i(vsrc)``)."""
    raw = workdir / "op.raw"
    deck = workdir / "board.cir"
    control = f".control\nset filetype=ascii\nop\nwrite {raw}\n.endc\n.end\n"
    deck.write_text(netlist.replace(".end\n", control), encoding="ascii")
    done = subprocess.run(
        [str(NGSPICE), "-b", str(deck)], capture_output=True, text=True, timeout=300, check=False
    )
    assert raw.exists(), f"ngspice wrote no result:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    lines = raw.read_text().splitlines()
    head, body = lines.index("Variables:"), lines.index("Values:")
    names = [line.split()[1] for line in lines[head + 1 : body]]
    values = [float(line.split()[-1]) for line in lines[body + 1 :] if line.strip()]
    return dict(zip(names, values, strict=True))


def _states(geo: Geometry, n: int, seed: int) -> list[tuple[np.ndarray, Routing, np.ndarray]]:
    """Random (switches, routing, DAC volts) states of a board of geometry ``geo``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        closed = rng.random(geo.shape) < rng.uniform(0.1, 0.6)
        r, c = int(rng.integers(geo.rows)), int(rng.integers(geo.cols))
        routing = [
            Routing("cell", r, c, four_wire=bool(rng.random() < 0.5)),
            Routing("mvm_smu", col=c),
            Routing("mvm_adc"),
        ][i % 3]
        out.append((closed, routing, rng.uniform(-0.2, 0.2, geo.rows)))
    return out


@needs_ngspice
@pytest.mark.parametrize("preset", PRESETS)
def test_nodal_solve_matches_ngspice(preset: str, tmp_path: Path) -> None:
    cfg = load_board_config(preset)
    if cfg.geometry.rows > 16:  # the large presets: their parameters on a cut (docstring)
        cfg = dataclasses.replace(
            cfg,
            geometry=Geometry(8, 8, cfg.geometry.branches),
            reference=dataclasses.replace(cfg.reference, row=7, col=7),  # its corner
        )
    model = BoardModel(cfg, seed=5)
    names = node_names(model.nodes)
    for closed, routing, dac in _states(cfg.geometry, 3, seed=len(preset)):
        model.set_switches(closed)
        model.set_routing(routing)
        if routing.mode != "cell":
            model.set_dac_all(np.clip(dac, -cfg.dac.range_V, cfg.dac.range_V))
        force_V = 0.3
        spice = run_ngspice(board_netlist(model, force_V), tmp_path)
        v_sim, i_sim = model.solved_state(force_V)
        v_spice = np.array([spice[f"v({name})"] for name in names])
        np.testing.assert_allclose(
            v_spice, v_sim, rtol=1e-9, atol=1e-15, err_msg=routing.describe()
        )
        if routing.mode in ("cell", "mvm_smu"):
            i_spice = smu_current_A(spice, routing.mode)
            assert i_spice == pytest.approx(i_sim, rel=1e-9, abs=0.0), routing.describe()
            i_lead = -spice["i(vhi)"]  # SPICE: current into the source's + node
            lead_rounding_A = 1e-13 / cfg.wiring.lead_ohm
            assert i_lead == pytest.approx(i_sim, rel=1e-9, abs=lead_rounding_A)


def test_netlist_lists_every_branch_and_source() -> None:
    """Structure (no ngspice needed): one element and one switch per live branch."""
    cfg = load_board_config("small")
    model = BoardModel(cfg, seed=2)
    model.set_cell_mask(1, 2, 0b101)
    model.set_routing(Routing("cell", 1, 2))
    text = board_netlist(model, 0.1)
    rows, cols, k = cfg.geometry.shape
    assert sum(line.startswith("RE") for line in text.splitlines()) == rows * cols * k
    assert sum(line.startswith("RS") for line in text.splitlines()) == rows * cols * k
    vals = model.element_values()
    on = float(vals.r_on_ohm[1, 2, 0])
    off = float(vals.r_off_ohm[1, 2, 1])
    assert f"RS1_2_0 b1_2_0 c1_2 {on!r}" in text
    assert f"RS1_2_1 b1_2_1 c1_2 {off!r}" in text
    assert "VHI hit 0 DC 0.1" in text
    assert text.endswith(".end\n")


@needs_ngspice
def test_smu_current_to_1e9_where_the_lead_current_rounds(tmp_path: Path) -> None:
    """A state whose HI-source current ngspice rounded to 8e-9 (the lead's cancellation,
    module docstring): the routed row's ammeters, with partial pivoting, agree to 1e-9."""
    cfg = load_board_config("default")
    model = BoardModel(cfg, seed=5)
    model.set_switches(np.random.default_rng(1).random(cfg.geometry.shape) < 0.4)
    model.set_routing(Routing("cell", 2, 3, four_wire=True))
    spice = run_ngspice(board_netlist(model, 0.3), tmp_path)
    _, i_sim = model.solved_state(0.3)
    assert smu_current_A(spice, "cell") == pytest.approx(i_sim, rel=1e-9, abs=0.0)
