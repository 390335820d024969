"""`labrss station check [FILE] [--json]`: is the station file right for the bench?

    labrss station check lab.toml       # each step pass/fail with the fix
    labrss station check                # the default station: the embedded simulator

Validates the file, connects, identifies each instrument, reads back its limits and state,
compares the board's geometry with the file; nothing is switched or sourced
(`labrss.workflows.station_check` says exactly what is sent). Exit status 0 only when
every step passes; 1 when one fails.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from labrss.workflows.station_check import check_station

EXIT_FAILED = 1


def register(subparsers: Any) -> None:
    """Add the ``station`` sub-command (``station check``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "station",
        help="check a station file against the connected instruments",
        description="Station file tools.",
    )
    sub = parser.add_subparsers(dest="station_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="validate, connect, identify, read back limits and state (nothing switched)",
        description=(
            "Validate the station file, connect to each instrument, identify it, read back "
            "its limits and state and compare the board's geometry with the file; each step "
            "passes or fails with the fix. Nothing is switched or sourced. Exit status 0 "
            "only when every step passes. With no FILE: the default station (the embedded "
            "simulator)."
        ),
    )
    check.add_argument("file", nargs="?", metavar="FILE", type=Path, help="station TOML file")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument(
        "--timeout", metavar="S", type=float, default=2.0, help="identify timeout (s)"
    )
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Check the station (see the module docstring)."""
    result = check_station(args.file, timeout_s=args.timeout)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.table())
    return 0 if result.passed else EXIT_FAILED
