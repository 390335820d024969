"""`labrss export RUN|--latest-calibration BOARD --format csv|npz --out PATH`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labrss.cli.main import main
from labrss.store import CellEstimate, Fault, ReadingRow, Store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "lab.db"
    with Store(path) as store:
        board = store.register_board("ID", "SIM-A", 2, 2, 4, simulated=True, sim_seed=1)
        run = store.start_run("calibration", board)
        store.add_readings(run, [ReadingRow(f"k{i}", 1, 1, 1 << i, 1e-3 * i) for i in range(4)])
        store.put_estimates(run, [CellEstimate(1, 1, np.full(4, 1e-3), np.full(4, 1e-7))])
        store.put_faults(run, [Fault(1, 1, 2, "short", {"z": 80.0})])
        store.finish_run(run)
    return path


def test_export_run_csv_and_npz(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run1"
    assert main(["export", "1", "--format", "csv", "--out", str(out), "--db", str(db)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == [
        "cells.csv",
        "estimates.csv",
        "faults.csv",
        "readings.csv",
        "run.json",
    ]
    assert len((out / "readings.csv").read_text().splitlines()) == 1 + 4
    assert (
        main(["export", "1", "--format", "npz", "--out", str(tmp_path / "r"), "--db", str(db)]) == 0
    )
    with np.load(tmp_path / "r.npz") as z:
        assert z["readings_value"].tolist() == pytest.approx([0, 1e-3, 2e-3, 3e-3])


def test_export_latest_calibration(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["export", "--latest-calibration", "1", "--format", "npz", "--db", str(db)]
    assert main([*args, "--out", str(tmp_path / "cal.npz")]) == 0
    with np.load(tmp_path / "cal.npz") as z:
        assert z["excluded"][1, 1].tolist() == [False, False, True, False]


def test_export_errors(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "x")
    assert main(["export", "7", "--format", "csv", "--out", out, "--db", str(db)]) == 2
    assert "no run with id 7" in capsys.readouterr().err
    assert main(["export", "--format", "csv", "--out", out, "--db", str(db)]) == 2
    assert "either RUN or --latest-calibration" in capsys.readouterr().err
    missing = tmp_path / "missing.db"
    assert main(["export", "1", "--format", "npz", "--out", out, "--db", str(missing)]) == 2
    assert "no database at" in capsys.readouterr().err and not missing.exists()
    with pytest.raises(SystemExit):
        main(["export", "1", "--format", "xlsx", "--out", out, "--db", str(db)])


def test_export_run_netcdf_and_hdf5(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import h5py
    import xarray as xr

    for fmt, name in (("netcdf", "r.nc"), ("hdf5", "r.h5")):
        out = str(tmp_path / "r")
        assert main(["export", "1", "--format", fmt, "--out", out, "--db", str(db)]) == 0
        assert capsys.readouterr().out.split() == [str(tmp_path / name)]
    with xr.open_dataset(tmp_path / "r.nc") as ds:
        assert ds["value"].values.tolist() == pytest.approx([0, 1e-3, 2e-3, 3e-3])
        assert ds["conductance_S"].dims == ("row", "column", "branch")
    with h5py.File(tmp_path / "r.h5") as fh:
        assert fh["faults/fault_kind"].asstr()[0] == "short"
