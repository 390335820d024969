"""`labrss runs`: list the runs in the lab's database.

    labrss runs                      # every run, oldest first
    labrss runs --board 2 --json     # one board's runs as a JSON array
    labrss runs --db /data/lab.db    # another database (also: LABRSS_DB, --station FILE)
    labrss runs --mark-interrupted 12          # asks you to type 12 to confirm
    labrss runs --mark-interrupted 12 --yes    # scripts: no question

The table shows id, kind, status, board (id and serial), start time (UTC), wall time (s)
and the number of stored readings; with nothing to list (an empty store, or none yet at the
path), one line says so and names the next step (exit code 0; ``--json`` prints ``[]``).
Opening the database marks runs left running by dead processes as interrupted
(docs/store.md): a process that is gone, or whose pid was reused, or a run silent for longer
than the stale time. ``--mark-interrupted RUN`` marks a ``running`` run interrupted at once,
for when you know its process died (so that ``labrss calibrate --resume RUN`` can continue
it); it asks for confirmation (type the run id; ``--yes`` for scripts), since marking a run
that is in fact alive makes its process fail at its next write. Errors are one line on
stderr, exit code 2.
This module also holds the ``--db``/``--station`` options shared with `labrss export`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from labrss.station import StationError, load_station
from labrss.store import Store, StoreError, StoreSchemaError, resolve_db_path

EXIT_BAD_INPUT = 2
FIRST_RUN_HINT = "`labrss calibrate` makes the first"
"""The next step `labrss runs` names when there is nothing to list."""


def add_db_options(parser: argparse.ArgumentParser) -> None:
    """``--db PATH`` and ``--station FILE``: which database to open."""
    parser.add_argument(
        "--db",
        metavar="PATH",
        help="database file (default: $LABRSS_DB, else the station's [store] path, else "
        "$XDG_DATA_HOME/labrss/lab.db)",
    )
    parser.add_argument(
        "--station", metavar="FILE", help="station TOML file whose [store] path to use"
    )


def db_path(args: argparse.Namespace) -> Path:
    """The database path for ``--db``/``--station`` (`StationError` for a bad station)."""
    station_path = None
    if args.station is not None:
        station_path = load_station(args.station).store.path
    return resolve_db_path(args.db, station_path=station_path)


def open_store(args: argparse.Namespace, *, must_exist: bool) -> Store | None:
    """The store named by the options; ``None`` if it does not exist and need not."""
    path = db_path(args)
    if not path.exists():
        if must_exist:
            raise StoreError(f"no database at {path} (see --db, LABRSS_DB, --station)")
        return None
    return Store(path)


def register(subparsers: Any) -> None:
    """Add the ``runs`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "runs",
        help="list the runs in the database (calibrations, programs, MVMs)",
        description="List the runs stored in the lab's database, oldest first.",
    )
    parser.add_argument("--board", metavar="ID", type=int, help="only this board's runs")
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    parser.add_argument(
        "--mark-interrupted",
        metavar="RUN",
        type=int,
        help="mark running run RUN interrupted (its process died): asks to confirm",
    )
    parser.add_argument(
        "--yes", action="store_true", help="with --mark-interrupted: do not ask to confirm"
    )
    add_db_options(parser)
    parser.set_defaults(func=run)


def _mark_interrupted(args: argparse.Namespace) -> int:
    """``--mark-interrupted RUN``: confirm, then `Store.mark_run_interrupted`."""
    run_id = int(args.mark_interrupted)
    store = open_store(args, must_exist=True)
    assert store is not None
    with store:
        info = store.run(run_id)
        if info.status != "running":
            raise StoreError(
                f"run {run_id} is {info.status}, not running: nothing to mark"
                + (" (it can be resumed)" if info.status in ("interrupted", "failed") else "")
            )
        last = info.heartbeat_at if info.heartbeat_at is not None else info.started_at
        print(
            f"run {run_id} ({info.kind}, started {_utc(info.started_at)} UTC by process "
            f"{info.pid} on {info.host}, last sign of life {time.time() - last:.0f} s ago) is "
            "recorded as running. Mark it interrupted only if that process is gone: a live "
            "run marked interrupted fails at its next write.",
            file=sys.stderr,
        )
        if not args.yes:
            if not sys.stdin.isatty():
                raise StoreError("not confirmed: run with --yes to mark it without a question")
            answer = input(f"Type {run_id} to mark run {run_id} interrupted: ").strip()
            if answer != str(run_id):
                print("labrss runs: not confirmed; nothing changed", file=sys.stderr)
                return EXIT_BAD_INPUT
        marked = store.mark_run_interrupted(run_id, "labrss runs --mark-interrupted")
    print(f"run {run_id} is now {marked.status}; resume it with its command's --resume {run_id}")
    return 0


def _utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def run(args: argparse.Namespace) -> int:
    """List runs (see the module docstring)."""
    if args.mark_interrupted is not None:
        try:
            return _mark_interrupted(args)
        except (StoreError, StoreSchemaError, StationError) as exc:
            print(f"labrss runs: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    try:
        store = open_store(args, must_exist=False)
        if store is None:
            rows: list[dict[str, Any]] = []
            if not args.json:
                print(f"no runs yet (no database at {db_path(args)}); {FIRST_RUN_HINT}")
                return 0
            print(f"labrss runs: no database at {db_path(args)}", file=sys.stderr)
        else:
            with store:
                if args.board is not None:
                    store.board(args.board)
                serials = {b.id: b.serial for b in store.boards()}
                rows = [
                    {**info.as_dict(), "board_serial": serials[info.board_id]}
                    for info in store.runs(args.board)
                ]
    except (StoreError, StoreSchemaError, StationError) as exc:
        print(f"labrss runs: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        json.dump(rows, sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    if not rows:
        which = f" for board {args.board}" if args.board is not None else ""
        print(f"no runs yet{which}; {FIRST_RUN_HINT}")
        return 0
    header = ("id", "kind", "status", "board", "started (UTC)", "wall time s", "readings")
    table = [
        (
            str(r["id"]),
            r["kind"],
            r["status"],
            f"{r['board_id']}:{r['board_serial']}",
            _utc(r["started_at"]),
            "-" if r["wall_time_s"] is None else f"{r['wall_time_s']:.1f}",
            str(r["n_readings"]),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    for line in (header, *table):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return 0
