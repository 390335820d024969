"""`run_demo` with ``devices="memristor"``: the resident digits task on the memristor preset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labrss.store import Store
from labrss.workflows.demo import DemoSettings, memristor_station, run_demo
from labrss.workflows.memristor_program import MemristorProgramResult


@pytest.mark.slow
def test_memristor_demo_programs_runs_and_follows_drift(tmp_path: Path) -> None:
    settings = DemoSettings(
        out_dir=tmp_path / "report",
        vectors=40,
        devices="memristor",
        drift_times_s=(3600.0, 30 * 86400.0),
    )
    outcome = run_demo(settings, station=memristor_station(3), db_path=tmp_path / "lab.db")
    s = outcome.summary()
    json.dumps(s)  # JSON-ready
    assert isinstance(outcome.program, MemristorProgramResult)
    assert s["devices"] == "memristor" and s["cells_programmed"] == 42
    assert s["pulses"] == outcome.program.pulses > 42 * 8
    # just programmed: the analog network agrees with the digital one on (nearly) every
    # test image (1 image of 40 = 2.5 points)
    assert s["accuracy_analog"] >= s["accuracy_digital"] - 0.026
    assert s["median_rel_l2_error"] < 0.05
    times = [p["time_s"] for p in s["over_time"]]
    assert times == [3600.0, 30 * 86400.0]
    late = s["over_time"][-1]
    # a month of relaxation (~0.1 uS per unit of ln t per device, docs/simulator.md): the
    # re-solved program is closer to the programmed network than the drifted one
    assert late["median_rel_l2_error_resolved"] < late["median_rel_l2_error_without"]
    assert late["accuracy_analog_resolved"] >= s["accuracy_digital"] - 0.026
    report = outcome.report_path.read_text(encoding="utf-8")
    assert "Over virtual time" in report and "pulses" in report
    for png in ("accuracy_over_time.png", "device_states.png"):
        assert (outcome.report_path.parent / png).stat().st_size > 1000
    with Store(tmp_path / "lab.db") as store:
        runs = store.runs()
        kinds = [r.kind for r in runs]
        # calibration, program, mvm, then per time point: mvm, re-solved program, mvm
        assert kinds.count("calibration") == 1 and kinds.count("program") == 3
        assert kinds.count("mvm") == 5
        assert store.get_result(outcome.program.run_id or 0, "memristor.branch_S").shape == (
            42,
            8,
        )


def test_drift_times_must_increase(tmp_path: Path) -> None:
    settings = DemoSettings(out_dir=tmp_path, devices="memristor", drift_times_s=(10.0, 5.0))
    with pytest.raises(ValueError, match="drift_times_s"):
        run_demo(settings, station=memristor_station(3), db_path=tmp_path / "lab.db")
