"""`python -m benchmarks [NAME ...]`: run every benchmark script (or the named ones) in turn.

Each `benchmarks/bench_*.py` is a standalone script that prints its own table; this runner
executes them one after the other as ``python -m benchmarks.bench_x`` would, so the figures
of all of them come from the same machine in the same session (compare ratios, not
absolute times: machines are noisy).
"""

from __future__ import annotations

import pkgutil
import runpy
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the benchmark modules named in ``argv`` (default: all), return an exit code."""
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = argv or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(names)}")
        return 2
    for name in wanted:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        t0 = time.perf_counter()
        saved_argv = sys.argv
        sys.argv = [f"benchmarks.{name}"]
        try:
            runpy.run_module(f"benchmarks.{name}", run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (0, None):
                print(f"benchmarks.{name} exited with {exc.code}")
                return 1
        finally:
            sys.argv = saved_argv
        print(f"=== {name}: {time.perf_counter() - t0:.1f} s wall ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
