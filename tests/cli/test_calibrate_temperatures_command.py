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


def test_temperatures_json_then_a_bad_set_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station = tmp_path / "station.toml"
    station.write_text(STATION)
    db = str(tmp_path / "lab.db")
    args = ["calibrate", "--station", str(station), "--db", db, "--cells", "0,0"]
    assert main([*args, "--temperatures", "20,35", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "completed" and out["cells"] == 1
    assert [p["setpoint_C"] for p in out["points"]] == [20.0, 35.0]
    assert abs(out["common_tcr"]["common_ppm_per_K"] - 8.8) < 8  # +5 and +3.8 of the switch
    # the cell's off-leakage, doubling every 10 K in the simulator, from its two points
    leak = out["leakage"]
    assert leak["cells"] == 1 and abs(leak["doubling_K"] - 10.0) < 3 * 10.0 * (
        leak["u_rate_per_K"] / leak["rate_per_K"]
    ) + 0.5
    assert main([*args, "--temperatures", "20,45"]) == 2
    err = capsys.readouterr().err
    assert "45 degC is outside the station's [thermal] limits" in err
