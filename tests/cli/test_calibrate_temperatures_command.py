"""`labrss calibrate --temperatures`: the thermal calibration from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labrss.cli.main import main

STATION = """
[simulator]
board = "thinfilm"
seed = 2

[thermal]
min_C = 15
max_C = 40
"""


def _calibrate_cell_0_0(tmp_path: Path) -> list[str]:
    """``labrss calibrate`` of cell (0, 0) on the STATION bench, its store in tmp_path."""
    station = tmp_path / "station.toml"
    station.write_text(STATION)
    db = str(tmp_path / "lab.db")
    return ["calibrate", "--station", str(station), "--db", db, "--cells", "0,0"]


def test_temperatures_json_then_a_bad_set_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _calibrate_cell_0_0(tmp_path)
    assert main([*args, "--temperatures", "20,35", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "completed" and out["cells"] == 1
    assert [p["setpoint_C"] for p in out["points"]] == [20.0, 35.0]
    assert abs(out["common_tcr"]["common_ppm_per_K"] - 8.8) < 8  # +5 and +3.8 of the switch
    # the cell's off-leakage, doubling every 10 K in the simulator, from its two points
    leak = out["leakage"]
    assert (
        leak["cells"] == 1
        and abs(leak["doubling_K"] - 10.0)
        < 3 * 10.0 * (leak["u_rate_per_K"] / leak["rate_per_K"]) + 0.5
    )
    assert main([*args, "--temperatures", "20,45"]) == 2
    err = capsys.readouterr().err
    assert "45 degC is outside the station's [thermal] limits" in err


def test_a_read_voltage_beyond_the_limits_is_bad_input_as_without_temperatures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the station's max_source_voltage_V is 1 V: both paths refuse 2 V before switching
    # anything, as bad input (exit 2, one line), not as an instrument failure
    args = _calibrate_cell_0_0(tmp_path)
    for extra in ([], ["--temperatures", "20,25"]):
        assert main([*args, "--read-voltage", "2", "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert "max_source_voltage_V" in err and err.count("\n") == 1, err
