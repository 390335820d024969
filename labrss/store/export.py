"""Export a run, or the latest calibration of a board: CSV files, NPZ, netCDF-4 or HDF5.

Layouts (documented in full in docs/store.md):

* CSV: ``out`` is a directory (created) holding ``run.json`` (run and board provenance,
  JSON results), ``readings.csv``, ``estimates.csv`` (one row per element), ``cells.csv``
  (one row per cell: series path, leakage, residual statistics), ``faults.csv``, and the
  array results as ``results/NAME.npy``. For a calibration: ``calibration.json``,
  ``estimates.csv`` (with ``excluded`` and ``run_id`` columns), ``cells.csv``, ``faults.csv``.
  A thermal calibration run also gets ``tcr.csv`` (each element's TCR; NPZ: the arrays
  ``tcr_ppm_per_K``, ``u_tcr_ppm_per_K``, ``tcr_conductance_S``, ``tcr_reference_C``).
  Empty fields are unknown values (SQL NULL / NaN); floats are written with full precision.
* NPZ: one file ``out`` (``.npz`` appended if missing), no pickles (``np.load`` works with
  ``allow_pickle=False``); the array names and units are listed in `NPZ_RUN_ARRAYS` and
  `NPZ_CALIBRATION_ARRAYS`, and ``metadata_json`` is a 0-d string with the provenance.
* netCDF-4 (``.nc``) and HDF5 (``.h5``): labelled arrays with named dimensions, units and
  the run's metadata as attributes (`labrss.store.dataset`), readable with
  ``xarray.open_dataset`` and ``h5py`` without labrss.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from labrss.store.records import (
    UNCERTAINTY_COMPONENTS,
    Calibration,
    CellEstimate,
    ElementTCR,
    Fault,
)
from labrss.store.store import Store, StoreError

ExportFormat = Literal["csv", "npz", "netcdf", "hdf5"]
EXPORT_FORMATS: tuple[str, ...] = ("csv", "npz", "netcdf", "hdf5")

#: File name suffix each single-file format gets when ``out`` has none of its own.
_SUFFIXES = {"npz": ".npz", "netcdf": ".nc", "hdf5": ".h5"}

#: Arrays of a run's NPZ export: name -> meaning and unit. ``readings_*`` are 1-D, one
#: entry per reading; element arrays are (rows, cols, branches); cell arrays (rows, cols).
NPZ_RUN_ARRAYS: dict[str, str] = {
    "metadata_json": "0-d str: run, board and JSON results (provenance)",
    "readings_key": "str: reading key",
    "readings_run_id": "int64: run that took the reading (a resume includes its parents')",
    "readings_seq": "int64: sequence number within its run",
    "readings_r": "int32: cell row",
    "readings_c": "int32: cell column",
    "readings_mask": "uint64: closed switches (bit k = branch k)",
    "readings_quantity": "str: what value is (e.g. conductance)",
    "readings_unit": "str: unit of value (e.g. S)",
    "readings_value": "float64: the reading, in readings_unit",
    "readings_voltage_V": "float64: sensed voltage, V",
    "readings_current_A": "float64: measured current, A",
    "readings_current_range_A": "float64: current range, A",
    "readings_nplc": "float64: integration time, power-line cycles",
    "readings_four_wire": "bool: 4-wire sensing",
    "readings_limit_tripped": "bool: compliance reached",
    "readings_instrument_time_s": "float64: instrument time stamp, s",
    "readings_wall_time": "float64: wall-clock time, POSIX s",
    "conductance_S": "float64 (R,C,K): element conductance estimate, S (NaN: none)",
    "std_S": "float64 (R,C,K): its combined standard uncertainty, S (docs/metrology.md)",
    **{
        f"u_{name}_S": f"float64 (R,C,K): the {name} component of std_S, S (NaN: no budget)"
        for name in UNCERTAINTY_COMPONENTS
    },
    "series_ohm": "float64 (R,C): common series path, ohm",
    "series_std_ohm": "float64 (R,C): its standard error, ohm",
    "leakage_S": "float64 (R,C): all-open conductance (leakage + offset), S",
    "leakage_std_S": "float64 (R,C): its standard error, S",
    "chi2": "float64 (R,C): weighted residual sum of squares of the fit",
    "dof": "int64 (R,C): its degrees of freedom (-1: none)",
    "holdout_chi2": "float64 (R,C): chi-square on the held-out subsets",
    "holdout_dof": "int64 (R,C): number of held-out subsets (-1: none)",
    "n_readings": "int64 (R,C): readings used per cell",
    "fault_r": "int64: row of each fault",
    "fault_c": "int64: column of each fault",
    "fault_k": "int64: branch of each fault",
    "fault_kind": "str: open | short | stuck_open | stuck_closed",
    "fault_evidence_json": "str: JSON evidence of each fault",
    "result_NAME": "the run's array result NAME, as stored",
}

#: Arrays of a calibration's NPZ export (same conventions as `NPZ_RUN_ARRAYS`).
NPZ_CALIBRATION_ARRAYS: dict[str, str] = {
    "metadata_json": "0-d str: board and contributing runs (provenance)",
    "conductance_S": "float64 (R,C,K): element conductance estimate, S",
    "std_S": "float64 (R,C,K): its combined standard uncertainty, S (docs/metrology.md)",
    **{
        f"u_{name}_S": f"float64 (R,C,K): the {name} component of std_S, S (NaN: no budget)"
        for name in UNCERTAINTY_COMPONENTS
    },
    "excluded": "bool (R,C,K): faulty, the solver must not use it",
    "series_ohm": "float64 (R,C): common series path, ohm",
    "series_std_ohm": "float64 (R,C): its standard error, ohm",
    "leakage_S": "float64 (R,C): all-open conductance, S",
    "leakage_std_S": "float64 (R,C): its standard error, S",
    "measured": "bool (R,C): cell has a calibration",
    "cell_run_id": "int64 (R,C): run the cell's estimates come from (-1: none)",
    "fault_r": "int64",
    "fault_c": "int64",
    "fault_k": "int64",
    "fault_kind": "str",
    "fault_evidence_json": "str",
}

_COMPONENT_HEADER = tuple(f"u_{name}_S" for name in UNCERTAINTY_COMPONENTS)
#: ``std_S`` is the combined standard uncertainty; the ``u_*_S`` columns its components
#: (empty for runs stored before the budget existed, whose std_S is statistical only).
_ESTIMATE_HEADER = ("r", "c", "k", "conductance_S", "std_S", *_COMPONENT_HEADER)


def _components_of(e: CellEstimate, k: int) -> tuple[float, ...]:
    comps = e.components or {}
    return tuple(
        float(comps[name][k]) if name in comps else math.nan for name in UNCERTAINTY_COMPONENTS
    )


_CELL_HEADER = (
    "r",
    "c",
    "series_ohm",
    "series_std_ohm",
    "leakage_S",
    "leakage_std_S",
    "chi2",
    "dof",
    "holdout_chi2",
    "holdout_dof",
    "n_readings",
)
_FAULT_HEADER = ("r", "c", "k", "kind", "evidence_json")


def _cell(value: Any) -> str:
    """One CSV field: full-precision floats, empty for NaN/None, 0/1 for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
    return path


