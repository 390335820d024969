"""Temperature-compensated subsets through the thermal stage (docs/temperature.md).

    python -m benchmarks.bench_temperature            # thin- and thick-film, 16 cells each
    python -m benchmarks.bench_temperature --quick    # 6 cells each (a smoke run)

For each preset (``thinfilm``: TCR class +-25 ppm/K; ``thickfilm``: +-100 ppm/K; 24
elements per cell), on the embedded simulator with a simulated Lake Shore 336 stage, as a
user would:

1. ``labrss calibrate --temperatures 15,25,35`` on the cells (the workflow): each
   element's TCR with its uncertainty;
2. one random target per cell (30-70 % of the bank's range) realised over the span
   15..35 degC (`realise`, ``temperature_range_C``): the compensated mask, and the plain
   mask (best at 25 degC) for the same target at equal n;
3. the stage goes to 15, 20, 25, 30 and 35 degC (stability criterion of the station);
   at each, every cell is programmed with each of its two masks in turn and read through
   the SMU (8 +V/-V pairs at NPLC 10), and the simulator's true bank conductance is taken
   alongside (benchmarks may read the truth; labrss does not). The series path is removed
   with r_s measured there and then (`labrss.workflows.series_path`: additivity of the
   compensated mask, the rest of the bank and both together on one current range, 16
   pairs at 0.5 V), and, for comparison, with the calibration's r_s.

**The part subset choice can reach.** A TCR common to every element (and the meter's or
calibration's common scale) moves every cell alike: it cancels in every ratio (network
weights, reference reads) and no subset cancels it. So errors are taken after dividing out
one common factor per temperature, the median of measured / target over all cells and both
masks: ``e = G / (k(T) target) - 1``. The worst |e| over the five temperatures is each
cell's figure. Reported (and aimed at): the median worst error of plain and compensated
masks, measured and true, and their ratio. Aims (the issue's): >= 3x against the truth
and >= 3x through the SMU with the series path measured in situ, on the worst error and
on the change from 25 degC. With the calibration's r_s (one value per cell, ~0.017 ohm
standard uncertainty: ~10 ppm of a 0.6 mS bank, constant over temperature) the reads
carry a per-cell offset that the compensated cells' few-ppm drift sits on; it is printed
for comparison, not aimed at. The predicted worst error's k = 2 bound
(``worst_*_bound_S``) must hold the true worst error of >= 90 % of the masks. Also: the
fraction of
compensated cells within the tolerance (aim: every cell within ``TOLERANCE`` of its
preset), and the cost of compensation at 25 degC (median |e| at the reference
temperature, plain vs compensated; aim: compensated within the tolerance there too).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.aims import Aims
from calibration.settings import CalibrationSettings, parse_cells
from labrss.lab import Lab
from labrss.lab.stage import go_to_temperature
from labrss.station.config import parse_station
from labrss.store import Store
from labrss.workflows.realise import RealiseSettings, Target, realise
from labrss.workflows.series_path import measure_series_path
from labrss.workflows.thermal_calibration import (
    ThermalCalibrationSettings,
    run_thermal_calibration,
)

SPAN_C = (15.0, 35.0)
CAL_TEMPS_C = (15.0, 25.0, 35.0)
READ_TEMPS_C = (15.0, 20.0, 25.0, 30.0, 35.0)
REFERENCE_C = 25.0
TOLERANCE = {"thinfilm": 20e-6, "thickfilm": 50e-6}
"""Each preset's target tolerance over the span (relative, ratio part)."""
PAIRS = 8
READ_NPLC = 10.0
"""Verification reads: 8 +V/-V pairs at NPLC 10 (a ppm-level claim needs the averaging)."""
SEED = 11
SERIES_VOLTAGE_V = 0.5
SERIES_PAIRS = 16
"""In-situ series path: 16 pairs at 0.5 V on one range (~0.002 ohm, ~1 ppm of the bank)."""


@dataclass
class PresetResult:
    preset: str
    cells: int
    common_ppm_per_K: float
    spread_ppm_per_K: float
    worst_plain_meas: np.ndarray
    worst_comp_meas: np.ndarray
    var_plain_meas: np.ndarray
    var_comp_meas: np.ndarray
    worst_plain_cal: np.ndarray
    worst_comp_cal: np.ndarray
    worst_plain_true: np.ndarray
    worst_comp_true: np.ndarray
    ref_plain_true: np.ndarray
    ref_comp_true: np.ndarray
    ref_plain_meas: np.ndarray
    ref_comp_meas: np.ndarray
    predicted_comp: np.ndarray
    bound_comp: np.ndarray
    bound_plain: np.ndarray
    u_series_ohm: float
    wall_s: float


