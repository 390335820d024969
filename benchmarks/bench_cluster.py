"""Batch work on the Dask engine: pruning a larger network and the `--large` study, 1 vs 2 workers.

Run: ``python -m benchmarks.bench_cluster`` (about 5-10 minutes on 2 cores; ``--quick``
for a smoke run that checks nothing). Prints three tables and exits non-zero when an aim
is missed.

1. SLTH pruning (`labrss.workflows.prune`, method ``pensia``) of a 64-256-128-10 MLP
   trained on scikit-learn's digits, at n = 32 and 40: wall time of the chunked solve on
   a LocalCluster of 1 and of 2 worker processes (one thread each, workers warmed up
   first: imports and numba's compiled cache loaded; best of ``--repeats``, 1 and 2
   workers alternating so that both see the same machine load), the speed-up, the peak
   RSS per worker, and the pruned network's own test accuracy next to the target's.
2. The `--large` precision study (n = 4..26, 10,000 instances, every model): the cost
   of one chunk of each size measured on one worker (a sample of chunks per (model, n),
   never the whole study), the whole study's work from the chunk counts, and a
   projection to 64 workers: ``total work / (64 x efficiency)`` with the efficiency
   measured here on 2 workers, bounded below by the longest chunk. The same sample is
   run on 2 workers for its speed-up.
3. Bit-identity: the pruned networks (1 vs 2 workers) and the study sample (1 vs 2
   workers) compared array by array.

Aims (exit 1 on a miss): speed-up >= 1.7 on 2 workers for the pruning at n = 32 and at
n = 40 and for the study sample; identical results for 1 and 2 workers; the pruned
network at n = 40 within 1 point of the target's test accuracy.

Two speed-ups are printed. *Wall-clock*: 1-worker over 2-worker wall time. *Dedicated
core*: 1-worker CPU seconds over the busiest of the 2 workers' CPU seconds (each chunk's
worker-process CPU time, `ChunkStats.cpu_seconds`): what the wall-clock ratio is on two
otherwise idle cores, counting load imbalance and any slowdown of the chunks themselves
(memory bandwidth shows up as CPU time) but not the engine's scheduling gaps. On a
shared machine (1-minute load average >= 1.5 before the start, printed) the wall times
measure the other work more than the engine, so the aim is checked on the
dedicated-core speed-up and the wall-clock one is printed beside it; on a quiet machine
it is checked on wall time. The projection to 64 workers uses the dedicated-core
efficiency and the chunks' CPU seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from labrss.networks.digits import train_digits_mlp
from labrss.networks.model import Network
from labrss.workflows.batch import BatchReport, Chunk, EngineSettings, open_client, run_chunks
from labrss.workflows.prune import PRUNE_METHODS, PruneSettings
from labrss.workflows.rss_study import LARGE_CONFIG, RSSStudyConfig, point_chunks

SPEEDUP_AIM = 1.7
ACCURACY_AIM_POINTS = 1.0
WORKERS_PROJECTED = 64
#: Below this 1-minute load average (before the benchmark starts) the machine counts as
#: quiet and the speed-up aim is checked on wall time; above, other work decides the
#: wall times and the aim is checked on the CPU makespan (see the module docstring).
QUIET_LOAD = 1.5


@dataclass
class Timing:
    """Best wall time (s) of the chunked run and its report."""

    wall_s: float
    report: BatchReport


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def _timed_runs(
    chunks: list[Chunk], warm: list[Chunk], repeats: int
) -> tuple[dict[int, Timing], dict[int, float]]:
    """Best-of-``repeats`` wall time on 1 and 2 workers, alternating; cluster start-up (s)."""
    best: dict[int, Timing] = {}
    startup: dict[int, float] = {}
    for _ in range(repeats):
        for workers in (1, 2):
            engine = EngineSettings(workers=workers)
            t0 = time.perf_counter()
            with open_client(engine) as client:
                client.wait_for_workers(workers)
                for c in warm:  # imports + numba's cache on every worker
                    client.run(_warm, c.func, c.args)
                startup[workers] = time.perf_counter() - t0
                t1 = time.perf_counter()
                report = run_chunks(chunks, engine, client=client)
                wall = time.perf_counter() - t1
            if workers not in best or wall < best[workers].wall_s:
                best[workers] = Timing(wall, report)
    return best, startup


def _warm(func: Callable[..., object], args: tuple[object, ...]) -> None:
    func(*args)


def cpu_makespan(report: BatchReport) -> float:
    """The busiest worker's CPU seconds: the wall time on dedicated cores, overheads aside."""
    per: dict[str, float] = {}
    for s in report.stats.values():
        per[s.worker] = per.get(s.worker, 0.0) + s.cpu_seconds
    return max(per.values())


