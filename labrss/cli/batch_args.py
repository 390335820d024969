"""Command-line options shared by the batch commands (`rss-study`, `prune`): the engine.

Where chunks run, in order of precedence: ``--scheduler``, the ``LABRSS_SCHEDULER``
environment variable, the station's ``[batch] scheduler`` (``--station``), else a
LocalCluster of ``--workers`` processes (``0``: in this process, no worker processes).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from labrss.station import load_station
from labrss.workflows.batch import SCHEDULER_ENV, EngineSettings, resolve_scheduler

__all__ = ["add_engine_arguments", "engine_from_args", "progress_bar"]


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--scheduler``, ``--workers``, ``--threads-per-worker``, ``--dashboard``,
    ``--resume`` and ``--station``."""
    g = p.add_argument_group("batch engine (Dask; docs/cluster.md)")
    g.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        default=None,
        help=f"an existing Dask scheduler (default: ${SCHEDULER_ENV}, then the station's "
        "[batch] scheduler, else a LocalCluster; 'local' forces a LocalCluster)",
    )
    g.add_argument(
        "--workers",
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="LocalCluster worker processes (default: the station's [batch] workers, else one "
        "per core); 0 runs the chunks in this process",
    )
    g.add_argument(
        "--threads-per-worker",
        type=int,
        default=None,
        metavar="T",
        help="threads per worker and numba threads per task (default 1)",
    )
    g.add_argument(
        "--dashboard",
        action="store_true",
        help="serve the LocalCluster's Dask dashboard on a free port",
    )
    g.add_argument(
        "--resume",
        action="store_true",
        help="keep the chunks an interrupted run with the same settings saved in --out "
        "and compute only the rest",
    )
    g.add_argument(
        "--station", metavar="FILE", default=None, help="station TOML ([batch] settings)"
    )


def engine_from_args(args: argparse.Namespace) -> EngineSettings:
    """The engine settings from the parsed options (raises ValueError / StationError)."""
    batch = load_station(args.station).batch if args.station else None
    scheduler = resolve_scheduler(args.scheduler, batch.scheduler if batch else None)
    workers = args.workers
    if workers is None and batch is not None and batch.workers > 0:
        workers = batch.workers
    threads = args.threads_per_worker
    if threads is None:
        threads = batch.threads_per_worker if batch is not None else 1
    if workers is not None and workers < 0:
        msg = f"--workers {workers}: need 0 (this process) or more"
        raise ValueError(msg)
    if scheduler is None and workers == 0:
        return EngineSettings(workers=1, threads_per_worker=threads, processes=False)
    settings = EngineSettings(
        scheduler=scheduler,
        workers=workers if workers is not None else (os.cpu_count() or 1),
        threads_per_worker=threads,
        dashboard=bool(args.dashboard),
    )
    settings.validate()
    return settings


@contextmanager
def progress_bar(label: str, *, show: bool) -> Iterator[Callable[[float, float, str], None] | None]:
    """A tqdm bar on stderr fed by (done, total, message) callbacks (None if not shown)."""
    if not show:
        yield None
        return
    from tqdm import tqdm

    with tqdm(
        total=1.0, file=sys.stderr, unit="", bar_format="{l_bar}{bar}| {elapsed}<{remaining}"
    ) as bar:

        def progress(done: float, total: float, message: str) -> None:
            bar.set_description(f"{label} {message}", refresh=False)
            bar.n = done / total if total > 0 else 1.0
            bar.refresh()

        yield progress
