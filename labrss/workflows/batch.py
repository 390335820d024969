"""The one engine for batch work: a chunked map of independent, position-seeded tasks on Dask.

Precision studies (`labrss.workflows.rss_study`), SLTH pruning (`labrss.workflows.prune`)
and batch solves over many cells (`labrss.workflows.batch_solve`) split their work into
*chunks* and run them here, on Dask distributed: a `LocalCluster` of worker processes
(one thread each, numba's thread count set per task) by default, or an existing cluster
at ``tcp://HOST:PORT`` (``--scheduler``, the ``LABRSS_SCHEDULER`` environment variable or
the station's ``[batch] scheduler``; docs/cluster.md).

The seam (how a new kind of batch work joins):

* A `Chunk` is ``(key, func, args, cost)``. ``func`` is a module-level function (it is
  pickled to the workers) that takes plain data and returns a ``dict[str, ndarray]``:
  the pure algorithms in `labrss.rss` and `labrss.slth` are called inside it and import
  nothing of Dask. Its randomness comes from its *position* (the key and the arguments
  the caller derives from it), never from the worker, so that the merged result is
  bit-identical for any number of workers, and local or on a cluster.
* `run_chunks` runs every chunk not yet in the `ChunkStore`, saves each result as it
  completes (one ``.npz`` file per chunk, written atomically), reports progress from the
  futures as they complete, cancels the cluster's tasks on Ctrl-C (or any error), and
  returns every chunk's arrays, the finished ones read back from the store. A resumed
  run (``--resume``) recomputes nothing that finished; a worker lost mid-task is
  survived because Dask reschedules its chunk (up to ``allowed-failures`` times).
* The caller merges the chunks in key order, so the completion order never matters.

Ctrl-C: while `run_chunks` runs in the main thread with Python's default SIGINT handler,
a SIGINT is *recorded* (not raised as ``KeyboardInterrupt`` wherever the main thread happens
to be: inside Dask's client calls, a chunk's save, the cluster's start or close) and the
collecting loop, which looks at it at least every `_POLL_S` seconds, cancels the cluster's
tasks, closes the cluster and raises `BatchInterrupted`. A second Ctrl-C raises
``KeyboardInterrupt`` at once. A SIGINT the process inherited as *ignored* (a job started
with ``&`` by a non-interactive shell) stays ignored, as for every Unix program.

Nothing here knows what a chunk computes; `labrss.workflows.prune` keeps a registry of
pruning methods, each of which turns a target network into chunks and an assembly step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SCHEDULER_ENV",
    "BatchInterrupted",
    "BatchReport",
    "Chunk",
    "ChunkStats",
    "ChunkStore",
    "EngineSettings",
    "Progress",
    "fingerprint_of",
    "open_client",
    "resolve_scheduler",
    "run_chunks",
]

#: Environment variable naming the Dask scheduler (``tcp://HOST:PORT``) when no
#: ``--scheduler`` is given; the station's ``[batch] scheduler`` comes after it.
SCHEDULER_ENV = "LABRSS_SCHEDULER"

#: Progress callback: (work done, total work, message). Work is in the chunks' cost unit.
Progress = Callable[[float, float, str], None]

ChunkResult = dict[str, np.ndarray]

_KEY_RE = re.compile(r"^[A-Za-z0-9._=+-]+$")
_META_PREFIX = "__meta_"
#: Suffix of a chunk file being written (renamed to ``KEY.npz`` once complete).
_PARTIAL_SUFFIX = ".partial"
#: How often (s) the collecting loop looks for finished futures and a Ctrl-C.
_POLL_S = 0.02


@dataclass(frozen=True)
class Chunk:
    """One independent task: ``func(*args)`` returns a ``dict[str, ndarray]``.

    ``key`` names the chunk by its position (``[A-Za-z0-9._=+-]``, unique within a job;
    it is also the chunk's file name), ``cost`` its relative work (progress and order:
    the most expensive chunks are submitted first).
    """

    key: str
    func: Callable[..., ChunkResult]
    args: tuple[Any, ...]
    cost: float = 1.0

    def __post_init__(self) -> None:
        if not _KEY_RE.match(self.key):
            msg = f"chunk key {self.key!r}: use letters, digits and . _ = + - only"
            raise ValueError(msg)


@dataclass(frozen=True)
class EngineSettings:
    """Where and how chunks run.

    Attributes:
        scheduler: ``tcp://HOST:PORT`` of an existing Dask scheduler, or ``None`` for a
            `LocalCluster` started (and stopped) for the run.
        workers: LocalCluster worker processes (``None``: one per core).
        threads_per_worker: threads per worker, and numba's thread count in each task.
        dashboard: serve the LocalCluster's dashboard on a free port (off by default,
            so that nothing listens beyond the workers' loopback ports).
        processes: LocalCluster workers as processes (the default); ``False`` runs one
            worker thread inside this process (small runs, tests: no start-up cost).
    """

    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int = 1
    dashboard: bool = False
    processes: bool = True

    @classmethod
    def in_process(cls) -> EngineSettings:
        """One worker thread in this process: the same engine without worker processes."""
        return cls(workers=1, processes=False)

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        if self.scheduler is not None and "://" not in self.scheduler:
            msg = f"scheduler {self.scheduler!r}: expected an address like tcp://HOST:PORT"
            raise ValueError(msg)
        if self.workers is not None and self.workers < 1:
            msg = f"workers = {self.workers}: need at least 1"
            raise ValueError(msg)
        if self.threads_per_worker < 1:
            msg = f"threads per worker = {self.threads_per_worker}: need at least 1"
            raise ValueError(msg)

    @property
    def where(self) -> str:
        """Human description: the scheduler address or the local cluster's size."""
        if self.scheduler is not None:
            return f"scheduler {self.scheduler}"
        if not self.processes:
            return f"this process ({self.workers or 1} worker thread(s))"
        n = self.workers if self.workers is not None else (os.cpu_count() or 1)
        return f"local cluster of {n} worker process(es) x {self.threads_per_worker} thread(s)"


