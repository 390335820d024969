"""Benchmarks of the RSS solver (`labrss.rss.solve`): throughput, baselines, study slopes.

Run: ``python -m benchmarks.bench_rss_solver`` (a few minutes; ``--quick`` for a smoke
run). Prints three tables:

1. Cells per second on one core (``NUMBA_NUM_THREADS=1``, set before numba loads), one
   target per cell, exact (provably optimal) solutions, for n = 8, 16, 24, 32, 40. The
   first call of each method (numba compile, or loading the compiled cache) is timed
   separately and excluded. Each rate is the best of 3 repeats of a batch that takes at
   least ``--min-time`` seconds (best-of: other load on the machine only slows a run).
2. Side by side on the same instances: a numpy brute force over all 2**n masks (n <= 20)
   and OR-tools CP-SAT (one worker, ``--cpsat-time-limit`` s per instance), as time
   ratios against `solve` (solve and brute force: best of 3; CP-SAT: one run), with the
   optimality gap of each: max over cells of (its |error| - solve's |error|) / sum g.
3. The precision study's fitted slopes (bits per element) next to the counting limit.

Aims (`benchmarks.aims`): exact `solve` throughput on one core of at least 100,000 / 500 /
25 cells per second at n = 16 / 32 / 40 (the README's 136,000 / 895 / 51 on a quiet
2-core machine; the time of `solve` on a batch, instance generation excluded, best of 3),
every answer exact; `solve` as good as the brute force (gap <= 1e-12 of the bank) and at
least 10x faster at n = 16; CP-SAT never better than `solve` beyond its integer rounding;
slopes of the median instance's worst target of at least 0.85 (uniform) and 0.9
(differential20) bits per element (the README's figures; the full 2,500-instance study of
docs/rss-study.md gives 0.89 and 0.97).

Instances: parallel banks of n branches, ``g_i = 1/R_i`` with ``R_i = 1 kohm (1 +
U[-20 %, 20 %])``, targets uniform in the middle half of each bank's range
``[0.25, 0.75] * sum g``; seeded (``--seed``).

CP-SAT scaling: CP-SAT needs integer coefficients. Each cell is scaled by
``k = 10**12 / sum g`` (the whole bank maps to 10**12 integer units, well inside int64);
``c_i = round(k g_i)``, ``T = round(k t)``, minimise ``|sum x_i c_i - T|``. Rounding moves
each coefficient by at most 1/2 unit, so a subset's scaled sum is off by at most n/2 units:
a relative error of ``n / 2e12`` of the bank (2e-11 at n = 40). The gap reported is that
of CP-SAT's subset evaluated in floating point against `solve`'s optimum, so the rounding
shows up in it when it matters (the optimum itself is ~2**-n of the range).
"""

from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"  # one core: must precede any numba import

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numba
import numpy as np

from benchmarks.aims import Aims
from labrss.rss import solve
from labrss.rss.study import MODELS, fit_slopes, run_point, summarize_point

Method = Literal["auto", "enumerate", "mitm"]
R0_OHM = 1000.0
TOLERANCE = 0.20


