"""`labrss sequence`: run an experiment file of characterisation modules, loops and delays.

    labrss sequence check experiment.toml            # parse, validate, print the plan
    labrss sequence run experiment.toml              # run it (stored, every reading)
    labrss sequence run experiment.toml --resume 12  # continue interrupted sequence run 12

The file format is in docs/memristor.md ("Sequences") and `labrss.workflows.sequence`.
With no ``--station`` the embedded simulator's memristor board (``--board``, ``--seed``).
``--json`` prints one object. Exit codes: 2 for bad input (file, station, a step the bench
refuses), 1 for an instrument failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from drivers.errors import InstrumentError, InstrumentLimitError
from labrss.cli.next_step import instrument_failure
from labrss.lab import Lab, LabError, LabInputError, SafetyLimitError
from labrss.station import Station, StationError, load_station, parse_station
from labrss.store import Store, StoreError, resolve_db_path
from labrss.workflows.sequence import (
    ModuleStep,
    SequenceError,
    StepRecord,
    check_sequence,
    load_sequence,
    plan,
    run_sequence,
)

EXIT_INSTRUMENT = 1
EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    """Add the ``sequence`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sequence",
        help="run an experiment file of memristor modules, loops and delays (TOML/JSON)",
        description="Run or check a sequence of characterisation modules over cell selections.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, helptext in (
        ("run", "run the sequence (resumable with --resume)"),
        ("check", "validate the file against the bench and print the plan"),
    ):
        p = actions.add_parser(name, help=helptext)
        p.add_argument("file", metavar="FILE", help="sequence file (.toml or .json)")
        p.add_argument("--station", metavar="FILE", help="station TOML file")
        p.add_argument("--board", default="memristor", help="simulated board preset")
        p.add_argument("--seed", type=int, default=0, help="simulated board seed (0)")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument(
            "--max-voltage",
            type=float,
            metavar="V",
            help="embedded simulator only: raise [limits] max_source_voltage_V and "
            "max_pulse_voltage_V to V (forming and staircase I-V steps)",
        )
        if name == "run":
            p.add_argument("--resume", type=int, metavar="RUN", help="continue sequence RUN")
            p.add_argument("--db", metavar="PATH", help="database file")
            p.add_argument("--no-store", action="store_true", help="store nothing")
        p.set_defaults(func=run if name == "run" else check)


_ERRORS = (SequenceError, StationError, LabError, InstrumentError, OSError, StoreError, ValueError)


_ERRORS = (SequenceError, StationError, LabError, InstrumentError, OSError, StoreError, ValueError)


def _station(args: argparse.Namespace) -> Station:
    if args.station:
        if args.max_voltage is not None:
            raise SequenceError(
                "--max-voltage is for the embedded simulator; set [limits] "
                "max_source_voltage_V and max_pulse_voltage_V in the station file"
            )
        return load_station(args.station)
    data: dict[str, Any] = {"simulator": {"board": args.board, "seed": args.seed}}
    if args.max_voltage is not None:
        data["limits"] = {
            "max_source_voltage_V": args.max_voltage,
            "max_pulse_voltage_V": args.max_voltage,
        }
    return parse_station(data)


def _fail(exc: Exception, args: argparse.Namespace) -> int:
    bad = (
        SequenceError,
        StationError,
        LabInputError,
        SafetyLimitError,
        InstrumentLimitError,
        StoreError,
        ValueError,
    )
    if isinstance(exc, bad):
        print(f"labrss sequence: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(instrument_failure("labrss sequence", exc, args), file=sys.stderr)
    return EXIT_INSTRUMENT


def check(args: argparse.Namespace) -> int:
    """``labrss sequence check``."""
    try:
        definition = load_sequence(args.file)
        with Lab(_station(args)) as lab:
            selections = check_sequence(lab, definition)
    except _ERRORS as exc:
        return _fail(exc, args)
    steps = [
        {
            "id": p.id,
            "module": p.step.module if isinstance(p.step, ModuleStep) else "wait",
            "devices": (
                len(selections[f"{p.step.cells}|{p.step.branches}"])
                if isinstance(p.step, ModuleStep)
                else 0
            ),
            "wait_s": 0.0 if isinstance(p.step, ModuleStep) else p.step.seconds,
        }
        for p in plan(definition)
    ]
    if args.json:
        print(json.dumps({"name": definition.name, "steps": steps}))
    else:
        print(f"{definition.name}: {len(steps)} steps")
        for s in steps:
            what = f"{s['devices']} devices" if s["module"] != "wait" else f"{s['wait_s']:g} s"
            print(f"  {s['id']:>8}  {s['module']:<10} {what}")
    return 0


def run(args: argparse.Namespace) -> int:
    """``labrss sequence run``."""

    def echo(record: StepRecord) -> None:
        if not args.json:
            run_txt = f"run {record.run_id}" if record.run_id is not None else ""
            print(f"step {record.id:>8}  {record.module:<10} {record.status:<12} {run_txt}")

    try:
        definition = load_sequence(args.file)
        station = _station(args)
        with Lab(station) as lab:
            if args.no_store:
                if args.resume is not None:
                    raise SequenceError("--resume needs the store (drop --no-store)")
                result = run_sequence(lab, definition, on_step=echo)
            else:
                path = resolve_db_path(args.db or station.store.path, station_path=args.station)
                with Store(path) as store:
                    result = run_sequence(
                        lab, definition, store=store, resume=args.resume, on_step=echo
                    )
    except _ERRORS as exc:
        return _fail(exc, args)
    if args.json:
        print(json.dumps(result.summary()))
    else:
        state = "cancelled" if result.cancelled else "done"
        print(
            f"sequence run {result.run_id}: {state}, {len(result.steps)} steps run, "
            f"{len(result.skipped)} skipped (completed before)"
        )
    return 0
