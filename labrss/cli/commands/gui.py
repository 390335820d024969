"""`labrss gui`: the lab GUI (PySide6 + pyqtgraph).

    labrss gui                       # the embedded simulator (the window says SIMULATOR)
    labrss gui --station lab.toml    # a bench from its station file
    labrss gui --no-connect          # open the window without connecting

Exit code: 0 on a normal close; 2 when the station file cannot be read.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``gui`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "gui",
        help="open the lab GUI (embedded simulator without --station)",
        description=(
            "Open the lab GUI: connect instruments, see the board's calibration, measure "
            "cells, explore RSS solutions. With no station file it runs on the embedded "
            "simulator and says so."
        ),
    )
    parser.add_argument("--station", metavar="FILE", help="station TOML file")
    parser.add_argument("--db", metavar="PATH", help="database file (default: as labrss runs)")
    parser.add_argument("--no-connect", action="store_true", help="do not connect at start-up")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from labrss.gui.app import run_gui  # Qt is imported only when the GUI is wanted

    return run_gui(args.station, connect=not args.no_connect, db_path=args.db)
