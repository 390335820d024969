"""Calibration: time and precision per element, and weighing designs against one-by-one.

    python -m benchmarks.bench_calibration [--nplc 1] [--cells 0-3,0-3]

Part 1, **the whole default board one-by-one** (16x16x8 = 2048 branches, seed 0, the
Keithley 2450 emulator, NPLC 1, 0.1 V with reversal: what `labrss calibrate` does by
default). Per element:

* wall time: what the run took on this machine (the simulator runs faster than real time,
  so it is mostly protocol round trips);
* **integration time**: NPLC / 50 Hz per reading, the figure labrss reports as instrument
  time (`Lab.instrument_time_s`); it counts only the SMU's aperture;
* **bench time**: the simulated bench's clock over the run, which adds what a real 2450
  and board spend besides the aperture: the autozero conversion and reading overhead of
  every reading, source delays, range changes (autorange), switch break-before-make and
  routing, board commands. This is the time a real bench would take;
* readings (the design's and the range links', which tie the current ranges together), and
  the median relative uncertainty of the conductance estimates: its statistical part (the
  meter's noise through the fit) and the combined standard uncertainty (the budget of
  docs/metrology.md, with the SMU's accuracy specification).

Part 2, **weighing versus one-by-one at equal readings** on ``--cells`` (16 cells), each
design on a fresh bench of the same seed, on a fixed 100 uA range and on autorange: the
median relative standard error x sqrt(readings per cell) (the per-reading figure), and the
same figure from the errors against the simulator's truth (root-median-square).

Aims (`benchmarks.aims`), the README's figures: part 1 statistical relative standard error
at most 2e-5 (1.2e-5 measured) and combined relative uncertainty at most 2e-4 (9.2e-5:
dominated by the 2450's 0.02 % accuracy specification), integration time at most 70 ms and
bench time at most 200 ms per element, wall time at most 25 ms per element (12-13 ms), no
fault found; part 2, weighing / one-by-one on a fixed range at most 0.8 in statistical
standard error (0.74 measured) and at most 0.75 in actual error against the truth (0.59;
the design's own factor is 0.43-0.65), and with autorange at least 1.5 and 1.2 (11.9 and
1.9: a ranged meter's noise scales with the range, so single branches read on small ranges
win).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.aims import Aims
from calibration.run import CalibrationResult, CalibrationRun
from calibration.settings import CalibrationSettings, parse_cells
from labrss.lab import Lab
from labrss.station import parse_station
from labrss.store import Store

FIXED_RANGE_A = 1e-4


def whole_board(nplc: float, workdir: Path) -> dict[str, float]:
    """Part 1: one-by-one over the default board; figures per element."""
    station = parse_station({"simulator": {"board": "default", "seed": 0}})
    with Lab(station) as lab, Store(workdir / "whole.db") as store:
        clock0 = lab.clock_s()
        result = CalibrationRun(lab, store, CalibrationSettings(design="single", nplc=nplc)).run()
        bench_s = lab.clock_s() - clock0
    s = result.summary
    elements = result.conductance_S().size
    return {
        "elements": float(elements),
        "readings_per_element": s["readings"] / elements,
        "wall_per_element_s": s["wall_time_per_element_s"],
        "integration_per_element_s": s["instrument_time_per_element_s"],
        "bench_per_element_s": bench_s / elements,
        "median_rel_se": s["median_relative_uncertainty_statistical"],
        "median_rel_u": s["median_relative_uncertainty"],
        "faults": float(s["faults"]),
    }


def _true_a_S(lab: Lab, result: CalibrationResult) -> np.ndarray:
    """Each calibrated branch's true on-minus-off conductance (S): the benchmark compares
    with the simulator's truth (labrss never does)."""
    assert lab.simulator is not None
    with lab.simulator.lock:
        truth = lab.simulator.model.truth()
    cells = [(c.r, c.c) for c in result.cells]
    on = np.asarray(truth["branch_on_conductance_S"])
    off = 1.0 / (np.asarray(truth["resistance_ohm"]) + np.asarray(truth["r_off_ohm"]))
    return np.array([on[rc] - off[rc] for rc in cells])


