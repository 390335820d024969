"""`labrss demo`, `labrss program` and `labrss mvm` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.truth_calibration import store_truth_calibration
from labrss.cli.main import main
from labrss.lab import Lab
from labrss.networks.weights_file import save_weights
from labrss.station import load_station
from labrss.store import Store
from tests.workflows.conftest import two_layer_network


def _station(tmp_path: Path, board: str = "small", seed: int = 5) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(f'[simulator]\nboard = "{board}"\nseed = {seed}\n')
    return path


def _calibrate(station: Path, db: Path) -> None:
    """A calibration of the station's (seeded) board in the store, as the workflow tests use."""
    with Lab(load_station(station)) as lab, Store(db) as store:
        store_truth_calibration(lab, store)


def test_program_then_mvm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    station, db = _station(tmp_path), tmp_path / "lab.db"
    _calibrate(station, db)
    net, x_ref, x = two_layer_network()
    save_weights(tmp_path / "net.npz", net)
    np.save(tmp_path / "ref.npy", x_ref)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", net.predict(x))
    common = ["--station", str(station), "--db", str(db), "--json", "--no-progress"]
    code = main(
        [
            "program",
            "--weights",
            str(tmp_path / "net.npz"),
            "--reference",
            str(tmp_path / "ref.npy"),
            *common,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    prog = json.loads(out)
    assert prog["cells_missed"] == 0 and prog["tiles"] == 5
    code = main(
        [
            "mvm",
            "--program-run",
            str(prog["run_id"]),
            "--inputs",
            str(tmp_path / "x.npy"),
            "--labels",
            str(tmp_path / "y.npy"),
            "--vectors",
            "10",
            "--read-out",
            "smu",
            *common,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    mvm = json.loads(out)
    assert mvm["vectors"] == 10 and mvm["program_run_id"] == prog["run_id"]
    # SMU read-out at NPLC 1 on the small board: ~0.1 % (IR drop and noise)
    assert mvm["median_rel_l2_error"] < 0.005


def test_program_refuses_a_nan_weights_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, db = _station(tmp_path), tmp_path / "lab.db"
    net, x_ref, _ = two_layer_network()
    save_weights(tmp_path / "net.npz", net)
    w = net.layers[0].weights.copy()
    w[4, 2] = np.nan
    np.savez(tmp_path / "bad.npz", W0=w, b0=net.layers[0].bias, W1=net.layers[1].weights)
    np.save(tmp_path / "ref.npy", x_ref)
    code = main(
        [
            "program",
            "--weights",
            str(tmp_path / "bad.npz"),
            "--reference",
            str(tmp_path / "ref.npy"),
            "--station",
            str(station),
            "--db",
            str(db),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "bad.npz: layer 0: W0[4, 2] = nan" in err
    assert len(err.strip().splitlines()) == 1


def test_program_without_a_calibration_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, db = _station(tmp_path), tmp_path / "lab.db"
    net, x_ref, _ = two_layer_network()
    save_weights(tmp_path / "net.npz", net)
    np.save(tmp_path / "ref.npy", x_ref)
    code = main(
        [
            "program",
            "--weights",
            str(tmp_path / "net.npz"),
            "--reference",
            str(tmp_path / "ref.npy"),
            "--station",
            str(station),
            "--db",
            str(db),
            "--no-progress",
        ]
    )
    assert code == 2
    assert "labrss calibrate" in capsys.readouterr().err


def test_mvm_of_an_unknown_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["mvm", "--program-run", "7", "--db", str(tmp_path / "lab.db"), "--no-progress"])
    assert code == 2
    assert "7" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_reuses_a_current_calibration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default board with a stored calibration: the demo reuses it (no new run)."""
    station, db = _station(tmp_path, board="default", seed=0), tmp_path / "lab.db"
    _calibrate(station, db)
    out_dir = tmp_path / "report"
    code = main(
        [
            "demo",
            "--station",
            str(station),
            "--db",
            str(db),
            "--out",
            str(out_dir),
            "--vectors",
            "30",
            "--json",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    s = json.loads(out)
    assert s["calibrated_now"] is False and s["calibration_run_id"] == 1
    assert s["vectors"] == 30
    for key in (
        "accuracy_digital",
        "accuracy_analog",
        "median_rel_l2_error",
        "cells_programmed",
        "cells_repaired",
        "wall_time_s",
        "instrument_time_s",
    ):
        assert s[key] is not None
    assert s["median_rel_l2_error"] < 0.01
    assert Path(s["report"]) == out_dir / "report.md" and Path(s["report"]).exists()


def test_mvm_of_a_stored_cnn_program(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CNN program run, stored by one process, runs later through `labrss mvm`."""
    from labrss.networks.layers import Conv, Flatten, ReLU
    from labrss.networks.model import Layer
    from labrss.networks.sequential import SequentialNetwork
    from labrss.workflows.cnn import program_cnn

    station, db = _station(tmp_path), tmp_path / "lab.db"
    rng = np.random.default_rng(4)
    net = SequentialNetwork(
        [
            Conv(rng.normal(size=(3, 1, 3)), rng.normal(scale=0.2, size=3), (2,), ((1, 1),)),
            ReLU(),
            Flatten(),
            Layer(rng.normal(size=(18, 4)), rng.normal(scale=0.2, size=4)),
        ],
        (1, 12),
        name="test CNN",
    )
    x = rng.random((6, 12))
    with Lab(load_station(station)) as lab, Store(db) as store:
        store_truth_calibration(lab, store)
        run_id = program_cnn(lab, store, net, rng.random((50, 12))).run_id
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", net.predict(x))
    args = ["mvm", "--program-run", str(run_id), "--station", str(station), "--db", str(db)]
    code = main([*args, "--json", "--no-progress"])  # no inputs: not a shipped CNN
    assert code == 2
    assert "pass its test inputs with --inputs" in capsys.readouterr().err
    inputs = ["--inputs", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]
    code = main([*args, *inputs, "--json", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    mvm = json.loads(out)
    assert mvm["vectors"] == 6 and mvm["tile_programmings"] == 4
    assert len(mvm["layer_rel_l2_median"]) == 2
    # the ADC floor on 8 x 8 tiles (tests/workflows/test_cnn.py): a few percent at most
    assert mvm["median_rel_l2_error"] < 0.03
    assert mvm["accuracy_digital"] == 1.0
