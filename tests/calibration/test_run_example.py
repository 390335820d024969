"""The documented example script (docs/examples/scripted_calibration.py) runs end to end."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "scripted_calibration.py"


def test_the_example_script_runs_both_designs(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("scripted_calibration", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.main(["--cells", "0,0", "--nplc", "0.01"])
    out = capsys.readouterr().out
    assert "weighing / single" in out
    assert set(figures) == {"single", "weighing"}
    for f in figures.values():
        assert f["faults"] == 0
        assert 0 < f["median_relative_uncertainty"] < 0.05
