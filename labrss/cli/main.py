"""Entry point of the `labrss` console script: discovers and dispatches sub-commands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from labrss import __version__
from labrss.cli import commands


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command module in `labrss.cli.commands`."""
    parser = argparse.ArgumentParser(
        prog="labrss",
        description=(
            "Measure a crossbar of imprecise resistors/memristors, solve Random Subset Sum "
            "switch configurations, program networks and compare analog with digital MVM. "
            "With no station file, everything runs on the embedded simulator."
        ),
    )
    parser.add_argument("--version", action="version", version=f"labrss {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `labrss` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    code: int = func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
