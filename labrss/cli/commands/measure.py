"""`labrss measure`: one resistance reading of a branch or of a programmed cell.

    labrss measure --branch 2,3,0                 # the embedded simulator
    labrss measure --cell 2,3 --station lab.toml --nplc 10 --json

Prints the resistance (ohm) and conductance (S) with the reading's metadata (instrument,
NPLC, range, limit tripped, time); ``--json`` prints one JSON object instead. Errors are
one line on stderr: exit code 2 for bad input (arguments, station file, a request beyond
the station's limits), 1 for an instrument failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from drivers.errors import InstrumentError, InstrumentLimitError
from labrss.cli.next_step import instrument_failure
from labrss.lab import Lab, LabError, LabInputError, Reading, SafetyLimitError
from labrss.station import Station, StationError, default_station, load_station

EXIT_INSTRUMENT = 1
EXIT_BAD_INPUT = 2


class _BadInputError(Exception):
    """A command-line value that cannot be used (exit code 2)."""


def register(subparsers: Any) -> None:
    """Add the ``measure`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "measure",
        help="measure one branch or one programmed cell (resistance and conductance)",
        description=(
            "Measure one branch of a cell (only that branch closed) or one cell as currently "
            "programmed (no switch changed), with the station's SMU. With no --station, the "
            "embedded simulator is used."
        ),
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--branch", metavar="R,C,K", help="row, column and branch index (0-based)")
    what.add_argument("--cell", metavar="R,C", help="row and column index (0-based)")
    parser.add_argument(
        "--station", metavar="FILE", help="station TOML file (default: the embedded simulator)"
    )
    parser.add_argument(
        "--nplc", metavar="N", help="integration time in power-line cycles (default: station's)"
    )
    parser.add_argument(
        "--read-voltage",
        metavar="V",
        help="source voltage in volts (default: the station's read_voltage_V)",
    )
    parser.add_argument(
        "--four-wire", action="store_true", default=None, help="use 4-wire (remote) sense"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _indices(text: str, count: int, option: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    names = ("R", "C", "K")[:count]
    if len(parts) != count or not all(p.isdigit() for p in parts):
        raise _BadInputError(
            f"{option} {text!r}: expected {count} non-negative integers {','.join(names)}"
        )
    return tuple(int(p) for p in parts)


def _number(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise _BadInputError(f"{option} {text!r}: not a number") from None


def _format_text(reading: Reading, station: Station, simulated: bool) -> str:
    r, c = reading.cell
    if reading.kind == "branch":
        what = f"branch {reading.branches[0]} of cell ({r}, {c})"
    else:
        what = f"cell ({r}, {c}), mask 0x{reading.mask:X}"
    lines = [
        f"{what}:",
        f"  resistance   {reading.resistance_ohm:.7g} ohm",
        f"  conductance  {reading.conductance_S:.7g} S",
        f"  voltage      {reading.voltage_V:.7g} V (sourced {reading.source_voltage_V:g} V)",
        f"  current      {reading.current_A:.7g} A",
        f"  limit tripped {'YES: not a valid reading' if reading.limit_tripped else 'no'}",
        f"  instrument   {reading.instrument}",
        f"  NPLC {reading.nplc:g}, range {reading.current_range_A:g} A, "
        f"{'4' if reading.four_wire else '2'}-wire, time {reading.time_s:.6g} s",
        f"  station      {station.name}{' (simulated)' if simulated else ''}",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``labrss measure``; returns the exit code."""
    prog = "labrss measure"
    try:
        station = load_station(args.station) if args.station else default_station()
        nplc = _number(args.nplc, "--nplc")
        read_voltage = _number(args.read_voltage, "--read-voltage")
        if args.branch is not None:
            r, c, k = _indices(args.branch, 3, "--branch")
        else:
            r, c = _indices(args.cell, 2, "--cell")
        with Lab(station) as lab:
            if args.branch is not None:
                reading = lab.measure_branch(
                    r, c, k, nplc=nplc, read_voltage_V=read_voltage, four_wire=args.four_wire
                )
            else:
                reading = lab.measure_cell(
                    r, c, nplc=nplc, read_voltage_V=read_voltage, four_wire=args.four_wire
                )
            simulated = lab.simulated
    except (
        _BadInputError,
        StationError,
        LabInputError,
        SafetyLimitError,
        InstrumentLimitError,
    ) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (InstrumentError, LabError, OSError) as exc:
        print(instrument_failure(prog, exc, args), file=sys.stderr)
        return EXIT_INSTRUMENT
    if args.json:
        payload = reading.to_dict()
        payload["station"] = station.name
        payload["simulated"] = simulated
        print(json.dumps(payload))
    else:
        print(_format_text(reading, station, simulated))
    return 0
