"""Run the RSS precision study and write its CSV tables and PNG figure (the I/O side).

The computation is `labrss.rss.study` (pure); this module loops over models and sizes,
optionally over several worker processes, reports progress, and writes

* ``rss_study.csv``: one row per (model, n, statistic): ``model, n, instances,
  statistic, error, bits, counting_limit_bits`` (errors in the model's unit, 1 or G0);
* ``rss_study_slopes.csv``: the fitted slopes (bits per element) per (model, statistic);
* ``rss_study.png``: bits against n, one panel per model.

Same configuration, same files: every number comes from the seeded streams of
`labrss.rss.study` and is written with Python's shortest round-trip float repr.
"""

from __future__ import annotations

import csv
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from labrss.report.rss_study_plot import plot_rss_study
from labrss.rss.study import (
    DEFAULT_FIT_MIN_N,
    MODELS,
    PointErrors,
    SlopeFit,
    StatisticRow,
    fit_slopes,
    run_point,
    summarize_point,
)

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_CONFIG",
    "QUICK_CONFIG",
    "RSSStudyConfig",
    "RSSStudyOutcome",
    "format_slopes",
    "read_study_csv",
    "run_rss_study",
    "write_study_csv",
]

CSV_COLUMNS = ("model", "n", "instances", "statistic", "error", "bits", "counting_limit_bits")
_SLOPE_COLUMNS = ("model", "statistic", "slope_bits_per_element", "intercept", "n_min", "n_max")

#: Progress callback: (work done, total work, message). Work is counted in subset sums
#: (instances x 2**n), so the fraction done tracks the time spent.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RSSStudyConfig:
    """What to run: sizes, instances per size, models (names in `MODELS`), seed."""

    n_values: tuple[int, ...] = (4, 6, 8, 10, 12, 14, 16, 18, 20, 22)
    instances: int = 2500
    models: tuple[str, ...] = tuple(MODELS)
    seed: int = 20230323
    targets_per_instance: int = 16
    fit_min_n: int = DEFAULT_FIT_MIN_N
    jobs: int = 1

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            msg = f"rss-study: unknown model(s) {unknown}; choose from {sorted(MODELS)}"
            raise ValueError(msg)
        if not self.models or not self.n_values:
            msg = "rss-study: need at least one model and one n"
            raise ValueError(msg)
        if self.instances < 1 or self.targets_per_instance < 1 or self.jobs < 1:
            msg = (
                f"rss-study: instances ({self.instances}), targets per instance "
                f"({self.targets_per_instance}) and jobs ({self.jobs}) must be >= 1"
            )
            raise ValueError(msg)
        for name in self.models:
            for n in self.n_values:
                MODELS[name].check_n(n)


#: The full study of issue 4 (about 20 core-minutes, dominated by n = 22).
DEFAULT_CONFIG = RSSStudyConfig()
#: The README's quick run: under a minute on 2 cores.
QUICK_CONFIG = RSSStudyConfig(n_values=(4, 6, 8, 10, 12, 14, 16, 18), instances=500)


@dataclass(frozen=True)
class RSSStudyOutcome:
    """The study's rows and fits, and where they were written."""

    config: RSSStudyConfig
    rows: list[StatisticRow]
    fits: list[SlopeFit]
    csv_path: Path
    slopes_path: Path
    png_path: Path
    elapsed_s: float
    points: list[PointErrors] = field(repr=False, default_factory=list)


def _point_job(model: str, n: int, instances: int, seed: int, targets: int) -> PointErrors:
    """Worker entry point (module level so that it pickles)."""
    return run_point(MODELS[model], n, instances, seed=seed, targets_per_instance=targets)


def _fmt(x: float | int | str) -> str:
    return repr(x) if isinstance(x, float) else str(x)


