"""The batch engine in this process: chunks, persistence, resume, Ctrl-C, errors, settings."""

from __future__ import annotations

import argparse
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
