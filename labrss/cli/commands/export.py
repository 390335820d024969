"""`labrss export`: write a run, or a board's latest calibration: CSV, NPZ, netCDF, HDF5.

    labrss export 12 --format csv --out run12/          # a directory of CSV files
    labrss export 12 --format npz --out run12.npz
    labrss export 12 --format netcdf --out run12.nc     # xarray.open_dataset("run12.nc")
    labrss export 12 --format hdf5 --out run12.h5       # h5py.File("run12.h5")
    labrss export --latest-calibration 1 --format npz --out board1-cal.npz

The layouts (file and column names, array names and units) are in docs/store.md. Prints the
written paths, one per line. Errors (unknown run or board, bad format or path) are one line
on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from labrss.cli.commands.runs import EXIT_BAD_INPUT, add_db_options, open_store
from labrss.cli.next_step import store_lookup_hint
from labrss.station import StationError
from labrss.store import StoreError, StoreSchemaError
from labrss.store.export import EXPORT_FORMATS, export_calibration, export_run


def register(subparsers: Any) -> None:
    """Add the ``export`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "export",
        help="export a run or a board's latest calibration (CSV, NPZ, netCDF or HDF5)",
        description=(
            "Export a run (its readings, including those of the runs it resumes, estimates, "
            "faults and results) or the latest calibration of a board."
        ),
    )
    parser.add_argument("run_id", metavar="RUN", type=int, nargs="?", help="run id")
    parser.add_argument(
        "--latest-calibration",
        metavar="BOARD",
        type=int,
        help="export the board's latest calibration instead of a run",
    )
    parser.add_argument("--format", required=True, choices=EXPORT_FORMATS, dest="fmt")
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="directory (csv) or file (npz, netcdf: .nc, hdf5: .h5 appended without a suffix)",
    )
    add_db_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export (see the module docstring)."""
    if (args.run_id is None) == (args.latest_calibration is None):
        print("labrss export: give either RUN or --latest-calibration BOARD", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        store = open_store(args, must_exist=True)
        assert store is not None
        with store:
            if args.run_id is not None:
                files = export_run(store, args.run_id, args.out, args.fmt)
            else:
                files = export_calibration(store, args.latest_calibration, args.out, args.fmt)
    except (StoreError, StoreSchemaError, StationError, OSError) as exc:
        print(f"labrss export: {exc}{store_lookup_hint(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in files:
        print(path)
    return 0
