"""`labrss demo`: the main job end to end on the station (default: the embedded simulator).

    labrss demo                                   # simulator, report in ./labrss-demo
    labrss demo --station lab.toml --out report --json
    labrss demo --devices memristor               # resident digits task, drift over time
    labrss demo --network mnist1d-cnn --json      # the MNIST-1D CNN on a 32x32 board

Calibrates the board (or reuses a current calibration), trains the digits MLP, programs
and verifies it, runs the test set through the board and writes a Markdown report with
PNG plots; prints the report's path (``--json``: a summary object). Progress bars on
stderr. Exit code 2 for bad input, 1 for an instrument failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from labrss.cli.commands.program import (
    EXIT_BAD_INPUT,
    EXIT_INSTRUMENT,
    StageBars,
    bad_input_errors,
    load_station_arg,
)


def register(subparsers: Any) -> None:
    """Add the ``demo`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="calibrate, program the digits network, run the test set, write a report",
        description=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    p.add_argument("--station", metavar="FILE", help="station TOML (default: embedded simulator)")
    p.add_argument("--out", metavar="DIR", default="labrss-demo", help="report directory")
    p.add_argument(
        "--db", metavar="PATH", help="measurement store (default: LABRSS_DB/station/user)"
    )
    p.add_argument(
        "--vectors", type=int, metavar="N", help="test vectors to run (default: all 450)"
    )
    p.add_argument(
        "--read-out",
        choices=("auto", "adc", "smu", "superposition"),
        default="auto",
        help="column read-out path (auto: the ADCs where the board has them, else "
        "superposition: one row source at a time)",
    )
    p.add_argument(
        "--recalibrate", action="store_true", help="calibrate even if a current one exists"
    )
    p.add_argument(
        "--devices",
        choices=("resistor", "memristor"),
        default="resistor",
        help="resistor: the digits MLP (default); memristor: a resident 6-input digits task "
        "on a memristor board (default station: the simulator's memristor preset), with "
        "accuracy over virtual time with and without drift compensation",
    )
    p.add_argument(
        "--network",
        choices=("digits-mlp", "mnist1d-cnn", "digits-cnn"),
        default="digits-mlp",
        help="digits-mlp: the digits MLP (default); mnist1d-cnn, digits-cnn: a shipped CNN, "
        "its conv layers as tiled im2col MVMs (default station: the simulator with a "
        "32x32 board; default --vectors 300)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo from parsed arguments."""
    from labrss.workflows.demo import DemoSettings, run_demo

    if args.network != "digits-mlp":
        return _run_cnn(args)
    try:
        station = load_station_arg(args.station)
        settings = DemoSettings(
            out_dir=Path(args.out),
            vectors=args.vectors,
            path=args.read_out,
            force_calibration=args.recalibrate,
            devices=args.devices,
        )
        with StageBars(show=not args.no_progress) as bars:
            outcome = run_demo(settings, station=station, db_path=args.db, progress=bars.update)
    except bad_input_errors() as exc:
        print(f"labrss demo: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        print(f"labrss demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INSTRUMENT
    if args.json:
        print(json.dumps(outcome.summary(), indent=2))
    else:
        s = outcome.summary()
        print(
            f"accuracy digital {s['accuracy_digital']:.4f}, analog {s['accuracy_analog']:.4f}; "
            f"median relative L2 error {s['median_rel_l2_error']:.3%}; cells programmed "
            f"{s['cells_programmed']}, repaired {s['cells_repaired']}; "
            f"wall {s['wall_time_s']:.1f} s, "
            f"instrument {s['instrument_time_s']:.1f} s"
        )
        for point in s.get("over_time", []):
            print(
                f"t = {point['time_s']:.0f} s: accuracy analog "
                f"{point['accuracy_analog_without']:.4f} without drift compensation, "
                f"{point['accuracy_analog_resolved']:.4f} re-solved"
            )
        print(outcome.report_path)
    return 0


def _run_cnn(args: argparse.Namespace) -> int:
    """``labrss demo --network mnist1d-cnn|digits-cnn``."""
    from labrss.workflows.cnn_demo import CNNDemoSettings, run_cnn_demo

    if args.devices != "resistor":
        print("labrss demo: --network takes resistor boards only", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        station = load_station_arg(args.station)
        settings = CNNDemoSettings(
            out_dir=Path(args.out),
            network=args.network,
            vectors=300 if args.vectors is None else args.vectors,
            path=args.read_out,
            force_calibration=args.recalibrate,
        )
        with StageBars(show=not args.no_progress) as bars:
            outcome = run_cnn_demo(settings, station=station, db_path=args.db, progress=bars.update)
    except bad_input_errors() as exc:
        print(f"labrss demo: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        print(f"labrss demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INSTRUMENT
    s = outcome.summary()
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print(
            f"{s['network']} on {s['board']}: accuracy digital {s['accuracy_digital']:.4f}, "
            f"programmed {s['accuracy_programmed']:.4f}, analog {s['accuracy_analog']:.4f} "
            f"({s['vectors']} vectors); median relative L2 error {s['median_rel_l2_error']:.3%} "
            f"(per layer {', '.join(f'{e:.2%}' for e in s['layer_rel_l2_median'])}); "
            f"{s['tiles']} tiles, {s['cells_used']} cells, {s['mvms']} MVMs; "
            f"wall {s['wall_time_s']:.1f} s"
        )
        print(outcome.report_path)
    return 0