def resolve_scheduler(cli_value: str | None, station_value: str | None = None) -> str | None:
    """The scheduler to use: ``--scheduler``, else ``$LABRSS_SCHEDULER``, else the station's.

    ``"local"`` (from any of them) forces a LocalCluster; ``None`` everywhere also does.
    """
    for value in (cli_value, os.environ.get(SCHEDULER_ENV) or None, station_value):
        if value:
            return None if value == "local" else value
    return None


@contextlib.contextmanager
def open_client(settings: EngineSettings) -> Iterator[Any]:
    """A `distributed.Client` on ``settings``' cluster; a LocalCluster is closed on exit."""
    settings.validate()
    from distributed import Client, LocalCluster

    if settings.scheduler is not None:
        try:
            client = Client(settings.scheduler, timeout="20s")  # type: ignore[no-untyped-call]
        except OSError as exc:
            msg = f"cannot reach the Dask scheduler at {settings.scheduler}: {exc}"
            raise ConnectionError(msg) from exc
        with client:
            yield client
        return
    threads = settings.threads_per_worker
    extra: dict[str, Any] = {}
    if settings.processes:
        extra["host"] = "127.0.0.1"  # the workers listen on loopback only
        # numba and the BLAS/OpenMP pools sized to the worker's threads before it starts
        extra["env"] = {
            "NUMBA_NUM_THREADS": str(threads),
            "OMP_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
        }
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=settings.workers if settings.workers is not None else (os.cpu_count() or 1),
        threads_per_worker=threads,
        processes=settings.processes,
        dashboard_address=None,
        # The scheduler serves HTTP (health, metrics; the dashboard if asked) whatever
        # the setting: on a free loopback port, never on the fixed default 8787.
        scheduler_kwargs={"dashboard": settings.dashboard, "dashboard_address": "127.0.0.1:0"},
        # Each worker serves HTTP too (health, metrics): on loopback, also for in-process
        # workers (``processes=False``), whose server otherwise listens on every interface.
        worker_dashboard_address="127.0.0.1:0",
        silence_logs=40,  # logging.ERROR: a lost worker is reported by the run, not logged
        **extra,
    )
    with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        yield client


# ---------------------------------------------------------------------- persistence


