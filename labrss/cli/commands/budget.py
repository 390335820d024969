"""`labrss budget`: the uncertainty budget of an element and of a cell, from the store.

    labrss budget 1,2,3                 # branch 3 of cell (1, 2), and the cell, all closed
    labrss budget 1,2,3 --mask 0x5C     # the cell as switched by mask 0x5C
    labrss budget 1,2 --board 1 --json
    labrss budget 1,2 --temperature 35   # carried to 35 degC by the elements' own TCRs

Reads the board's latest calibration (no bench needed) and prints, per component
(docs/metrology.md), the standard uncertainty of the branch and of the cell's bank, in S
and ppm, then the combined (k = 1) and the expanded (k = 2) uncertainty. Where the board
has measured element TCRs (``labrss calibrate --temperatures``) the temperature row is
theirs, not the bill of materials' (`labrss.report.uncertainty_budget`); ``--temperature``
carries the elements to another board temperature by them. Exit code 2 for bad input (no
such cell, no calibration, --temperature without TCRs).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    """Add the ``budget`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "budget",
        help="the uncertainty budget of an element and of a cell (latest calibration)",
        description=(
            "Print the GUM uncertainty budget of branch K of cell (R, C) and of the cell's "
            "bank (every usable branch closed, or --mask), from the board's latest "
            "calibration in the database."
        ),
    )
    parser.add_argument("cell", metavar="R,C[,K]", help="cell, optionally a branch (0-based)")
    parser.add_argument("--mask", help="the cell's switches, e.g. 0x5C (default: all usable)")
    parser.add_argument("--board", type=int, help="board id (default: the last calibrated)")
    parser.add_argument("--db", metavar="PATH", help="database file")
    parser.add_argument("--station", metavar="FILE", help="station TOML file whose [store]")
    parser.add_argument(
        "--temperature",
        type=float,
        metavar="DEGC",
        help="the budget at this board temperature, carried by the measured element TCRs",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the budget; returns the exit code."""
    from labrss.report.uncertainty_budget import budget_rows, format_budget
    from labrss.station import StationError, load_station
    from labrss.store import Store, StoreError, resolve_db_path
    from labrss.workflows.realise import cell_temperatures

    prog = "labrss budget"
    try:
        parts = [p.strip() for p in args.cell.split(",")]
        if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
            raise ValueError(f"cell {args.cell!r}: expected R,C or R,C,K (0-based integers)")
        r, c = int(parts[0]), int(parts[1])
        k = int(parts[2]) if len(parts) == 3 else None
        mask = int(args.mask, 0) if args.mask else None
        station = load_station(args.station) if args.station else None
        path = resolve_db_path(
            args.db, station_path=None if station is None else station.store.path
        )
        with Store(path) as store:
            board_id = args.board
            if board_id is None:
                runs = [x for x in store.runs(kind="calibration") if x.status == "completed"]
                if not runs:
                    raise StoreError(f"{path}: no completed calibration")
                board_id = runs[-1].board_id
            cal = store.latest_calibration(board_id)
            tcr = store.latest_tcr(board_id)
            cell_u = cell_temperatures(store, cal)[1] if tcr is not None else None
        rows_, cols, branches = cal.conductance_S.shape
        if not (0 <= r < rows_ and 0 <= c < cols) or (k is not None and not 0 <= k < branches):
            raise ValueError(f"{args.cell}: not on board {board_id} ({rows_}x{cols}x{branches})")
        if not cal.measured[r, c]:
            raise ValueError(f"cell ({r}, {c}) has no calibration on board {board_id}")
        at_C = args.temperature
        if at_C is not None and not math.isfinite(at_C):
            raise ValueError(f"--temperature {at_C}: not a finite temperature (degC)")
        has_tcr = tcr is not None and bool(tcr.known[r, c][cal.usable[r, c]].all())
        if at_C is not None and not has_tcr:
            raise ValueError(
                f"--temperature: cell ({r}, {c}) has no measured TCR for every usable element "
                "(run `labrss calibrate --temperatures` first)"
            )
        rows = budget_rows(
            cal,
            r,
            c,
            k,
            mask,
            tcr=tcr if has_tcr else None,
            cell_u_K=float(cell_u[r, c]) if cell_u is not None else math.nan,
            at_C=at_C,
        )
    except (ValueError, StationError, StoreError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    mask_text = "all usable" if mask is None else f"0x{mask:X}"
    if has_tcr and tcr is not None:
        temperature_from = (
            f"measured element TCRs (thermal calibration run {int(tcr.run_id[r, c])})"
        )
    else:
        temperature_from = "the bill of materials' TCR (no measured element TCRs)"
    if args.json:

        def f(x: float) -> float | None:
            return x if math.isfinite(x) else None

        payload = {
            "board_id": board_id,
            "cell": [r, c],
            "branch": k,
            "mask": mask,
            "budget_run_id": int(cal.cell_run_id[r, c]),
            "temperature_from": temperature_from,
            "temperature_C": at_C,
            "rows": [
                {
                    "component": n,
                    "branch_S": f(a),
                    "branch_rel": f(b),
                    "cell_S": f(d),
                    "cell_rel": f(e),
                }
                for n, a, b, d, e in rows
            ],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(
            f"board {board_id}, cell ({r}, {c}), calibration run {int(cal.cell_run_id[r, c])}: "
            "standard uncertainties (k = 1)"
        )
        print(format_budget(rows, k, mask_text))
        where = f", carried to {at_C:g} degC" if at_C is not None else ""
        print(f"temperature row: {temperature_from}{where}")
    return 0