_TCR_HEADER = (
    "r",
    "c",
    "k",
    "tcr_ppm_per_K",
    "u_tcr_ppm_per_K",
    "tcr_conductance_S",
    "tcr_reference_C",
)
"""``tcr.csv`` (a thermal calibration run): each element's resistance TCR and its standard
uncertainty (ppm/K), its conductance at the reference temperature (S) and that temperature
(degC); docs/temperature.md."""


def _tcr_arrays(tcr: ElementTCR) -> tuple[NDArray[np.float64], ...]:
    return (tcr.tcr_ppm_per_K, tcr.u_tcr_ppm_per_K, tcr.conductance_S, tcr.reference_C)


def _check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise StoreError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")


def _npz_path(out: Path) -> Path:
    return out if out.suffix == ".npz" else out.with_name(out.name + ".npz")


def _file_path(out: Path, fmt: str) -> Path:
    """``out`` for a single-file format: its suffix appended unless ``out`` has one."""
    if fmt == "npz":
        return _npz_path(out)
    if out.exists() and out.is_dir():
        raise StoreError(f"{fmt} export writes one file, but {out} is a directory")
    return out if out.suffix else out.with_name(out.name + _SUFFIXES[fmt])


def _write_labelled(
    variables: Sequence[Any], attrs: dict[str, Any], out: Path, fmt: str
) -> list[Path]:
    from labrss.store.dataset import write_hdf5, write_netcdf

    path = _file_path(out, fmt)
    writer = write_netcdf if fmt == "netcdf" else write_hdf5
    return [writer(variables, attrs, path)]


