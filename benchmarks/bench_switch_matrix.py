"""The switch-matrix bench: what calibration, programming and an MVM by superposition give.

    python -m benchmarks.bench_switch_matrix [--seed 3] [--vectors 20]

The simulated Keysight 34980A with 34932A modules in front of the 4 x 4 x 8 passive array
(`[simulator] bench = "switch-matrix"`, docs/switch-matrix.md), through the
keysight34980a driver and `Lab` exactly as a station would run it, at the default settings
(NPLC 1, the one-by-one calibration). Figures, each against the simulator's truth:

* calibration: median relative error of the 128 element estimates, and whether every one
  is within 5 standard errors plus the meter's gain error (0.025 %) plus 1e-4 for the
  series path;
* the settling: a branch read with no wait after the relays moved vs with the layout's
  ``settle_time_s``, relative to the branch (the smallest element, 0.92 Mohm);
* the guarded read of a programmed array: every switch closed, each cell read through the
  matrix vs its own conductance (relative excess, largest over the cells);
* programming a 3-2 network (one 4 x 4 tile): misses, median verification error;
* an MVM by superposition of ``--vectors`` inputs: median relative L2 error vs the
  programmed network, SMU readings, relay closures and instrument time per vector.

Aims (`benchmarks.aims`) are the claims docs/switch-matrix.md makes. About 20 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.aims import Aims
from calibration.run import CalibrationRun
from calibration.settings import CalibrationSettings
from labrss.lab import Lab
from labrss.networks.model import Network
from labrss.station import parse_station
from labrss.store import Store
from labrss.workflows.mvm import MVMSettings, run_mvm
from labrss.workflows.program import program_network


def _closures(lab: Lab) -> int:
    wear = lab.switch_wear()
    assert wear is not None
    return sum(wear.counts.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--vectors", type=int, default=20)
    args = parser.parse_args(argv)
    aims = Aims("switch-matrix bench")
    station = parse_station({"simulator": {"bench": "switch-matrix", "seed": args.seed}})
    with (
        tempfile.TemporaryDirectory() as tmp,
        Store(Path(tmp) / "lab.db") as store,
        Lab(station) as lab,
    ):
        assert lab.simulator is not None
        sim = lab.simulator
        # ---------------------------------------------------------------- calibration
        t0 = time.perf_counter()
        instrument0 = lab.instrument_time_s
        result = CalibrationRun(lab, store, CalibrationSettings()).run()
        cal_wall = time.perf_counter() - t0
        with sim.lock:
            truth = sim.model.truth()
        cells = [(c.r, c.c) for c in result.cells]
        on = np.asarray(truth["branch_on_conductance_S"], float)
        off = 1.0 / (np.asarray(truth["resistance_ohm"], float) + np.asarray(truth["r_off_ohm"]))
        a_true = np.array([on[rc] - off[rc] for rc in cells])
        a, s = result.conductance_S(), result.std_S()
        err = np.abs(a - a_true)
        rel = float(np.median(err / a_true))
        print(
            f"calibration: {a.size} elements, {result.summary['readings']} readings, "
            f"{cal_wall:.1f} s wall, {lab.instrument_time_s - instrument0:.1f} s instrument"
        )
        aims.at_most(
            "calibration, median |error| / element (NPLC 1)",
            rel,
            3e-4,
            unit="",
            includes="128 elements of 15 k-0.92 Mohm, one-by-one design, vs the truth",
        )
        aims.holds(
            "calibration, every element within 5 sigma + 0.035 %",
            bool(np.all(err <= 3.5e-4 * a_true + 5 * s)),
            includes="meter gain error 0.025 % + series path 0.01 %",
        )
        # ---------------------------------------------------------------- settling
        lab.open_all()
        k = int(np.argmin(a_true[0]))  # the smallest element of cell (0, 0)
        declared = lab.board.settle_time_s
        settled = lab.measure_branch(0, 0, k).conductance_S
        lab.open_all()
        lab.board.settle_time_s = 0.0  # read at once after the relays moved
        hasty = lab.measure_branch(0, 0, k).conductance_S
        lab.board.settle_time_s = declared
        lab.open_all()
        again = lab.measure_branch(0, 0, k).conductance_S
        print(f"settling: branch (0,0,{k}) {settled:.6e} S settled, {hasty:.6e} S at once")
        aims.at_least(
            "settling, reading at once vs settled, relative",
            abs(hasty - settled) / settled,
            1e-3,
            unit="",
            includes=f"the smallest element; 2 nA decaying with tau 2 ms; {declared} s wait",
        )
        aims.at_most(
            "settling, settled readings repeat, relative",
            abs(again - settled) / settled,
            1e-4,
            unit="",
            includes="two settled readings of that element (noise and settling left)",
        )
        # ---------------------------------------------------------------- guarded read
        g = lab.geometry
        lab.set_masks(np.ones((g.rows, g.cols, g.branches), dtype=bool))
        excess = []
        for r in range(g.rows):
            for c in range(g.cols):
                reading = lab.measure_cell(r, c).conductance_S
                with sim.lock:
                    own = float(sim.model.true_cell_conductance_S()[r, c])
                excess.append((reading - own) / own)
        lab.open_all()
        worst = float(np.max(np.abs(excess)))
        print(f"guarded read, every switch closed: relative excess {np.median(excess):+.2e}")
        aims.at_most(
            "guarded read of a fully closed array, largest |excess|",
            worst,
            2e-3,
            unit="",
            includes="each cell read through the matrix vs its own conductance; meter included",
        )
        # ---------------------------------------------------------------- program
        rng = np.random.default_rng(0)
        net = Network([(rng.normal(size=(3, 2)), rng.normal(scale=0.3, size=2))], name="3-2")
        program = program_network(lab, store, net, rng.random((100, 3)))
        check = program.checks[0]
        ver = np.abs(check.measured_S - check.predicted_S)[check.programmed]
        ver_rel = float(np.median(ver / check.predicted_S[check.programmed]))
        aims.holds("program: no cell missed", program.cells_missed == 0)
        aims.at_most(
            "program: median |measured - predicted| / predicted",
            ver_rel,
            1e-3,
            unit="",
            includes="16 cells verified by superposition reads",
        )
        # ---------------------------------------------------------------- MVM
        closures0 = _closures(lab)
        readings0 = lab.readings_taken
        x = rng.random((args.vectors, 3))
        t0 = time.perf_counter()
        mvm = run_mvm(lab, store, program, x, settings=MVMSettings(path="superposition"))
        wall = time.perf_counter() - t0
        n = args.vectors
        per_vector = (lab.readings_taken - readings0) / n
        closures = (_closures(lab) - closures0) / n
        print(
            f"MVM by superposition: {n} vectors, {wall:.1f} s wall, "
            f"{mvm.instrument_time_s / n:.2f} s instrument per vector, "
            f"{per_vector:.1f} readings and {closures:.1f} relay closures per vector"
        )
        aims.at_most(
            "MVM by superposition, median relative L2 error vs programmed",
            mvm.vs_programmed.median_rel_l2,
            2e-3,
            unit="",
            includes=f"{n} random inputs; drift reference reads included",
        )
        aims.at_most(
            "MVM by superposition, SMU readings per vector",
            per_vector,
            2 * 4 * 4,
            unit="",
            includes="rows x columns, plus the batch's reference reads",
        )
        aims.at_most(
            "MVM by superposition, relay closures per vector",
            closures,
            64,
            unit="",
            includes="every crosspoint's DIAG:REL:CYCL? count, summed: routing changes",
        )
        aims.holds(
            "no unmodelled relay state in the whole run",
            getattr(sim.board, "unmodelled_states", 1) == 0,
        )
    return aims.finish()


if __name__ == "__main__":
    raise SystemExit(main())
