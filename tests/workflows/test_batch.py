"""The batch engine in this process: chunks, persistence, resume, Ctrl-C, errors, settings."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from labrss.cli.batch_args import engine_from_args
from labrss.workflows.batch import (
    SCHEDULER_ENV,
    BatchInterrupted,
    Chunk,
    ChunkStore,
    EngineSettings,
    open_client,
    resolve_scheduler,
    run_chunks,
)


def square_chunk(start: int, stop: int) -> dict[str, np.ndarray]:
    """A position-seeded chunk: the same values whoever runs it."""
    rng = np.random.default_rng([7, start])
    return {"x": rng.uniform(size=stop - start) ** 2}


def failing_chunk(start: int) -> dict[str, np.ndarray]:
    msg = f"bad value at {start}"
    raise ArithmeticError(msg)


#: Lets `ctrl_c_then_block` return once its test is over.
_RELEASE = threading.Event()


def ctrl_c_then_block(start: int, stop: int) -> dict[str, np.ndarray]:
    """A Ctrl-C while this chunk is still running and keeps running: a long call (a first
    chunk compiling its numba kernels with a cold cache) that a cancel cannot stop."""
    os.kill(os.getpid(), signal.SIGINT)
    _RELEASE.wait(60.0)
    return square_chunk(start, stop)


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """Python's default SIGINT handler, as in a `labrss` process started from a terminal
    (whatever the test runner's launcher left), put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be set in the main thread")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _chunks(count: int) -> list[Chunk]:
    return [Chunk(f"c{i:03d}", square_chunk, (10 * i, 10 * i + 10), 10.0) for i in range(count)]


def test_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="letters"):
        Chunk("a/b", square_chunk, (0, 1))
    with pytest.raises(ValueError, match="not unique"):
        run_chunks([*_chunks(2), *_chunks(1)], EngineSettings.in_process())


def test_interrupt_saves_finished_chunks_and_resume_finishes(tmp_path: Path) -> None:
    engine = EngineSettings.in_process()
    settings = {"job": "test", "count": 8}
    store = ChunkStore.open(tmp_path, settings, resume=False)
    calls: list[tuple[float, float, str]] = []

    def stop_after_three(done: float, total: float, message: str) -> None:
        calls.append((done, total, message))
        if len(calls) == 4:
            raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted, match="3 of 8 chunks") as info:
        run_chunks(_chunks(8), engine, store=store, progress=stop_after_three)
    assert info.value.directory == tmp_path
    assert len(list(tmp_path.glob("*.npz"))) == 3
    assert [c[0] for c in calls] == [0.0, 10.0, 20.0, 30.0]
    store = ChunkStore.open(tmp_path, settings, resume=True)
    report = run_chunks(_chunks(8), engine, store=store)
    assert (report.reused, report.computed) == (3, 5)
    fresh = run_chunks(_chunks(8), engine)
    for key, arrays in fresh.results.items():
        np.testing.assert_array_equal(report.results[key]["x"], arrays["x"])
    assert report.compute_seconds() >= 0 and all(
        v > 0 for v in report.peak_rss_per_worker().values()
    )
    # without resume the old chunks are cleared; with other settings resume is refused
    with pytest.raises(ValueError, match="count = 8, not 9"):
        ChunkStore.open(tmp_path, {"job": "test", "count": 9}, resume=True)
    ChunkStore.open(tmp_path, settings, resume=False)
    assert not list(tmp_path.glob("*.npz"))


