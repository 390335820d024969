"""The calibrate workflow: station + store + run, cancel flag, resume, progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from calibration.run import RunProgress
from calibration.settings import CalibrationSettings, CellSelection, SettingsError
from labrss.store import Store
from labrss.workflows.calibrate import run_calibration

SETTINGS = CalibrationSettings(cells=CellSelection((0,), (0,)), design="single", nplc=0.01)


def test_cancel_then_resume_through_the_workflow(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    seen: list[RunProgress] = []
    first = run_calibration(
        SETTINGS, db_path=db, should_stop=lambda: len(seen) > 10, progress=seen.append
    )
    assert first.result.status == "interrupted"
    assert first.simulated and first.db_path == db
    # progress: monotone, with instrument time = NPLC / 50 Hz per reading
    done = [p.done for p in seen]
    # 22 design readings and the noise probe's 20 pairs (the range links are planned later)
    assert done == sorted(done) and seen[-1].total == 22 + 40
    assert seen[-1].instrument_time_s == pytest.approx(seen[-1].measured_now * 0.01 / 50)
    second = run_calibration(db_path=db, resume=first.result.run_id)
    assert second.result.status == "completed"
    with Store(db) as store:
        assert [r.status for r in store.runs()] == ["interrupted", "completed"]
    assert second.result.summary["elements"] == 8


def test_unknown_cells_are_refused_before_a_run_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    with pytest.raises(SettingsError, match="column 99"):
        run_calibration(CalibrationSettings(cells=CellSelection((0,), (99,))), db_path=db)
    with Store(db) as store:
        assert store.runs() == []
