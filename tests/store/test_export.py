"""Export of a run and of a board's latest calibration to CSV and NPZ."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from labrss.store import CellEstimate, Fault, ReadingRow, Store, StoreError, reading_key
from labrss.store.export import (
    NPZ_CALIBRATION_ARRAYS,
    NPZ_RUN_ARRAYS,
    export_calibration,
    export_run,
)
from labrss.store.records import UNCERTAINTY_COMPONENTS


@pytest.fixture
def finished_run(store: Store, board_id: int) -> int:
    run = store.start_run("calibration", board_id, {"design": "weighing"}, {"smu": "2450"})
    store.add_readings(
        run,
        [
            ReadingRow(reading_key(1, 2, m, 0), 1, 2, m, 1e-3 * m + 1e-8, voltage_V=0.1)
            for m in (0, 1, 3, 0xFF)
        ],
    )
    g = np.linspace(1e-3, 1.7e-3, 8)
    comps = {name: np.full(8, 1e-8) for name in UNCERTAINTY_COMPONENTS}
    comps["scale"] = np.full(8, 2e-7)
    store.put_estimates(
        run,
        [CellEstimate(1, 2, g, np.full(8, 2e-7), 11.5, 0.3, 1e-8, 2e-9, 1.5, 1, 2.0, 3, 4, comps)],
    )
    store.put_faults(run, [Fault(1, 2, 6, "open", {"z": -42.0})])
    store.put_result(run, "masks", np.arange(6, dtype=np.uint8).reshape(2, 3))
    store.put_value(run, "summary", {"elements": 8})
    store.finish_run(run)
    return run


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_run_csv(store: Store, finished_run: int, tmp_path: Path) -> None:
    files = export_run(store, finished_run, tmp_path / "out", "csv")
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in files)
    assert names == [
        "cells.csv",
        "estimates.csv",
        "faults.csv",
        "readings.csv",
        "results/masks.npy",
        "run.json",
    ]
    meta = json.loads((tmp_path / "out" / "run.json").read_text())
    assert meta["run"]["settings"] == {"design": "weighing"}
    assert meta["board"]["sim_seed"] == 7 and meta["results"]["summary"] == {"elements": 8}
    readings = _read_csv(tmp_path / "out" / "readings.csv")
    assert [int(r["mask"]) for r in readings] == [0, 1, 3, 255]
    assert float(readings[3]["value"]) == 1e-3 * 255 + 1e-8  # full precision
    assert readings[0]["current_A"] == ""  # NULL -> empty
    est = _read_csv(tmp_path / "out" / "estimates.csv")
    assert len(est) == 8 and float(est[7]["conductance_S"]) == 1.7e-3
    # std_S is the combined uncertainty; its components have columns of their own
    assert float(est[0]["std_S"]) == 2e-7 and float(est[0]["u_scale_S"]) == 2e-7
    assert float(est[0]["u_statistical_S"]) == 1e-8
    cells = _read_csv(tmp_path / "out" / "cells.csv")
    assert cells[0]["series_ohm"] == "11.5" and cells[0]["holdout_dof"] == "3"
    faults = _read_csv(tmp_path / "out" / "faults.csv")
    assert faults == [
        {"r": "1", "c": "2", "k": "6", "kind": "open", "evidence_json": '{"z": -42.0}'}
    ]
    np.testing.assert_array_equal(
        np.load(tmp_path / "out" / "results" / "masks.npy"), np.arange(6).reshape(2, 3)
    )


def test_run_npz(store: Store, finished_run: int, tmp_path: Path) -> None:
    (path,) = export_run(store, finished_run, tmp_path / "run", "npz")
    assert path.name == "run.npz"
    with np.load(path, allow_pickle=False) as z:
        documented = {n for n in NPZ_RUN_ARRAYS if n != "result_NAME"} | {"result_masks"}
        assert set(z.files) == documented
        assert z["conductance_S"].shape == (4, 3, 8)
        assert np.isnan(z["conductance_S"][0, 0]).all()
        np.testing.assert_allclose(z["conductance_S"][1, 2], np.linspace(1e-3, 1.7e-3, 8))
        assert z["series_ohm"][1, 2] == 11.5 and z["dof"][0, 0] == -1
        assert z["u_scale_S"][1, 2, 0] == 2e-7 and np.isnan(z["u_range_S"][0, 0]).all()
        assert z["readings_mask"].dtype == np.uint64
        assert z["readings_mask"].tolist() == [0, 1, 3, 255]
        assert z["fault_kind"].tolist() == ["open"]
        assert json.loads(str(z["metadata_json"]))["run"]["id"] == finished_run


def test_calibration_csv_and_npz(
    store: Store, board_id: int, finished_run: int, tmp_path: Path
) -> None:
    files = export_calibration(store, board_id, tmp_path / "cal", "csv")
    assert [p.name for p in files] == [
        "calibration.json",
        "estimates.csv",
        "cells.csv",
        "faults.csv",
    ]
    est = _read_csv(tmp_path / "cal" / "estimates.csv")
    assert len(est) == 8
    assert [e["excluded"] for e in est].count("1") == 1 and est[6]["excluded"] == "1"
    assert {e["run_id"] for e in est} == {str(finished_run)}
    assert float(est[3]["u_leakage_S"]) == 1e-8
    (path,) = export_calibration(store, board_id, tmp_path / "cal.npz", "npz")
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == set(NPZ_CALIBRATION_ARRAYS)
        assert z["excluded"].sum() == 1 and z["excluded"][1, 2, 6]
        assert z["measured"].sum() == 1 and z["cell_run_id"][1, 2] == finished_run
        assert math.isnan(z["leakage_S"][0, 0]) and z["leakage_S"][1, 2] == 1e-8


def test_export_errors(store: Store, finished_run: int, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="'xlsx' is not one of csv, npz"):
        export_run(store, finished_run, tmp_path / "x", "xlsx")  # type: ignore[arg-type]
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="needs a directory"):
        export_run(store, finished_run, tmp_path / "file", "csv")
    with pytest.raises(StoreError, match="no run with id 99"):
        export_run(store, 99, tmp_path / "y", "npz")