def test_a_real_sigint_at_any_moment_stops_the_run(tmp_path: Path, default_sigint: None) -> None:
    """A SIGINT is recorded and acted on by the collecting loop, wherever the main thread
    is: before the cluster starts, between saves, while a chunk runs on (not waited for);
    the handler is Python's default again afterwards."""
    engine = EngineSettings.in_process()
    settings = {"job": "sigint", "count": 8}

    def ctrl_c_at(call: int) -> Callable[[float, float, str], None]:
        calls: list[str] = []

        def progress(done: float, total: float, message: str) -> None:
            calls.append(message)
            if len(calls) == call:
                signal.raise_signal(signal.SIGINT)  # runs the handler here and now

        return progress

    # at the start: nothing is submitted
    store = ChunkStore.open(tmp_path, settings, resume=False)
    with pytest.raises(BatchInterrupted, match="0 of 8 chunks"):
        run_chunks(_chunks(8), engine, store=store, progress=ctrl_c_at(1))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # after the first save: what finished is saved, the rest cancelled
    with pytest.raises(BatchInterrupted) as info:
        run_chunks(_chunks(8), engine, store=store, progress=ctrl_c_at(2))
    saved = sorted(p.stem for p in tmp_path.glob("*.npz"))
    assert 1 <= info.value.saved == len(saved) < 8
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # during a chunk that runs on after the cancel: the run stops without waiting for it
    blocking = [Chunk("block", ctrl_c_then_block, (80, 90), 100.0), *_chunks(8)]
    store = ChunkStore.open(tmp_path, {**settings, "block": True}, resume=False)
    start = time.perf_counter()
    try:
        with pytest.raises(BatchInterrupted, match="0 of 9 chunks"):
            run_chunks(blocking, engine, store=store)
        waited_s = time.perf_counter() - start
    finally:
        _RELEASE.set()
    assert waited_s < 15.0  # waiting for the chunk: 60 s (30 s, the worker close timeout)
    assert not list(tmp_path.glob("*.npz"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupted_save_leaves_no_chunk_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``*.npz`` in the store is always a finished chunk: a save cut short leaves nothing
    (and a ``.partial`` left by a killed process is removed by the next open)."""
    from labrss.workflows import batch

    store = ChunkStore.open(tmp_path, {"job": "t"}, resume=False)
    report = run_chunks(_chunks(1), EngineSettings.in_process())
    stats = report.stats["c000"]

    def savez_cut_short(file: object, **arrays: object) -> None:
        assert hasattr(file, "write")
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(batch.np, "savez", savez_cut_short)
    with pytest.raises(KeyboardInterrupt):
        store.save("c000", report.results["c000"], stats)
    assert sorted(os.listdir(tmp_path)) == ["manifest.json"]
    assert not store.has("c000")
    (tmp_path / ".c001.partial").write_bytes(b"PK")
    ChunkStore.open(tmp_path, {"job": "t"}, resume=True)
    assert sorted(os.listdir(tmp_path)) == ["manifest.json"]


def test_a_failing_chunk_is_named(tmp_path: Path) -> None:
    chunks = [*_chunks(2), Chunk("bad", failing_chunk, (5,))]
    with pytest.raises(RuntimeError, match=r"chunk bad: ArithmeticError: bad value at 5"):
        run_chunks(chunks, EngineSettings.in_process())


def test_an_unreadable_chunk_is_named(tmp_path: Path) -> None:
    store = ChunkStore.open(tmp_path, {"job": "t"}, resume=False)
    (tmp_path / "c000.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"c000\.npz: unreadable chunk"):
        run_chunks(_chunks(1), EngineSettings.in_process(), store=store)


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "scheduler": None,
        "workers": None,
        "threads_per_worker": None,
        "dashboard": False,
        "station": None,
    }
    return argparse.Namespace(**{**base, **kw})


def test_scheduler_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    station = tmp_path / "st.toml"
    station.write_text(
        '[batch]\nscheduler = "tcp://head-node:8786"\nworkers = 3\nthreads_per_worker = 2\n'
    )
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    assert resolve_scheduler(None) is None
    e = engine_from_args(_args(station=str(station)))
    assert (e.scheduler, e.threads_per_worker) == ("tcp://head-node:8786", 2)
    monkeypatch.setenv(SCHEDULER_ENV, "tcp://127.0.0.1:9999")
    assert engine_from_args(_args(station=str(station))).scheduler == "tcp://127.0.0.1:9999"
    e = engine_from_args(_args(station=str(station), scheduler="local"))
    assert (e.scheduler, e.workers) == (None, 3)
    monkeypatch.delenv(SCHEDULER_ENV)
    e = engine_from_args(_args(workers=0))
    assert not e.processes and e.where.startswith("this process")
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        engine_from_args(_args(scheduler="head-node:8786"))
    station.write_text('[batch]\nscheduler = "head:8786"\n')
    with pytest.raises(ValueError, match=r"\[batch\] scheduler = 'head:8786'"):
        engine_from_args(_args(station=str(station)))


def _listening_addresses_of_this_process() -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of this process's listening TCP sockets."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    addresses = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addresses.add(fields[1].split(":")[0])
    return addresses


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_in_process_cluster_listens_on_loopback_only() -> None:
    """``--workers 0``: the in-process worker's HTTP server too (it bound every interface)."""
    loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1
    before = _listening_addresses_of_this_process()
    with open_client(EngineSettings(workers=1, processes=False)):
        opened = _listening_addresses_of_this_process() - before
    assert opened, "the cluster opened no listening socket: test checks nothing"
    assert opened <= loopback, opened
