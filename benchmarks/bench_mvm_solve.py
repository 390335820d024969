"""Time to solve one MVM read of the simulated board: first read vs factorisation reused.

For each preset (the large 64x64x16 board by default), a seeded board with half of its
switches closed, routed ``MVM ADC``:

* **first read**: a switch has just changed, so the read assembles the netlist, factorises
  it (sparse LU) and solves: what every new switch configuration costs.
* **reused**: the configuration is unchanged and the inputs are new (a fresh DAC vector
  before every read, as in a sequence of MVMs): one pair of triangular solves on the cached
  factorisation plus the converter model.

Both are timed side by side in alternating rounds (median over rounds); the ratio
first/reused is the saving of the cache. Aims (`benchmarks.aims`): on the large board the
reused read at least 10x faster than the first (a broken cache gives ~1x); first and
reused reads at most 120 ms and 4 ms, twice the slowest figures of a quiet 2-core machine
(27-60 ms and 1.4-1.9 ms; on a loaded machine trust the ratio, measured side by side). A
read includes the netlist assembly (first read), the sparse LU or the triangular solves,
and the ADC model (gain, offset, noise, quantisation): the wall time of
`BoardModel.adc_read`, not of a protocol round trip.

    python -m benchmarks.bench_mvm_solve [--presets large default] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np

from benchmarks.aims import Aims
from simulator.board_config import load_board_config
from simulator.board_model import BoardModel, Routing


def bench_preset(preset: str, rounds: int, seed: int = 0) -> dict[str, float]:
    """Median seconds of a first read and of a reused read on ``preset``."""
    cfg = load_board_config(preset)
    rng = np.random.default_rng(seed)
    # a factorisation per new switch state (the low-rank path would turn the first read
    # into an update: benchmarks.bench_sim_calibration measures that one)
    model = BoardModel(cfg, seed, low_rank_updates=False)
    model.set_switches(rng.random(cfg.geometry.shape) < 0.5)
    model.set_routing(Routing("mvm_adc"))
    rows = cfg.geometry.rows

    # Inputs small enough that no column overflows the ADC.
    def inputs() -> np.ndarray:
        return rng.uniform(-0.05, 0.05, rows)

    model.set_dac_all(inputs())
    model.adc_read()  # warm-up (imports, first allocation)
    first: list[float] = []
    reused: list[float] = []
    for i in range(rounds):
        r, c, k = i % rows, (3 * i) % cfg.geometry.cols, i % cfg.geometry.branches
        model.set_branch(r, c, k, not model.switches[r, c, k])  # new configuration
        model.set_dac_all(inputs())
        t0 = time.perf_counter()
        model.adc_read()
        first.append(time.perf_counter() - t0)
        for _ in range(5):
            model.set_dac_all(inputs())
            t0 = time.perf_counter()
            model.adc_read()
            reused.append(time.perf_counter() - t0)
    stats = model.solver_stats()
    return {
        "first_s": statistics.median(first),
        "reused_s": statistics.median(reused),
        "free_nodes": float(stats["free_nodes"]),
        "lu_nnz": float(stats["lu_nnz"]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["large", "default", "small"])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    print(
        f"{'preset':<8} {'geometry':>10} {'free nodes':>10} {'nnz(L+U)':>10} "
        f"{'first read':>12} {'reused':>12} {'ratio':>7}"
    )
    aims = Aims("bench_mvm_solve")
    for preset in args.presets:
        geo = load_board_config(preset).geometry
        res = bench_preset(preset, args.rounds)
        ratio = res["first_s"] / res["reused_s"]
        print(
            f"{preset:<8} {f'{geo.rows}x{geo.cols}x{geo.branches}':>10} "
            f"{int(res['free_nodes']):>10} {int(res['lu_nnz']):>10} "
            f"{res['first_s'] * 1e3:>9.2f} ms {res['reused_s'] * 1e3:>9.3f} ms "
            f"{ratio:>6.1f}x"
        )
        if preset == "large":
            what = "BoardModel.adc_read wall time, 64x64x16, half the switches closed"
            aims.at_least("large board: first read / reused read", ratio, 10.0, unit="x")
            aims.at_most(
                "large board: first read (new switch state)",
                res["first_s"] * 1e3,
                120.0,
                unit="ms",
                includes=what + ": netlist, sparse LU, solve, ADC model",
            )
            aims.at_most(
                "large board: read with the LU reused (new inputs)",
                res["reused_s"] * 1e3,
                4.0,
                unit="ms",
                includes=what + ": triangular solves and ADC model",
            )
    return aims.finish()


if __name__ == "__main__":
    raise SystemExit(main())
