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
    # Cell (0, 0) of the default board at NPLC 0.01, autorange. One-by-one: a few 1e-4
    # (the 2450's noise at 0.01 PLC, ~1e-4 statistical, with its 0.020-0.025 % accuracy
    # specification in the combined budget of issue 11: 4.0e-4 measured). The weighing
    # design reads ~1e-4 S subsets on the 100 uA range, whose noise is 10-100x larger than
    # the single branches' ranges (docs/calibration.md): its uncertainty is larger
    # (1.9e-3 measured), and at equal readings its standard error is the larger one.
    assert 2e-4 < figures["single"]["median_relative_uncertainty"] < 1e-3
    single, weighing = figures["single"], figures["weighing"]
    assert single["median_relative_uncertainty"] < weighing["median_relative_uncertainty"] < 5e-3
    assert weighing["per_reading_relative_se"] > single["per_reading_relative_se"]
