"""A scripted calibration, end to end: both designs on the same cells, compared.

    python docs/examples/scripted_calibration.py                 # embedded simulator
    python docs/examples/scripted_calibration.py --cells 0-1,0-3 --nplc 1 --db /tmp/lab.db

1. Open the station (no ``--station``: the embedded simulator, default 16x16x8 board) and
   the store (``--db``; default: a temporary file).
2. Calibrate the cells one-by-one (``single``), then with the weighing design.
3. Print, per design: readings per element, wall time and instrument time per element, the
   median standard error, and the median standard error x sqrt(readings per cell): the
   per-reading figure that compares designs at equal numbers of readings; with
   ``--truth`` (simulator only) also the root-median-square relative error against the
   ground truth x sqrt(readings per cell), the same figure measured rather than reported.
4. Read the latest calibration back from the store, as the RSS solver would.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from calibration.run import CalibrationResult, CalibrationRun
from calibration.settings import CalibrationSettings, parse_cells
from labrss.lab import Lab
from labrss.station import default_station, load_station
from labrss.store import Store


def per_reading_se(result: CalibrationResult) -> float:
    """Median over elements of std_S / a x sqrt(readings per cell): relative, per reading."""
    a, s = result.conductance_S(), result.std_S()
    per_cell = result.cells[0].n_readings
    return float(np.nanmedian(s / a) * np.sqrt(per_cell))


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run both designs; print and return their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--station", help="station TOML file (default: the simulator)")
    parser.add_argument("--cells", default="0,0-1", help="ROWS,COLS (default 0,0-1)")
    parser.add_argument("--nplc", type=float, default=1.0)
    parser.add_argument("--db", help="database file (default: a temporary one)")
    parser.add_argument(
        "--truth",
        action="store_true",
        help="simulator only: also compare with the ground truth (RMS relative error)",
    )
    args = parser.parse_args(argv)
    station = load_station(args.station) if args.station else default_station()
    tmp = tempfile.TemporaryDirectory()
    db = Path(args.db) if args.db else Path(tmp.name) / "lab.db"
    figures: dict[str, dict[str, float]] = {}
    with Lab(station) as lab, Store(db) as store:
        for design in ("single", "weighing"):
            settings = CalibrationSettings(
                cells=parse_cells(args.cells), design=design, nplc=args.nplc
            )
            result = CalibrationRun(lab, store, settings).run()
            s = result.summary
            rms = float("nan")
            if args.truth and lab.simulator is not None:
                with lab.simulator.lock:
                    truth = lab.simulator.model.truth()
                cells = [(c.r, c.c) for c in result.cells]
                on = np.asarray(truth["branch_on_conductance_S"])
                off = 1.0 / (np.asarray(truth["resistance_ohm"]) + np.asarray(truth["r_off_ohm"]))
                a_true = np.array([on[rc] - off[rc] for rc in cells])
                err = result.conductance_S() / a_true - 1.0
                per_cell = result.cells[0].n_readings
                rms = float(np.sqrt(np.median(err**2)) * np.sqrt(per_cell))
            figures[design] = {
                "run_id": result.run_id,
                "readings_per_element": s["readings_per_element"],
                "wall_time_per_element_s": s["wall_time_per_element_s"],
                "instrument_time_per_element_s": s["instrument_time_per_element_s"],
                "median_relative_uncertainty": s["median_relative_uncertainty"],
                "per_reading_relative_se": per_reading_se(result),
                "faults": s["faults"],
                "per_reading_truth_error": rms,
            }
        board_id = store.run(figures["single"]["run_id"]).board_id  # type: ignore[arg-type]
        latest = store.latest_calibration(board_id)
        print(
            f"latest calibration of board {board_id}: run {latest.run_id}, "
            f"{int(latest.measured.sum())} cells measured"
        )
    tmp.cleanup()
    print(
        f"{'design':<10} {'rd/elem':>8} {'wall/elem':>10} {'instr/elem':>11} "
        f"{'med rel SE':>11} {'SE x sqrt(M)':>13} {'err x sqrt(M)':>14}"
    )
    for design, f in figures.items():
        print(
            f"{design:<10} {f['readings_per_element']:>8.3g} "
            f"{f['wall_time_per_element_s']:>9.3g}s {f['instrument_time_per_element_s']:>10.3g}s "
            f"{f['median_relative_uncertainty']:>11.3g} {f['per_reading_relative_se']:>13.3g} "
            f"{f['per_reading_truth_error']:>14.3g}"
        )
    ratio = (
        figures["weighing"]["per_reading_relative_se"]
        / figures["single"]["per_reading_relative_se"]
    )
    print(f"weighing / single, standard error at equal readings: {ratio:.3g}")
    return figures


if __name__ == "__main__":
    main()
