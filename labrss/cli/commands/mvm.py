"""`labrss mvm`: run inputs through a programmed network on the board and compare.

    labrss mvm --program-run 12                       # digits test set, ADC read-out
    labrss mvm --program-run 12 --inputs x.npy --labels y.npy --read-out smu --json

Reprograms each tile of the program run in turn, applies the inputs through the row DACs,
reads the columns, and compares with the target and the programmed networks (relative L2
error, SNR, argmax agreement, accuracy). Exit code 2 for bad input, 1 for an instrument
failure.

A memristor program (`labrss program --devices memristor`) is resident: its one tile's
masks are written (switches only, no pulse) and run. ``--resolve`` first compensates the
devices' drift by re-reading every bank and re-choosing its subset for the same target
(switches only; stored as a new program run, whose id the summary gives as
``resolved_program_run_id``). Its default inputs are the test set of the task it was
programmed with (`resident_digits_task`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from labrss.cli.commands.program import (
    EXIT_BAD_INPUT,
    EXIT_INSTRUMENT,
    StageBars,
    bad_input_errors,
    load_station_arg,
)
from labrss.cli.next_step import store_lookup_hint


def register(subparsers: Any) -> None:
    """Add the ``mvm`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "mvm",
        help="run inputs through a programmed network on the board; compare with digital",
        description="Analog MVM of a program run's network, compared with the digital one.",
    )
    p.add_argument("--program-run", type=int, required=True, metavar="ID", help="program run id")
    p.add_argument("--station", metavar="FILE", help="station TOML (default: embedded simulator)")
    p.add_argument("--db", metavar="PATH", help="measurement store")
    p.add_argument(
        "--inputs", metavar="FILE", help=".npy inputs (B, d_in) (default: digits test set)"
    )
    p.add_argument("--labels", metavar="FILE", help=".npy labels (B,)")
    p.add_argument("--vectors", type=int, metavar="N", help="use the first N inputs")
    p.add_argument(
        "--read-out",
        choices=("auto", "adc", "smu", "superposition"),
        default="auto",
        help="column read-out path (auto: the ADCs where the board has them and its DACs, "
        "else superposition: one row source at a time)",
    )
    p.add_argument("--nplc", type=float, metavar="N", help="SMU integration time")
    p.add_argument("--no-drift-compensation", action="store_true", help="no reference reads")
    p.add_argument(
        "--resolve",
        action="store_true",
        help="memristor programs: re-read and re-solve every bank before the MVM "
        "(drift compensation, switches only)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the MVM from parsed arguments; print the figures (or a JSON summary)."""
    from labrss.lab import Lab
    from labrss.networks.digits import load_digits_split
    from labrss.store import Store, resolve_db_path
    from labrss.workflows.memristor_program import (
        load_memristor_program,
        resident_digits_task,
        resolve_program,
    )
    from labrss.workflows.mvm import MVMSettings, resolve_path, run_mvm
    from labrss.workflows.program import ProgramResult, is_cnn_program, load_program

    try:
        st = load_station_arg(args.station)
        settings = MVMSettings(
            path="adc" if args.read_out == "auto" else args.read_out,
            nplc=args.nplc,
            drift_compensation=not args.no_drift_compensation,
        )
        path = resolve_db_path(args.db, station_path=None if st is None else st.store.path)
        resolved_id = None
        with StageBars(show=not args.no_progress) as bars, Store(path) as store:
            if store.run(args.program_run).kind == "program" and is_cnn_program(
                store, args.program_run
            ):
                return _run_cnn(args, st, settings, store, bars)
            program: ProgramResult = load_program(store, args.program_run)
            memristor = "memristor.cells" in store.result_names(args.program_run)
            if args.resolve and not memristor:
                raise ValueError(
                    f"--resolve: program run {args.program_run} is not a memristor program "
                    "(resistor programs have no device states to re-solve)"
                )
            if args.inputs is not None:
                x = np.load(Path(args.inputs), allow_pickle=False)
                labels = (
                    None if args.labels is None else np.load(Path(args.labels), allow_pickle=False)
                )
            elif memristor and program.network.name == resident_digits_task().network.name:
                task = resident_digits_task()
                x, labels = task.x_test, task.y_test
            else:
                split = load_digits_split()
                x, labels = split.x_test, split.y_test
            if args.vectors is not None:
                x = x[: args.vectors]
                labels = None if labels is None else labels[: args.vectors]
            with Lab(st) as lab:
                if args.read_out == "auto":
                    settings = dataclasses.replace(settings, path=resolve_path("auto", lab))

                def cb(done: int, total: int, message: str) -> None:
                    bars.update("mvm", done, total, message)

                if memristor and lab.simulator is not None:
                    raise ValueError(
                        f"program run {args.program_run} is a memristor program, resident in "
                        "its devices, but the embedded simulator starts a fresh board whose "
                        "devices were never programmed: serve the board with `labrss sim "
                        "--board memristor` and pass a --station that points at it"
                    )
                if args.resolve:
                    program = resolve_program(
                        lab, store, load_memristor_program(store, args.program_run)
                    )
                    resolved_id = program.run_id
                result = run_mvm(lab, store, program, x, labels, settings=settings, progress=cb)
    except bad_input_errors() as exc:
        print(f"labrss mvm: {exc}{store_lookup_hint(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        print(f"labrss mvm: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INSTRUMENT
    summary = result.summary()
    if resolved_id is not None:
        summary["resolved_program_run_id"] = resolved_id
    _print(args, summary)
    return 0


def _print(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")


def _run_cnn(
    args: argparse.Namespace, station: Any, settings: Any, store: Any, bars: StageBars
) -> int:
    """A CNN program run (`labrss.workflows.cnn.load_cnn_program`): its inputs from
    ``--inputs`` or, for a shipped CNN, its test set; `run_cnn_mvm`; print the summary."""
    from labrss.lab import Lab
    from labrss.workflows.cnn import load_cnn_program, run_cnn_mvm
    from labrss.workflows.cnn_demo import CNN_NETWORKS, cnn_data
    from labrss.workflows.mvm import resolve_path

    program = load_cnn_program(store, args.program_run)
    if args.inputs is not None:
        x = np.load(Path(args.inputs), allow_pickle=False)
        labels = None if args.labels is None else np.load(Path(args.labels), allow_pickle=False)
    elif program.network.name in CNN_NETWORKS:
        _, _, x, labels = cnn_data(program.network.name)
    else:
        raise ValueError(
            f"program run {args.program_run} holds the CNN {program.network.name!r}: "
            "pass its test inputs with --inputs (and --labels)"
        )
    if args.vectors is not None:
        x = x[: args.vectors]
        labels = None if labels is None else labels[: args.vectors]
    with Lab(station) as lab:
        if args.read_out == "auto":
            settings = dataclasses.replace(settings, path=resolve_path("auto", lab))

        def cb(done: int, total: int, message: str) -> None:
            bars.update("mvm", done, total, message)

        result = run_cnn_mvm(lab, store, program, x, labels, settings=settings, progress=cb)
    _print(args, result.summary())
    return 0