def make_instances(n: int, cells: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Conductances (cells, n) in S and one target per cell (cells,) in S."""
    rng = np.random.default_rng([seed, n, cells])
    g_S = 1.0 / (R0_OHM * (1.0 + rng.uniform(-TOLERANCE, TOLERANCE, size=(cells, n))))
    target_S = g_S.sum(axis=1) * rng.uniform(0.25, 0.75, size=cells)
    return g_S, target_S


def _timed(g_S: np.ndarray, target_S: np.ndarray, method: Method) -> float:
    """Wall time (s) of one `solve` call."""
    t0 = time.perf_counter()
    solve(g_S, target_S, method=method)
    return time.perf_counter() - t0


def _best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Shortest wall time (s) of ``repeats`` calls (load on the machine only adds time)."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# ------------------------------------------------------------------ 1. throughput


@dataclass
class ThroughputRow:
    n: int
    method: str
    first_call_s: float
    cells: int
    cells_per_s: float
    all_exact: bool


def throughput(n: int, method: Method, seed: int, min_time_s: float) -> ThroughputRow:
    """Cells per second of `solve` at size n (best of 3 batches of >= min_time_s)."""
    g, t = make_instances(n, 2, seed)
    first = _timed(g, t, method)
    cells = 1
    while True:  # grow the batch until one run takes min_time_s
        g, t = make_instances(n, cells, seed)
        dt = _timed(g, t, method)
        if dt >= min_time_s or cells >= 1 << 22:
            break
        cells = min(cells * max(2, int(1.5 * min_time_s / max(dt, 1e-6))), 1 << 22)
    best = dt
    exact = True
    for _ in range(2):
        t0 = time.perf_counter()
        res = solve(g, t, method=method)
        best = min(best, time.perf_counter() - t0)
        exact = exact and bool(res.exact.all())
    return ThroughputRow(n, method, first, cells, cells / best, exact)


# ------------------------------------------------------------------ 2. baselines


def brute_force(g_S: np.ndarray, target_S: np.ndarray) -> np.ndarray:
    """Best |error| per cell by numpy over all 2**n masks (memory 2**n x n per cell)."""
    n = g_S.shape[1]
    bits = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(np.float64)
    out = np.empty(g_S.shape[0])
    for c in range(g_S.shape[0]):
        out[c] = np.abs(bits @ g_S[c] - target_S[c]).min()
    return out


def cp_sat(
    g_S: np.ndarray, target_S: np.ndarray, time_limit_s: float
) -> tuple[np.ndarray, list[str]]:
    """|error| (S, evaluated in float) of CP-SAT's subset per cell, and its status."""
    from ortools.sat.python import cp_model

    errors = np.empty(g_S.shape[0])
    status: list[str] = []
    for c in range(g_S.shape[0]):
        k = 1e12 / g_S[c].sum()
        coef = [round(k * v) for v in g_S[c]]
        goal = round(k * target_S[c])
        model = cp_model.CpModel()
        x = [model.new_bool_var(f"x{i}") for i in range(len(coef))]
        total = sum(coef)
        dev = model.new_int_var(0, total + abs(goal), "dev")
        s = sum(ci * xi for ci, xi in zip(coef, x, strict=True))
        model.add(s - goal <= dev)
        model.add(goal - s <= dev)
        model.minimize(dev)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = time_limit_s
        solver.parameters.num_workers = 1
        st = solver.solve(model)
        status.append(solver.status_name(st))
        if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            mask = np.array([solver.value(v) for v in x], dtype=bool)
            errors[c] = abs(g_S[c][mask].sum() - target_S[c])
        else:
            errors[c] = math.inf
    return errors, status


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per timed batch")
    parser.add_argument("--cpsat-time-limit", type=float, default=5.0, help="s per instance")
    args = parser.parse_args(argv)
    quick = args.quick
    numba.set_num_threads(1)  # also when numba was loaded earlier (python -m benchmarks)
    min_time = 0.1 if quick else args.min_time

    aims = Aims("bench_rss_solver" + (" --quick" if quick else ""))
    print("== 1. solve throughput, one core, one target per cell, exact ==")
    print(f"{'n':>3} {'method':>9} {'first call s':>13} {'cells':>9} {'cells/s':>12} exact  aim")
    rate_aims = {16: 100_000, 32: 500, 40: 25}
    sizes = (8, 16, 24) if quick else (8, 16, 24, 32, 40)
    all_exact = True
    for n in sizes:
        # full enumeration builds a 2**n table per cell: shown where it is still sensible
        methods: list[Method] = ["auto", "enumerate"] if n <= 16 else ["auto"]
        for method in methods:
            row = throughput(n, method, args.seed, min_time)
            all_exact = all_exact and row.all_exact
            aim = f">= {rate_aims[n]:,}" if n in rate_aims and method == "auto" else ""
            print(
                f"{n:>3} {row.method:>9} {row.first_call_s:>13.3f} {row.cells:>9} "
                f"{row.cells_per_s:>12,.0f} {row.all_exact!s:>5}  {aim}"
            )
            if aim:
                aims.at_least(
                    f"exact solve, n = {n}, one core",
                    row.cells_per_s,
                    rate_aims[n],
                    unit="cells/s",
                    includes="solve() on a batch of cells, one target each, best of 3; "
                    "instance generation and the first (compiling) call excluded",
                )
    aims.holds("every solve answer exact (provably optimal)", all_exact)

    print()
    print("== 2. same instances: brute force and CP-SAT vs solve (time ratio, gap) ==")
    print(
        f"{'n':>3} {'cells':>5} {'solve s/cell':>13} {'brute/solve':>12} {'brute gap':>10} "
        f"{'cpsat/solve':>12} {'cpsat gap (rel)':>16}  cpsat status"
    )
    side_sizes = (8, 12) if quick else (8, 12, 16, 20, 24, 32, 40)
    for n in side_sizes:
        cells = 4 if quick or n >= 32 else 8
        g, t = make_instances(n, cells, args.seed + 1)
        res = solve(g, t)  # warm (and the answer)
        t_solve = _best_of(partial(solve, g, t)) / cells
        best = np.abs(res.error)
        scale = g.sum(axis=1)
        if n <= 20:
            bf = brute_force(g, t)
            t_bf = _best_of(partial(brute_force, g, t)) / cells
            # gap: brute force minus solve, in units of the bank's full range (0 = same)
            bf_gap = float(np.max((bf - best) / scale))
            bf_cols = f"{t_bf / t_solve:>12.1f} {bf_gap:>10.1e}"
            aims.at_least(
                f"solve vs brute force, n = {n}: gap (solve no worse)",
                bf_gap,
                -1e-12,
                includes="max over cells of (brute-force |error| - solve |error|) / sum g",
            )
            if n == 16:
                aims.at_least(
                    "brute force time / solve time, n = 16", t_bf / t_solve, 10.0, unit="x"
                )
        else:
            bf_cols = f"{'-':>12} {'-':>10}"
        if n <= 12 or not quick:
            limit = 0.5 if quick else args.cpsat_time_limit
            t0 = time.perf_counter()
            cs, status = cp_sat(g, t, limit)
            t_cs = (time.perf_counter() - t0) / cells
            cs_gap = float(np.max((cs - best) / scale))
            aims.at_least(
                f"CP-SAT vs solve, n = {n}: gap (CP-SAT never better)",
                cs_gap,
                -n / 2e12,
                includes="CP-SAT's subset in floating point vs solve's; its integer scaling "
                "may cost n / 2e12 of the bank",
            )
            counts = {s: status.count(s) for s in sorted(set(status))}
            cs_cols = f"{t_cs / t_solve:>12.0f} {cs_gap:>16.1e}  {counts}"
        else:
            cs_cols = ""
        print(f"{n:>3} {cells:>5} {t_solve:>13.2e} {bf_cols} {cs_cols}")

    print()
    print("== 3. precision study slopes (bits per element, fitted on n >= 12) ==")
    instances = 100 if quick else 400
    ns = (8, 10, 12, 14) if quick else (8, 10, 12, 14, 16, 18)
    rows = []
    for name in ("uniform", "parallel20", "differential20"):
        for n in ns:
            rows += summarize_point(run_point(MODELS[name], n, instances, seed=args.seed))
    print(f"{instances} instances per point, n = {ns[0]}..{ns[-1]}")
    print(f"{'model':<16}{'statistic':<15}{'slope':>7}  counting limit")
    slope_aims = {"uniform": 0.85, "differential20": 0.9}
    for f in sorted(fit_slopes(rows, min_n=12), key=lambda f: (f.model, f.statistic)):
        if f.statistic in ("worst_median", "worst_p99", "random_median"):
            print(f"{f.model:<16}{f.statistic:<15}{f.slope:>7.3f}  1.000")
        if f.statistic == "worst_median" and f.model in slope_aims:
            aims.at_least(
                f"precision slope, {f.model}, median instance, worst target",
                f.slope,
                slope_aims[f.model],
                unit="bit/element",
                includes=f"exact worst case over the target interval, {instances} instances "
                f"per n, least squares on n = 12..{ns[-1]}",
            )
    return aims.finish()


if __name__ == "__main__":
    raise SystemExit(main())
