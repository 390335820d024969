"""Runs that can always be resumed: staleness is decided by the heartbeat even when a process
with the run's pid is alive (pids are reused), and a run can be marked interrupted by hand
(store, CLI) after a confirmation."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from calibration.run import CalibrationRun, resume_run
from calibration.settings import CalibrationSettings, parse_cells
from labrss.cli.main import main
from labrss.lab import Lab
from labrss.station import parse_station
from labrss.store import Store, StoreError


@pytest.fixture
def other_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process of this host that is not the one that started the runs."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _set(store: Store, run_id: int, **columns: object) -> None:
    sets = ", ".join(f"{k} = ?" for k in columns)
    with store._write() as conn:
        conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*columns.values(), run_id))


def test_a_reused_pid_does_not_keep_a_dead_run_running(
    tmp_path: Path, other_process: subprocess.Popen[bytes]
) -> None:
    # The run's process died; a later process got its pid (containers restart pids low).
    path = tmp_path / "lab.db"
    with Store(path) as store:
        board = store.register_board("ID", "S", 2, 2, 4)
        run = store.start_run("calibration", board)
        _set(store, run, pid=other_process.pid, started_at=time.time() - 600.0)
        _set(store, run, heartbeat_at=time.time() - 590.0)
    with Store(path) as store:
        info = store.run(run)
        assert info.status == "interrupted"
        assert f"process {other_process.pid}" in info.note and "reused" in info.note
        assert info.ended_at == pytest.approx(time.time() - 590.0, abs=5.0)


def test_the_heartbeat_decides_even_when_the_pid_is_alive(
    tmp_path: Path, other_process: subprocess.Popen[bytes]
) -> None:
    # A live process that started before the run holds its pid, but the run has been
    # silent for longer than the stale time: dead (or hung) all the same.
    path = tmp_path / "lab.db"
    with Store(path) as store:
        board = store.register_board("ID", "S", 2, 2, 4)
        quiet = store.start_run("calibration", board)
        fresh = store.start_run("calibration", board)
        mine = store.start_run("calibration", board)
        for run in (quiet, fresh):
            _set(store, run, pid=other_process.pid)
        _set(store, quiet, heartbeat_at=time.time() - 7200.0)
        _set(store, mine, heartbeat_at=time.time() - 7200.0)
    with Store(path, stale_after_s=3600.0) as store:
        info = store.run(quiet)
        assert info.status == "interrupted"
        assert "no heartbeat for 7200 s" in info.note
        assert f"process {other_process.pid}" in info.note
        assert store.run(fresh).status == "running"  # alive, heartbeat recent
        assert store.run(mine).status == "running"  # this very process: alive


def test_mark_run_interrupted_by_hand(tmp_path: Path) -> None:
    with Store(tmp_path / "lab.db") as store:
        board = store.register_board("ID", "S", 2, 2, 4)
        run = store.start_run("calibration", board)
        info = store.mark_run_interrupted(run, "the PC rebooted")
        assert info.status == "interrupted"
        assert "[marked interrupted: the PC rebooted]" in info.note
        with pytest.raises(StoreError, match="not running"):
            store.mark_run_interrupted(run)
        with pytest.raises(StoreError, match="no run with id 999"):
            store.mark_run_interrupted(999)


def _interrupted_calibration(db: Path, station_data: dict[str, object]) -> int:
    """A real calibration of 2 cells on the small board, stopped after a few readings."""
    station = parse_station(station_data)
    settings = CalibrationSettings(cells=parse_cells("0,0-1"), design="single")
    taken = [0]

    def stop() -> bool:
        taken[0] += 1
        return taken[0] > 5

    with Lab(station) as lab, Store(db) as store:
        result = CalibrationRun(lab, store, settings).run(should_stop=stop)
    assert result.status == "interrupted"
    return result.run_id


def test_cli_marks_after_confirmation_then_the_run_resumes(
    tmp_path: Path,
    other_process: subprocess.Popen[bytes],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "lab.db"
    station_data: dict[str, object] = {"simulator": {"board": "small", "seed": 5}}
    run = _interrupted_calibration(db, station_data)
    # As left by a process that died while another now holds its pid, with a recent
    # heartbeat: the store cannot tell yet, and resume refuses, naming the way out.
    with Store(db) as store:
        _set(store, run, status="running", ended_at=None, pid=other_process.pid)
        _set(store, run, heartbeat_at=time.time())
    with (
        Lab(parse_station(station_data)) as lab,
        Store(db) as store,
        pytest.raises(StoreError, match=rf"labrss runs --mark-interrupted {run}"),
    ):
        resume_run(lab, store, run)
    # No terminal and no --yes: refused, nothing changed.
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["runs", "--db", str(db), "--mark-interrupted", str(run)]) == 2
    assert "--yes" in capsys.readouterr().err
    # A terminal, and the wrong answer: nothing changed.
    tty = io.StringIO("7\n")
    tty.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", tty)
    assert main(["runs", "--db", str(db), "--mark-interrupted", str(run)]) == 2
    with Store(db) as store:
        assert store.run(run).status == "running"
    # The right answer: marked.
    tty = io.StringIO(f"{run}\n")
    tty.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", tty)
    assert main(["runs", "--db", str(db), "--mark-interrupted", str(run)]) == 0
    out = capsys.readouterr()
    assert f"process {other_process.pid}" in out.err and "interrupted" in out.out
    with Store(db) as store:
        assert store.run(run).status == "interrupted"
    # ... and the calibration resumes and completes.
    with Lab(parse_station(station_data)) as lab, Store(db) as store:
        result = resume_run(lab, store, run).run()
        assert result.status == "completed"
        assert len(result.cells) == 2
    # Marking a run that is not running is refused.
    assert main(["runs", "--db", str(db), "--mark-interrupted", str(run), "--yes"]) == 2
    assert "not running" in capsys.readouterr().err
