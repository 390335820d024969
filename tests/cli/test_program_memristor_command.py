"""`labrss program --devices memristor|auto` and `labrss mvm` of a resident memristor program.

The bench is a `SimulatedBench` serving the `memristor` preset on loopback ports, so the
programmed devices persist between the two commands as on hardware (the embedded simulator
would start each command on a fresh board).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from labrss.cli.commands.program import resolve_devices
from labrss.cli.main import main
from labrss.networks.model import Network
from labrss.networks.weights_file import save_weights
from labrss.store import Store
from simulator.bench import SimulatedBench


@pytest.fixture(scope="module")
def bench() -> Iterator[SimulatedBench]:
    with SimulatedBench("memristor", seed=3) as b:
        yield b


def station_file(tmp_path: Path, bench: SimulatedBench) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(
        f'[smu]\naddress = "{bench.smu_resource}"\n[board]\naddress = "{bench.board_url}"\n',
        encoding="utf-8",
    )
    return path


def test_auto_picks_memristor_only_on_a_memristor_board() -> None:
    assert resolve_devices("auto", "memristor") == "memristor"
    assert resolve_devices("auto", "mixed") == "resistor"
    assert resolve_devices("auto", "resistor") == "resistor"
    assert resolve_devices("memristor", "resistor") == "memristor"


@pytest.mark.slow
def test_program_then_mvm_with_and_without_resolve(
    tmp_path: Path, bench: SimulatedBench, capsys: pytest.CaptureFixture[str]
) -> None:
    station = station_file(tmp_path, bench)
    db = tmp_path / "lab.db"
    code = main(
        [
            "program",
            "--devices",
            "auto",
            "--station",
            str(station),
            "--db",
            str(db),
            "--json",
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    prog = json.loads(out)
    # the 6-input, 3-class digits task: 7 rows x 3 pairs, every weight nonzero
    assert prog["devices"] == "memristor" and prog["banks"] == 42 and prog["tiles"] == 1
    # coarse write-verify of 8 devices (~35 pulses a bank, docs/memristor.md) plus re-rolls
    assert 20 * 42 < prog["pulses"] < 120 * 42
    assert prog["cells_missed"] <= 2
    with Store(db) as store:
        run = prog["run_id"]
        pulses = store.get_result(run, "pulses")
        assert len(pulses) == prog["pulses"] or int(pulses["count"].sum()) == prog["pulses"]
        states = store.get_result(run, "memristor.branch_S")
        assert states.shape == (42, 8) and np.all((states > 4e-6) & (states < 110e-6))
        assert len(store.readings(run)) > 42 * 8  # every branch read, every verify read
    code = main(
        [
            "mvm",
            "--program-run",
            str(prog["run_id"]),
            "--station",
            str(station),
            "--db",
            str(db),
            "--read-out",
            "smu",
            "--vectors",
            "30",
            "--json",
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    mvm = json.loads(out)
    assert mvm["vectors"] == 30
    # a few % of output error on ~140 uS cells with ~1 uS of device error (docs/memristor.md)
    assert mvm["median_rel_l2_error"] < 0.1 and mvm["argmax_agreement"] >= 0.9
    code = main(
        [
            "mvm",
            "--program-run",
            str(prog["run_id"]),
            "--station",
            str(station),
            "--db",
            str(db),
            "--read-out",
            "smu",
            "--vectors",
            "30",
            "--resolve",
            "--json",
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    again = json.loads(out)
    assert again["resolved_program_run_id"] > prog["run_id"]
    assert again["median_rel_l2_error"] < 0.1


def test_a_network_too_large_to_stay_resident_is_refused(
    tmp_path: Path, bench: SimulatedBench, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    weights = tmp_path / "big.npz"
    save_weights(weights, Network([(rng.normal(size=(10, 3)), np.zeros(3))], name="big"))
    ref = tmp_path / "x.npy"
    np.save(ref, rng.random((20, 10)))
    station = station_file(tmp_path, bench)
    pulses_before = _pulse_total(bench)
    code = main(
        [
            "program",
            "--devices",
            "memristor",
            "--station",
            str(station),
            "--db",
            str(tmp_path / "lab.db"),
            "--weights",
            str(weights),
            "--reference",
            str(ref),
            "--no-progress",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert "layer 0 (10x3)" in err and "8x8 board" in err and "resident" in err
    assert _pulse_total(bench) == pulses_before  # refused before anything was pulsed


def test_mvm_of_a_memristor_program_on_the_embedded_simulator_is_refused(
    tmp_path: Path, bench: SimulatedBench, capsys: pytest.CaptureFixture[str]
) -> None:
    # A tiny program on the served board, then an mvm without --station (embedded, fresh).
    rng = np.random.default_rng(1)
    weights = tmp_path / "tiny.npz"
    save_weights(weights, Network([(rng.normal(size=(1, 1)), np.zeros(1))], name="tiny"))
    ref = tmp_path / "x.npy"
    np.save(ref, rng.random((10, 1)))
    station = station_file(tmp_path, bench)
    db = tmp_path / "lab.db"
    code = main(
        [
            "program",
            "--devices",
            "memristor",
            "--station",
            str(station),
            "--db",
            str(db),
            "--weights",
            str(weights),
            "--reference",
            str(ref),
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    run_id = int(out.strip())
    code = main(["mvm", "--program-run", str(run_id), "--db", str(db), "--no-progress"])
    _, err = capsys.readouterr()
    assert code == 2 and "labrss sim --board memristor" in err


def _pulse_total(bench: SimulatedBench) -> int:
    with bench.lock:
        return int(np.asarray(bench.model.truth()["pulse_count"]).sum())
