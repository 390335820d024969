"""Benchmarks of the RSS solver (`labrss.rss.solve`): throughput, baselines, study slopes.

Run: ``python -m benchmarks.bench_rss_solver`` (a few minutes; ``--quick`` for a smoke
run). Table 2 needs OR-tools, the ``bench`` extra: ``pip install -e '.[bench]'`` (``make
bench`` installs it); without it the run stops at once saying so, or skips CP-SAT with
``--no-cpsat``. Prints three tables:

1. Cells per second on one core (``NUMBA_NUM_THREADS=1``, set before numba loads), one
   target per cell, exact (provably optimal) solutions, for n = 8, 16, 24, 32, 40. The
   first call of each method (numba compile, or loading the compiled cache) is timed
   separately and excluded. Each rate is the best of 3 repeats of a batch that takes at
   least ``--min-time`` seconds (best-of: other load on the machine only slows a run).
1b. The meet-in-the-middle kernel against the previous one (tables carrying masks, one
   branchy sweep; kept here as `previous_mitm_nearest`), same instances, interleaved
   best-of-5: the speed-up is the figure that survives a busy machine.
1b'. The same sweep over the halves' top levels produced window by window just ahead
   of it (`exact._mitm_within_windows`, used from n = 35 with one or two targets per
   cell) against stored whole (`exact._mitm_within_stored`), wall and thread-CPU time
   ratios, answers bit-identical.
1c. Tolerance mode (``error_tolerance`` = 1e-5 of the target, the order of a
   calibration's relative uncertainty): cells per second and the fraction that stopped
   early (not proven optimal).
2. Side by side on the same instances: a numpy brute force over all 2**n masks (n <= 20)
   and OR-tools CP-SAT (one worker, ``--cpsat-time-limit`` s per instance), as time
   ratios against `solve` (solve and brute force: best of 3; CP-SAT: one run), with the
   optimality gap of each: max over cells of (its |error| - solve's |error|) / sum g.
3. The precision study's fitted slopes (bits per element) next to the counting limit.

Aims (`benchmarks.aims`): exact `solve` throughput on one core of at least 100,000 / 2,000 /
120 cells per second at n = 16 / 32 / 40 (issue 16; before it 136,000 / 895 / 51 on a
quiet 2-core machine; the time of `solve` on a batch, instance generation excluded, best
of 3), every answer exact; the MITM kernel at least 1.5x the previous one measured side
by side at n = 32 and 40; tolerance mode at least 10x the exact rate; `solve` as good
as the brute force (gap <= 1e-12 of the bank) and at least 10x faster at n = 16; CP-SAT
never better than `solve` beyond its integer rounding;
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
import sys

if "numba" not in sys.modules:
    # One core: must precede numba's import. When numba is already loaded (python -m
    # benchmarks runs earlier benchmarks in the same process), changing the variable would
    # make numba refuse (its threads are launched); main() sets one thread instead.
    os.environ["NUMBA_NUM_THREADS"] = "1"

import argparse
import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numba
import numpy as np

from benchmarks.aims import Aims
from labrss.rss import exact, solve
from labrss.rss.exact import _bits, mitm_nearest
from labrss.rss.study import MODELS, fit_slopes, run_point, summarize_point
from labrss.rss.subset_sums import build_sorted_sums

Method = Literal["auto", "enumerate", "mitm"]
R0_OHM = 1000.0
TOLERANCE = 0.20


def make_instances(n: int, cells: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Conductances (cells, n) in S and one target per cell (cells,) in S."""
    rng = np.random.default_rng([seed, n, cells])
    g_S = 1.0 / (R0_OHM * (1.0 + rng.uniform(-TOLERANCE, TOLERANCE, size=(cells, n))))
    target_S = g_S.sum(axis=1) * rng.uniform(0.25, 0.75, size=cells)
    return g_S, target_S


