"""`labrss realise`: program cells to precise resistances or conductances, and verify them.

    labrss realise 3,4=4.7k 5,6=120uS --tolerance 0.01%
    labrss realise --targets targets.csv --json
    labrss realise 0,0=4.7k --temperature-range 15:35 --station stage.toml

A thin shell over `labrss.workflows.realise.realise`: per cell it prints the switch mask,
the predicted bank conductance with its expanded uncertainty (k = 2), the measured value
and whether the target is met within ``--tolerance``. ``--json`` prints one object with a
``cells`` list (``r``, ``c``, ``mask``, ``target_S``, ``predicted_S``, ``u_S``, ``U_S``,
``measured_S``, ...). Exit codes: 0 done (every target met when a tolerance is given), 3 done
but a cell missed its tolerance (everything programmed, measured and stored, so that a script
notices), 2 bad input (nothing switched), 1 instrument failure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from labrss.cli.commands.program import (
    EXIT_BAD_INPUT,
    EXIT_INSTRUMENT,
    bad_input_errors,
    load_station_arg,
)

#: Realised, verified and stored, but at least one cell's measurement missed ``--tolerance``.
EXIT_TOLERANCE_MISSED = 3


def register(subparsers: Any) -> None:
    """Add the ``realise`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "realise",
        help="program cells to precise resistances/conductances and verify them",
        description=(
            "Solve each target on the board's latest calibration, program the masks, verify "
            "every cell by measurement and print the predicted value with its expanded "
            "uncertainty (k = 2), the measured value and the verdict. Targets: ROW,COL=VALUE, "
            "a resistance in ohm (4.7k, 1.5M) or a conductance in S (120uS, 0.5mS): the "
            "bank's own value (its branches as switched, wiring excluded). With no "
            "--station, the embedded simulator is used."
        ),
    )
    parser.add_argument("targets", nargs="*", metavar="ROW,COL=VALUE", help="e.g. 3,4=4.7k")
    parser.add_argument(
        "--targets", dest="targets_file", metavar="FILE", help="CSV with r,c,target columns"
    )
    parser.add_argument(
        "--tolerance", metavar="TOL", help="relative tolerance to meet: 0.01%%, 100ppm or 1e-4"
    )
    parser.add_argument(
        "--temperature-range",
        metavar="LOW:HIGH",
        help="choose subsets that hold over this board temperature span (degC), from the "
        "elements' temperature coefficients (labrss calibrate --temperatures); prints the "
        "predicted error over the span for the plain and the compensated mask",
    )
    parser.add_argument("--no-verify", action="store_true", help="program without measuring")
    parser.add_argument("--nplc", metavar="N", type=float, help="verification NPLC")
    parser.add_argument("--station", metavar="FILE", help="station TOML file")
    parser.add_argument("--db", metavar="PATH", help="database file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _fmt(value: float, digits: int = 8) -> str:
    return f"{value:.{digits}g}" if math.isfinite(value) else "-"


def _table(payload: dict[str, Any]) -> str:
    lines = [
        f"run {payload['run_id']} (calibration {payload['calibration_run_id']}), "
        f"expanded uncertainty k = {payload['coverage_factor']:g}",
        f"{'cell':>7}  {'target':>14}  {'mask':>6}  {'predicted S':>15}  {'U (k=2) S':>10}  "
        f"{'measured S':>15}  met",
    ]
    for c in payload["cells"]:
        met = "-" if c["met"] is None else ("yes" if c["met"] else "no")
        lines.append(
            f"{c['r']:>3},{c['c']:<3}  {c['target']:>14}  {c['mask_hex']:>6}  "
            f"{_fmt(c['predicted_S'] or math.nan):>15}  {_fmt(c['U_S'] or math.nan, 3):>10}  "
            f"{_fmt(c['measured_S'] if c['measured_S'] is not None else math.nan):>15}  {met}"
        )
    med = payload.get("median_rel_error_predicted")
    if med is not None:
        lines.append(f"median |predicted / target - 1| = {med:.3g}")
    spans = [c for c in payload["cells"] if c.get("temperature")]
    if spans:
        first = spans[0]["temperature"]
        lo, hi = first["range_C"]
        temps = "  ".join(f"{t:>9.1f}" for t in first["temperatures_C"])
        lines.append("")
        lines.append(
            f"predicted error vs temperature over {lo:g}..{hi:g} degC (ppm of the target; "
            f"the target follows the common TCR {first['common_tcr_ppm_per_K']:+.1f} ppm/K, "
            "which no subset can cancel and ratios do)"
        )
        lines.append(f"{'cell':>7}  {'mask':>10}  {temps}  {'worst':>9}  {'within':>9}")
        for c in spans:
            t = c["temperature"]
            for kind in ("plain", "compensated"):
                errs = "  ".join(f"{e / t['target_S'] * 1e6:>+9.2f}" for e in t[f"errors_{kind}_S"])
                worst = t[f"worst_{kind}_S"] / t["target_S"] * 1e6
                bound = t[f"worst_{kind}_bound_S"] / t["target_S"] * 1e6
                mask = f"{t[f'{kind}_mask']:X}"
                lines.append(
                    f"{c['r']:>3},{c['c']:<3}  {mask:>10}  {errs}  {worst:>9.2f}  {bound:>9.2f}  "
                    f"{kind}"
                )
        lines.append(
            "within: the true worst error stays inside it (k = 2: the calibration's "
            "cell-to-cell uncertainty, the TCRs' over the span, the leakage model's; the "
            f"off-leakage is carried by {first['leakage_rate_from']})"
        )
        lines.append(
            f"median worst |error|: plain {payload['median_rel_worst_error_plain'] * 1e6:.2f} "
            f"ppm, compensated {payload['median_rel_worst_error_compensated'] * 1e6:.2f} ppm"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Realise the targets; print the table (or JSON)."""
    from labrss.lab import Lab
    from labrss.store import Store, resolve_db_path
    from labrss.workflows.realise import (
        RealiseError,
        RealiseSettings,
        check_unique,
        load_targets,
        parse_targets,
        parse_temperature_range,
        parse_tolerance,
        realise,
    )

    prog = "labrss realise"
    bad_input: tuple[type[BaseException], ...] = (RealiseError, *bad_input_errors())
    try:
        targets = parse_targets(args.targets)
        if args.targets_file is not None:
            targets += load_targets(args.targets_file)
            check_unique(targets)
        if not targets:
            raise RealiseError("no targets: give ROW,COL=VALUE arguments or --targets FILE")
        settings = RealiseSettings(
            tolerance=parse_tolerance(args.tolerance) if args.tolerance else None,
            verify=not args.no_verify,
            nplc=args.nplc,
            temperature_range_C=(
                parse_temperature_range(args.temperature_range) if args.temperature_range else None
            ),
        ).validate()
        station = load_station_arg(args.station)
        path = resolve_db_path(
            args.db, station_path=None if station is None else station.store.path
        )
        with Store(path) as store, Lab(station) as lab:
            result = realise(lab, store, targets, settings)
    except bad_input as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        print(f"{prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INSTRUMENT
    payload = result.to_json()
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print(_table(payload))
    missed = [f"({c.r}, {c.c})" for c in result.cells if c.met is False]
    if missed:
        print(
            f"{prog}: {len(missed)} of {len(result.cells)} cells missed the tolerance "
            f"{args.tolerance}: {', '.join(missed)} (run {result.run_id} stored)",
            file=sys.stderr,
        )
        return EXIT_TOLERANCE_MISSED
    return 0
