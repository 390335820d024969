"""`labrss calibrate`: a scripted calibration run, stored, with progress and a summary.

    labrss calibrate                                   # whole board, embedded simulator
    labrss calibrate --cells 0-3,* --design single --nplc 0.1 --repeats 2 --json
    labrss calibrate --resume 12                       # finish interrupted run 12
    labrss calibrate --station s.toml --temperatures 20,30,40 --cells 0,0-3
                                                       # TCR per element (thermal stage)

Shows a progress bar (tqdm, on stderr) with the ETA in instrument time and in wall time,
then a summary table (elements, faults, median relative uncertainty, wall time,
instrument time); ``--json`` prints one JSON object with the run id instead. Errors are
one line on stderr: exit code 2 for bad input (arguments, station file, cells, limits, a
run that cannot be resumed), 1 for an instrument failure (the run is then stored as
interrupted and the message says how to resume it), 130 when interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from calibration.run import CalibrationInterruptedError, RunProgress
from calibration.settings import CalibrationSettings, SettingsError, parse_cells
from drivers.errors import InstrumentError, InstrumentLimitError
from labrss.cli.next_step import instrument_failure
from labrss.lab import LabError, LabInputError, SafetyLimitError
from labrss.station import Station, StationError, default_station, load_station
from labrss.store import Store, StoreError, resolve_db_path
from labrss.workflows.calibrate import run_calibration
from labrss.workflows.thermal_calibration import KIND as THERMAL_KIND
from labrss.workflows.thermal_calibration import (
    ThermalCalibrationSettings,
    parse_temperatures,
    run_thermal_calibration,
)

EXIT_INSTRUMENT = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def register(subparsers: Any) -> None:
    """Add the ``calibrate`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "calibrate",
        help="measure every branch of the selected cells and store the calibration",
        description=(
            "Calibrate the board: measure every branch of the selected cells (one-by-one or "
            "with a weighing design), estimate conductances, series path, leakage and faults, "
            "and store every reading. With no --station, the embedded simulator is used."
        ),
    )
    parser.add_argument("--station", metavar="FILE", help="station TOML file")
    parser.add_argument(
        "--cells",
        metavar="ROWS,COLS",
        default="*,*",
        help="cells to calibrate: each of ROWS and COLS is *, N or A-B, joined by + "
        "(default: every cell)",
    )
    parser.add_argument("--design", choices=("single", "weighing"), default="single")
    parser.add_argument("--nplc", metavar="N", type=float, help="integration time (PLC)")
    parser.add_argument(
        "--read-voltage", metavar="V", type=float, help="read voltage (V; default: station's)"
    )
    parser.add_argument("--repeats", metavar="K", type=int, default=1, help="design passes")
    parser.add_argument(
        "--no-reversal",
        action="store_true",
        help="read at +V only (default: +V and -V, cancelling the meter's offsets)",
    )
    parser.add_argument(
        "--no-range-link",
        action="store_true",
        help="do not link the current ranges (default: a few subsets are read on two adjacent "
        "ranges, so every range is on one scale; docs/metrology.md)",
    )
    parser.add_argument(
        "--no-anchor",
        action="store_true",
        help="ignore the station's [reference] standard (default: measure it and anchor the "
        "absolute scale to its certificate)",
    )
    parser.add_argument(
        "--temperatures",
        metavar="T1,T2,...",
        help="calibrate at each of these stage set points (degC) in turn, waiting for "
        "stability at each (the station's [thermal] section), and estimate every element's "
        "temperature coefficient (docs/temperature.md)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN",
        type=int,
        help="finish interrupted run RUN (a calibration or a --temperatures run)",
    )
    parser.add_argument("--db", metavar="PATH", help="database file")
    parser.add_argument("--json", action="store_true", help="print one JSON summary object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _fmt_s(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


class _Bar:
    """tqdm bar fed by `RunProgress`, ETA in instrument and wall time."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm[Any] | None = None

    def __call__(self, p: RunProgress) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = tqdm(total=p.total, initial=p.done, unit="rd", file=sys.stderr)
        if p.total != self.bar.total:  # the range links are planned after the design
            self.bar.total = p.total
            self.bar.refresh()
        self.bar.update(p.done - self.bar.n)
        self.bar.set_postfix_str(
            f"ETA instrument {_fmt_s(p.eta_instrument_s)}, wall {_fmt_s(p.eta_wall_s)}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _scale_text(summary: dict[str, Any]) -> str:
    """How the run's absolute scale is known: anchored to a standard, or the meter's
    specification (with the range links' reference range)."""
    anchor = summary.get("anchor") or {}
    if anchor.get("status") == "anchored":
        return f"anchored to the reference standard, u = {anchor['u_relative']:.2g} (relative)"
    ref = summary.get("range_reference_A")
    linked = f"ranges linked to {ref:g} A" if ref else "ranges not linked"
    why = f"; not anchored: {anchor['reason']}" if anchor.get("reason") else ""
    return f"the SMU's specification ({linked}){why}"


def _table(summary: dict[str, Any], db: str, station: str) -> str:
    rows = [
        ("run", f"{summary['run_id']} ({summary['status']}, design {summary.get('design')})"),
        ("station", station),
        ("database", db),
        ("cells", str(summary.get("cells"))),
        ("elements", str(summary.get("elements"))),
        ("faults", f"{summary.get('faults')} {summary.get('fault_kinds') or ''}".strip()),
        (
            "median rel. uncertainty",
            f"{summary.get('median_relative_uncertainty', math.nan):.3g} combined (k = 1), "
            f"{summary.get('median_relative_uncertainty_statistical', math.nan):.3g} "
            "statistical",
        ),
        ("absolute scale", _scale_text(summary)),
        ("readings", str(summary.get("readings"))),
        ("wall time", _fmt_s(float(summary.get("wall_time_s", math.nan)))),
        ("instrument time", _fmt_s(float(summary.get("instrument_time_s", math.nan)))),
    ]
    return _aligned(rows)


def _aligned(rows: list[tuple[str, str]]) -> str:
    """``name  value`` lines, the values aligned (the command's human-readable output)."""
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _calibration_settings(args: argparse.Namespace) -> CalibrationSettings:
    """The settings of one calibration as the options give them (not yet validated)."""
    return CalibrationSettings(
        cells=parse_cells(args.cells),
        design=args.design,
        nplc=args.nplc,
        read_voltage_V=args.read_voltage,
        repeats=args.repeats,
        reversal=not args.no_reversal,
        range_link=not args.no_range_link,
        anchor=not args.no_anchor,
    )


#: Errors in what the user asked for (options, station, store, limits): exit
#: `EXIT_BAD_INPUT` with the message. Checked before `_INSTRUMENT_ERRORS` (the limit
#: errors are also lab and instrument errors).
_BAD_INPUT_ERRORS = (
    SettingsError,
    StationError,
    StoreError,
    LabInputError,
    SafetyLimitError,
    InstrumentLimitError,
)
#: The bench failed: exit `EXIT_INSTRUMENT` with what to check next.
_INSTRUMENT_ERRORS = (CalibrationInterruptedError, InstrumentError, LabError, OSError)


def run(args: argparse.Namespace) -> int:
    """Run ``labrss calibrate``; returns the exit code."""
    prog = "labrss calibrate"
    bar = _Bar(not args.no_progress and not args.json)
    try:
        station = load_station(args.station) if args.station else default_station()
        if args.temperatures is not None or _is_thermal_run(args, station):
            return _run_thermal(args, station)
        settings = _calibration_settings(args).validate()
        outcome = run_calibration(
            settings, station=station, db_path=args.db, resume=args.resume, progress=bar
        )
    except KeyboardInterrupt:
        bar.close()
        print(f"{prog}: interrupted; the run is stored as interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _BAD_INPUT_ERRORS as exc:
        bar.close()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _INSTRUMENT_ERRORS as exc:
        bar.close()
        print(instrument_failure(prog, exc, args), file=sys.stderr)
        return EXIT_INSTRUMENT
    bar.close()
    summary = dict(outcome.result.summary)
    if args.json:
        summary["database"] = str(outcome.db_path)
        summary["station"] = outcome.station_name
        summary["simulated"] = outcome.simulated
        print(json.dumps(_finite(summary), default=_json_default, allow_nan=False))
    else:
        print(_table(summary, str(outcome.db_path), outcome.station_name))
    return 0


def _is_thermal_run(args: argparse.Namespace, station: Station) -> bool:
    """Whether ``--resume RUN`` names a thermal calibration run."""
    if args.resume is None:
        return False
    path = resolve_db_path(args.db, station_path=station.store.path)
    if not Path(path).exists():
        return False
    with Store(path) as store:
        try:
            return store.run(args.resume).kind == THERMAL_KIND
        except StoreError:
            return False


def _run_thermal(args: argparse.Namespace, station: Station) -> int:
    """``--temperatures``: calibrate at each set point and fit the TCRs."""
    prog = "labrss calibrate"
    quiet = args.json or args.no_progress

    def progress(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        settings = None
        if args.temperatures is not None:
            settings = ThermalCalibrationSettings(
                parse_temperatures(args.temperatures), _calibration_settings(args)
            )
        outcome = run_thermal_calibration(
            settings, station=station, db_path=args.db, resume=args.resume, progress=progress
        )
    except KeyboardInterrupt:
        print(
            f"{prog}: interrupted; the run is stored as interrupted and the stage is going to "
            "its safe set point; resume with --resume RUN (labrss runs lists it)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except _BAD_INPUT_ERRORS as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _INSTRUMENT_ERRORS as exc:
        print(instrument_failure(prog, exc, args), file=sys.stderr)
        return EXIT_INSTRUMENT
    summary: dict[str, Any] = {
        "run_id": outcome.run_id,
        "status": outcome.status,
        "database": str(outcome.db_path),
        "points": list(outcome.points),
        "cells": len(outcome.cells),
        "common_tcr": outcome.common.to_json() if outcome.common is not None else None,
    }
    if outcome.fit is not None:
        summary["median_u_tcr_ppm_per_K"] = float(np.nanmedian(outcome.fit.u_tcr_ppm_per_K))
    if outcome.leakage is not None:
        summary["leakage"] = outcome.leakage.to_json()
    if args.json:
        print(json.dumps(_finite(summary), default=_json_default, allow_nan=False))
        return 0 if outcome.status == "completed" else EXIT_INTERRUPTED
    rows = [("run", f"{outcome.run_id} ({outcome.status}, thermal calibration)")]
    rows += [("database", str(outcome.db_path))]
    for p in outcome.points:
        rows.append(
            (
                f"{p['setpoint_C']:g} degC",
                f"calibration run {p.get('calibration_run_id')} ({p['status']}), board "
                f"{p.get('board_C', math.nan):.2f} degC after {p.get('waited_s', math.nan):.0f} s",
            )
        )
    if outcome.common is not None and outcome.fit is not None:
        c = outcome.common
        rows += [
            ("elements", str(c.n)),
            (
                "common TCR",
                f"{c.common_ppm_per_K:+.2f} +- {c.u_common_ppm_per_K:.2f} ppm/K (cancels in "
                "ratios; subset choice cannot)",
            ),
            ("TCR spread", f"{c.spread_ppm_per_K:.2f} ppm/K (what subset choice can cancel)"),
            ("median u(TCR)", f"{summary['median_u_tcr_ppm_per_K']:.2f} ppm/K"),
        ]
        leak = summary.get("leakage") or {}
        if isinstance(leak.get("rate_per_K"), float) and math.isfinite(leak["rate_per_K"]):
            doubling = leak.get("doubling_K")
            rows.append(
                (
                    "off-leakage",
                    f"grows {1e2 * leak['rate_per_K']:.2f} +- {1e2 * leak['u_rate_per_K']:.1g} "
                    f"%/K (doubles every {doubling:.1f} K; {leak['cells']} cells)"
                    if isinstance(doubling, float)
                    else f"does not grow ({leak['cells']} cells)",
                )
            )
    else:
        rows.append(("resume", f"labrss calibrate --resume {outcome.run_id}"))
    print(_aligned(rows))
    return 0 if outcome.status == "completed" else EXIT_INTERRUPTED


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: those become null (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_default(obj: object) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