def _timed(
    g_S: np.ndarray, target_S: np.ndarray, method: Method, tol: np.ndarray | None = None
) -> float:
    """Wall time (s) of one `solve` call."""
    t0 = time.perf_counter()
    solve(g_S, target_S, method=method, error_tolerance=tol)
    return time.perf_counter() - t0


@numba.njit(cache=True)
def previous_mitm_nearest(
    values: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The meet-in-the-middle kernel before issue 16 (the baseline of table 1b).

    Two sorted half tables carrying uint64 masks (`build_sorted_sums`), then per target
    one branchy two-pointer sweep. Same contract as `labrss.rss.exact.mitm_nearest`.
    """
    n_cells, n = values.shape
    m = targets.shape[1]
    h = n // 2
    floor_sum = np.empty((n_cells, m))
    ceil_sum = np.empty((n_cells, m))
    floor_mask = np.zeros((n_cells, m), dtype=np.uint64)
    ceil_mask = np.zeros((n_cells, m), dtype=np.uint64)
    size_a = (1 << h) + 2
    size_b = (1 << (n - h)) + 2
    a1, a2, b1, b2 = np.empty(size_a), np.empty(size_a), np.empty(size_b), np.empty(size_b)
    am1, am2 = np.empty(size_a, np.uint64), np.empty(size_a, np.uint64)
    bm1, bm2 = np.empty(size_b, np.uint64), np.empty(size_b, np.uint64)
    bits_a = _bits(0, h)
    bits_b = _bits(h, n - h)
    for c in range(n_cells):
        sa, ma = build_sorted_sums(values[c, :h], bits_a, a1, am1, a2, am2)
        sb, mb = build_sorted_sums(values[c, h:], bits_b, b1, bm1, b2, bm2)
        na = sa.shape[0]
        nb = sb.shape[0]
        for k in range(m):
            t = targets[c, k]
            best_lo, best_lo_mask = -np.inf, np.uint64(0)
            best_hi, best_hi_mask = np.inf, np.uint64(0)
            j = nb - 1
            for i in range(na):
                ai = sa[i]
                while j >= 0 and ai + sb[j] > t:
                    j -= 1
                if j >= 0 and ai + sb[j] > best_lo:
                    best_lo, best_lo_mask = ai + sb[j], ma[i] | mb[j]
                if j + 1 < nb and ai + sb[j + 1] < best_hi:
                    best_hi, best_hi_mask = ai + sb[j + 1], ma[i] | mb[j + 1]
                if j < 0:
                    break
            floor_sum[c, k], floor_mask[c, k] = best_lo, best_lo_mask
            ceil_sum[c, k], ceil_mask[c, k] = best_hi, best_hi_mask
    return floor_sum, floor_mask, ceil_sum, ceil_mask


def kernel_speedup(n: int, cells: int, seed: int) -> tuple[float, float, float]:
    """Cells/s of the previous and the current MITM kernel, interleaved best of 5.

    Also checks that both find the same nearest distance (to rounding)."""
    g, t = make_instances(n, cells, seed)
    tt = np.ascontiguousarray(t[:, None])
    new = mitm_nearest(g, tt)
    old = previous_mitm_nearest(g, tt)
    d_new = np.minimum(tt - new[0], new[2] - tt)
    d_old = np.minimum(tt - old[0], old[2] - tt)
    if not np.allclose(d_new, d_old, rtol=0.0, atol=1e-12 * float(g.sum(1).max())):
        raise AssertionError(f"n = {n}: the kernels disagree on the nearest sum")
    best_old = best_new = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        previous_mitm_nearest(g, tt)
        best_old = min(best_old, time.perf_counter() - t0)
        t0 = time.perf_counter()
        mitm_nearest(g, tt)
        best_new = min(best_new, time.perf_counter() - t0)
    return cells / best_old, cells / best_new, best_old / best_new


def windowed_speedup(n: int, cells: int, seed: int) -> tuple[float, float, float, float]:
    """The sweep over top levels produced window by window (`exact._mitm_within_windows`,
    what `mitm_nearest_within` runs from n = 35 with one or two targets per cell)
    against the same sweep over stored tables (`exact._mitm_within_stored`, what it runs
    below), one target per cell, interleaved best of 5: cells/s stored, cells/s
    windowed, and the ratio of wall times and of thread CPU times (the CPU ratio is the
    one a busy machine leaves intact). Answers must be bit-identical."""
    g, t = make_instances(n, cells, seed)
    tt = np.ascontiguousarray(t[:, None])
    lo, hi = np.full(tt.shape, np.inf), np.full(tt.shape, -np.inf)

    def windowed(g: np.ndarray, tt: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> object:
        return exact._mitm_within_windows(g, tt, lo, hi, exact._WINDOW_STEPS)

    new = windowed(g, tt, lo, hi)
    old = exact._mitm_within_stored(g, tt, lo, hi)
    if not all(np.array_equal(a, b) for a, b in zip(new, old, strict=True)):  # type: ignore[call-overload]
        raise AssertionError(f"n = {n}: windowed and stored kernels differ")
    wall = {"old": math.inf, "new": math.inf}
    cpu = {"old": math.inf, "new": math.inf}
    for _ in range(5):
        for key, fn in (("old", exact._mitm_within_stored), ("new", windowed)):
            t0, c0 = time.perf_counter(), time.thread_time()
            fn(g, tt, lo, hi)
            wall[key] = min(wall[key], time.perf_counter() - t0)
            cpu[key] = min(cpu[key], time.thread_time() - c0)
    return (
        cells / wall["old"],
        cells / wall["new"],
        wall["old"] / wall["new"],
        cpu["old"] / cpu["new"],
    )


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
    proven: float = 1.0


def throughput(
    n: int, method: Method, seed: int, min_time_s: float, rel_tol: float | None = None
) -> ThroughputRow:
    """Cells per second of `solve` at size n (best of 3 batches of >= min_time_s).

    ``rel_tol``: tolerance mode with ``error_tolerance = rel_tol * target``; the row's
    ``all_exact`` then reports the fraction of cells proven optimal instead."""

    def tol(t: np.ndarray) -> np.ndarray | None:
        return None if rel_tol is None else rel_tol * t

    g, t = make_instances(n, 2, seed)
    first = _timed(g, t, method, tol(t))
    cells = 1
    while True:  # grow the batch until one run takes min_time_s
        g, t = make_instances(n, cells, seed)
        dt = _timed(g, t, method, tol(t))
        if dt >= min_time_s or cells >= 1 << 22:
            break
        cells = min(cells * max(2, int(1.5 * min_time_s / max(dt, 1e-6))), 1 << 22)
    best = dt
    exact = True
    proven = 1.0
    for _ in range(2):
        t0 = time.perf_counter()
        res = solve(g, t, method=method, error_tolerance=tol(t))
        best = min(best, time.perf_counter() - t0)
        exact = exact and bool(res.exact.all())
        proven = float(res.exact.mean())
        if rel_tol is not None and not np.all(np.abs(res.error) <= rel_tol * t * (1 + 1e-9)):
            raise AssertionError(f"n = {n}: a tolerance-mode error exceeds the tolerance")
    return ThroughputRow(n, method, first, cells, cells / best, exact, proven)


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
    parser.add_argument(
        "--no-cpsat", action="store_true", help="skip the CP-SAT baseline (no OR-tools needed)"
    )
    args = parser.parse_args(argv)
    use_cpsat = not args.no_cpsat
    if use_cpsat and importlib.util.find_spec("ortools") is None:
        print(
            "bench_rss_solver: OR-tools is not installed (the CP-SAT baseline of table 2). "
            "Install the bench extra: pip install -e '.[bench]' (make bench does it), "
            "or run with --no-cpsat.",
            file=sys.stderr,
        )
        return 2
    quick = args.quick
    numba.set_num_threads(1)  # also when numba was loaded earlier (python -m benchmarks)
    min_time = 0.1 if quick else args.min_time

    aims = Aims("bench_rss_solver" + (" --quick" if quick else ""))
    print("== 1. solve throughput, one core, one target per cell, exact ==")
    print(f"{'n':>3} {'method':>9} {'first call s':>13} {'cells':>9} {'cells/s':>12} exact  aim")
    rate_aims = {16: 100_000, 32: 2_000, 40: 120}
    sizes = (8, 16, 24) if quick else (8, 16, 24, 32, 40)
    all_exact = True
    exact_rate: dict[int, float] = {}
    for n in sizes:
        # full enumeration builds a 2**n table per cell: shown where it is still sensible
        methods: list[Method] = ["auto", "enumerate"] if n <= 16 else ["auto"]
        for method in methods:
            row = throughput(n, method, args.seed, min_time)
            all_exact = all_exact and row.all_exact
            aim = f">= {rate_aims[n]:,}" if n in rate_aims and method == "auto" else ""
            if method == "auto":
                exact_rate[n] = row.cells_per_s
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
    print("== 1b. MITM kernel: previous (masks, one branchy sweep) vs current, same run ==")
    print(f"{'n':>3} {'cells':>6} {'previous cells/s':>17} {'current cells/s':>16} {'speed-up':>9}")
    for n in (24,) if quick else (24, 32, 40):
        cells = {24: 400, 32: 100, 40: 8}[n]
        old_rate, new_rate, ratio = kernel_speedup(n, cells, args.seed + 2)
        print(f"{n:>3} {cells:>6} {old_rate:>17,.0f} {new_rate:>16,.0f} {ratio:>8.2f}x")
        if n >= 32:
            aims.at_least(
                f"MITM kernel speed-up over the previous one, n = {n}",
                ratio,
                1.5,
                unit="x",
                includes="mitm_nearest vs previous_mitm_nearest on the same cells, "
                "interleaved best of 5, same process",
            )

    print()
    print("== 1b'. top levels produced window by window vs stored, same sweep, same run ==")
    print(
        f"{'n':>3} {'cells':>6} {'stored cells/s':>15} {'windowed cells/s':>17} "
        f"{'wall ratio':>11} {'CPU ratio':>10}  (windowed from n = {exact._WINDOWS_FROM_N})"
    )
    for n in (24,) if quick else (32, 36, 40):
        cells = {24: 400, 32: 100, 36: 30, 40: 8}[n]
        old_rate, new_rate, r_wall, r_cpu = windowed_speedup(n, cells, args.seed + 3)
        print(
            f"{n:>3} {cells:>6} {old_rate:>15,.0f} {new_rate:>17,.0f} {r_wall:>10.2f}x "
            f"{r_cpu:>9.2f}x"
        )

    print()
    print("== 1c. tolerance mode: stop at |error| <= 1e-5 of the target ==")
    print(f"{'n':>3} {'cells':>9} {'cells/s':>12} {'proven':>7} {'x exact':>8}  aim")
    for n in (24,) if quick else (32, 40):
        row = throughput(n, "auto", args.seed, min_time, rel_tol=1e-5)
        ratio = row.cells_per_s / exact_rate[n] if n in exact_rate else math.nan
        aim = ">= 10x" if n in exact_rate else ""
        if n in exact_rate:
            aims.at_least(
                f"tolerance mode (1e-5 of the target) / exact rate, n = {n}",
                ratio,
                10.0,
                unit="x",
                includes="solve(error_tolerance=...) cells/s over exact solve cells/s, "
                "same instances; every error within the tolerance",
            )
        print(
            f"{n:>3} {row.cells:>9} {row.cells_per_s:>12,.0f} {row.proven:>7.0%} "
            f"{ratio:>7.1f}x  {aim}"
        )

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
        if use_cpsat and (n <= 12 or not quick):
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
