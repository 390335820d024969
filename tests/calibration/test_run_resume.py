"""Kill the simulator mid-run: the run is stored as interrupted, nothing is corrupt, and the
resume finishes it without re-measuring what was stored, matching an uninterrupted run."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from calibration.run import (
    SERIES_MAX_READINGS,
    CalibrationInterruptedError,
    CalibrationRun,
    RunProgress,
    resume_run,
)
from calibration.settings import CalibrationSettings, CellSelection
from labrss.lab import Lab
from labrss.store import Store
from tests.calibration.test_run_helpers import sim_station

SETTINGS = CalibrationSettings(
    cells=CellSelection((2,), (4, 9)), design="single", nplc=0.01, batch_size=5
)
KILL_AFTER = 17  # readings; not a multiple of the batch size: a batch is in flight


def test_a_killed_run_is_interrupted_and_the_resume_matches_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    db = tmp_path / "lab.db"
    # The uninterrupted reference, same seed, its own database.
    with Lab(sim_station()) as lab, Store(tmp_path / "ref.db") as ref_store:
        reference = CalibrationRun(lab, ref_store, SETTINGS).run()
        ref_readings = ref_store.readings(reference.run_id)

    # The run whose simulator is stopped from another thread after KILL_AFTER readings.
    with (
        pytest.raises(CalibrationInterruptedError) as info,
        Lab(sim_station()) as lab,
        Store(db) as store,
    ):
        bench = lab.simulator
        assert bench is not None

        def kill(p: RunProgress) -> None:
            if p.measured_now == KILL_AFTER:
                killer = threading.Thread(target=bench.stop)
                killer.start()
                killer.join()

        CalibrationRun(lab, store, SETTINGS).run(progress=kill)
    run_id = info.value.run_id
    with Store(db) as store:
        assert store.integrity_check() == "ok"
        run = store.run(run_id)
        assert run.status == "interrupted"
        stored = store.readings(run_id)
        # Every complete batch and the batch in flight were committed before the run was
        # marked, with the rest of the series the killed reading came in (taken before
        # the kill: kept); the readings are exactly the uninterrupted run's first ones, bit
        # for bit (same seed, same deterministic order).
        n_stored = len(stored)
        assert KILL_AFTER <= n_stored < KILL_AFTER + SERIES_MAX_READINGS
        np.testing.assert_array_equal(stored["key"], ref_readings["key"][:n_stored])
        np.testing.assert_array_equal(stored["value"], ref_readings["value"][:n_stored])
        assert store.estimates(run_id) == []

    with Lab(sim_station()) as lab, Store(db) as store:
        resumed = resume_run(lab, store, run_id).run()
        own = store.readings(resumed.run_id, lineage=False)
        everything = store.readings(resumed.run_id)
        assert store.run(resumed.run_id).parent_run_id == run_id
    # Nothing measured twice, nothing missing.
    assert len(own) == len(ref_readings) - n_stored
    assert sorted(everything["key"]) == sorted(ref_readings["key"])
    assert resumed.summary["resumed_from"] == [run_id]
    # The resumed readings come from a new instrument session (the simulator's noise stream
    # restarts with its seed), so the estimates match within their standard errors, not bit
    # for bit: |difference| < 4 sigma of the difference (at most ~sqrt(2) sigma each).
    a_ref, s_ref = reference.conductance_S(), reference.std_S()
    a_res = resumed.conductance_S()
    diff_sigma = np.sqrt(2.0) * s_ref
    assert np.all(np.abs(a_res - a_ref) < 4 * diff_sigma)
    np.testing.assert_allclose(a_res, a_ref, rtol=2e-2)
    assert resumed.faults == reference.faults == ()


def test_a_completed_run_cannot_be_resumed(tmp_path: Path) -> None:
    settings = CalibrationSettings(cells=CellSelection((0,), (0,)), design="single", nplc=0.01)
    with Lab(sim_station()) as lab, Store(tmp_path / "lab.db") as store:
        result = CalibrationRun(lab, store, settings).run()
        with pytest.raises(ValueError, match="completed: only interrupted or failed"):
            resume_run(lab, store, result.run_id)


def test_should_stop_interrupts_and_resume_finishes(tmp_path: Path) -> None:
    settings = CalibrationSettings(cells=CellSelection((1,), (1,)), design="single", nplc=0.01)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 6

    with Lab(sim_station()) as lab, Store(tmp_path / "lab.db") as store:
        first = CalibrationRun(lab, store, settings).run(should_stop=stop)
        assert first.status == "interrupted"
        assert store.run(first.run_id).status == "interrupted"
        # asked before each series (here a subset at +V and -V): 6 series went through
        assert len(store.readings(first.run_id)) == 12
        assert lab.simulator is not None
        with lab.simulator.lock:
            assert int(lab.simulator.model.switches.sum()) == 0
        second = resume_run(lab, store, first.run_id).run()
        assert second.status == "completed"
        own = store.readings(second.run_id, lineage=False)
        design = [k for k in own["key"] if not str(k).split(",")[4].startswith("l")]
        # 22 design reads and 20 x 2 noise-probe reads, less the 12 of the first run; the
        # rest are the range links' reads
        assert len(design) == 22 + 40 - 12
        assert np.all(np.isfinite(second.conductance_S()))


def test_readings_in_series_are_those_of_one_reading_per_exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several readings per SMU exchange (`Lab.measure_subset_series`: reversal pairs,
    range links) send the instrument what one reading per exchange sends, in the same
    order: the stored readings are the same, bit for bit."""
    settings = CalibrationSettings(cells=CellSelection((1,), (1, 2)), design="single", nplc=0.01)
    stored = []
    for max_readings in (1, SERIES_MAX_READINGS):
        monkeypatch.setattr("calibration.run.SERIES_MAX_READINGS", max_readings)
        with Lab(sim_station()) as lab, Store(tmp_path / f"{max_readings}.db") as store:
            result = CalibrationRun(lab, store, settings).run()
            stored.append(store.readings(result.run_id))
    one, series = stored
    assert any(str(k).split(",")[4].startswith("l") for k in one["key"])  # links included
    for name in ("key", "value", "voltage_V", "current_A", "current_range_A", "limit_tripped"):
        np.testing.assert_array_equal(one[name], series[name])
