"""A stored run (or a board's latest calibration) as labelled arrays: xarray, netCDF, HDF5.

`run_variables` turns whatever a run holds into `Variable` records, generically: every
reading column, every field of the per-cell estimates (`CellEstimate`; new fields appear
without a change here), the faults, and every array result. Two writers lay them out:

* `to_xarray` / netCDF-4 (`write_netcdf`, through h5netcdf): one flat `xarray.Dataset`.
  ``xarray.open_dataset(path)`` reads it without labrss.
* `write_hdf5` (h5py): groups ``/readings``, ``/elements``, ``/cells``, ``/faults`` and
  ``/results/NAME``, one dataset per variable, HDF5 dimension scales named after the
  dimensions, so ``h5py.File(path)`` users see the same names and units.

Dimensions: ``row``, ``column``, ``branch`` (the board grid, with index coordinates),
``reading`` (one per stored reading, its cell, mask, instrument time and wall time as
coordinates), ``fault``, and the dimensions of the results. A run declares its results'
dimensions in an optional JSON result named ``dims`` (``{"iv.current_A": ["cycle",
"step"], ...}``); undeclared arrays get ``NAME_dim_N``. A structured (record) result
becomes one variable per field, ``NAME.FIELD``, along the dimension ``NAME`` (or the one
declared). Units come from the name's suffix, the project's convention (``_S`` siemens,
``_ohm``, ``_V``, ``_A``, ``_s``, ``_W``, ``_Hz``, ``_C`` degC); readings' ``value`` takes
its ``unit`` column. The run's metadata (run, lineage, board, settings, JSON results) is in
the attributes: flat scalars (``run_id``, ``run_kind``, ``board_serial``, ...) and the
whole provenance as ``metadata_json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from labrss import __version__
from labrss.store.records import UNCERTAINTY_COMPONENTS, BoardInfo, CellEstimate, Fault
from labrss.store.store import Store, StoreError

if TYPE_CHECKING:
    import xarray as xr

#: Name suffix -> unit (CF/UDUNITS spelling), longest suffix first when matching.
UNIT_SUFFIXES: dict[str, str] = {
    "_ohm": "ohm",
    "_Hz": "Hz",
    "_S": "S",
    "_V": "V",
    "_A": "A",
    "_s": "s",
    "_W": "W",
    "_C": "degC",
    "_K": "K",
}

#: The JSON result in which a run may declare the dimension names of its array results.
DIMS_RESULT = "dims"


def unit_of(name: str) -> str | None:
    """The unit a variable name states by its suffix (``conductance_S`` -> ``S``), or None.

    ``std_S`` and ``series_std_ohm`` carry the unit of the value they qualify; a
    ``_per_X`` tail (``relative_per_hour``) is no unit suffix of its own.
    """
    base = name.rsplit(".", 1)[-1]
    for suffix, unit in UNIT_SUFFIXES.items():
        if base.endswith(suffix):
            return unit
    return None


@dataclass(frozen=True)
class Variable:
    """One labelled array of an export.

    Attributes:
        name: the variable's name in the flat dataset (netCDF).
        group: its HDF5 group path (``readings``, ``results/pulses``, ...).
        dims: a dimension name per axis.
        data: the values (numeric, bool or str).
        attrs: ``units``, ``long_name``, ``description`` and the like.
        coord: a coordinate (labels another dimension's positions) rather than data.
        h5_name: its name inside its HDF5 group (default: ``name``).
    """

    name: str
    group: str
    dims: tuple[str, ...]
    data: NDArray[Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    coord: bool = False
    h5_name: str = ""

    @property
    def short_name(self) -> str:
        """The dataset's name inside its HDF5 group."""
        return self.h5_name or self.name


def _attrs(name: str, description: str = "", unit: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    u = unit if unit is not None else unit_of(name)
    if u:
        out["units"] = u
    if description:
        out["description"] = description
    return out


def _flat_attrs(meta: Mapping[str, Any]) -> dict[str, Any]:
    """netCDF/HDF5 attributes: the run's and the board's scalars as ``run_*`` and
    ``board_*`` (None left out; nested values are in ``metadata_json``)."""
    out: dict[str, Any] = {}

    for section in ("run", "board"):
        for key, value in meta.get(section, {}).items():
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, bool):
                out[f"{section}_{key}"] = int(value)
            elif isinstance(value, int | float | str):
                out[f"{section}_{key}"] = value
    return out


def _json(value: Any) -> str:
    def default(obj: object) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        return str(obj)

    return json.dumps(value, sort_keys=True, default=default)


# ---------------------------------------------------------------------------- variables
def grid_variables(board: BoardInfo) -> list[Variable]:
    """The index coordinates of the board grid: ``row``, ``column``, ``branch``."""
    return [
        Variable(
            n, "grid", (n,), np.arange(size, dtype=np.int64), {"long_name": f"{n} index"}, True
        )
        for n, size in (("row", board.rows), ("column", board.cols), ("branch", board.branches))
    ]


def reading_variables(readings: NDArray[np.void]) -> list[Variable]:
    """The readings as variables along ``reading`` (see the module docstring)."""
    n = len(readings)
    out = [
        Variable(
            "reading",
            "readings",
            ("reading",),
            np.arange(n, dtype=np.int64),
            {"long_name": "reading index (the lineage's readings, oldest run first)"},
            True,
        )
    ]
    units = {str(u) for u in readings["unit"]} if n else set()
    quantities = {str(q) for q in readings["quantity"]} if n else set()
    value_attrs: dict[str, Any] = {"description": "the reading, in the reading's unit"}
    if len(units) == 1:
        value_attrs["units"] = units.pop()
    if len(quantities) == 1:
        value_attrs["long_name"] = quantities.pop()
    spec: dict[str, tuple[str, bool, dict[str, Any]]] = {
        # stored field: (variable name, coordinate?, attrs)
        "key": ("reading_key", True, {"description": "the reading's key within its run"}),
        "run_id": ("reading_run_id", True, {"description": "run that took the reading"}),
        "seq": ("reading_seq", True, {"description": "sequence number within its run"}),
        "r": ("reading_row", True, {"description": "cell row"}),
        "c": ("reading_column", True, {"description": "cell column"}),
        "mask": ("reading_mask", True, {"description": "closed switches, bit k = branch k"}),
        "instrument_time_s": (
            "instrument_time",
            True,
            _attrs("instrument_time_s", "the instrument's time stamp"),
        ),
        "wall_time": (
            "wall_time",
            True,
            {"units": "seconds since 1970-01-01T00:00:00Z", "calendar": "standard"},
        ),
        "quantity": ("quantity", False, {"description": "what value is"}),
        "unit": ("unit", False, {"description": "unit of value"}),
        "value": ("value", False, value_attrs),
        "voltage_V": ("voltage", False, _attrs("voltage_V", "sensed voltage")),
        "current_A": ("current", False, _attrs("current_A", "measured current")),
        "current_range_A": ("current_range", False, _attrs("current_range_A", "current range")),
        "nplc": ("nplc", False, {"description": "integration time, power-line cycles"}),
        "four_wire": ("four_wire", False, {"description": "4-wire sensing"}),
        "limit_tripped": ("limit_tripped", False, {"description": "compliance reached"}),
    }
    for name in readings.dtype.names or ():
        var, coord, attrs = spec.get(name, (f"reading_{name}", False, _attrs(name)))
        data = np.ascontiguousarray(readings[name])
        if data.dtype.kind == "U":
            data = data.astype(object).astype(str)
        out.append(Variable(var, "readings", ("reading",), data, dict(attrs), coord))
    return out


def estimate_variables(board: BoardInfo, estimates: Sequence[CellEstimate]) -> list[Variable]:
    """Every field of the run's per-cell estimates on the board grid: per-element arrays
    as (row, column, branch), per-cell values as (row, column); NaN / -1 where a cell has
    none. Generic over `CellEstimate`'s fields."""
    if not estimates:
        return []
    out: list[Variable] = []
    measured = np.zeros(board.shape[:2], dtype=bool)
    for e in estimates:
        measured[e.r, e.c] = True
    out.append(
        Variable(
            "estimated",
            "cells",
            ("row", "column"),
            measured,
            {"description": "the run estimated this cell"},
        )
    )
    for f in fields(CellEstimate):
        if f.name in ("r", "c"):
            continue
        first = np.asarray(getattr(estimates[0], f.name))
        if first.ndim == 1:
            dims: tuple[str, ...] = ("row", "column", "branch")
            shape: tuple[int, ...] = board.shape
            group = "elements"
        else:
            dims, shape, group = ("row", "column"), board.shape[:2], "cells"
        if first.dtype.kind == "f":
            grid = np.full(shape, np.nan)
        elif first.dtype.kind in "iu":
            grid = np.full(shape, -1 if f.name.endswith("dof") else 0, dtype=np.int64)
        elif first.dtype.kind == "b":
            grid = np.zeros(shape, dtype=bool)
        else:
            continue
        for e in estimates:
            grid[e.r, e.c] = getattr(e, f.name)
        out.append(Variable(f.name, group, dims, grid, _attrs(f.name)))
    out += _component_variables(
        board.shape,
        {(e.r, e.c): e.components for e in estimates if e.components is not None},
    )
    return out


def _component_variables(
    shape: tuple[int, int, int], per_cell: Mapping[tuple[int, int], Mapping[str, Any]]
) -> list[Variable]:
    """The uncertainty components ``u_<name>_S`` (row, column, branch) of the cells that
    have a budget (docs/metrology.md); none when no cell has one."""
    if not per_cell:
        return []
    out = []
    for name in UNCERTAINTY_COMPONENTS:
        grid = np.full(shape, np.nan)
        for (r, c), comps in per_cell.items():
            grid[r, c] = comps[name]
        var = f"u_{name}_S"
        desc = f"the {name} component of std_S (the combined standard uncertainty)"
        out.append(Variable(var, "elements", ("row", "column", "branch"), grid, _attrs(var, desc)))
    return out


def fault_variables(faults: Sequence[Fault]) -> list[Variable]:
    """The faults along ``fault``."""
    if not faults:
        return []
    return [
        Variable(
            "fault_row", "faults", ("fault",), np.array([f.r for f in faults], np.int64), {}, True
        ),
        Variable(
            "fault_column",
            "faults",
            ("fault",),
            np.array([f.c for f in faults], np.int64),
            {},
            True,
        ),
        Variable(
            "fault_branch",
            "faults",
            ("fault",),
            np.array([f.k for f in faults], np.int64),
            {},
            True,
        ),
        Variable(
            "fault_kind",
            "faults",
            ("fault",),
            np.array([f.kind for f in faults], dtype=str),
            {"description": "open | short | stuck_open | stuck_closed | memristor_*"},
        ),
        Variable(
            "fault_evidence_json",
            "faults",
            ("fault",),
            np.array([_json(f.evidence) for f in faults], dtype=str),
            {"description": "the numbers that classified the fault (JSON)"},
        ),
    ]


def _declared_dims(
    name: str, shape: tuple[int, ...], declared: Mapping[str, Sequence[str]], record: bool
) -> tuple[str, ...]:
    dims = declared.get(name)
    if dims is not None:
        if len(dims) != len(shape) or not all(isinstance(d, str) and d for d in dims):
            raise StoreError(
                f"result {name!r}: declared dimensions {list(dims)} do not match its shape {shape}"
            )
        return tuple(dims)
    if record and len(shape) == 1:
        return (name,)
    return tuple(f"{name}_dim_{i}" for i in range(len(shape)))


def result_variables(
    name: str, array: NDArray[Any], declared: Mapping[str, Sequence[str]]
) -> list[Variable]:
    """An array result as variables (one per field of a structured array)."""
    arr = np.asarray(array)
    group = f"results/{name}"
    if arr.dtype.names:
        dims = _declared_dims(name, arr.shape, declared, record=True)
        out = []
        for fname in arr.dtype.names:
            data = np.ascontiguousarray(arr[fname])
            if data.dtype.kind == "U":
                data = data.astype(object).astype(str)
            out.append(Variable(f"{name}.{fname}", group, dims, data, _attrs(fname), h5_name=fname))
        return out
    dims = _declared_dims(name, arr.shape, declared, record=False)
    data = arr.astype(object).astype(str) if arr.dtype.kind == "U" else arr
    return [Variable(name, group.rsplit("/", 1)[0], dims, data, _attrs(name))]


def run_variables(store: Store, run_id: int) -> tuple[list[Variable], dict[str, Any]]:
    """Every variable of run ``run_id`` and its attributes (see the module docstring)."""
    from labrss.store.export import run_metadata

    meta = run_metadata(store, run_id)
    board = store.board(meta["run"]["board_id"])
    variables = grid_variables(board)
    variables += reading_variables(store.readings(run_id))
    variables += estimate_variables(board, store.estimates(run_id))
    variables += fault_variables(store.faults(run_id))
    names = store.result_names(run_id)
    declared: Mapping[str, Sequence[str]] = {}
    if names.get(DIMS_RESULT) == "json":
        value = store.get_value(run_id, DIMS_RESULT)
        if isinstance(value, Mapping):
            declared = value
    taken = {v.name for v in variables}
    for name, encoding in names.items():
        if encoding != "npy":
            continue
        for var in result_variables(name, store.get_result(run_id, name), declared):
            if var.name in taken:
                var = dataclasses.replace(var, name=f"result.{var.name}", h5_name=var.short_name)
            taken.add(var.name)
            variables.append(var)
    attrs = {
        "Conventions": "CF-1.10",
        "title": f"labrss run {run_id} ({meta['run']['kind']})",
        "source": f"labrss {__version__}",
        "format_description": "labrss run export; layout in docs/store.md",
        **_flat_attrs(meta),
        "run_settings_json": _json(meta["run"]["settings"]),
        "run_identities_json": _json(meta["run"]["identities"]),
        "results_json": _json(meta["results"]),
        "metadata_json": _json(meta),
    }
    return variables, attrs


def calibration_variables(store: Store, board_id: int) -> tuple[list[Variable], dict[str, Any]]:
    """The board's latest calibration (`Store.latest_calibration`) as variables: every
    (R, C, K) and (R, C) array of `Calibration`, and its faults."""
    from labrss.store.export import calibration_metadata

    cal = store.latest_calibration(board_id)
    board = store.board(board_id)
    meta = calibration_metadata(store, board_id, cal)
    variables = grid_variables(board)
    for f in fields(cal):
        value = getattr(cal, f.name)
        if not isinstance(value, np.ndarray):
            continue
        if value.shape == board.shape:
            variables.append(
                Variable(f.name, "elements", ("row", "column", "branch"), value, _attrs(f.name))
            )
        elif value.shape == board.shape[:2]:
            variables.append(Variable(f.name, "cells", ("row", "column"), value, _attrs(f.name)))
    if cal.components is not None:
        rows, cols = np.nonzero(cal.measured)
        variables += _component_variables(
            board.shape,
            {
                (int(r), int(c)): {k: v[r, c] for k, v in cal.components.items()}
                for r, c in zip(rows, cols, strict=True)
            },
        )
    variables += fault_variables(cal.faults)
    attrs = {
        "Conventions": "CF-1.10",
        "title": f"labrss latest calibration of board {board_id}",
        "source": f"labrss {__version__}",
        "format_description": "labrss calibration export; layout in docs/store.md",
        **_flat_attrs({"board": meta["board"]}),
        "latest_run_id": int(cal.run_id),
        "latest_ended_at": float(cal.ended_at),
        "metadata_json": _json(meta),
    }
    return variables, attrs


# ---------------------------------------------------------------------------- writers
def to_xarray(variables: Iterable[Variable], attrs: Mapping[str, Any]) -> xr.Dataset:
    """The variables as one flat `xarray.Dataset` (coordinates as coordinates)."""
    import xarray as xr

    data_vars: dict[str, Any] = {}
    coords: dict[str, Any] = {}
    for v in variables:
        target = coords if v.coord else data_vars
        target[v.name] = xr.Variable(v.dims, v.data, dict(v.attrs))
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=dict(attrs))


