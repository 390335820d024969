"""The main job end to end on the default simulated board (issue 6 acceptance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labrss.workflows.demo import DemoSettings, run_demo


@pytest.mark.slow
def test_demo_acceptance_on_the_default_board(tmp_path: Path) -> None:
    """Default board (16x16x8, 5 % ladder resistors, 9.5 ohm switches, SMU noise at NPLC 1),
    seed 0: a fresh calibration, programming with verification, all 450 test vectors."""
    stages: set[str] = set()

    def progress(stage: str, done: int, total: int, message: str) -> None:
        assert 0 <= done <= total
        stages.add(stage)

    outcome = run_demo(
        DemoSettings(out_dir=tmp_path / "report"), db_path=tmp_path / "lab.db", progress=progress
    )
    s = outcome.summary()
    assert outcome.calibrated_now
    assert stages == {"calibrate", "program", "mvm"}
    assert s["vectors"] == 450
    assert s["median_rel_l2_error"] <= 0.01
    assert abs(s["accuracy_analog"] - s["accuracy_digital"]) <= 0.005
    assert s["accuracy_digital"] == pytest.approx(outcome.target_test_accuracy)
    assert s["cells_missed"] == 0
    assert s["cells_programmed"] > 2000
    text = outcome.report_path.read_text()
    for png in (
        "calibration_histogram.png",
        "predicted_vs_measured.png",
        "analog_vs_digital.png",
        "error_histogram.png",
    ):
        assert png in text
        assert (outcome.report_path.parent / png).stat().st_size > 1000
    assert "| analog, on the board |" in text
