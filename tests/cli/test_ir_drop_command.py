"""`labrss program --ir-drop` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labrss.cli.main import main
from labrss.networks.model import Network
from labrss.networks.weights_file import save_weights
from tests.cli.test_demo_command import _calibrate, _station
from tests.workflows.conftest import two_layer_network


def test_program_ir_drop_measures_the_wiring_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, db = _station(tmp_path), tmp_path / "lab.db"
    _calibrate(station, db)
    net, x_ref, _ = two_layer_network()
    net = Network(net.layers[:1], name="test 10-5")  # one layer: 2 tiles on the 8x8 board
    save_weights(tmp_path / "net.npz", net)
    np.save(tmp_path / "ref.npy", x_ref)
    args = ["--weights", str(tmp_path / "net.npz"), "--reference", str(tmp_path / "ref.npy")]
    common = ["--station", str(station), "--db", str(db), "--json", "--no-progress"]
    code = main(["program", *args, "--ir-drop", *common])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = json.loads(out)
    assert summary["ir_drop"] is True and summary["cells_missed"] == 0
    wiring = summary["wiring"]
    # the small board: 5 mohm segments, 0.1 ohm routing (+ the SMU's 50 mohm HI lead)
    assert 0.05 < wiring["row_entry_ohm_median"] < 0.3
    assert wiring["readings"] == 2 * 9 * 8
    assert summary["ir_compensation_host_time_s"] > 0


def test_ir_drop_refuses_memristor_programs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station = _station(tmp_path, board="memristor")
    code = main(
        ["program", "--devices", "memristor", "--ir-drop", "--station", str(station),
         "--db", str(tmp_path / "lab.db"), "--no-progress"]
    )  # fmt: skip
    assert code == 2
    assert "--ir-drop programs resistor banks" in capsys.readouterr().err


def test_wiring_from_needs_ir_drop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    station, db = _station(tmp_path), tmp_path / "lab.db"
    net, x_ref, _ = two_layer_network()
    save_weights(tmp_path / "net.npz", net)
    np.save(tmp_path / "ref.npy", x_ref)
    code = main(
        ["program", "--weights", str(tmp_path / "net.npz"), "--reference",
         str(tmp_path / "ref.npy"), "--wiring-from", "1", "--station", str(station),
         "--db", str(db), "--no-progress"]
    )  # fmt: skip
    assert code == 2
    assert "ir_wiring_run = 1 needs ir_drop = True" in capsys.readouterr().err