def _read(lab: Lab, r: int, c: int) -> float:
    """The cell's conductance through its series path by +V/-V pairs (S)."""
    v = lab.station.measurement.read_voltage_V
    ys = []
    for _ in range(PAIRS):
        plus = lab.measure_cell(r, c, read_voltage_V=abs(v), nplc=READ_NPLC)
        minus = lab.measure_cell(r, c, read_voltage_V=-abs(v), nplc=READ_NPLC)
        ys.append((plus.current_A - minus.current_A) / (plus.voltage_V - minus.voltage_V))
    return float(np.mean(ys))


def _ratio_errors(g: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(T, cells, 2) conductances -> relative errors after one common factor per T."""
    rel = g / target[None, :, None]
    k = np.median(rel.reshape(rel.shape[0], -1), axis=1)
    return rel / k[:, None, None] - 1.0


def run_preset(preset: str, cells_text: str, workdir: Path) -> PresetResult:
    t0 = time.perf_counter()
    station = parse_station(
        {
            "simulator": {"board": preset, "seed": SEED},
            "thermal": {"min_C": 10.0, "max_C": 45.0},
        }
    )
    db = workdir / f"{preset}.db"
    cal = run_thermal_calibration(
        ThermalCalibrationSettings(CAL_TEMPS_C, CalibrationSettings(cells=parse_cells(cells_text))),
        station=station,
        db_path=db,
    )
    assert cal.fit is not None and cal.common is not None
    rng = np.random.default_rng(SEED)
    cells = list(cal.cells)
    totals = np.nansum(cal.fit.conductance_S, axis=1)
    target = totals * rng.uniform(0.3, 0.7, len(cells))
    targets = [
        Target(r, c, float(t), "conductance") for (r, c), t in zip(cells, target, strict=True)
    ]
    n_t = len(READ_TEMPS_C)
    meas = np.zeros((n_t, len(cells), 2))
    meas_cal = np.zeros((n_t, len(cells), 2))
    true = np.zeros((n_t, len(cells), 2))
    u_rs: list[float] = []
    with Store(db) as store, Lab(station) as lab:
        result = realise(
            lab, store, targets, RealiseSettings(temperature_range_C=SPAN_C, verify=False)
        )
        infos = [cell.temperature for cell in result.cells]
        assert all(info is not None for info in infos)
        masks = [(int(i["plain_mask"]), int(i["compensated_mask"])) for i in infos if i]
        predicted = np.array([i["worst_compensated_S"] / i["target_S"] for i in infos if i])
        bound = np.array([i["worst_compensated_bound_S"] / i["target_S"] for i in infos if i])
        bound_plain = np.array([i["worst_plain_bound_S"] / i["target_S"] for i in infos if i])
        calibration = store.latest_calibration(1)
        lab.open_all()
        assert lab.simulator is not None
        model = lab.simulator.model
        for ti, temp in enumerate(READ_TEMPS_C):
            go_to_temperature(lab, temp)
            for ci, (r, c) in enumerate(cells):
                rs_cal = float(np.nan_to_num(calibration.series_ohm[r, c]))
                usable = int(sum(1 << int(j) for j in np.flatnonzero(calibration.usable[r, c])))
                path = measure_series_path(
                    lab,
                    r,
                    c,
                    masks[ci][1],
                    usable,
                    read_voltage_V=SERIES_VOLTAGE_V,
                    pairs=SERIES_PAIRS,
                )
                u_rs.append(path.u_series_ohm)
                for kind, mask in enumerate(masks[ci]):
                    lab.set_cell_mask(r, c, mask)
                    y = _read(lab, r, c)
                    meas[ti, ci, kind] = y / (1.0 - path.series_ohm * y)
                    meas_cal[ti, ci, kind] = y / (1.0 - rs_cal * y)
                    true[ti, ci, kind] = float(model.true_cell_conductance_S()[r, c])
                lab.set_cell_mask(r, c, 0)
    ref = READ_TEMPS_C.index(REFERENCE_C)
    signed = _ratio_errors(meas, target)
    variation = np.abs(signed - signed[ref][None]).max(axis=0)  # (cells, 2)
    e_meas = np.abs(signed)
    e_cal = np.abs(_ratio_errors(meas_cal, target))
    e_true = np.abs(_ratio_errors(true, target))
    return PresetResult(
        preset,
        len(cells),
        cal.common.common_ppm_per_K,
        cal.common.spread_ppm_per_K,
        e_meas[..., 0].max(axis=0),
        e_meas[..., 1].max(axis=0),
        variation[:, 0],
        variation[:, 1],
        e_cal[..., 0].max(axis=0),
        e_cal[..., 1].max(axis=0),
        e_true[..., 0].max(axis=0),
        e_true[..., 1].max(axis=0),
        e_true[ref, :, 0],
        e_true[ref, :, 1],
        e_meas[ref, :, 0],
        e_meas[ref, :, 1],
        predicted,
        bound,
        bound_plain,
        float(np.sqrt(np.mean(np.square(u_rs)))),
        time.perf_counter() - t0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 cells per preset")
    args = parser.parse_args(argv)
    cells = "0,0-5" if args.quick else "0-1,0-7"
    aims = Aims("temperature-compensated subsets")
    print(f"load average {os.getloadavg()[0]:.1f}; cells {cells}; span {SPAN_C} degC")
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_preset(p, cells, Path(tmp)) for p in ("thinfilm", "thickfilm")]
    header = (
        f"{'preset':<10} {'cells':>5} {'common':>8} {'spread':>8} | worst |e| over 15-35 degC "
        f"(ppm, median): {'plain meas':>10} {'comp meas':>10} {'plain true':>10} "
        f"{'comp true':>10} | at 25 degC true: {'plain':>7} {'comp':>7} | wall"
    )
    print(header)
    for res in results:
        print(
            f"{res.preset}: measured change from 25 degC (median worst, ppm): plain "
            f"{np.median(res.var_plain_meas) * 1e6:.2f}, compensated "
            f"{np.median(res.var_comp_meas) * 1e6:.2f}"
        )
    for res in results:
        print(
            f"{res.preset:<10} {res.cells:>5} {res.common_ppm_per_K:>+8.1f} "
            f"{res.spread_ppm_per_K:>8.1f} | {'':>38}"
            f"{np.median(res.worst_plain_meas) * 1e6:>10.2f} "
            f"{np.median(res.worst_comp_meas) * 1e6:>10.2f} "
            f"{np.median(res.worst_plain_true) * 1e6:>10.2f} "
            f"{np.median(res.worst_comp_true) * 1e6:>10.2f} | {'':>17}"
            f"{np.median(res.ref_plain_true) * 1e6:>7.2f} "
            f"{np.median(res.ref_comp_true) * 1e6:>7.2f}"
            f" | {res.wall_s:.0f} s"
        )
    for res in results:
        tol = TOLERANCE[res.preset]
        what = (
            f"{res.cells} cells of 24 elements, {res.preset} preset seed {SEED}; ratio part "
            "(one common factor per temperature divided out); 5 temperatures"
        )
        for src, plain, comp, bound in (
            ("true worst error", res.worst_plain_true, res.worst_comp_true, 3.0),
            ("measured change from 25 degC", res.var_plain_meas, res.var_comp_meas, 3.0),
            ("measured worst error", res.worst_plain_meas, res.worst_comp_meas, 3.0),
        ):
            ratio = float(np.median(plain) / np.median(comp))
            aims.at_least(
                f"{res.preset}: {src}, plain / compensated",
                ratio,
                bound,
                unit="x",
                includes=what,
            )
        aims.at_least(
            f"{res.preset}: compensated cells within {tol * 1e6:g} ppm over 15-35 degC (true)",
            float(np.mean(res.worst_comp_true <= tol)),
            1.0,
            unit="%",
            includes=what,
        )
        covered = np.concatenate(
            [res.worst_comp_true <= res.bound_comp, res.worst_plain_true <= res.bound_plain]
        )
        aims.at_least(
            f"{res.preset}: true worst error within its predicted k = 2 bound (both masks)",
            float(np.mean(covered)),
            0.9,
            unit="%",
            includes=what,
        )
        aims.at_most(
            f"{res.preset}: cost at 25 degC, median |e| compensated (true)",
            float(np.median(res.ref_comp_true)),
            tol,
            includes=f"plain: {np.median(res.ref_plain_true):.2g}; " + what,
        )
        print(
            f"{res.preset}: predicted worst (compensated, median) "
            f"{np.median(res.predicted_comp) * 1e6:.2f} ppm, its k = 2 bound "
            f"{np.median(res.bound_comp) * 1e6:.2f} ppm, true "
            f"{np.median(res.worst_comp_true) * 1e6:.2f} ppm; true within the bound: "
            f"{np.mean(res.worst_comp_true <= res.bound_comp) * 100:.0f} %"
        )
        print(
            f"{res.preset}: cost of compensation at {REFERENCE_C:g} degC, median |e| plain / "
            f"compensated (ppm): true {np.median(res.ref_plain_true) * 1e6:.2f} / "
            f"{np.median(res.ref_comp_true) * 1e6:.2f}, through the SMU "
            f"{np.median(res.ref_plain_meas) * 1e6:.2f} / "
            f"{np.median(res.ref_comp_meas) * 1e6:.2f}"
        )
        print(
            f"{res.preset}: measured worst with the calibration's r_s instead of the "
            f"in-situ one (median, ppm): plain {np.median(res.worst_plain_cal) * 1e6:.2f}, "
            f"compensated {np.median(res.worst_comp_cal) * 1e6:.2f}; in-situ r_s rms u "
            f"{res.u_series_ohm:.4f} ohm"
        )
    return aims.finish()


if __name__ == "__main__":
    raise SystemExit(main())
