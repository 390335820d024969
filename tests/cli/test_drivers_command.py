"""`labrss drivers`: the installed drivers, their packages and capabilities."""

from __future__ import annotations

import json

import pytest

from drivers import plugins
from labrss.cli.main import main


def test_lists_the_built_in_drivers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drivers"]) == 0
    out = capsys.readouterr().out
    assert "Board drivers (entry point group labrss.boards):" in out
    assert "crossbar" in out and "[drivers.crossbar_board:DRIVER]" in out
    assert "capabilities: dacs, adcs, mvm-smu, pulses, 4-wire, temperature" in out
    assert "keithley2450" in out and "keysight_b2900" in out
    assert "recognised by: *IDN? matching ^KEITHLEY INSTRUMENTS" in out


def test_json_and_a_broken_plug_in(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["drivers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert by_name["crossbar"]["kind"] == "board"
    assert by_name["crossbar"]["package"] == "labrss"
    assert "pulses" in by_name["crossbar"]["capabilities"]
    assert by_name["keysight_b2900"]["channels"] == 2
    assert by_name["keithley2450"]["recognition"]["usb_ids"] == ["05E6:2450"]

    real = plugins.board_drivers()

    def with_broken() -> dict[str, plugins.InstalledDriver[plugins.BoardDriver]]:
        broken = plugins.InstalledDriver(
            "broken",
            plugins.BOARD_GROUP,
            "nowhere:DRIVER",
            "broken-pkg",
            "0.0.1",
            plugins.BoardDriver,
            None,
        )
        return {**real, "broken": broken}

    monkeypatch.setattr("labrss.cli.commands.drivers.board_drivers", with_broken)
    assert main(["drivers"]) == 1
    out = capsys.readouterr().out
    assert "broken           broken-pkg 0.0.1  [nowhere:DRIVER]" in out
    assert "BROKEN: driver broken (broken-pkg 0.0.1): no entry point to load" in out
    assert "crossbar" in out  # the others are still listed
