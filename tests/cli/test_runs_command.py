"""`labrss runs`: listing runs from a database chosen by --db, LABRSS_DB or --station."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labrss.cli.main import main
from labrss.store import ReadingRow, Store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "lab.db"
    with Store(path) as store:
        a = store.register_board("ID", "SIM-A", 2, 2, 4, simulated=True, sim_seed=1)
        b = store.register_board("ID", "REAL-B", 2, 2, 4)
        cal = store.start_run("calibration", a, {"design": "single"})
        store.add_readings(cal, [ReadingRow(f"k{i}", 0, 0, 1 << i, 1e-3) for i in range(4)])
        store.finish_run(cal, instrument_time_s=0.08)
        store.start_run("program", b)
    return path


def test_table(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "id",
        "kind",
        "status",
        "board",
        "started",
        "(UTC)",
        "wall",
        "time",
        "s",
        "readings",
    ]
    first, second = (line.split() for line in lines[1:])
    assert first[:4] == ["1", "calibration", "completed", "1:SIM-A"] and first[-1] == "4"
    assert second[:4] == ["2", "program", "running", "2:REAL-B"] and second[-2:] == ["-", "0"]


def test_json_and_board_filter(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--db", str(db), "--board", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["kind"], r["n_readings"], r["board_serial"]) for r in rows] == [
        (1, "calibration", 4, "SIM-A")
    ]
    assert rows[0]["settings"] == {"design": "single"}
    assert rows[0]["instrument_time_s"] == pytest.approx(0.08)


def test_env_var_and_station_choose_the_database(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABRSS_DB", str(db))
    assert main(["runs", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    monkeypatch.delenv("LABRSS_DB")
    station = tmp_path / "station.toml"
    station.write_text('[store]\npath = "lab.db"\n')  # relative to the station file
    assert main(["runs", "--station", str(station), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_missing_database_and_bad_input(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none" / "lab.db"
    assert main(["runs", "--db", str(missing), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == [] and "no database at" in out.err
    assert not missing.exists()  # listing never creates a database
    assert main(["runs", "--db", str(db), "--board", "9"]) == 2
    assert "no board with id 9" in capsys.readouterr().err
    assert main(["runs", "--station", str(tmp_path / "nope.toml")]) == 2
    assert "station file not found" in capsys.readouterr().err


def test_empty_and_missing_store_name_the_next_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`labrss runs` on a store with no runs (or none at the path) says what to do next."""
    empty = tmp_path / "empty.db"
    Store(empty).close()
    assert main(["runs", "--db", str(empty)]) == 0
    out = capsys.readouterr()
    assert out.out == "no runs yet; `labrss calibrate` makes the first\n" and out.err == ""
    missing = tmp_path / "none" / "lab.db"
    assert main(["runs", "--db", str(missing)]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("no runs yet (no database at ") and out.err == ""
    assert out.out.rstrip().endswith("`labrss calibrate` makes the first")
    assert not missing.exists()
