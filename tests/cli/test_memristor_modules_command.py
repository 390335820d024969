"""`labrss memristor iv | retention | endurance | seek` on the embedded simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labrss.cli.main import main
from labrss.store import Store


def test_module_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", str(tmp_path / "lab.db"), "--json"]
    cmds = [
        ["iv", "--device", "0,0,0", "--step", "0.2", "--set-max", "1.2", "--cycles", "1"],
        ["retention", "--cells", "0,0", "--branches", "0-1", "--interval", "1800"],
        ["endurance", "--device", "0,0,1", "--max-cycles", "5"],
        ["seek", "--device", "0,1,0", "--target", "40e-6", "--tolerance", "0.05"],
    ]
    out = []
    for cmd in cmds:
        assert main(["memristor", *cmd, *db]) == 0, capsys.readouterr().err
        out.append(json.loads(capsys.readouterr().out))
    assert out[0]["steps_per_cycle"] == 2 * 6 - 1 + 2 * 8 - 1 and out[0]["set"]["of"] == 1
    assert out[1]["points"] == 3 and out[1]["devices"] == 2
    assert out[2]["per_device"][0]["cycles"] == 5
    assert out[3]["status_counts"] == {"ok": 1}
    with Store(tmp_path / "lab.db") as store:
        kinds = [r.kind for r in store.runs()]
    assert kinds == [f"memristor_{m}" for m in ("iv", "retention", "endurance", "seek")]


def test_module_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["memristor", "iv", "--device", "0,0,0", "--set-max", "3", "--no-store"]
    assert main(args) == 2
    assert "exceeds the bench's pulse limit 2 V" in capsys.readouterr().err
    assert main(["memristor", "seek", "--device", "0,0", "--target", "1e-5", "--no-store"]) == 2
    assert "expected R,C,K" in capsys.readouterr().err
    assert main(["memristor", "iv", "--cells", "0,0", "--board", "small", "--no-store"]) == 2
    assert "holds resistors" in capsys.readouterr().err


def test_form_command(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["memristor", "form", "--board", "memristor_unformed", "--device", "0,0,0"]
    assert main([*args, "--no-store", "--json"]) == 2  # the station's 1 V limit
    assert "max_source_voltage_V = 1 V" in capsys.readouterr().err
    assert main([*args, "--max-voltage", "3", "--start", "2.2", "--no-store", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["yield"] == 1.0 and 2.2 < out["median_forming_V"] < 3.0