def fingerprint_of(settings: Mapping[str, Any]) -> str:
    """A stable hash of a job's settings (JSON of sorted keys), for resume checks."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class ChunkStore:
    """Finished chunks of one job, one ``KEY.npz`` per chunk, in ``directory``.

    ``manifest.json`` holds the job's settings; `open` refuses to resume a job whose
    settings differ (the message names the first differing setting) and, without
    ``resume``, clears the chunks of an earlier run.
    """

    directory: Path
    settings: dict[str, Any]

    @classmethod
    def open(cls, directory: Path, settings: Mapping[str, Any], *, resume: bool) -> ChunkStore:
        """Open (and create) the store for a job with ``settings``."""
        directory = Path(directory)
        plain = json.loads(json.dumps(dict(settings), sort_keys=True, default=str))
        manifest = directory / "manifest.json"
        if resume and manifest.exists():
            try:
                old = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                msg = f"{manifest}: unreadable ({exc}); start again without --resume"
                raise ValueError(msg) from exc
            for key in sorted(set(old) | set(plain)):
                if old.get(key) != plain.get(key):
                    msg = (
                        f"--resume: {directory} holds a run with {key} = {old.get(key)!r}, "
                        f"not {plain.get(key)!r}; use the same settings or another output"
                    )
                    raise ValueError(msg)
        else:
            if directory.exists():
                for old_chunk in directory.glob("*.npz"):
                    old_chunk.unlink()
            directory.mkdir(parents=True, exist_ok=True)
            tmp = manifest.with_suffix(".tmp")
            tmp.write_text(json.dumps(plain, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, manifest)
        for partial in directory.glob("*" + _PARTIAL_SUFFIX):
            partial.unlink()  # a save cut short (the process killed): never a finished chunk
        return cls(directory, plain)

    def path(self, key: str) -> Path:
        """The file of chunk ``key``."""
        return self.directory / f"{key}.npz"

    def has(self, key: str) -> bool:
        """Whether chunk ``key`` finished in this or an earlier run."""
        return self.path(key).exists()

    def save(self, key: str, result: ChunkResult, stats: ChunkStats) -> None:
        """Write one chunk's arrays (and its stats) atomically.

        The arrays go to ``.KEY.partial`` first, renamed to ``KEY.npz`` when complete: a
        ``*.npz`` file in the directory is always a finished chunk, and a save cut short
        leaves nothing behind (or a ``.partial`` file that `open` removes).
        """
        arrays = {name: np.asarray(a) for name, a in result.items()}
        arrays[_META_PREFIX + "stats"] = np.array(json.dumps(stats.as_dict()))
        tmp = self.directory / f".{key}{_PARTIAL_SUFFIX}"
        try:
            with tmp.open("wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, self.path(key))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def load(self, key: str) -> tuple[ChunkResult, ChunkStats]:
        """Read chunk ``key`` back (no pickles)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError) as exc:
            msg = f"{path}: unreadable chunk ({exc}); delete it to recompute it"
            raise ValueError(msg) from exc
        meta = arrays.pop(_META_PREFIX + "stats", None)
        stats = (
            ChunkStats.from_dict(json.loads(str(meta)), reused=True)
            if meta is not None
            else ChunkStats(key, "", 0.0, 0, reused=True)
        )
        return arrays, stats


# ---------------------------------------------------------------------- running


@dataclass(frozen=True)
class ChunkStats:
    """Where and how long one chunk ran: worker address, wall seconds, worker peak RSS
    (bytes), and the CPU seconds of the worker process meanwhile (with one thread per
    worker: the chunk's cost on a dedicated core, whatever else shares the machine)."""

    key: str
    worker: str
    seconds: float
    peak_rss_bytes: int
    reused: bool = False
    cpu_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (stored with the chunk)."""
        return {
            "key": self.key,
            "worker": self.worker,
            "seconds": self.seconds,
            "peak_rss_bytes": self.peak_rss_bytes,
            "cpu_seconds": self.cpu_seconds,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, reused: bool) -> ChunkStats:
        """Inverse of `as_dict`."""
        return cls(
            str(d["key"]),
            str(d["worker"]),
            float(d["seconds"]),
            int(d["peak_rss_bytes"]),
            reused=reused,
            cpu_seconds=float(d.get("cpu_seconds", 0.0)),
        )


@dataclass
class BatchReport:
    """The outcome of `run_chunks`: every chunk's arrays and stats, and the wall time."""

    results: dict[str, ChunkResult]
    stats: dict[str, ChunkStats]
    wall_time_s: float
    where: str
    computed: int = 0
    reused: int = 0
    workers_seen: tuple[str, ...] = field(default_factory=tuple)

    def peak_rss_per_worker(self) -> dict[str, int]:
        """Largest peak RSS (bytes) each worker reported, over the chunks computed now."""
        peaks: dict[str, int] = {}
        for s in self.stats.values():
            if not s.reused:
                peaks[s.worker] = max(peaks.get(s.worker, 0), s.peak_rss_bytes)
        return peaks

    def compute_seconds(self) -> float:
        """Sum of the computed chunks' own run times (s): the work, without overheads."""
        return sum(s.seconds for s in self.stats.values() if not s.reused)