def speedups(
    one: BatchReport, one_wall: float, two: BatchReport, two_wall: float
) -> tuple[float, float]:
    """Wall-clock speed-up and dedicated-core (CPU makespan) speed-up of 2 workers over 1."""
    return one_wall / two_wall, cpu_makespan(one) / cpu_makespan(two)


def _same(a: BatchReport, b: BatchReport) -> bool:
    return a.results.keys() == b.results.keys() and all(
        a.results[k].keys() == b.results[k].keys()
        and all(np.array_equal(a.results[k][n], b.results[k][n]) for n in a.results[k])
        for k in a.results
    )


def _per_worker(report: BatchReport) -> str:
    per: dict[str, float] = {}
    for s in report.stats.values():
        per[s.worker] = per.get(s.worker, 0.0) + s.cpu_seconds
    return "/".join(f"{v:.1f}" for v in sorted(per.values()))


def _mib(report: BatchReport) -> str:
    peaks = report.peak_rss_per_worker()
    return "/".join(f"{v / 2**20:.0f}" for v in sorted(peaks.values()))


def bench_pruning(
    network: Network,
    *,
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_values: tuple[int, ...],
    repeats: int,
    check: Callable[[str, bool], None],
    check_speedup: Callable[[str, float, float], None],
) -> None:
    target_acc = network.accuracy(x_test, y_test)
    print(f"\n1. SLTH pruning ({network.name}, target test accuracy {100 * target_acc:.2f} %)")
    print(
        f"{'n':>3} {'chunks':>7} {'instances':>10} {'1 worker s':>11} {'2 workers s':>12} "
        f"{'speed-up':>9} {'CPU s 1w':>9} {'CPU s 2w':>12} {'CPU speed-up':>13} "
        f"{'peak RSS MiB 1w | 2w':>22} {'pruned acc %':>13}"
    )
    for n in n_values:
        settings = PruneSettings(n=n, seed=0)
        job = PRUNE_METHODS["pensia"].build(network, settings)
        warm = job.chunks[-2:]  # the small output-layer chunks: cheap, same kernels
        best, _ = _timed_runs(job.chunks, warm, repeats)
        one, two = best[1], best[2]
        speedup, cpu_speedup = speedups(one.report, one.wall_s, two.report, two.wall_s)
        ticket = job.assemble(two.report.results)
        acc = ticket.network.accuracy(x_test, y_test)
        instances = sum(int(c.args[2].size) for c in job.chunks)
        print(
            f"{n:>3} {len(job.chunks):>7} {instances:>10} {one.wall_s:>11.1f} "
            f"{two.wall_s:>12.1f} {speedup:>9.2f} {cpu_makespan(one.report):>9.1f} "
            f"{_per_worker(two.report):>12} {cpu_speedup:>13.2f} "
            f"{_mib(one.report) + ' | ' + _mib(two.report):>22} {100 * acc:>13.2f}"
        )
        check_speedup(f"pruning n={n}", speedup, cpu_speedup)
        check(f"pruning n={n}: 1 and 2 workers identical", _same(one.report, two.report))
        if n == 40:
            check(
                f"pruning n=40: pruned accuracy {100 * acc:.2f} % within "
                f"{ACCURACY_AIM_POINTS} point of {100 * target_acc:.2f} %",
                100 * (target_acc - acc) <= ACCURACY_AIM_POINTS,
            )


def check_speedup_factory(
    quiet: bool, check: Callable[[str, bool], None]
) -> Callable[[str, float, float], None]:
    """The speed-up aim: on wall time when the machine was quiet, else on CPU makespan."""

    def check_speedup(what: str, wall: float, cpu: float) -> None:
        if quiet:
            check(f"{what}: wall-clock speed-up {wall:.2f} >= {SPEEDUP_AIM}", wall >= SPEEDUP_AIM)
        else:
            check(
                f"{what}: dedicated-core speed-up {cpu:.2f} >= {SPEEDUP_AIM} (machine busy: "
                f"wall-clock {wall:.2f} not checked)",
                cpu >= SPEEDUP_AIM,
            )

    return check_speedup


