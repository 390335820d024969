"""Do labrss's uncertainties cover the truth? Calibrations and realised cells against the
simulator's ground truth (docs/metrology.md).

    python -m benchmarks.bench_uncertainty            # everything (~40 min on 2 busy cores)
    python -m benchmarks.bench_uncertainty --jobs 2   # two worker processes
    python -m benchmarks.bench_uncertainty --quick    # 4 seeds per configuration (a smoke run)

Every calibration runs through the embedded simulator exactly as a user's would (station
defaults, range linking on, the one-by-one or weighing design), then its estimates are
compared with `BoardModel.truth()`: element = closed minus open branch conductance, each
cell's as it was while the cell was measured (`CellTruth`: the board temperature drifts
during a run; labrss states each cell at its own sensor temperature). What
it measures, one row each in the table:

* **coverage**: for each configuration (NPLC 0.01, 1, 10; designs single and weighing;
  autorange and a fixed 100 uA range; the default and large presets), the fraction of
  elements whose truth lies within +-2 combined standard uncertainties, and the rms of
  error / u, pooled over seeds. Every seed is a different board *and instrument* (the
  simulated SMU draws its per-range errors from the seed, within the datasheet): an
  instrument's errors are common to all its elements, so the seeds are the sample that
  matters, and each configuration has its own seeds.
* **range linking** at NPLC 1: per seed, the common scale factor (the median ratio to the
  truth) removed, the median relative error over the statistical floor (the median
  statistical relative uncertainty), linked and unlinked.
* **reference standard**: the station declares the preset's on-board standard (10 kohm,
  U = 50 ppm, k = 2); the fraction of elements whose absolute error is within U, at NPLC 1
  and 10.
* **realise**: cells of the large preset (16 branches) realised at random targets with
  `labrss.workflows.realise.realise`, 12 cells on each of 10 boards and instruments (a
  realised bank's uncertainty is mostly the instrument's common scale: one draw per seed,
  so the seeds, not the cells, are the sample); the fraction whose true bank conductance
  (taken as each cell is verified) is within the reported expanded uncertainty (k = 2),
  and the median relative error vs the target.

The aims are the issue's (#11); the load average is printed with them.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.aims import Aims

FIXED_RANGE_A = 1e-4
REFERENCE = {
    "location": "branch",
    "branch": 0,
    "resistance_ohm": 10000.0,
    "expanded_uncertainty_ohm": 0.5,
    "coverage_factor": 2.0,
    "certificate_date": "2025-01-15",
    "certificate_temperature_C": 25.0,
    "tcr_ppm_per_K": 4.3,
}
LAST_CELL = {"default": [15, 15], "large": [63, 63]}
BRANCHES = {"default": 8, "large": 16}


@dataclass(frozen=True)
class Case:
    """One calibration: a board and instrument (seed) and the settings."""

    section: str
    preset: str
    seed: int
    nplc: float
    design: str = "single"
    fixed_range: bool = False
    cells: str = "0,0"
    range_link: bool = True
    reference: bool = False


@dataclass
class Outcome:
    """What one case measured (arrays over its elements)."""

    case: Case
    rel_error: np.ndarray
    z: np.ndarray
    rel_u: np.ndarray
    rel_stat: np.ndarray
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def _station(case: Case) -> Any:
    from labrss.station import parse_station

    data: dict[str, Any] = {"simulator": {"board": case.preset, "seed": case.seed}}
    if case.fixed_range:
        data["measurement"] = {"current_range_A": FIXED_RANGE_A}
    if case.reference:
        data["reference"] = {**REFERENCE, "cell": LAST_CELL[case.preset]}
    return parse_station(data, source="bench_uncertainty")


def _true_elements(truth: dict[str, Any], cells: Sequence[tuple[int, int]]) -> np.ndarray:
    on = np.asarray(truth["branch_on_conductance_S"], float)
    r = np.asarray(truth["resistance_ohm"], float)
    off = 1.0 / (r + np.asarray(truth["r_off_ohm"], float))
    return np.array([on[rc] - off[rc] for rc in cells])


class CellTruth:
    """Each cell's true elements while it was measured: the simulator's truth taken when a
    run reaches a cell and when it leaves it, averaged (the board temperature drifts during
    a run, and every estimate holds at its cell's own temperature, docs/metrology.md)."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.current: tuple[int, int] | None = None
        self.entered: np.ndarray | None = None
        self.done: dict[tuple[int, int], np.ndarray] = {}
        measure = lab.measure_subset

        def wrapped(r: int, c: int, mask: int, **kw: Any) -> Any:
            if (r, c) != self.current:
                self.leave()
                self.current = (r, c)
                self.entered = None if (r, c) in self.done else self._elements((r, c))
            return measure(r, c, mask, **kw)

        lab.measure_subset = wrapped

    def _elements(self, cell: tuple[int, int]) -> np.ndarray:
        with self.lab.simulator.lock:
            truth = self.lab.simulator.model.truth()
        out: np.ndarray = _true_elements(truth, [cell])[0]
        return out

    def leave(self) -> None:
        """Close the current cell (its truth: the mean of entering and leaving)."""
        if self.current is not None and self.entered is not None:
            self.done[self.current] = 0.5 * (self.entered + self._elements(self.current))
        self.entered = None


def run_case(case: Case) -> Outcome:
    """Calibrate one case and compare with the truth."""
    from calibration.run import CalibrationRun
    from calibration.settings import CalibrationSettings, parse_cells
    from labrss.lab import Lab
    from labrss.store import Store

    t0 = time.perf_counter()
    settings = CalibrationSettings(
        cells=parse_cells(case.cells),
        design=case.design,  # type: ignore[arg-type]
        nplc=case.nplc,
        range_link=case.range_link,
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        Lab(_station(case)) as lab,
        Store(Path(tmp) / "lab.db") as store,
    ):
        assert lab.simulator is not None
        cell_truth = CellTruth(lab)
        result = CalibrationRun(lab, store, settings).run()
        cell_truth.leave()
    got = [(c.r, c.c) for c in result.cells]
    a = result.conductance_S()
    u = result.std_S()
    stat = np.array([(c.components or {})["statistical"] for c in result.cells])
    a_true = np.array([cell_truth.done[rc] for rc in got])
    ok = np.isfinite(a) & np.isfinite(u) & (u > 0)
    extra: dict[str, Any] = {"anchor": result.summary.get("anchor")}
    return Outcome(
        case,
        (a / a_true - 1.0)[ok],
        ((a - a_true) / u)[ok],
        (u / a)[ok],
        (stat / a)[ok],
        time.perf_counter() - t0,
        extra,
    )


def run_realise(preset: str, seed: int, n_cells: int, nplc: float) -> dict[str, Any]:
    """Calibrate a block of ``n_cells`` cells of ``preset`` (4 rows x n/4 columns drawn
    from the seed) and realise a random target on each (10-90 % of the bank's largest);
    each cell's true bank conductance is taken when its verification starts."""
    from calibration.run import CalibrationRun
    from calibration.settings import CalibrationSettings, CellSelection
    from labrss.lab import Lab
    from labrss.store import Store
    from labrss.workflows.realise import RealiseSettings, Target, realise

    rng = np.random.default_rng([seed, 11])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        station = _station(Case("realise", preset, seed, nplc))
        with Lab(station) as lab, Store(Path(tmp) / "lab.db") as store:
            g = lab.geometry
            n_rows = min(4, g.rows)
            rows = tuple(sorted(rng.choice(g.rows, n_rows, replace=False).tolist()))
            cols = tuple(sorted(rng.choice(g.cols, -(-n_cells // n_rows), replace=False).tolist()))
            sel = CellSelection(rows=rows, cols=cols)
            cal = CalibrationRun(lab, store, CalibrationSettings(cells=sel, nplc=nplc)).run()
            targets = []
            for est in cal.cells:
                top = float(np.nansum(est.conductance_S)) + max(est.leakage_S, 0.0)
                value = float(rng.uniform(0.1, 0.9) * top)
                targets.append(Target(est.r, est.c, value, "conductance"))
            assert lab.simulator is not None
            sim = lab.simulator
            at_verify: dict[tuple[int, int], float] = {}
            measure = lab.measure_cell

            def wrapped(r: int, c: int, **kw: Any) -> Any:
                if (r, c) not in at_verify:  # the bank as programmed, when it is verified
                    with sim.lock:
                        at_verify[r, c] = float(sim.model.truth()["cell_conductance_S"][r, c])
                return measure(r, c, **kw)

            lab.measure_cell = wrapped  # type: ignore[method-assign]
            result = realise(lab, store, targets, RealiseSettings(nplc=nplc))
    true = np.array([at_verify[c.r, c.c] for c in result.cells])
    pred = np.array([c.predicted_S for c in result.cells])
    expanded = np.array([c.expanded_S for c in result.cells])
    target = np.array([c.target_S for c in result.cells])
    measured = np.array([c.measured_S for c in result.cells])
    return {
        "seed": seed,
        "covered": np.abs(pred - true) <= expanded,
        "z": (pred - true) / (expanded / 2.0),
        "rel_error_target": np.abs(true / target - 1.0),
        "rel_error_measured": np.abs(measured / true - 1.0),
        "rel_U": expanded / pred,
        "wall_s": time.perf_counter() - t0,
    }


def _cases(seeds: int) -> list[Case]:
    cases: list[Case] = []
    base = 1000
    for preset in ("default", "large"):
        # >= 200 elements per configuration: 2 cells of 8 branches, 1 cell of 16, per seed
        per_seed = 2 if preset == "default" else 1
        for nplc in (0.01, 1.0, 10.0):
            for design in ("single", "weighing"):
                for fixed in (False, True):
                    for i in range(seeds):
                        seed = base + i
                        col = (i * 3) % 14
                        cells = f"{i % 15},{col}-{col + per_seed - 1}"
                        cases.append(Case("coverage", preset, seed, nplc, design, fixed, cells))
                    base += 100
    for link in (True, False):
        for i in range(max(4, seeds // 4)):
            cases.append(Case("link", "default", 7000 + i, 1.0, cells="2-3,4-5", range_link=link))
    for base, nplc in ((8000, 1.0), (8500, 10.0)):  # each seed its own standard
        for i in range(seeds):
            cases.append(
                Case("reference", "default", base + i, nplc, cells="4,6-7", reference=True)
            )
    return cases


def _run_all(jobs: Sequence[tuple[Any, tuple[Any, ...]]], workers: int) -> list[Any]:
    """Run ``(function, args)`` jobs in worker processes, in order of submission; a fresh
    pool per batch (each job starts a simulated bench), and a job whose worker died is run
    again in this process."""
    results: list[Any] = [None] * len(jobs)
    batch = 4 * workers
    done = 0
    for start in range(0, len(jobs), batch):
        chunk = list(range(start, min(start + batch, len(jobs))))
        if workers == 1:
            for i in chunk:
                fn, fargs = jobs[i]
                results[i] = fn(*fargs)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {i: pool.submit(jobs[i][0], *jobs[i][1]) for i in chunk}
                for i, fut in futures.items():
                    try:
                        results[i] = fut.result()
                    except BrokenProcessPool:
                        results[i] = None
            for i in chunk:
                if results[i] is None:
                    fn, fargs = jobs[i]
                    results[i] = fn(*fargs)
        done += len(chunk)
        print(f"  {done} of {len(jobs)} runs", file=sys.stderr, flush=True)
    return results


def _row(name: str, outs: Sequence[Outcome]) -> dict[str, Any]:
    z = np.concatenate([o.z for o in outs])
    rel = np.concatenate([o.rel_error for o in outs])
    rel_u = np.concatenate([o.rel_u for o in outs])
    per_seed = [float(np.mean(np.abs(o.z) < 2)) for o in outs]
    return {
        "name": name,
        "n": int(z.size),
        "seeds": len(outs),
        "coverage": float(np.mean(np.abs(z) < 2)),
        "rms_z": float(np.sqrt(np.mean(z**2))),
        "median_rel_error": float(np.median(np.abs(rel))),
        "median_rel_u": float(np.median(rel_u)),
        "worst_seed": float(min(per_seed)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_uncertainty")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--quick", action="store_true", help="4 seeds per configuration")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per configuration")
    parser.add_argument("--realise-cells", type=int, default=12, help="cells per realise seed")
    parser.add_argument("--realise-seeds", type=int, default=10, help="realise seeds")
    args = parser.parse_args(argv)
    seeds = 4 if args.quick else args.seeds
    cases = _cases(seeds)
    t0 = time.perf_counter()
    outs: list[Outcome] = []
    realised: list[dict[str, Any]] = []
    realise_seeds = tuple(range(9001, 9001 + args.realise_seeds))
    jobs: list[tuple[Any, tuple[Any, ...]]] = [
        (run_realise, ("large", s, args.realise_cells, 1.0)) for s in realise_seeds
    ]
    jobs += [(run_case, (case,)) for case in cases]
    results = _run_all(jobs, max(1, args.jobs))
    realised = results[: len(realise_seeds)]
    outs = results[len(realise_seeds) :]
    wall = time.perf_counter() - t0

    aims = Aims("bench_uncertainty (issue 11: uncertainties that cover the truth)")
    rows: list[dict[str, Any]] = []
    cov = [o for o in outs if o.case.section == "coverage"]
    configs: dict[tuple[Any, ...], list[Outcome]] = {}
    for o in cov:
        key = (o.case.preset, o.case.nplc, o.case.design, o.case.fixed_range)
        configs.setdefault(key, []).append(o)
    for (preset, nplc, design, fixed), group in configs.items():
        rng = "100 uA" if fixed else "auto"
        rows.append(_row(f"coverage {preset} NPLC {nplc:g} {design} {rng}", group))
    pooled = _row("coverage, every configuration pooled", cov)
    rows.append(pooled)
    # range linking
    link_ratio: dict[bool, float] = {}
    for link in (True, False):
        group = [o for o in outs if o.case.section == "link" and o.case.range_link == link]
        rel = np.concatenate([o.rel_error - np.median(o.rel_error) for o in group])
        floor = np.concatenate([o.rel_stat for o in group])
        link_ratio[link] = float(np.median(np.abs(rel)) / np.median(floor))
        row = _row(f"range linking {'on' if link else 'off'}, NPLC 1, scale removed", group)
        row["median_rel_error"] = float(np.median(np.abs(rel)))
        row["note"] = f"median / statistical floor {np.median(floor):.2g} = {link_ratio[link]:.2f}"
        rows.append(row)
    # reference standard
    u_ref = REFERENCE["expanded_uncertainty_ohm"] / REFERENCE["resistance_ohm"]  # type: ignore[operator]
    within: dict[float, float] = {}
    ref_rel: list[np.ndarray] = []
    for nplc in (1.0, 10.0):
        group = [o for o in outs if o.case.section == "reference" and o.case.nplc == nplc]
        rel = np.concatenate([o.rel_error for o in group])
        ref_rel.append(rel)
        within[nplc] = float(np.mean(np.abs(rel) <= u_ref))
        row = _row(f"reference standard, NPLC {nplc:g}", group)
        row["note"] = f"|error| <= U of the standard (50 ppm): {100 * within[nplc]:.1f} %"
        rows.append(row)
    within_all = float(np.mean(np.abs(np.concatenate(ref_rel)) <= u_ref))
    # realise
    covered = np.concatenate([r["covered"] for r in realised])
    z_r = np.concatenate([r["z"] for r in realised])
    rel_t = np.concatenate([r["rel_error_target"] for r in realised])
    rel_m = np.concatenate([r["rel_error_measured"] for r in realised])
    rel_u_r = np.concatenate([r["rel_U"] for r in realised]) / 2.0
    rows.append(
        {
            "name": "realise, large preset (16 branches), NPLC 1",
            "n": int(covered.size),
            "seeds": len(realised),
            "coverage": float(covered.mean()),
            "rms_z": float(np.sqrt(np.mean(z_r**2))),
            "median_rel_error": float(np.median(rel_t)),
            "median_rel_u": float(np.median(rel_u_r)),
            "worst_seed": float(min(r["covered"].mean() for r in realised)),
            "note": f"error vs target; measured vs true: {np.median(rel_m):.2g}",
        }
    )

    header = (
        f"{'what':<52} {'n':>5} {'seeds':>5} {'in +-2u':>8} {'rms z':>6} "
        f"{'med |err|':>9} {'med u':>8} {'worst seed':>10}  note"
    )
    print(header)
    for r in rows:
        print(
            f"{r['name']:<52} {r['n']:>5} {r['seeds']:>5} {100 * r['coverage']:>7.1f}% "
            f"{r['rms_z']:>6.2f} {r['median_rel_error']:>9.2e} {r['median_rel_u']:>8.1e} "
            f"{100 * r['worst_seed']:>9.1f}%  {r.get('note', '')}"
        )
    print(f"({len(outs)} calibrations and {len(realised)} realise runs, {wall / 60:.1f} min wall)")

    worst = min(rows[: len(configs)], key=lambda r: r["coverage"])
    aims.at_least(
        "coverage +-2u, every configuration pooled",
        pooled["coverage"],
        0.93,
        unit="%",
        includes=f"{pooled['n']} elements, {len(configs)} configurations x {seeds} seeds",
    )
    aims.at_least(
        "coverage +-2u, worst configuration",
        worst["coverage"],
        0.90,
        unit="%",
        includes=worst["name"],
    )
    rms = [r["rms_z"] for r in rows[: len(configs)]]
    aims.at_least(
        "rms error/u, every configuration pooled",
        pooled["rms_z"],
        0.7,
        includes=f"not inflated; per configuration {min(rms):.2f} .. {max(rms):.2f}",
    )
    aims.at_most("rms error/u, every configuration pooled (not too small)", pooled["rms_z"], 1.3)
    aims.at_most(
        "range linking, NPLC 1: median error / statistical floor",
        link_ratio[True],
        1.5,
        unit="x",
        includes=f"common scale removed per seed; unlinked: {link_ratio[False]:.2f}x",
    )
    aims.at_least(
        "reference standard: |error| <= its U (k = 2)",
        within_all,
        0.95,
        unit="%",
        includes=f"absolute error vs the truth, NPLC 1 and 10 pooled ({100 * within[1.0]:.1f} "
        f"/ {100 * within[10.0]:.1f} %); each seed its own standard, drawn within its U",
    )
    aims.at_least(
        "realise: true bank within U (k = 2)",
        float(covered.mean()),
        0.93,
        unit="%",
        includes=f"{covered.size} cells of the large preset",
    )
    aims.holds(
        "realise: median relative error vs target reported",
        math.isfinite(float(np.median(rel_t))),
        includes=f"{np.median(rel_t):.2g} (16 branches)",
    )
    return aims.finish()


if __name__ == "__main__":
    raise SystemExit(main())