class BatchInterrupted(Exception):  # noqa: N818 (a stop asked for, not an error)
    """A batch run stopped by Ctrl-C: its finished chunks are saved (continue with --resume)."""

    def __init__(self, saved: int, total: int, directory: Path | None) -> None:
        self.saved = saved
        self.total = total
        self.directory = directory
        where = f" in {directory}" if directory is not None else ""
        super().__init__(
            f"interrupted: {saved} of {total} chunks finished and saved{where}; "
            "the cluster's tasks were cancelled; run again with --resume to continue"
        )


def _peak_rss_bytes() -> int:
    """This process's peak resident set size (bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def run_task(
    func: Callable[..., ChunkResult], args: tuple[Any, ...], key: str, threads: int
) -> tuple[ChunkResult, dict[str, Any]]:
    """Run one chunk on a worker: numba's threads set, timed, peak memory recorded."""
    import numba

    ceiling = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    numba.set_num_threads(max(1, min(threads, ceiling)))
    worker = f"pid {os.getpid()}"
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        worker = str(get_worker().address)
    start = time.perf_counter()
    cpu_start = time.process_time()
    out = func(*args)
    cpu = time.process_time() - cpu_start
    seconds = time.perf_counter() - start
    stats = ChunkStats(key, worker, seconds, _peak_rss_bytes(), cpu_seconds=cpu)
    return out, stats.as_dict()


