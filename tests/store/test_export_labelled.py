"""Export of a run and of a calibration to netCDF-4 and HDF5, read back with xarray and h5py
only (what a lab's analysis would do without labrss)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from labrss.store import CellEstimate, Fault, ReadingRow, Store, StoreError, reading_key
from labrss.store.dataset import run_dataset, unit_of
from labrss.store.export import export_calibration, export_run

PULSES = np.dtype([("r", "i4"), ("amplitude_V", "f8"), ("width_s", "f8"), ("status", "U8")])


@pytest.fixture
def run_id(store: Store, board_id: int) -> int:
    run = store.start_run("iv", board_id, {"v_max_V": 1.2}, {"smu": "2450"}, note="loop")
    store.add_readings(
        run,
        [
            ReadingRow(
                reading_key(1, 2, 1 << k, 0),
                1,
                2,
                1 << k,
                1e-5 * (k + 1),
                voltage_V=0.2,
                current_A=2e-6 * (k + 1),
                four_wire=k == 3,
                instrument_time_s=0.5 * k,
                wall_time=1.7e9 + k,
            )
            for k in range(4)
        ],
    )
    store.put_estimates(
        run, [CellEstimate(1, 2, np.linspace(1e-5, 8e-5, 8), np.full(8, 1e-8), 0.3, 0.01)]
    )
    store.put_faults(run, [Fault(1, 2, 6, "memristor_stuck_off", {"g_S": 8e-6})])
    store.put_result(run, "iv.current_A", np.arange(6.0).reshape(2, 3) * 1e-6)
    store.put_result(run, "iv.voltage_V", np.array([0.0, 0.5, 1.0]))
    store.put_result(run, "masks", np.ones((2, 2), dtype=bool))
    store.put_result(
        run,
        "pulses",
        np.array([(1, 1.3, 1e-4, "ok"), (1, -1.0, 2e-4, "stuck")], dtype=PULSES),
    )
    store.put_value(run, "dims", {"iv.current_A": ["cycle", "step"], "iv.voltage_V": ["step"]})
    store.put_value(run, "summary", {"cycles": 2})
    store.finish_run(run)
    return run


def test_units_from_names() -> None:
    assert [unit_of(n) for n in ("conductance_S", "std_S", "series_std_ohm", "width_s")] == [
        "S",
        "S",
        "ohm",
        "s",
    ]
    assert unit_of("iv.voltage_V") == "V" and unit_of("temperature_C") == "degC"
    assert unit_of("masks") is None and unit_of("n_readings") is None


def test_netcdf_read_by_xarray(store: Store, run_id: int, tmp_path: Path) -> None:
    (path,) = export_run(store, run_id, tmp_path / "run", "netcdf")
    assert path.name == "run.nc"
    with xr.open_dataset(path) as ds:
        assert ds.sizes["reading"] == 4 and ds.sizes["row"] == 4 and ds.sizes["branch"] == 8
        np.testing.assert_array_equal(ds["value"], 1e-5 * np.arange(1, 5))
        assert ds["value"].attrs["units"] == "S" and ds["value"].attrs["long_name"] == "conductance"
        assert ds["current"].attrs["units"] == "A" and ds["voltage"].attrs["units"] == "V"
        assert ds["reading_mask"].dtype == np.uint64
        assert ds["reading_mask"].values.tolist() == [1, 2, 4, 8]
        assert ds["four_wire"].dtype == bool and ds["four_wire"].values.tolist() == [
            False,
            False,
            False,
            True,
        ]
        assert ds["instrument_time"].attrs["units"] == "s"
        assert ds["wall_time"].dtype.kind == "M"  # CF time, decoded by xarray
        assert ds["wall_time"].values[1] - ds["wall_time"].values[0] == np.timedelta64(1, "s")
        # estimates on the board grid, by name
        g = ds["conductance_S"].sel(row=1, column=2)
        np.testing.assert_allclose(g, np.linspace(1e-5, 8e-5, 8))
        assert np.isnan(ds["conductance_S"].sel(row=0, column=0)).all()
        assert ds["conductance_S"].dims == ("row", "column", "branch")
        assert ds["series_ohm"].sel(row=1, column=2) == 0.3
        assert ds["series_ohm"].attrs["units"] == "ohm"
        assert ds["fault_kind"].values.tolist() == ["memristor_stuck_off"]
        assert json.loads(str(ds["fault_evidence_json"].values[0])) == {"g_S": 8e-6}
        # results: declared dims, units from names, records as one variable per field
        assert ds["iv.current_A"].dims == ("cycle", "step")
        assert ds["iv.current_A"].attrs["units"] == "A"
        assert ds["iv.voltage_V"].dims == ("step",)
        assert ds["masks"].dims == ("masks_dim_0", "masks_dim_1") and ds["masks"].dtype == bool
        assert ds["pulses.amplitude_V"].dims == ("pulses",)
        assert ds["pulses.amplitude_V"].attrs["units"] == "V"
        assert ds["pulses.status"].values.tolist() == ["ok", "stuck"]
        # metadata
        assert ds.attrs["run_id"] == run_id and ds.attrs["run_kind"] == "iv"
        assert ds.attrs["board_serial"] == "SIM-0001" and ds.attrs["run_note"] == "loop"
        assert json.loads(ds.attrs["run_settings_json"]) == {"v_max_V": 1.2}
        assert json.loads(ds.attrs["results_json"])["summary"] == {"cycles": 2}
        assert json.loads(ds.attrs["metadata_json"])["board"]["sim_seed"] == 7
    # the in-memory dataset is what the file holds
    mem = run_dataset(store, run_id)
    with xr.open_dataset(path) as ds:
        xr.testing.assert_identical(mem, ds.load())


def test_hdf5_read_by_h5py(store: Store, run_id: int, tmp_path: Path) -> None:
    (path,) = export_run(store, run_id, tmp_path / "run.hdf5", "hdf5")
    assert path.name == "run.hdf5"
    with h5py.File(path, "r") as fh:
        assert fh.attrs["run_kind"] == "iv" and fh.attrs["run_id"] == run_id
        value = fh["readings/value"]
        assert value.attrs["units"] == "S"
        assert [d.label for d in value.dims] == ["reading"]
        assert list(value.dims[0].keys()) == ["reading"]  # a dimension scale
        np.testing.assert_array_equal(value[()], 1e-5 * np.arange(1, 5))
        assert fh["readings/reading_key"].asstr()[0] == "1,2,0x1,0"
        g = fh["elements/conductance_S"]
        assert [d.label for d in g.dims] == ["row", "column", "branch"]
        np.testing.assert_allclose(g[1, 2], np.linspace(1e-5, 8e-5, 8))
        assert fh["results/pulses/amplitude_V"].attrs["units"] == "V"
        assert fh["results/pulses/status"].asstr()[1] == "stuck"
        assert [d.label for d in fh["results/iv.current_A"].dims] == ["cycle", "step"]
        assert fh["faults/fault_kind"].asstr()[0] == "memristor_stuck_off"
        assert json.loads(fh.attrs["metadata_json"])["run"]["id"] == run_id


def test_calibration_labelled(store: Store, board_id: int, run_id: int, tmp_path: Path) -> None:
    store.finish_run(store.start_run("calibration", board_id))  # no estimates: skipped
    cal = store.start_run("calibration", board_id)
    store.put_estimates(cal, [CellEstimate(0, 1, np.full(8, 2e-5), np.full(8, 1e-9))])
    store.put_faults(cal, [Fault(0, 1, 3, "open")])
    store.finish_run(cal)
    (nc,) = export_calibration(store, board_id, tmp_path / "cal", "netcdf")
    with xr.open_dataset(nc) as ds:
        assert ds["conductance_S"].dims == ("row", "column", "branch")
        assert ds["excluded"].sel(row=0, column=1).values.tolist()[3] is True
        assert ds["cell_run_id"].sel(row=0, column=1) == cal and ds.attrs["latest_run_id"] == cal
    (h5,) = export_calibration(store, board_id, tmp_path / "cal", "hdf5")
    with h5py.File(h5, "r") as fh:
        assert fh["cells/measured"][0, 1] and fh["elements/std_S"].attrs["units"] == "S"


def test_labelled_errors(store: Store, run_id: int, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(StoreError, match="writes one file"):
        export_run(store, run_id, tmp_path / "d", "netcdf")
    store.put_value(run_id, "dims", {"iv.voltage_V": ["a", "b"]})
    with pytest.raises(StoreError, match=r"'iv.voltage_V': declared dimensions \['a', 'b'\]"):
        export_run(store, run_id, tmp_path / "x", "hdf5")
