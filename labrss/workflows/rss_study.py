"""Run the RSS precision study and write its CSV tables and PNG figure (the I/O side).

The computation is `labrss.rss.study` (pure); this module splits every (model, n) point
into chunks of consecutive instances, each seeded by its position in the point's stream,
runs them on the batch engine (`labrss.workflows.batch`: Dask, a LocalCluster or a
cluster), persists each finished chunk under ``OUT/chunks/`` (so that ``resume=True``
recomputes nothing finished), reports progress, and writes

* ``rss_study.csv``: one row per (model, n, statistic): ``model, n, instances,
  statistic, error, bits, counting_limit_bits`` (errors in the model's unit, 1 or G0);
* ``rss_study_slopes.csv``: the fitted slopes (bits per element) per (model, statistic);
* ``rss_study.png``: bits against n, one panel per model.

Same configuration, same files, whatever the number of workers or where they run: every
number comes from the seeded streams of `labrss.rss.study` and is written with Python's
shortest round-trip float repr.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labrss.report.rss_study_plot import plot_rss_study
from labrss.rss.study import (
    DEFAULT_FIT_MIN_N,
    MODELS,
    PointErrors,
    SlopeFit,
    StatisticRow,
    concatenate_points,
    fit_slopes,
    run_point,
    summarize_point,
)
from labrss.workflows.batch import (
    BatchReport,
    Chunk,
    ChunkStore,
    EngineSettings,
    run_chunks,
)

__all__ = [
    "CHUNK_SUMS",
    "CSV_COLUMNS",
    "DEFAULT_CONFIG",
    "LARGE_CONFIG",
    "QUICK_CONFIG",
    "RSSStudyConfig",
    "RSSStudyOutcome",
    "format_slopes",
    "point_chunks",
    "read_study_csv",
    "run_rss_study",
    "write_study_csv",
]

CSV_COLUMNS = ("model", "n", "instances", "statistic", "error", "bits", "counting_limit_bits")
_SLOPE_COLUMNS = ("model", "statistic", "slope_bits_per_element", "intercept", "n_min", "n_max")

#: Progress callback: (work done, total work, message). Work is counted in subset sums
#: (instances x 2**n), so the fraction done tracks the time spent.
Progress = Callable[[float, float, str], None]

#: Subset sums per chunk (instances x 2**n): 2**24 sums is about a second of one core
#: and 128 MiB of sorted sums; at n > 24 a chunk is one instance.
CHUNK_SUMS = 1 << 24


@dataclass(frozen=True)
class RSSStudyConfig:
    """What to run: sizes, instances per size, models (names in `MODELS`), seed."""

    n_values: tuple[int, ...] = (4, 6, 8, 10, 12, 14, 16, 18, 20, 22)
    instances: int = 2500
    models: tuple[str, ...] = tuple(MODELS)
    seed: int = 20230323
    targets_per_instance: int = 16
    fit_min_n: int = DEFAULT_FIT_MIN_N

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            msg = f"rss-study: unknown model(s) {unknown}; choose from {sorted(MODELS)}"
            raise ValueError(msg)
        if not self.models or not self.n_values:
            msg = "rss-study: need at least one model and one n"
            raise ValueError(msg)
        if self.instances < 1 or self.targets_per_instance < 1:
            msg = (
                f"rss-study: instances ({self.instances}) and targets per instance "
                f"({self.targets_per_instance}) must be >= 1"
            )
            raise ValueError(msg)
        for name in self.models:
            for n in self.n_values:
                MODELS[name].check_n(n)


#: The full study of issue 4 (about 20 core-minutes, dominated by n = 22).
DEFAULT_CONFIG = RSSStudyConfig()
#: The README's quick run: under a minute on 2 cores.
QUICK_CONFIG = RSSStudyConfig(n_values=(4, 6, 8, 10, 12, 14, 16, 18), instances=500)
#: The cluster-sized study (`--large`): n up to 26, 10,000 instances per point, every
#: model (about 43 core-hours, three quarters of it at n = 26; docs/cluster.md).
LARGE_CONFIG = RSSStudyConfig(n_values=tuple(range(4, 27, 2)), instances=10_000)


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
    batch: BatchReport | None = field(repr=False, default=None)


def _chunk_job(  # noqa: PLR0917 (called with the chunk's positional args)
    model: str, n: int, start: int, stop: int, seed: int, targets: int
) -> dict[str, np.ndarray]:
    """One chunk on a worker: instances ``start .. stop - 1`` of point (model, n)."""
    p = run_point(
        MODELS[model], n, stop - start, seed=seed, targets_per_instance=targets, start=start
    )
    return {
        "worst_error": p.worst_error,
        "worst_position": p.worst_position,
        "random_error": p.random_error,
        "interval_width": p.interval_width,
    }


def point_chunks(
    config: RSSStudyConfig, *, chunk_sums: int = CHUNK_SUMS
) -> dict[tuple[str, int], list[Chunk]]:
    """The chunks of every (model, n) point: consecutive instance ranges, by position.

    A chunk holds ``max(1, chunk_sums // 2**n)`` instances (the last one fewer); its
    key ``MODEL_nNN_START-STOP`` is its position, its cost its number of subset sums.
    """
    out: dict[tuple[str, int], list[Chunk]] = {}
    for model in config.models:
        for n in config.n_values:
            per = max(1, chunk_sums >> n)
            out[(model, n)] = [
                Chunk(
                    f"{model}_n{n:02d}_{a:06d}-{min(a + per, config.instances):06d}",
                    _chunk_job,
                    (
                        model,
                        n,
                        a,
                        min(a + per, config.instances),
                        config.seed,
                        config.targets_per_instance,
                    ),
                    cost=float((min(a + per, config.instances) - a) << n),
                )
                for a in range(0, config.instances, per)
            ]
    return out


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
    engine: EngineSettings | None = None,
    resume: bool = False,
    chunk_sums: int = CHUNK_SUMS,
    client: object | None = None,
) -> RSSStudyOutcome:
    """Run every (model, n) point of ``config`` on the batch engine; write CSV, slopes, PNG.

    ``engine``: where the chunks run (default: a LocalCluster, one worker per core);
    ``client``: an open `distributed.Client` to use instead. Each finished chunk is
    saved under ``out_dir/chunks``; ``resume=True`` keeps the chunks of an earlier run
    with the same configuration (else they are cleared) and computes only the rest.
    Raises `labrss.workflows.batch.BatchInterrupted` on Ctrl-C (finished chunks kept).
    The result does not depend on the engine, the workers or the chunking.
    """
    config.validate()
    start = time.perf_counter()
    chunks = point_chunks(config, chunk_sums=chunk_sums)
    store = ChunkStore.open(
        out_dir / "chunks",
        {
            "job": "rss-study",
            "models": list(config.models),
            "n_values": list(config.n_values),
            "instances": config.instances,
            "seed": config.seed,
            "targets_per_instance": config.targets_per_instance,
            "chunk_sums": chunk_sums,
        },
        resume=resume,
    )
    report = run_chunks(
        [c for cs in chunks.values() for c in cs],
        engine if engine is not None else EngineSettings(),
        store=store,
        progress=progress,
        client=client,
    )
    points = [
        concatenate_points(
            [
                PointErrors(
                    model,
                    n,
                    config.seed,
                    report.results[c.key]["worst_error"],
                    report.results[c.key]["worst_position"],
                    report.results[c.key]["random_error"],
                    report.results[c.key]["interval_width"],
                )
                for c in chunks[(model, n)]
            ]
        )
        for model in config.models
        for n in config.n_values
    ]
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
        report,
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
