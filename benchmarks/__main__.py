"""`python -m benchmarks [NAME ...]`: run every benchmark script (or the named ones) in turn.

Each `benchmarks/bench_*.py` is a standalone script that prints its own table and its aims
(`benchmarks.aims`), exiting non-zero when an aim is missed; this runner executes them one
after the other as ``python -m benchmarks.bench_x`` would, so the figures of all of them
come from the same machine in the same session (compare ratios, not absolute times:
machines are noisy). It runs every one even when an earlier one missed, then lists the
misses and exits 1 if there were any (`make bench` fails on a regression), 2 for an
unknown name.
"""

from __future__ import annotations

import pkgutil
import runpy
import sys
import time
from pathlib import Path


def _run(name: str) -> int:
    """Run ``benchmarks.<name>`` as ``__main__``; its exit code (an exception is 1)."""
    saved_argv = sys.argv
    sys.argv = [f"benchmarks.{name}"]
    try:
        runpy.run_module(f"benchmarks.{name}", run_name="__main__")
    except SystemExit as exc:
        if exc.code in (0, None):
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # a crash is a miss: report it and go on with the others
        print(f"benchmarks.{name} raised {type(exc).__name__}: {exc}", flush=True)
        return 1
    finally:
        sys.argv = saved_argv
    return 0


def main(argv: list[str]) -> int:
    """Run the benchmark modules named in ``argv`` (default: all), return an exit code."""
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = argv or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(names)}")
        return 2
    failed: list[str] = []
    for name in wanted:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        t0 = time.perf_counter()
        code = _run(name)
        verdict = "aims met" if code == 0 else f"exit {code}: an aim MISSED"
        print(f"=== {name}: {time.perf_counter() - t0:.1f} s wall, {verdict} ===", flush=True)
        if code != 0:
            failed.append(name)
    print()
    if failed:
        print(f"benchmarks that missed an aim: {', '.join(failed)}")
        return 1
    print(f"every aim of {len(wanted)} benchmark(s) met")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