class _CtrlC:
    """Ctrl-C during a run, recorded instead of raised (see the module docstring).

    Active only in the main thread and only over Python's default SIGINT handler: an
    application's own handler, or SIGINT ignored since the process started, is left alone.
    The first SIGINT sets `requested` and puts the previous handler back, so that a second
    one raises ``KeyboardInterrupt`` at once.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _CtrlC:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum: int, frame: object) -> None:
        # Only plain assignments here: the handler runs between two bytecodes of the main
        # thread, which may hold any lock (an Event.set() here could deadlock).
        self.requested = True
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None and signal.getsignal(signal.SIGINT) == self._on_sigint:
            signal.signal(signal.SIGINT, self._previous)
        self._previous = None


def run_chunks(
    chunks: Sequence[Chunk],
    settings: EngineSettings,
    *,
    store: ChunkStore | None = None,
    progress: Progress | None = None,
    client: Any | None = None,
) -> BatchReport:
    """Run every chunk not yet in ``store`` on the engine; return all chunks' arrays.

    ``client``: an open `distributed.Client` to reuse (else one is opened from
    ``settings`` and closed at the end). Progress is reported as each future completes,
    in cost units (chunks already in the store count as done at the start). Ctrl-C, at
    any moment of the call, cancels every pending task on the cluster and raises
    `BatchInterrupted` (the finished chunks are saved); any other error cancels them too
    and propagates (naming the chunk).
    """
    keys = [c.key for c in chunks]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        msg = f"run_chunks: chunk key {dup!r} is not unique"
        raise ValueError(msg)
    with _CtrlC() as ctrl_c:
        return _run(chunks, settings, store, progress, client, ctrl_c)


def _run(  # noqa: PLR0917 - the arguments of run_chunks, passed on
    chunks: Sequence[Chunk],
    settings: EngineSettings,
    store: ChunkStore | None,
    progress: Progress | None,
    client: Any | None,
    ctrl_c: _CtrlC,
) -> BatchReport:
    start = time.perf_counter()
    total = float(sum(c.cost for c in chunks))
    results: dict[str, ChunkResult] = {}
    stats: dict[str, ChunkStats] = {}
    done = 0.0
    todo: list[Chunk] = []
    for c in chunks:
        if store is not None and store.has(c.key):
            results[c.key], stats[c.key] = store.load(c.key)
            done += c.cost
        else:
            todo.append(c)
    reused = len(chunks) - len(todo)
    if progress is not None:
        progress(done, total, f"{reused} chunk(s) from an earlier run" if reused else "starting")
    directory = store.directory if store is not None else None
    try:
        if todo and not ctrl_c.requested:
            with contextlib.ExitStack() as stack:
                own_cluster = client is None  # a caller's client: its workers are left alone
                if client is None:
                    client = stack.enter_context(open_client(settings))
                done = _submit_and_collect(
                    client,
                    todo,
                    settings=settings,
                    store=store,
                    results=results,
                    stats=stats,
                    progress=progress,
                    done=done,
                    total=total,
                    ctrl_c=ctrl_c,
                    own_cluster=own_cluster,
                )
    except KeyboardInterrupt:
        # raised, not recorded (not the main thread, another SIGINT handler, a second
        # Ctrl-C): the tasks were cancelled on the way out
        raise BatchInterrupted(len(results), len(chunks), directory) from None
    if ctrl_c.requested:  # also when it came while the cluster started or closed
        raise BatchInterrupted(len(results), len(chunks), directory)
    workers = tuple(sorted({s.worker for s in stats.values() if not s.reused}))
    return BatchReport(
        results,
        stats,
        time.perf_counter() - start,
        settings.where,
        computed=len(todo),
        reused=reused,
        workers_seen=workers,
    )


def _submit_and_collect(
    client: Any,
    todo: list[Chunk],
    *,
    settings: EngineSettings,
    store: ChunkStore | None,
    results: dict[str, ChunkResult],
    stats: dict[str, ChunkStats],
    progress: Progress | None,
    done: float,
    total: float,
    ctrl_c: _CtrlC,
    own_cluster: bool,
) -> float:
    """Submit ``todo`` and save each result as it completes; returns the work done.

    Returns early, the tasks cancelled, when a Ctrl-C is recorded in ``ctrl_c`` (and the
    in-process workers of a cluster opened for this run closed without waiting for them).
    """
    from distributed import as_completed

    order = sorted(todo, key=lambda c: -c.cost)  # stable: equal costs keep key order
    futures = {
        client.submit(
            run_task,
            c.func,
            c.args,
            c.key,
            settings.threads_per_worker,
            pure=False,
            priority=len(order) - i,
        ): c
        for i, c in enumerate(order)
    }
    try:
        pending = as_completed(list(futures))  # type: ignore[no-untyped-call]
        # Polled rather than iterated: a blocking next() would not return to look at a
        # recorded Ctrl-C until the next chunk finishes (a first chunk compiling its numba
        # kernels with a cold cache takes tens of seconds).
        while not pending.is_empty():  # type: ignore[no-untyped-call]
            if ctrl_c.requested:
                client.cancel(list(futures), force=True)
                if own_cluster:
                    _stop_in_process_workers(client)
                return done
            if not pending.has_ready():  # type: ignore[no-untyped-call]
                time.sleep(_POLL_S)
                continue
            for fut in pending.next_batch(block=False):  # type: ignore[no-untyped-call]
                c = futures[fut]
                try:
                    out, meta = fut.result()
                except Exception as exc:
                    msg = f"chunk {c.key}: {type(exc).__name__}: {exc}"
                    raise RuntimeError(msg) from exc
                st = ChunkStats.from_dict(meta, reused=False)
                if store is not None:
                    store.save(c.key, out, st)
                results[c.key] = out
                stats[c.key] = st
                done += c.cost
                fut.release()
                if progress is not None:
                    progress(done, total, c.key)
    except BaseException:
        client.cancel(list(futures), force=True)
        raise
    return done


def _stop_in_process_workers(client: Any) -> None:
    """Close this process's own workers (``--workers 0``) without waiting for their thread.

    A cancelled task already running in a worker *thread* cannot be stopped; closing the
    cluster normally would wait for it (tens of seconds for a first chunk that compiles
    numba kernels with a cold cache). The pool's threads are daemon threads, so the
    process can end meanwhile; worker processes and remote clusters stop their tasks
    themselves.
    """
    from distributed import Worker

    cluster = getattr(client, "cluster", None)
    workers = getattr(cluster, "workers", {}) if cluster is not None else {}
    for worker in list(workers.values()):
        if isinstance(worker, Worker):
            with contextlib.suppress(Exception):
                client.sync(worker.close, executor_wait=False, reason="labrss: interrupted")