def _prepare_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise StoreError(f"CSV export needs a directory, but {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _fault_arrays(faults: Sequence[Fault]) -> dict[str, NDArray[Any]]:
    return {
        "fault_r": np.array([f.r for f in faults], dtype=np.int64),
        "fault_c": np.array([f.c for f in faults], dtype=np.int64),
        "fault_k": np.array([f.k for f in faults], dtype=np.int64),
        "fault_kind": np.array([f.kind for f in faults], dtype="U12"),
        "fault_evidence_json": np.array(
            [json.dumps(f.evidence, sort_keys=True) for f in faults], dtype=str
        ),
    }


def _fault_rows(faults: Sequence[Fault]) -> list[tuple[Any, ...]]:
    return [(f.r, f.c, f.k, f.kind, json.dumps(f.evidence, sort_keys=True)) for f in faults]


def _cell_row(e: CellEstimate) -> tuple[Any, ...]:
    return (
        e.r,
        e.c,
        e.series_ohm,
        e.series_std_ohm,
        e.leakage_S,
        e.leakage_std_S,
        e.chi2,
        e.dof,
        e.holdout_chi2,
        e.holdout_dof,
        e.n_readings,
    )


def run_metadata(store: Store, run_id: int) -> dict[str, Any]:
    """Provenance of a run: the run, its lineage, its board, and its JSON results."""
    info = store.run(run_id)
    board = store.board(info.board_id)
    names = store.result_names(run_id)
    return {
        "format": "labrss run export",
        "database": str(store.path),
        "schema_version": store.schema_version,
        "run": info.as_dict(),
        "lineage": store.lineage(run_id),
        "board": {name: getattr(board, name) for name in board.__dataclass_fields__},
        "results": {
            name: (store.get_value(run_id, name) if enc == "json" else f"results/{name}.npy")
            for name, enc in names.items()
        },
    }


def export_run(store: Store, run_id: int, out: str | Path, fmt: ExportFormat) -> list[Path]:
    """Write run ``run_id`` (readings of its whole lineage, estimates, faults, results) to
    ``out`` as ``fmt``; return the files written."""
    _check_format(fmt)
    out = Path(out).expanduser()
    if fmt in ("netcdf", "hdf5"):
        from labrss.store.dataset import run_variables

        return _write_labelled(*run_variables(store, run_id), out, fmt)
    meta = run_metadata(store, run_id)
    board = store.board(meta["run"]["board_id"])
    readings = store.readings(run_id)
    estimates = store.estimates(run_id)
    faults = store.faults(run_id)
    arrays_results = {n: e for n, e in store.result_names(run_id).items() if e == "npy"}
    if fmt == "csv":
        directory = _prepare_dir(out)
        (directory / "run.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        names = readings.dtype.names or ()
        written = [
            directory / "run.json",
            _write_csv(
                directory / "readings.csv",
                names,
                (tuple(rec[n].item() for n in names) for rec in readings),
            ),
            _write_csv(
                directory / "estimates.csv",
                _ESTIMATE_HEADER,
                (
                    (e.r, e.c, k, e.conductance_S[k], e.std_S[k], *_components_of(e, k))
                    for e in estimates
                    for k in range(board.branches)
                ),
            ),
            _write_csv(directory / "cells.csv", _CELL_HEADER, (_cell_row(e) for e in estimates)),
            _write_csv(directory / "faults.csv", _FAULT_HEADER, _fault_rows(faults)),
        ]
        tcr = store.tcr(run_id)
        if np.isfinite(tcr.tcr_ppm_per_K).any():
            written.append(
                _write_csv(
                    directory / "tcr.csv",
                    _TCR_HEADER,
                    (
                        (r, c, k, *(float(a[r, c, k]) for a in _tcr_arrays(tcr)))
                        for r, c, k in zip(*np.nonzero(np.isfinite(tcr.tcr_ppm_per_K)), strict=True)
                    ),
                )
            )
        if arrays_results:
            (directory / "results").mkdir(exist_ok=True)
            for name in arrays_results:
                path = directory / "results" / f"{name}.npy"
                np.save(path, store.get_result(run_id, name), allow_pickle=False)
                written.append(path)
        return written
    shape = board.shape
    arrays: dict[str, NDArray[Any]] = {
        "metadata_json": np.array(json.dumps(meta, sort_keys=True)),
    }
    for name in readings.dtype.names or ():
        arrays[f"readings_{name}"] = np.ascontiguousarray(readings[name])
    grids: dict[str, NDArray[Any]] = {
        "conductance_S": np.full(shape, np.nan),
        "std_S": np.full(shape, np.nan),
        "n_readings": np.zeros(shape[:2], dtype=np.int64),
        "dof": np.full(shape[:2], -1, dtype=np.int64),
        "holdout_dof": np.full(shape[:2], -1, dtype=np.int64),
    }
    for name in (
        "series_ohm",
        "series_std_ohm",
        "leakage_S",
        "leakage_std_S",
        "chi2",
        "holdout_chi2",
    ):
        grids[name] = np.full(shape[:2], np.nan)
    for name in UNCERTAINTY_COMPONENTS:
        grids[f"u_{name}_S"] = np.full(shape, np.nan)
    for e in estimates:
        grids["conductance_S"][e.r, e.c] = e.conductance_S
        grids["std_S"][e.r, e.c] = e.std_S
        for name, value in (e.components or {}).items():
            grids[f"u_{name}_S"][e.r, e.c] = value
        for name in (
            "series_ohm",
            "series_std_ohm",
            "leakage_S",
            "leakage_std_S",
            "chi2",
            "holdout_chi2",
            "dof",
            "holdout_dof",
            "n_readings",
        ):
            grids[name][e.r, e.c] = getattr(e, name)
    arrays.update(grids)
    tcr = store.tcr(run_id)
    if np.isfinite(tcr.tcr_ppm_per_K).any():
        for name, value in zip(_TCR_HEADER[3:], _tcr_arrays(tcr), strict=True):
            arrays[name] = value
    arrays.update(_fault_arrays(faults))
    for name in arrays_results:
        arrays[f"result_{name}"] = store.get_result(run_id, name)
    path = _npz_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return [path]


def calibration_metadata(store: Store, board_id: int, cal: Calibration) -> dict[str, Any]:
    """Provenance of a calibration export: the board and the runs its cells come from."""
    board = store.board(board_id)
    run_ids = sorted({int(x) for x in np.unique(cal.cell_run_id) if x >= 0})
    return {
        "format": "labrss calibration export",
        "database": str(store.path),
        "schema_version": store.schema_version,
        "board": {name: getattr(board, name) for name in board.__dataclass_fields__},
        "latest_run_id": cal.run_id,
        "latest_ended_at": cal.ended_at,
        "runs": [store.run(rid).as_dict() for rid in run_ids],
    }


def export_calibration(
    store: Store, board_id: int, out: str | Path, fmt: ExportFormat
) -> list[Path]:
    """Write the board's latest calibration (`Store.latest_calibration`) to ``out`` as
    ``fmt``; return the files written."""
    _check_format(fmt)
    out = Path(out).expanduser()
    if fmt in ("netcdf", "hdf5"):
        from labrss.store.dataset import calibration_variables

        return _write_labelled(*calibration_variables(store, board_id), out, fmt)
    cal = store.latest_calibration(board_id)
    board = store.board(board_id)
    meta = calibration_metadata(store, board_id, cal)
    faults = list(cal.faults)
    if fmt == "csv":
        directory = _prepare_dir(out)
        (directory / "calibration.json").write_text(
            json.dumps(meta, indent=2, sort_keys=True) + "\n"
        )
        cells = np.argwhere(cal.measured)
        comps = cal.components or {
            name: np.full(cal.std_S.shape, np.nan) for name in UNCERTAINTY_COMPONENTS
        }
        return [
            directory / "calibration.json",
            _write_csv(
                directory / "estimates.csv",
                (*_ESTIMATE_HEADER, "excluded", "run_id"),
                (
                    (
                        r,
                        c,
                        k,
                        cal.conductance_S[r, c, k],
                        cal.std_S[r, c, k],
                        *(comps[name][r, c, k] for name in UNCERTAINTY_COMPONENTS),
                        bool(cal.excluded[r, c, k]),
                        cal.cell_run_id[r, c],
                    )
                    for r, c in cells
                    for k in range(board.branches)
                ),
            ),
            _write_csv(
                directory / "cells.csv",
                ("r", "c", "series_ohm", "series_std_ohm", "leakage_S", "leakage_std_S", "run_id"),
                (
                    (
                        r,
                        c,
                        cal.series_ohm[r, c],
                        cal.series_std_ohm[r, c],
                        cal.leakage_S[r, c],
                        cal.leakage_std_S[r, c],
                        cal.cell_run_id[r, c],
                    )
                    for r, c in cells
                ),
            ),
            _write_csv(directory / "faults.csv", _FAULT_HEADER, _fault_rows(faults)),
        ]
    arrays: dict[str, NDArray[Any]] = {
        "metadata_json": np.array(json.dumps(meta, sort_keys=True)),
        "conductance_S": cal.conductance_S,
        "std_S": cal.std_S,
        "excluded": cal.excluded,
        "series_ohm": cal.series_ohm,
        "series_std_ohm": cal.series_std_ohm,
        "leakage_S": cal.leakage_S,
        "leakage_std_S": cal.leakage_std_S,
        "measured": cal.measured,
        "cell_run_id": cal.cell_run_id,
        **{
            f"u_{name}_S": (
                cal.components[name]
                if cal.components is not None
                else np.full(cal.std_S.shape, np.nan)
            )
            for name in UNCERTAINTY_COMPONENTS
        },
        **_fault_arrays(faults),
    }
    path = _npz_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return [path]