def write_study_csv(rows: Sequence[StatisticRow], path: Path) -> Path:
    """Write the study rows (`CSV_COLUMNS`) to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    _fmt(v)
                    for v in (
                        r.model,
                        r.n,
                        r.instances,
                        r.statistic,
                        r.error,
                        r.bits,
                        r.counting_limit_bits,
                    )
                ]
            )
    return path


def read_study_csv(path: Path) -> list[StatisticRow]:
    """Read rows written by `write_study_csv`; a malformed file raises ValueError naming it."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            msg = f"{path}: header {reader.fieldnames} is not {list(CSV_COLUMNS)}"
            raise ValueError(msg)
        rows = []
        for line, rec in enumerate(reader, start=2):
            try:
                rows.append(
                    StatisticRow(
                        rec["model"],
                        int(rec["n"]),
                        int(rec["instances"]),
                        rec["statistic"],
                        float(rec["error"]),
                        float(rec["bits"]),
                        float(rec["counting_limit_bits"]),
                    )
                )
            except (TypeError, ValueError) as exc:
                msg = f"{path}, line {line}: {exc}"
                raise ValueError(msg) from exc
    return rows


def _write_slopes(fits: Sequence[SlopeFit], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(_SLOPE_COLUMNS)
        for f in fits:
            writer.writerow(
                [_fmt(v) for v in (f.model, f.statistic, f.slope, f.intercept, f.n_min, f.n_max)]
            )
    return path


def run_rss_study(
    config: RSSStudyConfig,
    out_dir: Path,
    *,
    progress: Progress | None = None,
) -> RSSStudyOutcome:
    """Run every (model, n) point of ``config`` and write CSV, slopes CSV and PNG.

    With ``config.jobs > 1`` the points run in that many worker processes, largest n
    first; results do not depend on ``jobs``. Workers are spawned, not forked: numba's
    OpenMP threads make fork unsafe once a parallel kernel has run in this process
    (spawn skips re-running a package's ``__main__``, so `python -m labrss` is safe).
    """
    config.validate()
    start = time.perf_counter()
    points_todo = [(m, n) for m in config.models for n in config.n_values]
    total = sum(config.instances << n for _, n in points_todo)
    done = 0
    results: dict[tuple[str, int], PointErrors] = {}

    def report(work: int, message: str) -> None:
        nonlocal done
        done += work
        if progress is not None:
            progress(done, total, message)

    if config.jobs == 1:
        for model, n in points_todo:

            def chunk_done(k: int, n: int = n, model: str = model) -> None:
                report(k << n, f"{model} n={n}")

            results[(model, n)] = run_point(
                MODELS[model],
                n,
                config.instances,
                seed=config.seed,
                targets_per_instance=config.targets_per_instance,
                progress=chunk_done,
            )
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=config.jobs, mp_context=ctx) as pool:
            futures = {
                pool.submit(
                    _point_job,
                    model,
                    n,
                    config.instances,
                    config.seed,
                    config.targets_per_instance,
                ): (model, n)
                for model, n in sorted(points_todo, key=lambda p: -p[1])
            }
            for fut in as_completed(futures):
                model, n = futures[fut]
                results[(model, n)] = fut.result()
                report(config.instances << n, f"{model} n={n}")

    points = [results[p] for p in points_todo]
    rows = [row for p in points for row in summarize_point(p)]
    fits = fit_slopes(rows, min_n=config.fit_min_n)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = write_study_csv(rows, out_dir / "rss_study.csv")
    slopes_path = _write_slopes(fits, out_dir / "rss_study_slopes.csv")
    png_path = plot_rss_study(rows, out_dir / "rss_study.png", fits=fits)
    return RSSStudyOutcome(
        config,
        rows,
        fits,
        csv_path,
        slopes_path,
        png_path,
        time.perf_counter() - start,
        points,
    )


def format_slopes(fits: Sequence[SlopeFit]) -> str:
    """The fitted slopes as a text table, next to the counting limit of 1 bit/element."""
    lines = [
        f"{'model':<16}{'statistic':<16}{'n range':>9}{'slope':>9}  counting limit",
    ]
    for f in sorted(fits, key=lambda f: (f.model, f.statistic)):
        slope = f"{f.slope:.3f}" if math.isfinite(f.slope) else "nan"
        lines.append(f"{f.model:<16}{f.statistic:<16}{f'{f.n_min}..{f.n_max}':>9}{slope:>9}  1.000")
    return "\n".join(lines)
