"""`labrss discover`: find the instruments, say which driver drives each, write a station.

    labrss discover                          # VISA resources, serial ports, LAN broadcast
    labrss discover --host 192.168.1.50      # a LAN instrument whose resource you don't know
    labrss discover --write lab.toml         # and a station file ready to check and use
    labrss discover --sim                    # what it shows, on the embedded simulator

Prints a table (``--json``: one JSON object): every candidate with its status
(recognised, unrecognised, silent, unreachable), the driver that recognises it, its
identity or the reason and what to try; then which transports work here (USB and GPIB
need extras: docs/hardware.md). Only each driver's read-only identify query is sent.
Exit status 0 when discovery ran (whatever it found), 2 for bad input (an option, a
station file, a file that exists).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from labrss.station import StationError
from labrss.workflows.discover import DiscoveryOptions, run_discovery, write_station_file

EXIT_BAD_INPUT = 2
NEXT_STEP = (
    "no instrument recognised: connect and power one, give its address (--resource, "
    "--port, --host), or see what discovery shows on the simulator: labrss discover --sim"
)


def register(subparsers: Any) -> None:
    """Add the ``discover`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "discover",
        help="find the instruments (VISA, serial), identify them, write a station file",
        description=(
            "List every VISA resource the backend finds (LAN, USB, GPIB) and every serial "
            "port, identify each with its drivers' read-only identify query (short "
            "timeout; no setting is ever written), match it against the installed drivers, "
            "and print what was found, with the reason for whatever did not answer. "
            "--write FILE writes a station file ready for `labrss station check FILE`."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--write", metavar="FILE", type=Path, help="write a station file")
    parser.add_argument("--force", action="store_true", help="with --write: replace FILE")
    parser.add_argument(
        "--visa-library",
        metavar="LIB",
        help="pyvisa backend: @py (pyvisa-py, default), @ivi (NI-VISA, Keysight IO "
        "Libraries), or a VISA library path; default: the --station's",
    )
    parser.add_argument("--station", metavar="FILE", type=Path, help="take its visa_library")
    parser.add_argument(
        "--resource", metavar="RES", action="append", default=[], help="also this VISA resource"
    )
    parser.add_argument(
        "--port", metavar="PORT", action="append", default=[], help="also this serial port/URL"
    )
    parser.add_argument(
        "--host",
        metavar="HOST",
        action="append",
        default=[],
        help="try this LAN host's VXI-11, HiSLIP and raw-socket (5025) resources",
    )
    parser.add_argument(
        "--timeout", metavar="S", type=_positive, default=1.0, help="per open and reply (s)"
    )
    parser.add_argument(
        "--no-broadcast",
        action="store_true",
        help="no VXI-11 broadcast on the LAN (also: LABRSS_LAN_BROADCAST=0)",
    )
    parser.add_argument(
        "--no-list",
        action="store_true",
        help="identify only the addresses given, list nothing",
    )
    parser.add_argument(
        "--sim", action="store_true", help="also identify the embedded simulator's instruments"
    )
    parser.set_defaults(func=run)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number > 0")
    return value


def run(args: argparse.Namespace) -> int:
    """Discover (see the module docstring)."""
    options = DiscoveryOptions(
        visa_library=args.visa_library,
        station=args.station,
        resources=tuple(args.resource),
        ports=tuple(args.port),
        hosts=tuple(args.host),
        list_system=not args.no_list,
        lan_broadcast=False if args.no_broadcast else None,
        timeout_s=args.timeout,
        sim=args.sim,
    )
    if args.write is not None and args.write.exists() and not args.force:
        print(
            f"labrss discover: {args.write} exists: choose another name, or --force",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        report = run_discovery(options)
    except (StationError, ValueError) as exc:
        print(f"labrss discover: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    written: Path | None = None
    if args.write is not None:
        try:
            written = write_station_file(report, args.write, overwrite=args.force)
        except (OSError, StationError) as exc:
            print(f"labrss discover: cannot write the station file: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.json:
        data = report.to_json()
        data["station_file"] = None if written is None else str(written)
        print(json.dumps(data, indent=2))
        return 0
    print(report.table())
    if not report.recognised():
        print(NEXT_STEP)
    if written is not None:
        print(f"station file written: {written}; next: labrss station check {written}")
    elif report.recognised():
        print("next: labrss discover --write lab.toml, then labrss station check lab.toml")
    return 0
