"""`labrss discover`: the table, --json, --write and the next step when nothing answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labrss.cli.main import main
from labrss.station import load_station


def test_sim_json_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    station = tmp_path / "lab.toml"
    args = ["discover", "--sim", "--no-list", "--timeout", "0.5", "--json", "--write"]
    assert main([*args, str(station)]) == 0
    data = json.loads(capsys.readouterr().out)
    recognised = [(f["kind"], f["driver"]) for f in data["findings"] if f["status"] == "recognised"]
    assert recognised == [("smu", "keithley2450"), ("smu", "keithley2450"), ("board", "crossbar")]
    assert data["station_file"] == str(station) and data["lan_broadcast"] is False
    loaded = load_station(station)
    assert loaded.smu.simulated and loaded.board.simulated
    # an existing file is never replaced without --force
    assert main([*args, str(station)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["discover", "--sim", "--no-list", "--write", str(station), "--force"]) == 0
    out = capsys.readouterr().out
    assert "recognised  board  crossbar" in out
    assert f"next: labrss station check {station}" in out


def test_nothing_found_names_the_next_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", "--no-list"]) == 0
    out = capsys.readouterr().out
    assert "no VISA resource and no serial port found" in out
    assert out.rstrip().endswith("labrss discover --sim")


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", "--station", str(tmp_path / "none.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "station file not found" in err
