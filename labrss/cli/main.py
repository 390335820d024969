"""Entry point of the `labrss` console script: discovers and dispatches sub-commands."""

from __future__ import annotations

import argparse
import importlib
import os
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


DEBUG_ENV_VAR = "LABRSS_DEBUG"
"""Set (non-empty) to let an unexpected exception end `labrss` with its traceback."""
EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run `labrss` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    Each command reports the errors it expects as one line on stderr. Anything else (a bug)
    is reported the same way, naming the exception and how to see the traceback
    (``LABRSS_DEBUG=1``), so a user never faces a traceback; Ctrl-C is one line too.
    """
    try:
        parser = build_parser()  # imports every command (numpy, scipy, ...): seconds
    except KeyboardInterrupt:
        print("labrss: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        code: int = func(args)
    except KeyboardInterrupt:
        print(f"labrss {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get(DEBUG_ENV_VAR):
            raise
        detail = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"labrss {args.command}: unexpected error {type(exc).__name__}"
            f"{': ' + detail if detail else ''} (a bug in labrss: run again with "
            f"{DEBUG_ENV_VAR}=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_UNEXPECTED
    return code


if __name__ == "__main__":
    sys.exit(main())