def designs(cells: str, nplc: float, fixed: bool, workdir: Path) -> dict[str, dict[str, float]]:
    """Part 2: per design, the per-reading relative SE and truth error."""
    measurement: dict[str, Any] = {"current_range_A": FIXED_RANGE_A} if fixed else {}
    station = parse_station(
        {"simulator": {"board": "default", "seed": 0}, "measurement": measurement}
    )
    out: dict[str, dict[str, float]] = {}
    for design in ("single", "weighing"):
        with Lab(station) as lab, Store(workdir / f"{design}-{fixed}.db") as store:
            settings = CalibrationSettings(cells=parse_cells(cells), design=design, nplc=nplc)
            result = CalibrationRun(lab, store, settings).run()
            a = result.conductance_S()
            se = np.array([c.components["statistical"] for c in result.cells if c.components])
            per_cell = result.cells[0].n_readings
            err = a / _true_a_S(lab, result) - 1.0
        out[design] = {
            "readings_per_cell": float(per_cell),
            "se": float(np.nanmedian(se / a) * np.sqrt(per_cell)),
            "err": float(np.sqrt(np.nanmedian(err**2)) * np.sqrt(per_cell)),
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nplc", type=float, default=1.0)
    parser.add_argument("--cells", default="0-3,0-3", help="part 2 cells, ROWS,COLS")
    args = parser.parse_args(argv)
    aims = Aims("bench_calibration")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        w = whole_board(args.nplc, work)
        print(
            f"1. one-by-one, whole default board ({w['elements']:.0f} branches), NPLC {args.nplc:g}"
        )
        print(
            f"   readings/element {w['readings_per_element']:.3g}; per element: wall "
            f"{w['wall_per_element_s'] * 1e3:.1f} ms, integration "
            f"{w['integration_per_element_s'] * 1e3:.1f} ms, bench clock "
            f"{w['bench_per_element_s'] * 1e3:.1f} ms; median rel. SE {w['median_rel_se']:.3g} "
            f"(statistical), {w['median_rel_u']:.3g} (combined); faults {w['faults']:.0f}"
        )
        ranges = {"fixed 100 uA": True, "autorange": False}
        ratios: dict[str, dict[str, float]] = {}
        print(f"2. weighing vs one-by-one at equal readings, cells {args.cells}")
        print(
            f"   {'range':<13} {'single SE/err':>16} {'weighing SE/err':>16} "
            f"{'ratio SE':>9} {'err':>6}"
        )
        for label, fixed in ranges.items():
            d = designs(args.cells, args.nplc, fixed, work)
            ratios[label] = {
                "se": d["weighing"]["se"] / d["single"]["se"],
                "err": d["weighing"]["err"] / d["single"]["err"],
            }
            print(
                f"   {label:<13} {d['single']['se']:>7.3g} / {d['single']['err']:<7.3g} "
                f"{d['weighing']['se']:>7.3g} / {d['weighing']['err']:<7.3g} "
                f"{ratios[label]['se']:>9.3g} {ratios[label]['err']:>6.3g}"
            )
    board = "default board 16x16x8, seed 0, 2450 emulator, NPLC 1, 0.1 V, reversal, autorange"
    aims.at_most(
        "one-by-one: median relative standard error (statistical)",
        w["median_rel_se"],
        2e-5,
        includes=board + "; the meter's noise through the fit",
    )
    aims.at_most(
        "one-by-one: median relative uncertainty (combined)",
        w["median_rel_u"],
        2e-4,
        includes="the uncertainty budget: statistical, the SMU's accuracy specification, "
        "range links, temperature (docs/metrology.md)",
    )
    aims.at_most(
        "one-by-one: integration time per element",
        w["integration_per_element_s"] * 1e3,
        70.0,
        unit="ms",
        includes=f"NPLC / 50 Hz per reading only (labrss's 'instrument time'), "
        f"{w['readings_per_element']:.3g} readings per element with the range links",
    )
    aims.at_most(
        "one-by-one: bench time per element",
        w["bench_per_element_s"] * 1e3,
        200.0,
        unit="ms",
        includes="the simulated bench's clock: aperture plus autozero and overhead per "
        "reading, source delay, range changes, switching and routing",
    )
    aims.at_most(
        "one-by-one: wall time per element",
        w["wall_per_element_s"] * 1e3,
        25.0,
        unit="ms",
        includes="this machine, simulator faster than real time: mostly protocol round trips",
    )
    aims.at_most("one-by-one: faults found on a board without faults", w["faults"], 0)
    aims.at_most(
        "weighing / one-by-one SE at equal readings, fixed 100 uA range",
        ratios["fixed 100 uA"]["se"],
        0.8,
        unit="x",
        includes=f"cells {args.cells}, median statistical rel. SE x sqrt(readings per cell)",
    )
    aims.at_most(
        "weighing / one-by-one actual error at equal readings, fixed 100 uA range",
        ratios["fixed 100 uA"]["err"],
        0.75,
        unit="x",
        includes="root-median-square error against the simulator's truth x sqrt(readings)",
    )
    aims.at_least(
        "weighing / one-by-one SE at equal readings, autorange",
        ratios["autorange"]["se"],
        1.5,
        unit="x",
    )
    aims.at_least(
        "weighing / one-by-one actual error at equal readings, autorange",
        ratios["autorange"]["err"],
        1.2,
        unit="x",
    )
    return aims.finish()


if __name__ == "__main__":
    raise SystemExit(main())
