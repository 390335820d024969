"""`labrss rss-study`: bits of precision against the number of elements (CSV + PNG)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from labrss.cli.batch_args import add_engine_arguments, engine_from_args, progress_bar
from labrss.rss.study import MODELS
from labrss.station import StationError
from labrss.workflows.batch import BatchInterrupted
from labrss.workflows.rss_study import (
    DEFAULT_CONFIG,
    LARGE_CONFIG,
    QUICK_CONFIG,
    format_slopes,
    run_rss_study,
)

__all__ = ["parse_n_range", "register", "run"]


def parse_n_range(text: str) -> tuple[int, ...]:
    """Parse ``START:STOP:STEP`` (STOP included), ``START:STOP`` or ``a,b,c`` into sizes.

    >>> parse_n_range("4:22:2")[-1]
    22
    """
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] < 1):
                raise ValueError
            step = parts[2] if len(parts) == 3 else 1
            values = tuple(range(parts[0], parts[1] + 1, step))
        else:
            values = tuple(int(p) for p in text.split(","))
    except ValueError:
        msg = f"--n {text!r}: expected START:STOP[:STEP] (STOP included) or a,b,c"
        raise argparse.ArgumentTypeError(msg) from None
    if not values or any(v < 1 for v in values):
        msg = f"--n {text!r}: gives no sizes or a size below 1"
        raise argparse.ArgumentTypeError(msg)
    return values


def _parse_models(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        msg = f"--models {text!r}: unknown {unknown}; choose from {', '.join(MODELS)}"
        raise argparse.ArgumentTypeError(msg)
    return names


def register(subparsers: Any) -> None:
    """Add the `rss-study` sub-command."""
    d = DEFAULT_CONFIG
    q = QUICK_CONFIG
    p: argparse.ArgumentParser = subparsers.add_parser(
        "rss-study",
        help="RSS precision study: bits vs number of elements (CSV + PNG)",
        description=(
            "For each model and each n, draw seeded instances of n imprecise elements and "
            "compute, from all 2^n sorted subset sums, the exact worst-case error over the "
            "target interval and the error for random targets. Writes rss_study.csv, "
            "rss_study_slopes.csv and rss_study.png into --out and prints the fitted slopes "
            "(bits per element) next to the counting limit of 1 bit per element. The work "
            "runs in seeded chunks on Dask (a LocalCluster by default, or --scheduler): the "
            "result is the same for any number of workers, and --resume continues an "
            "interrupted run. Models: "
            + "; ".join(f"{m.name}: {m.description}" for m in MODELS.values())
        ),
    )
    p.add_argument(
        "--n",
        type=parse_n_range,
        default=None,
        metavar="START:STOP:STEP",
        help=f"sizes, STOP included (default 4:22:2; --quick {q.n_values[0]}:{q.n_values[-1]}:2)",
    )
    p.add_argument(
        "--instances",
        type=int,
        default=None,
        help=f"instances per (model, n) (default {d.instances}; --quick {q.instances})",
    )
    p.add_argument(
        "--models",
        type=_parse_models,
        default=None,
        metavar="M1,M2",
        help=f"comma-separated models (default all: {','.join(MODELS)})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"master seed (default {d.seed})")
    p.add_argument(
        "--targets",
        type=int,
        default=d.targets_per_instance,
        help=f"random targets per instance (default {d.targets_per_instance})",
    )
    p.add_argument(
        "--fit-min-n",
        type=int,
        default=d.fit_min_n,
        help=f"smallest n in the slope fit (default {d.fit_min_n})",
    )
    p.add_argument(
        "--out", type=Path, default=Path("rss-study"), help="output directory (default ./rss-study)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small run for the README (under a minute): fewer instances, n up to "
        f"{q.n_values[-1]}; explicit --n/--instances still win",
    )
    p.add_argument(
        "--large",
        action="store_true",
        help=f"the cluster-sized study: n = {LARGE_CONFIG.n_values[0]}:"
        f"{LARGE_CONFIG.n_values[-1]}:2, {LARGE_CONFIG.instances} instances, every model "
        "(tens of core-hours; docs/cluster.md); explicit --n/--instances still win",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--dims",
        type=_parse_dims,
        default=None,
        metavar="D1,D2",
        help="multidimensional study instead: for each dimension d, the max-norm error of "
        "the best subset of n random vectors in R^d (exact meet in the middle up to n = 24, "
        "heuristic beyond), and the n needed at eps = 0.1 and 0.05 next to the counting "
        "bound d log2(1/eps) and the published bound's shape; writes mrss_study.csv/.png "
        "(--n default 4:32:4, --instances default 100)",
    )
    p.add_argument(
        "--mrss-model",
        choices=("nsn", "normal", "board"),
        default="nsn",
        help="--dims vectors: normally-scaled normal (default), normal, or entries drawn from "
        "the board's measured elements (the latest calibration in --db)",
    )
    p.add_argument("--db", metavar="PATH", help="store for --mrss-model board")
    add_engine_arguments(p)
    p.set_defaults(func=run)


def _parse_dims(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(
            f"--dims {text!r}: expected dimensions >= 1 such as 1,2,4,8"
        )
    return dims


def _run_dims(args: argparse.Namespace) -> int:
    """``--dims``: the multidimensional study (`labrss.workflows.mrss_study`)."""
    from labrss.workflows.mrss_study import (
        MRSSStudyConfig,
        board_element_values,
        format_table,
        run_mrss_study_files,
    )

    base = MRSSStudyConfig()
    config = dataclasses.replace(
        base,
        dims=args.dims,
        n_values=args.n if args.n is not None else base.n_values,
        instances=args.instances if args.instances is not None else base.instances,
        model=args.mrss_model,
        seed=args.seed,
    )
    try:
        values = None
        if config.model == "board":
            from labrss.store import resolve_db_path

            values = board_element_values(Path(resolve_db_path(args.db)))
        bar = None
        if not args.no_progress:
            from tqdm import tqdm

            bar = tqdm(total=len(config.dims) * len(config.n_values), file=sys.stderr, desc="mrss")

        def progress(done: int, total: int, message: str) -> None:
            if bar is not None:
                bar.set_postfix_str(message, refresh=False)
                bar.n = done
                bar.refresh()

        outcome = run_mrss_study_files(config, args.out, board_values=values, progress=progress)
        if bar is not None:
            bar.close()
    except ValueError as exc:
        print(f"labrss rss-study: {exc}", file=sys.stderr)
        return 2
    print(format_table(outcome))
    print(f"wrote {outcome.csv_path}, {outcome.png_path}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the study from parsed arguments; print slopes to stdout, progress to stderr."""
    if args.dims is not None:
        return _run_dims(args)
    if args.quick and args.large:
        print("labrss rss-study: --quick and --large exclude each other", file=sys.stderr)
        return 2
    base = QUICK_CONFIG if args.quick else LARGE_CONFIG if args.large else DEFAULT_CONFIG
    config = dataclasses.replace(
        base,
        n_values=args.n if args.n is not None else base.n_values,
        instances=args.instances if args.instances is not None else base.instances,
        models=args.models if args.models is not None else base.models,
        seed=args.seed,
        targets_per_instance=args.targets,
        fit_min_n=args.fit_min_n,
    )
    try:
        config.validate()
        engine = engine_from_args(args)
    except (ValueError, StationError) as exc:
        print(f"labrss rss-study: {exc}", file=sys.stderr)
        return 2
    try:
        with progress_bar("rss-study", show=not args.no_progress) as progress:
            outcome = run_rss_study(
                config, args.out, engine=engine, resume=args.resume, progress=progress
            )
    except BatchInterrupted as exc:
        print(f"labrss rss-study: {exc}", file=sys.stderr)
        return 130
    except (ValueError, ConnectionError) as exc:
        print(f"labrss rss-study: {exc}", file=sys.stderr)
        return 2
    batch = outcome.batch
    reused = f", {batch.reused} chunk(s) reused" if batch is not None and batch.reused else ""
    where = batch.where if batch is not None else engine.where
    print(
        f"rss-study: {len(config.models)} model(s), n = {','.join(map(str, config.n_values))}, "
        f"{config.instances} instances each, seed {config.seed}, "
        f"{outcome.elapsed_s:.1f} s on {where}{reused}"
    )
    print(f"fitted slopes (bits per element, n >= {config.fit_min_n}):")
    print(format_slopes(outcome.fits) if outcome.fits else "  (fewer than 2 sizes in the fit)")
    print(f"wrote {outcome.csv_path}, {outcome.slopes_path}, {outcome.png_path}")
    return 0
