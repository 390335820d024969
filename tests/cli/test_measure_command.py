"""`labrss measure`: text and JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from labrss.cli.main import main
from simulator.bench import SimulatedBench


@pytest.fixture
def bench() -> Iterator[SimulatedBench]:
    with SimulatedBench("small", seed=4) as b:
        yield b


def station_file(tmp_path: Path, bench: SimulatedBench, extra: str = "") -> Path:
    path = tmp_path / "station.toml"
    path.write_text(
        f'[smu]\naddress = "{bench.smu_resource}"\n[board]\naddress = "{bench.board_url}"\n'
        + extra,
        encoding="utf-8",
    )
    return path


def test_json_is_one_object_with_the_reading_and_its_metadata(
    tmp_path: Path, bench: SimulatedBench, capsys: pytest.CaptureFixture[str]
) -> None:
    station = station_file(tmp_path, bench)
    code = main(
        ["measure", "--branch", "2,3,1", "--station", str(station), "--nplc", "2", "--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    payload = json.loads(out)  # exactly one JSON document on stdout
    assert payload["kind"] == "branch" and payload["cell"] == [2, 3] and payload["branches"] == [1]
    assert payload["nplc"] == 2.0 and payload["limit_tripped"] is False
    assert payload["instrument"].startswith("2450 ")
    assert payload["station"] == str(station) and payload["simulated"] is False
    assert payload["conductance_S"] == pytest.approx(1 / payload["resistance_ohm"], rel=1e-12)
    # The branch's truth (resistor + closed switch): the reading adds < 1 ohm of path and
    # the SMU's accuracy (0.25 % at most here, see tests/lab/test_lab.py).
    with bench.lock:
        truth = bench.model.truth()
    branch_ohm = 1 / float(np.asarray(truth["branch_on_conductance_S"])[2, 3, 1])
    assert payload["resistance_ohm"] == pytest.approx(branch_ohm, rel=3e-3)


def test_text_names_resistance_conductance_and_metadata(
    tmp_path: Path, bench: SimulatedBench, capsys: pytest.CaptureFixture[str]
) -> None:
    station = station_file(tmp_path, bench)
    assert main(["measure", "--branch", "0,0,0", "--station", str(station)]) == 0
    assert main(["measure", "--cell", "0,0", "--station", str(station)]) == 0
    out = capsys.readouterr().out
    first, second = out.split("cell (0, 0), mask")
    assert first.startswith("branch 0 of cell (0, 0):")
    for text in (first, second):
        assert " ohm" in text and " S\n" in text
        assert "limit tripped no" in text and "instrument   2450 " in text
        assert "NPLC 1, range " in text and "2-wire, time " in text
    # The first command left the bench safe (every switch open): the cell reads leakage
    # only, through eight open switches of >= 1e10 ohm each.
    r_branch = float(first.split("resistance")[1].split("ohm")[0])
    r_cell = float(second.split("resistance")[1].split("ohm")[0])
    assert second.startswith(" 0x0:")
    assert 1e3 < r_branch < 1e6 and r_cell > 1e9


def test_no_station_runs_the_embedded_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measure", "--cell", "15,15", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["simulated"] is True and payload["station"] == "the default station"
    assert payload["mask"] == 0  # nothing closed: only leakage, a huge resistance
    assert payload["resistance_ohm"] > 1e8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--branch", "1,2"], "--branch '1,2': expected 3 non-negative integers R,C,K"),
        (["--cell", "a,b"], "--cell 'a,b': expected 2 non-negative integers R,C"),
        (["--branch", "1,2,3", "--nplc", "fast"], "--nplc 'fast': not a number"),
        (["--branch", "99,0,0"], "row 99 not on the board"),
        (["--branch", "0,0,0", "--nplc", "50"], "NPLC 50.0 outside 0.01..10"),
        (["--branch", "0,0,0", "--read-voltage", "2"], "exceeds [limits] max_source_voltage_V"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path,
    bench: SimulatedBench,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code = main(["measure", *args, "--station", str(station_file(tmp_path, bench))])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("labrss measure: error: ")
    assert message in err


def test_a_bad_station_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[measurement]\nnplc = 0\n", encoding="utf-8")
    assert main(["measure", "--cell", "0,0", "--station", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"labrss measure: error: {path}: [measurement] nplc = 0: must be >= 0.01"


def test_the_wrong_instrument_is_exit_1(
    tmp_path: Path, bench: SimulatedBench, capsys: pytest.CaptureFixture[str]
) -> None:
    station = station_file(tmp_path, bench, "[simulator]\nseed = 1\n").read_text()
    path = tmp_path / "wrong.toml"
    path.write_text(station.replace("[smu]\n", '[smu]\ndriver = "keysight_b2900"\n'))
    assert main(["measure", "--cell", "0,0", "--station", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("labrss measure: instrument failure: ")
    assert "MODEL 2450" in err and bench.smu_resource in err


def test_an_unreachable_instrument_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatedBench("small", seed=0) as gone:
        addresses = (gone.smu_resource, gone.board_url)
    path = tmp_path / "gone.toml"  # both ports were just closed: connection refused
    path.write_text(
        f'[smu]\naddress = "{addresses[0]}"\ntimeout_s = 1.0\n[board]\naddress = "{addresses[1]}"\n'
    )
    assert main(["measure", "--cell", "0,0", "--station", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and addresses[0] in err
