"""`labrss selftest`: safe, non-destructive checks of the bench, as a pass/fail table.

    labrss selftest                              # the embedded simulator
    labrss selftest --station lab.toml --json

Runs `labrss.workflows.selftest.run_selftest` (what each check does is in its docstring)
and stores the run (kind ``selftest``). Exit status: 0 when every check passes, 1 when one
fails or an instrument fails, 2 for bad input (arguments, station file).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from drivers.errors import InstrumentError
from drivers.plugins import PluginError
from labrss.cli.next_step import instrument_failure
from labrss.lab import Lab, LabError
from labrss.station import StationError, default_station, load_station
from labrss.store import Store, StoreError, resolve_db_path
from labrss.workflows.selftest import run_selftest

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    """Add the ``selftest`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "selftest",
        help="safe, non-destructive checks of the bench (pass/fail table)",
        description=(
            "Check the bench without harming it: identities, every switch written and read "
            "back, break-before-make and isolation seen electrically, DAC and ADC read-back "
            "where present, the SMU's compliance and limits in force, the safe state after "
            "every step and after an interruption. Exit status 0 only when every check "
            "passes. The run is stored. With no --station, the embedded simulator is used."
        ),
    )
    parser.add_argument("--station", metavar="FILE", help="station TOML file")
    parser.add_argument(
        "--nplc", metavar="N", type=float, help="integration time of the readings (PLC)"
    )
    parser.add_argument("--db", metavar="PATH", help="database file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        station = load_station(args.station) if args.station else default_station()
    except StationError as exc:
        print(f"labrss selftest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    path = resolve_db_path(args.db, station_path=station.store.path)
    try:
        with Store(path) as store, Lab(station) as lab:
            result = run_selftest(lab, store, nplc=args.nplc)
    except (StoreError, StationError, PluginError) as exc:
        print(f"labrss selftest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (InstrumentError, LabError, OSError) as exc:
        print(instrument_failure("labrss selftest", exc, args), file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"station: {station.name}; store: {path} (run {result.run_id})")
        print(result.table())
    return 0 if result.passed else EXIT_FAILED