def bench_large_study(
    sample_per_point: int,
    sizes: tuple[int, ...],
    *,
    repeats: int,
    check: Callable[[str, bool], None],
    check_speedup: Callable[[str, float, float], None],
) -> None:
    config = LARGE_CONFIG
    all_chunks = point_chunks(config)
    # the sample: the first `sample_per_point` chunks of each (model, n) in `sizes`
    sample = [c for (m, n), cs in all_chunks.items() if n in sizes for c in cs[:sample_per_point]]
    warm_cfg = RSSStudyConfig(n_values=(4,), instances=2, models=config.models)
    warm = [c for cs in point_chunks(warm_cfg).values() for c in cs]
    best, _ = _timed_runs(sample, warm, repeats)
    one, two = best[1], best[2]
    speedup, cpu_speedup = speedups(one.report, one.wall_s, two.report, two.wall_s)
    per_chunk: dict[int, float] = {}
    for n in sizes:
        secs = [s.cpu_seconds for k, s in one.report.stats.items() if f"_n{n:02d}_" in k]
        per_chunk[n] = float(np.median(secs))
    print(
        f"\n2. --large study (n = {config.n_values[0]}..{config.n_values[-1]}, "
        f"{config.instances} instances, {len(config.models)} models): CPU seconds per chunk "
        f"of one worker process (median of {sample_per_point} chunks x "
        f"{len(config.models)} models; CPU time, not wall: the machine is shared)"
    )
    print(f"{'n':>3} {'instances/chunk':>16} {'chunks':>8} {'s/chunk':>9} {'core-hours':>11}")
    total_s = 0.0
    longest = 0.0
    for n in config.n_values:
        cs = [c for (m, nn), lst in all_chunks.items() if nn == n for c in lst]
        per = int(cs[0].args[3] - cs[0].args[2])
        if n in per_chunk:
            cost = per_chunk[n]
        else:  # below the measured sizes: the smallest measured one's time per subset sum
            n_ref = min(per_chunk)
            cost = per_chunk[n_ref] * cs[0].cost / all_chunks[(config.models[0], n_ref)][0].cost
        total_s += cost * len(cs)
        longest = max(longest, cost)
        print(f"{n:>3} {per:>16} {len(cs):>8} {cost:>9.3f} {cost * len(cs) / 3600:>11.2f}")
    efficiency = min(cpu_speedup, 2.0) / 2
    projected = max(total_s / (WORKERS_PROJECTED * efficiency), longest)
    print(
        f"whole --large study: {total_s / 3600:.1f} core-hours of chunks; projected wall time on "
        f"{WORKERS_PROJECTED} dedicated workers at the 2-worker efficiency measured here "
        f"({efficiency:.2f}): {projected / 3600:.2f} h ({projected / 60:.0f} min)"
    )
    print(
        f"sample ({len(sample)} chunks, n = {','.join(map(str, sizes))}): 1 worker "
        f"{one.wall_s:.1f} s, 2 workers {two.wall_s:.1f} s wall (speed-up {speedup:.2f}); CPU "
        f"makespan 1w {cpu_makespan(one.report):.1f} s, 2w {_per_worker(two.report)} s "
        f"(speed-up {cpu_speedup:.2f}); peak RSS per worker MiB 1w {_mib(one.report)} | "
        f"2w {_mib(two.report)}"
    )
    check_speedup("study sample", speedup, cpu_speedup)
    check("study sample: 1 and 2 workers identical", _same(one.report, two.report))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="smoke run: small, aims not checked")
    p.add_argument("--repeats", type=int, default=2, help="best of R runs per worker count")
    args = p.parse_args(argv)
    misses: list[str] = []

    def check(what: str, ok: bool) -> None:
        print(f"  [{'ok' if ok else 'MISSED'}] {what}")
        if not ok:
            misses.append(what)

    load_before = os.getloadavg()[0]
    quiet = load_before < QUIET_LOAD
    print(f"bench_cluster: {os.cpu_count()} cores, {_load()}")
    print(
        "speed-up aim on "
        + (
            "wall time (machine quiet)"
            if quiet
            else f"CPU makespan: load {load_before:.1f} >= {QUIET_LOAD} from other work makes "
            "wall-clock ratios measure that work, not the engine"
        )
    )
    check_speedup = check_speedup_factory(quiet, check)
    skip = check_speedup_factory(True, lambda w, o: None)
    t0 = time.perf_counter()
    if args.quick:
        model = train_digits_mlp((16,), 0)
        bench_pruning(
            model.network,
            x_test=model.data.x_test,
            y_test=model.data.y_test,
            n_values=(16,),
            repeats=1,
            check=lambda w, o: None,
            check_speedup=skip,
        )
        bench_large_study(1, (12, 14), repeats=1, check=lambda w, o: None, check_speedup=skip)
        return 0
    model = train_digits_mlp((256, 128), 0)
    bench_pruning(
        model.network,
        x_test=model.data.x_test,
        y_test=model.data.y_test,
        n_values=(32, 40),
        repeats=args.repeats,
        check=check,
        check_speedup=check_speedup,
    )
    bench_large_study(
        2, (20, 22, 24, 26), repeats=args.repeats, check=check, check_speedup=check_speedup
    )
    print(f"\n{time.perf_counter() - t0:.0f} s; {_load()}")
    if misses:
        print(f"MISSED {len(misses)} aim(s): " + "; ".join(misses))
        return 1
    print("all aims met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