def run_dataset(store: Store, run_id: int, *, decode: bool = True) -> xr.Dataset:
    """Run ``run_id`` as an in-memory `xarray.Dataset`, as `write_netcdf` would write it
    and ``xarray.open_dataset`` read it back (``decode``: CF decoding, so ``wall_time``
    is a datetime64 coordinate and booleans are booleans)."""
    import xarray as xr

    ds = to_xarray(*run_variables(store, run_id))
    return xr.decode_cf(ds) if decode else ds


def write_netcdf(variables: Sequence[Variable], attrs: Mapping[str, Any], path: Path) -> Path:
    """Write a netCDF-4 file (h5netcdf engine) readable by ``xarray.open_dataset``."""
    ds = to_xarray(variables, attrs)  # wall_time stays POSIX s; its units let readers decode
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        if var.dtype.kind in "fiu" and var.ndim > 0 and var.size > 0:
            encoding[str(name)] = {"zlib": True, "complevel": 4}
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)
    return path


def write_hdf5(variables: Sequence[Variable], attrs: Mapping[str, Any], path: Path) -> Path:
    """Write a plain HDF5 file (h5py): a group per kind, dimension scales, units."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    scales: dict[str, Any] = {}
    with h5py.File(path, "w") as fh:
        for key, value in attrs.items():
            fh.attrs[key] = value
        fh.attrs["dimensions_json"] = _json(
            {v.name: list(v.dims) for v in variables if v.group != "grid"}
        )
        datasets: list[tuple[Variable, Any]] = []
        for v in variables:
            group = fh.require_group(v.group)
            data = v.data
            if data.dtype.kind in "UO":
                data = np.asarray(data, dtype=object)
                ds = group.create_dataset(v.short_name, data=data, dtype=h5py.string_dtype("utf-8"))
            else:
                compress = {"compression": "gzip"} if data.ndim > 0 and data.size > 0 else {}
                ds = group.create_dataset(v.short_name, data=data, **compress)
            for key, value in v.attrs.items():
                ds.attrs[key] = value
            ds.attrs["dimensions"] = ",".join(v.dims)
            if v.coord and v.dims == (v.name,):
                ds.make_scale(v.name)
                scales[v.name] = ds
            datasets.append((v, ds))
        for v, ds in datasets:
            for axis, dim in enumerate(v.dims):
                ds.dims[axis].label = dim
                scale = scales.get(dim)
                if scale is not None and scale is not ds:
                    ds.dims[axis].attach_scale(scale)
    return path
