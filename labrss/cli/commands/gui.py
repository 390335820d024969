"""`labrss gui`: the lab GUI (PySide6 + pyqtgraph).

    labrss gui                       # the embedded simulator (the window says SIMULATOR)
    labrss gui --station lab.toml    # a bench from its station file
    labrss gui --no-connect          # open the window without connecting

Exit code: 0 on a normal close; 2 when the station file cannot be read; 3 when Qt cannot
open a window here (no display, missing system libraries, a wrong ``QT_QPA_PLATFORM`` or
plugin path): checked before Qt is loaded (`labrss.cli.gui_environment`), with a message
naming what is missing, the Debian/Ubuntu packages to install and
``QT_QPA_PLATFORM=offscreen`` for headless use, instead of Qt's abort (exit 134).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from labrss.cli import gui_environment

EXIT_NO_WINDOW = 3


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
    problems = gui_environment.check()
    if problems:
        print(gui_environment.report(problems), file=sys.stderr)
        return EXIT_NO_WINDOW
    try:
        from labrss.gui.app import run_gui  # Qt is imported only when the GUI is wanted
    except ImportError as exc:  # a Qt library's own system dependency is missing
        missing = gui_environment.Problem(
            f"Qt could not be loaded: {exc}",
            tuple(
                package
                for soname, package in gui_environment.DEBIAN_PACKAGES.items()
                if soname in str(exc)
            ),
        )
        print(gui_environment.report([missing]), file=sys.stderr)
        return EXIT_NO_WINDOW

    return run_gui(args.station, connect=not args.no_connect, db_path=args.db)
