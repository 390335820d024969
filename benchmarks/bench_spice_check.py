"""The board's nodal solve and ngspice on the same netlist: solve times side by side.

For each preset, one seeded state (30 % of the switches closed, a cell routed 2-wire,
1 V of force): the simulator's solve of a new switch state (netlist, sparse LU, solve:
`BoardModel(low_rank_updates=False)`), the same state reached by one switch change from
a factorised one (a low-rank update), and ``ngspice -b`` on the netlist of
`simulator.spice` (the whole process: parse, set up, operating point, write), best of
``--repeats``. Also the largest node-voltage difference, relative, and the SMU current's
(ngspice: the sum of the routed row's ammeters, `simulator.spice.smu_current_A`).

Aims: node voltages and the SMU current agree to 1e-9 relative on every preset (the
large one is checked here only: its ngspice run takes 15-60 s; tests/simulator/
test_spice.py covers its parameters on a cut of its geometry). Needs ngspice (Debian).

    python -m benchmarks.bench_spice_check [--presets small default large] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.aims import Aims
from simulator.board_config import load_board_config
from simulator.board_model import BoardModel, Routing
from simulator.spice import board_netlist, node_names, smu_current_A


def _ngspice(netlist: str, work: Path) -> tuple[dict[str, float], float]:
    raw = work / "op.raw"
    deck = work / "board.cir"
    control = f".control\nset filetype=ascii\nop\nwrite {raw}\n.endc\n.end\n"
    deck.write_text(netlist.replace(".end\n", control), encoding="ascii")
    t0 = time.perf_counter()
    subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, check=False, timeout=1800)
    dt = time.perf_counter() - t0
    lines = raw.read_text().splitlines()
    head, body = lines.index("Variables:"), lines.index("Values:")
    names = [line.split()[1] for line in lines[head + 1 : body]]
    values = [float(line.split()[-1]) for line in lines[body + 1 :] if line.strip()]
    return dict(zip(names, values, strict=True)), dt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "default", "large"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    aims = Aims("bench_spice_check")
    if shutil.which("ngspice") is None:
        print("ngspice is not installed (Debian: apt-get install ngspice)")
        aims.holds("ngspice installed", False)
        return aims.finish()
    print(
        f"{'preset':<8} {'factorise+solve':>16} {'low-rank update':>16} {'ngspice':>10} "
        f"{'max rel dV':>11} {'rel dI_SMU':>11}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for preset in args.presets:
            cfg = load_board_config(preset)
            rng = np.random.default_rng(0)
            closed = rng.random(cfg.geometry.shape) < 0.3
            full = BoardModel(cfg, 0, low_rank_updates=False)
            fast = BoardModel(cfg, 0, low_rank_updates=True)
            for m in (full, fast):
                m.set_switches(closed)
                m.set_routing(Routing("cell", 1, 2))
            fast.solved_state(1.0)  # the factorised base
            t_full = t_fast = t_spice = math.inf
            for i in range(args.repeats):
                for m in (full, fast):
                    m.set_branch(1, 2, i % cfg.geometry.branches, True)
                t0 = time.perf_counter()
                v_full, i_full = full.solved_state(1.0)
                t_full = min(t_full, time.perf_counter() - t0)
                t0 = time.perf_counter()
                fast.solved_state(1.0)
                t_fast = min(t_fast, time.perf_counter() - t0)
                spice, dt = _ngspice(board_netlist(full, 1.0), work)
                t_spice = min(t_spice, dt)
            v_spice = np.array([spice[f"v({n})"] for n in node_names(full.nodes)])
            rel = float(np.max(np.abs(v_spice - v_full) / np.maximum(np.abs(v_full), 1e-6)))
            rel_i = abs(smu_current_A(spice, "cell") - i_full) / abs(i_full)
            print(
                f"{preset:<8} {t_full * 1e3:>13.2f} ms {t_fast * 1e3:>13.2f} ms "
                f"{t_spice:>8.2f} s {rel:>11.1e} {rel_i:>11.1e}",
                flush=True,
            )
            aims.at_most(
                f"{preset}: SMU current, simulator vs ngspice (relative)",
                rel_i,
                1e-9,
                includes="ngspice: the sum of the routed row's ammeters",
            )
            aims.at_most(
                f"{preset}: node voltages, simulator vs ngspice (relative)",
                rel,
                1e-9,
                includes="every node of the crossbar netlist, relative to max(|V|, 1 uV)",
            )
    return aims.finish()


if __name__ == "__main__":
    raise SystemExit(main())
