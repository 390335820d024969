"""`Store`: the lab's SQLite database of boards, runs, raw readings, estimates and faults.

One file per lab (see `labrss.store.paths`), stdlib ``sqlite3`` in WAL mode with foreign keys
on and ``synchronous = FULL``: every committed transaction survives a process crash *and* a
power loss, and readers (the GUI, ``labrss runs``) never block the writer. Each public
write method is one transaction, so a process killed between two calls loses nothing that a
call returned for, and a call interrupted half-way leaves no trace.

Runs left ``running`` by a process that died are marked ``interrupted`` by
`Store.mark_interrupted_runs`, which every `Store` calls when it opens the file (see its
docstring for how "died" is decided: by the heartbeat, even when a process with the run's
pid exists, since pids are reused). A run that is known dead but not yet stale can be
marked by hand (`Store.mark_run_interrupted`; ``labrss runs --mark-interrupted RUN``, the
GUI's Calibrate tab), after which it can be resumed. A resumed run is a new run whose
``parent_run_id`` is the interrupted one; `Store.readings` and `Store.completed_keys`
follow that lineage.

A `Store` (like its ``sqlite3`` connection) belongs to the thread that opened it; open one
per thread. Several processes may open the same file at once.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from labrss import __version__
from labrss.metrology.budget import ElementBudget, Source, sources_from_json, sources_to_json
from labrss.store.records import (
    ELEMENT_KINDS,
    FAULT_KINDS,
    READING_NUMERIC_FIELDS,
    RUN_STATUSES,
    UNCERTAINTY_COMPONENTS,
    BoardInfo,
    Calibration,
    CellEstimate,
    ElementKind,
    ElementTCR,
    Fault,
    FaultKind,
    ReadingRow,
    RunInfo,
    RunStatus,
    SwitchCounts,
    nan_to_none,
)
from labrss.store.schema import check_database, migrate, schema_version

#: A run is considered dead when its last heartbeat is older than this (s), whatever its
#: pid: a live process with the run's pid may be another one (pids are reused, containers
#: restart at pid 1). Long operations call `Store.heartbeat` well within it.
DEFAULT_STALE_AFTER_S = 3600.0

_COMPONENT_COLUMNS = tuple(f"u_{name}_S" for name in UNCERTAINTY_COMPONENTS)

_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_RESULT_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_CHUNK = 500  # keys per "IN (...)" query, well below SQLite's variable limit
_MASK_BITS = 64


class StoreError(ValueError):
    """Bad input to the store (unknown run or board, wrong state, bad value): names what."""


class DuplicateReadingError(StoreError):
    """A reading key that the run (or a run it resumes) already holds."""


class NoCalibrationError(StoreError):
    """The board has no completed calibration run with estimates."""


def _to_sql_mask(mask: int) -> int:
    """Unsigned 64-bit mask to SQLite's signed INTEGER (two's complement)."""
    return mask - (1 << _MASK_BITS) if mask >= 1 << (_MASK_BITS - 1) else mask


def _from_sql_mask(value: int) -> int:
    return value + (1 << _MASK_BITS) if value < 0 else value


def _json_default(obj: object) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _dumps(value: object, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} is not JSON serialisable: {exc}") from exc


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` on this host exists and is not a zombie."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def _process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (s since the epoch), from Linux's procfs; None if unknown.

    /proc/PID/stat field 22 is the start in clock ticks after boot; /proc/stat ``btime`` is
    the boot time (s since the epoch).
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        ticks = int(fields[19])  # field 22 of the whole line: 20th after "(comm) "
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _hostname() -> str:
    return socket.gethostname()


class Store:
    """The lab's measurement database (a context manager; see the module docstring).

    ``Store(path)`` opens or creates the file at ``path`` (parent directories included)
    and migrates it to the current schema; `labrss.store.paths.resolve_db_path` gives the
    default path. With ``mark_interrupted`` (default), runs left running by dead processes
    are marked interrupted on open.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        mark_interrupted: bool = True,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        timeout_s: float = 30.0,
    ) -> None:
        self.path = Path(path).expanduser()
        self.stale_after_s = float(stale_after_s)
        if self.path.is_dir():
            raise StoreError(f"database path {self.path} is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the database {self.path}: {exc}") from exc
        self._conn = conn
        try:
            check_database(conn, self.path)  # refuse a foreign file before touching it
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL journal mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            migrate(conn, self.path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{self.path}: not a usable SQLite database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        if mark_interrupted:
            self.mark_interrupted_runs()

    # ------------------------------------------------------------------ plumbing
    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()

    @property
    def schema_version(self) -> int:
        """The database's ``PRAGMA user_version``."""
        return schema_version(self._conn)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` ("ok" for a sound file) plus a foreign-key check."""
        result = str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])
        if result == "ok" and self._conn.execute("PRAGMA foreign_key_check").fetchone():
            return "foreign key violations"
        return result

    # ------------------------------------------------------------------ boards
    def register_board(
        self,
        identity: str,
        serial: str,
        rows: int,
        cols: int,
        branches: int,
        *,
        element_kind: ElementKind = "resistor",
        simulated: bool = False,
        sim_seed: int | None = None,
        sim_preset: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> int:
        """The id of this board, registering it on first sight.

        A board is the same board when identity, serial, simulated flag, simulator seed
        and preset all match; its geometry and element kind must then match too (else
        `StoreError`: a board whose serial answers with another geometry is suspicious).
        """
        if not identity or not serial:
            raise StoreError(
                f"board identity and serial must be non-empty: {identity!r}, {serial!r}"
            )
        for name, value in (("rows", rows), ("cols", cols)):
            if int(value) != value or value < 1:
                raise StoreError(
                    f"board {serial}: {name} must be a positive integer, got {value!r}"
                )
        if int(branches) != branches or not 1 <= branches <= _MASK_BITS:
            raise StoreError(f"board {serial}: branches must be 1..64, got {branches!r}")
        if element_kind not in ELEMENT_KINDS:
            raise StoreError(
                f"board {serial}: element kind {element_kind!r} not in {ELEMENT_KINDS}"
            )
        if not simulated and (sim_seed is not None or sim_preset is not None):
            raise StoreError(f"board {serial}: simulator seed/preset given for a real board")
        info_json = _dumps(info or {}, f"board {serial} info")
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, rows, cols, branches, element_kind FROM boards WHERE identity = ? "
                "AND serial = ? AND simulated = ? AND sim_seed IS ? AND sim_preset IS ?",
                (identity, serial, int(simulated), sim_seed, sim_preset),
            ).fetchone()
            if row is not None:
                if tuple(row[1:]) != (rows, cols, branches, element_kind):
                    raise StoreError(
                        f"board {serial} ({identity}) is registered as board {row[0]} with "
                        f"{row[1]}x{row[2]}x{row[3]} {row[4]}s, now it reports "
                        f"{rows}x{cols}x{branches} {element_kind}s"
                    )
                return int(row[0])
            cur = conn.execute(
                "INSERT INTO boards (identity, serial, rows, cols, branches, element_kind, "
                "simulated, sim_seed, sim_preset, info_json, registered_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    identity,
                    serial,
                    int(rows),
                    int(cols),
                    int(branches),
                    element_kind,
                    int(simulated),
                    sim_seed,
                    sim_preset,
                    info_json,
                    time.time(),
                ),
            )
            return int(cast(int, cur.lastrowid))

    _BOARD_COLUMNS = (
        "id, identity, serial, rows, cols, branches, element_kind, simulated, sim_seed, "
        "sim_preset, info_json, registered_at"
    )

    @staticmethod
    def _board_from_row(row: Sequence[Any]) -> BoardInfo:
        return BoardInfo(
            id=int(row[0]),
            identity=row[1],
            serial=row[2],
            rows=int(row[3]),
            cols=int(row[4]),
            branches=int(row[5]),
            element_kind=row[6],
            simulated=bool(row[7]),
            sim_seed=row[8],
            sim_preset=row[9],
            info=json.loads(row[10]),
            registered_at=float(row[11]),
        )

    def board(self, board_id: int) -> BoardInfo:
        """The registered board ``board_id`` (`StoreError` if unknown)."""
        row = self._conn.execute(
            f"SELECT {self._BOARD_COLUMNS} FROM boards WHERE id = ?", (int(board_id),)
        ).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no board with id {board_id}")
        return self._board_from_row(row)

    def boards(self) -> list[BoardInfo]:
        """Every registered board, by id."""
        rows = self._conn.execute(f"SELECT {self._BOARD_COLUMNS} FROM boards ORDER BY id")
        return [self._board_from_row(row) for row in rows]

    # ------------------------------------------------------------------ switch counts
    def record_switch_counts(
        self,
        board_id: int,
        counts: Mapping[str, int],
        rated_operations: int | None,
        where: Mapping[str, str] | None = None,
        *,
        recorded_at: float | None = None,
    ) -> int:
        """Store the board's switch operation counts (as the instrument keeps them); return
        the record's id."""
        self.board(board_id)  # a clear StoreError for an unknown board
        bad = [name for name, n in counts.items() if not (isinstance(n, int) and n >= 0)]
        if bad:
            raise StoreError(f"switch {bad[0]!r}: count {counts[bad[0]]!r} is not an integer >= 0")
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO switch_counts (board_id, recorded_at, rated_operations, "
                "counts_json, where_json) VALUES (?, ?, ?, ?, ?)",
                (
                    int(board_id),
                    time.time() if recorded_at is None else float(recorded_at),
                    None if rated_operations is None else int(rated_operations),
                    json.dumps(dict(counts), sort_keys=True),
                    json.dumps(dict(where or {}), sort_keys=True),
                ),
            )
            return int(cur.lastrowid or 0)

    def switch_counts(self, board_id: int) -> list[SwitchCounts]:
        """Every recording of the board's switch counts, oldest first."""
        rows = self._conn.execute(
            "SELECT id, board_id, recorded_at, rated_operations, counts_json, where_json "
            "FROM switch_counts WHERE board_id = ? ORDER BY recorded_at, id",
            (int(board_id),),
        )
        return [
            SwitchCounts(
                id=int(row[0]),
                board_id=int(row[1]),
                recorded_at=float(row[2]),
                rated_operations=None if row[3] is None else int(row[3]),
                counts={str(k): int(v) for k, v in json.loads(row[4]).items()},
                where={str(k): str(v) for k, v in json.loads(row[5]).items()},
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ runs
    def start_run(
        self,
        kind: str,
        board_id: int,
        settings: dict[str, Any] | None = None,
        identities: dict[str, Any] | None = None,
        *,
        parent_run_id: int | None = None,
        software_version: str = __version__,
        note: str = "",
    ) -> int:
        """Open a run (status ``running``, owned by this process) and return its id.

        ``kind`` is a lower-case identifier (``calibration``, ``program``, ``mvm``, ...).
        ``settings`` (what the run was asked to do) and ``identities`` (``*IDN?`` of every
        instrument, board serial, simulator seed) are stored as JSON for provenance.
        ``parent_run_id`` names the interrupted or failed run this one resumes: same board
        and kind, and not running.
        """
        if not _KIND_RE.match(kind):
            raise StoreError(
                f"run kind {kind!r} must be a lower-case identifier (e.g. 'calibration')"
            )
        self.board(board_id)
        if parent_run_id is not None:
            parent = self.run(parent_run_id)
            if parent.board_id != board_id or parent.kind != kind:
                raise StoreError(
                    f"run {parent_run_id} is a {parent.kind} run of board {parent.board_id}; "
                    f"it cannot be resumed as a {kind} run of board {board_id}"
                )
            if parent.status not in ("interrupted", "failed"):
                raise StoreError(
                    f"run {parent_run_id} is {parent.status}: only interrupted or failed runs "
                    "can be resumed"
                )
        settings_json = _dumps(settings or {}, f"{kind} run settings")
        identities_json = _dumps(identities or {}, f"{kind} run instrument identities")
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO runs (kind, board_id, status, settings_json, identities_json, "
                "software_version, started_at, parent_run_id, note, pid, host, heartbeat_at) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    int(board_id),
                    settings_json,
                    identities_json,
                    software_version,
                    now,
                    parent_run_id,
                    note,
                    os.getpid(),
                    _hostname(),
                    now,
                ),
            )
            return int(cast(int, cur.lastrowid))

    _RUN_COLUMNS = (
        "r.id, r.kind, r.board_id, r.status, r.settings_json, r.identities_json, "
        "r.software_version, r.started_at, r.ended_at, r.wall_time_s, r.instrument_time_s, "
        "r.parent_run_id, r.note, r.pid, r.host, r.heartbeat_at, "
        "(SELECT count(*) FROM readings WHERE run_id = r.id)"
    )

    @staticmethod
    def _run_from_row(row: Sequence[Any]) -> RunInfo:
        return RunInfo(
            id=int(row[0]),
            kind=row[1],
            board_id=int(row[2]),
            status=row[3],
            settings=json.loads(row[4]),
            identities=json.loads(row[5]),
            software_version=row[6],
            started_at=float(row[7]),
            ended_at=row[8],
            wall_time_s=row[9],
            instrument_time_s=row[10],
            parent_run_id=row[11],
            note=row[12],
            pid=row[13],
            host=row[14],
            heartbeat_at=row[15],
            n_readings=int(row[16]),
        )

    def run(self, run_id: int) -> RunInfo:
        """Run ``run_id`` (`StoreError` if unknown)."""
        row = self._conn.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs r WHERE r.id = ?", (int(run_id),)
        ).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no run with id {run_id}")
        return self._run_from_row(row)

    def runs(self, board_id: int | None = None, *, kind: str | None = None) -> list[RunInfo]:
        """Runs, oldest first, optionally of one board and/or one kind."""
        where: list[str] = []
        args: list[int | str] = []
        if board_id is not None:
            where.append("r.board_id = ?")
            args.append(int(board_id))
        if kind is not None:
            where.append("r.kind = ?")
            args.append(kind)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._conn.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs r {clause} ORDER BY r.id", args
        )
        return [self._run_from_row(row) for row in rows]

    def lineage(self, run_id: int) -> list[int]:
        """``[run_id, parent, grandparent, ...]``: the runs a resumed run continues."""
        chain = [int(run_id)]
        parent = self.run(run_id).parent_run_id
        while parent is not None:
            if parent in chain:  # cannot happen through this API; guard against loops
                raise StoreError(f"{self.path}: run {run_id} has a cyclic parent chain")
            chain.append(int(parent))
            row = self._conn.execute("SELECT parent_run_id FROM runs WHERE id = ?", (parent,))
            parent = row.fetchone()[0]
        return chain

    def _running(self, run_id: int) -> RunInfo:
        info = self.run(run_id)
        if info.status != "running":
            raise StoreError(f"run {run_id} is {info.status}, not running: it takes no more data")
        return info

    def heartbeat(self, run_id: int) -> None:
        """Record that the process running ``run_id`` is alive (see `mark_interrupted_runs`)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                (time.time(), int(run_id)),
            )

    def finish_run(
        self,
        run_id: int,
        status: RunStatus = "completed",
        *,
        instrument_time_s: float | None = None,
        note: str | None = None,
    ) -> None:
        """Close a running run as ``completed``, ``interrupted`` or ``failed``.

        Records the end time and wall time (s), and the instrument time the caller measured
        (s, e.g. `Lab.instrument_time_s` differences). ``note`` (e.g. the error of a failed
        run) replaces the run's note when given.
        """
        if status not in RUN_STATUSES or status == "running":
            raise StoreError(f"run {run_id}: cannot finish with status {status!r}")
        info = self._running(run_id)
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, wall_time_s = ?, "
                "instrument_time_s = coalesce(?, instrument_time_s), note = coalesce(?, note), "
                "heartbeat_at = ? WHERE id = ?",
                (status, now, now - info.started_at, instrument_time_s, note, now, int(run_id)),
            )

    def mark_interrupted_runs(self) -> list[int]:
        """Mark runs left ``running`` by a dead process as ``interrupted``; return their ids.

        A run is dead when its last sign of life (start, each `add_readings`, `heartbeat`)
        is older than ``stale_after_s``, **whatever its pid**: a live process with the run's
        pid may be another one (pids are reused; in containers, often at once). Sooner, a
        run started on this host is dead when its process no longer exists (or is a zombie)
        or started after the run did (its pid was reused). The run's end time becomes its
        last sign of life, so its wall time excludes the time it lay dead.
        """
        here = _hostname()
        now = time.time()
        dead: list[tuple[int, float, str]] = []
        rows = self._conn.execute(
            "SELECT r.id, r.pid, r.host, r.heartbeat_at, r.started_at, "
            "(SELECT max(wall_time) FROM readings WHERE run_id = r.id) "
            "FROM runs r WHERE r.status = 'running'"
        ).fetchall()
        for run_id, pid, host, heartbeat_at, started_at, last_reading in rows:
            signs = [x for x in (heartbeat_at, last_reading) if x is not None]
            last = max(signs) if signs else float(started_at)
            why = None
            if host == here and pid is not None:
                born = _process_start_time(int(pid)) if _pid_alive(int(pid)) else None
                reused = born is not None and born > float(started_at) + 1.0
                if not _pid_alive(int(pid)):
                    why = f"process {pid} on {host} is gone"
                elif reused:
                    why = f"process {pid} on {host} started after the run: its pid was reused"
                elif int(pid) == os.getpid():
                    continue  # this very process started the run: alive
            if why is None and now - last > self.stale_after_s:
                why = (
                    f"no heartbeat for {now - last:.0f} s (process {pid} on {host}, "
                    f"stale after {self.stale_after_s:.0f} s)"
                )
            if why is not None:
                dead.append((int(run_id), float(last), why))
        if dead:
            with self._write() as conn:
                for run_id, last, why in dead:
                    conn.execute(
                        "UPDATE runs SET status = 'interrupted', ended_at = ?, "
                        "wall_time_s = ? - started_at, "
                        "note = trim(note || ' ' || ?) WHERE id = ? AND status = 'running'",
                        (last, last, f"[marked interrupted: {why}]", run_id),
                    )
        return [run_id for run_id, _, _ in dead]

    def mark_run_interrupted(self, run_id: int, reason: str = "marked by hand") -> RunInfo:
        """Mark running run ``run_id`` interrupted by hand (its process is known dead, but
        the heartbeat is not stale yet); it can then be resumed. Returns the updated run.

        Only a ``running`` run can be marked (`StoreError` otherwise). The caller confirms
        first: if the run's process is in fact alive, it will fail at its next write. The
        end time is the run's last sign of life, and ``reason`` goes into its note.
        """
        info = self._running(run_id)
        row = self._conn.execute(
            "SELECT max(wall_time) FROM readings WHERE run_id = ?", (int(run_id),)
        ).fetchone()
        signs = [x for x in (info.heartbeat_at, row[0]) if x is not None]
        last = float(max(signs)) if signs else info.started_at
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = 'interrupted', ended_at = ?, "
                "wall_time_s = ? - started_at, "
                "note = trim(note || ' ' || ?) WHERE id = ? AND status = 'running'",
                (last, last, f"[marked interrupted: {reason}]", int(run_id)),
            )
        return self.run(run_id)

    # ------------------------------------------------------------------ readings
    def add_readings(self, run_id: int, rows: Iterable[ReadingRow]) -> int:
        """Store a batch of readings of a running run in one transaction; return the count.

        Sequence numbers continue the run's. A key that this run or a run it resumes already
        holds (or that repeats within the batch) raises `DuplicateReadingError` and stores
        nothing of the batch. Cells, masks and flags are checked against the board.
        """
        batch = list(rows)
        info = self._running(run_id)
        board = self.board(info.board_id)
        full = (1 << board.branches) - 1
        params: list[tuple[Any, ...]] = []
        now = time.time()
        for row in batch:
            if not isinstance(row, ReadingRow):
                raise StoreError(
                    f"run {run_id}: readings must be ReadingRow, got {type(row).__name__}"
                )
            if not row.key:
                raise StoreError(
                    f"run {run_id}: a reading of cell ({row.r}, {row.c}) has an empty key"
                )
            if not (0 <= row.r < board.rows and 0 <= row.c < board.cols):
                raise StoreError(
                    f"run {run_id}, reading {row.key!r}: cell ({row.r}, {row.c}) is outside "
                    f"board {board.id} ({board.rows}x{board.cols})"
                )
            if not 0 <= row.mask <= full:
                raise StoreError(
                    f"run {run_id}, reading {row.key!r}: mask {row.mask:#x} does not fit "
                    f"{board.branches} branches"
                )
            params.append(
                (
                    int(run_id),
                    row.key,
                    int(row.r),
                    int(row.c),
                    _to_sql_mask(int(row.mask)),
                    row.quantity,
                    nan_to_none(row.value),
                    row.unit,
                    nan_to_none(row.voltage_V),
                    nan_to_none(row.current_A),
                    nan_to_none(row.current_range_A),
                    nan_to_none(row.nplc),
                    int(bool(row.four_wire)),
                    int(bool(row.limit_tripped)),
                    nan_to_none(row.instrument_time_s),
                    now if row.wall_time is None else float(row.wall_time),
                )
            )
        keys = [p[1] for p in params]
        seen: set[str] = set()
        for key in keys:
            if key in seen:
                raise DuplicateReadingError(
                    f"run {run_id}: reading key {key!r} repeats within the batch"
                )
            seen.add(key)
        lineage = self.lineage(run_id)
        with self._write() as conn:
            existing = self._existing_keys(conn, lineage, keys)
            if existing:
                raise DuplicateReadingError(
                    f"run {run_id}: {len(existing)} reading key(s) already stored in run(s) "
                    f"{lineage}, e.g. {sorted(existing)[0]!r}; a resumed run must skip "
                    "Store.completed_keys()"
                )
            start = conn.execute(
                "SELECT coalesce(max(seq), -1) + 1 FROM readings WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            conn.executemany(
                "INSERT INTO readings (run_id, seq, key, r, c, mask, quantity, value, unit, "
                "voltage_V, current_A, current_range_A, nplc, four_wire, limit_tripped, "
                "instrument_time_s, wall_time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(p[0], start + i, *p[1:]) for i, p in enumerate(params)],
            )
            conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (now, run_id))
        return len(params)

    @staticmethod
    def _existing_keys(conn: sqlite3.Connection, runs: list[int], keys: list[str]) -> set[str]:
        found: set[str] = set()
        run_marks = ", ".join("?" * len(runs))
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            rows = conn.execute(
                f"SELECT key FROM readings WHERE run_id IN ({run_marks}) "
                f"AND key IN ({', '.join('?' * len(chunk))})",
                [*runs, *chunk],
            )
            found.update(row[0] for row in rows)
        return found

    def completed_keys(self, run_id: int, *, lineage: bool = True) -> set[str]:
        """The reading keys stored for ``run_id`` (and, with ``lineage``, the runs it resumes):
        exactly what a resume must not measure again."""
        runs = self.lineage(run_id) if lineage else [int(self.run(run_id).id)]
        marks = ", ".join("?" * len(runs))
        rows = self._conn.execute(f"SELECT key FROM readings WHERE run_id IN ({marks})", runs)
        return {row[0] for row in rows}

    def readings(self, run_id: int, *, lineage: bool = True) -> NDArray[np.void]:
        """The run's readings as a structured array, ordered by run (oldest first) and seq.

        Fields: ``key``, ``quantity``, ``unit`` (strings) and `READING_NUMERIC_FIELDS`
        (NULL as NaN, ``mask`` as uint64). With ``lineage`` (default), the readings of the
        runs that ``run_id`` resumes come first, so a resumed run sees all its data.
        """
        runs = list(reversed(self.lineage(run_id))) if lineage else [int(self.run(run_id).id)]
        marks = ", ".join("?" * len(runs))
        order = " ".join(f"WHEN {rid:d} THEN {i:d}" for i, rid in enumerate(runs))
        rows = self._conn.execute(
            f"SELECT {_READING_COLUMNS} FROM readings WHERE run_id IN ({marks}) "
            f"ORDER BY CASE run_id {order} END, seq",
            runs,
        ).fetchall()
        return _readings_array(rows)

    def cell_readings(self, board_id: int, r: int, c: int) -> NDArray[np.void]:
        """Every reading of cell (r, c) of a board, over all its runs, oldest run first.

        Same fields as `readings`. For a cell's history (the GUI's bank view); indexed by
        cell (schema 5), so it does not scan the other cells' readings.
        """
        self.board(board_id)  # a clear StoreError for an unknown board
        rows = self._conn.execute(
            f"SELECT {_READING_COLUMNS} FROM readings JOIN runs ON runs.id = readings.run_id "
            "WHERE runs.board_id = ? AND readings.r = ? AND readings.c = ? "
            "ORDER BY runs.started_at, runs.id, readings.seq",
            (board_id, r, c),
        ).fetchall()
        return _readings_array(rows)

    # ------------------------------------------------------------------ estimates, faults
    def put_estimates(self, run_id: int, cells: Iterable[CellEstimate]) -> int:
        """Store (or replace) the per-cell and per-element estimates of a run, in one
        transaction; return the number of cells. Element arrays must have the board's
        branch count."""
        info = self.run(run_id)
        board = self.board(info.board_id)
        cell_rows: list[tuple[Any, ...]] = []
        elem_rows: list[tuple[Any, ...]] = []
        for cell in cells:
            if not (0 <= cell.r < board.rows and 0 <= cell.c < board.cols):
                raise StoreError(
                    f"run {run_id}: estimate for cell ({cell.r}, {cell.c}) outside board "
                    f"{board.id} ({board.rows}x{board.cols})"
                )
            if cell.conductance_S.shape != (board.branches,):
                raise StoreError(
                    f"run {run_id}, cell ({cell.r}, {cell.c}): {cell.conductance_S.shape[0]} "
                    f"element estimates for a board of {board.branches} branches"
                )
            cell_rows.append(
                (
                    int(run_id),
                    int(cell.r),
                    int(cell.c),
                    nan_to_none(cell.series_ohm),
                    nan_to_none(cell.series_std_ohm),
                    nan_to_none(cell.leakage_S),
                    nan_to_none(cell.leakage_std_S),
                    nan_to_none(cell.chi2),
                    int(cell.dof),
                    nan_to_none(cell.holdout_chi2),
                    int(cell.holdout_dof),
                    int(cell.n_readings),
                )
            )
            comps = cell.components or {}
            for k in range(board.branches):
                elem_rows.append(
                    (
                        int(run_id),
                        int(cell.r),
                        int(cell.c),
                        k,
                        nan_to_none(float(cell.conductance_S[k])),
                        nan_to_none(float(cell.std_S[k])),
                        *(
                            nan_to_none(float(comps[name][k])) if name in comps else None
                            for name in UNCERTAINTY_COMPONENTS
                        ),
                    )
                )
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO cell_estimates (run_id, r, c, series_ohm, "
                "series_std_ohm, leakage_S, leakage_std_S, chi2, dof, holdout_chi2, "
                "holdout_dof, n_readings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                cell_rows,
            )
            conn.executemany(
                "INSERT OR REPLACE INTO estimates (run_id, r, c, k, conductance_S, std_S, "
                + ", ".join(_COMPONENT_COLUMNS)
                + ") VALUES (?, ?, ?, ?, ?, ?"
                + ", ?" * len(_COMPONENT_COLUMNS)
                + ")",
                elem_rows,
            )
        return len(cell_rows)

    def estimates(self, run_id: int) -> list[CellEstimate]:
        """The run's cell estimates, ordered by (r, c). ``components`` is None for a cell
        whose elements have no stored budget (runs from before schema 6)."""
        board = self.board(self.run(run_id).board_id)
        k_count = board.branches
        n_comp = len(UNCERTAINTY_COMPONENTS)
        # per cell: (K, 2 + components) array of conductance, std and the components
        elements: dict[tuple[int, int], NDArray[np.float64]] = {}
        has_budget: set[tuple[int, int]] = set()
        for row in self._conn.execute(
            "SELECT r, c, k, conductance_S, std_S, "
            + ", ".join(_COMPONENT_COLUMNS)
            + " FROM estimates WHERE run_id = ?",
            (run_id,),
        ):
            r, c, k = int(row[0]), int(row[1]), int(row[2])
            arr = elements.setdefault((r, c), np.full((k_count, 2 + n_comp), np.nan))
            arr[k] = [math.nan if v is None else float(v) for v in row[3:]]
            if any(v is not None for v in row[5:]):
                has_budget.add((r, c))
        out = []
        for row in self._conn.execute(
            "SELECT r, c, series_ohm, series_std_ohm, leakage_S, leakage_std_S, chi2, dof, "
            "holdout_chi2, holdout_dof, n_readings FROM cell_estimates WHERE run_id = ? "
            "ORDER BY r, c",
            (run_id,),
        ):
            r, c = int(row[0]), int(row[1])
            arr = elements.get((r, c), np.full((k_count, 2 + n_comp), np.nan))
            f = [math.nan if v is None else float(v) for v in row[2:7]]
            out.append(
                CellEstimate(
                    r=r,
                    c=c,
                    conductance_S=arr[:, 0].copy(),
                    std_S=arr[:, 1].copy(),
                    series_ohm=f[0],
                    series_std_ohm=f[1],
                    leakage_S=f[2],
                    leakage_std_S=f[3],
                    chi2=f[4],
                    dof=int(row[7]),
                    holdout_chi2=math.nan if row[8] is None else float(row[8]),
                    holdout_dof=int(row[9]),
                    n_readings=int(row[10]),
                    components={
                        name: arr[:, 2 + i].copy() for i, name in enumerate(UNCERTAINTY_COMPONENTS)
                    }
                    if (r, c) in has_budget
                    else None,
                )
            )
        return out

    def put_faults(self, run_id: int, faults: Iterable[Fault]) -> int:
        """Store (or replace) a run's faults, in one transaction; return the count."""
        board = self.board(self.run(run_id).board_id)
        rows = []
        for fault in faults:
            if fault.kind not in FAULT_KINDS:
                raise StoreError(f"run {run_id}: fault kind {fault.kind!r} not in {FAULT_KINDS}")
            if not (
                0 <= fault.r < board.rows
                and 0 <= fault.c < board.cols
                and 0 <= fault.k < board.branches
            ):
                raise StoreError(
                    f"run {run_id}: fault at ({fault.r}, {fault.c}, {fault.k}) outside board "
                    f"{board.id} ({board.rows}x{board.cols}x{board.branches})"
                )
            evidence = _dumps(
                fault.evidence, f"evidence of fault ({fault.r}, {fault.c}, {fault.k})"
            )
            rows.append(
                (int(run_id), int(fault.r), int(fault.c), int(fault.k), fault.kind, evidence)
            )
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO faults (run_id, r, c, k, kind, evidence_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def faults(self, run_id: int) -> list[Fault]:
        """The run's faults, ordered by (r, c, k)."""
        self.run(run_id)
        rows = self._conn.execute(
            "SELECT r, c, k, kind, evidence_json FROM faults WHERE run_id = ? ORDER BY r, c, k",
            (run_id,),
        )
        return [
            Fault(int(r), int(c), int(k), cast(FaultKind, kind), json.loads(ev))
            for r, c, k, kind, ev in rows
        ]

    def put_budget(
        self, run_id: int, cells: Sequence[tuple[int, int]], budget: ElementBudget
    ) -> None:
        """Store a calibration run's full budget (correlations included) as its results
        ``budget_cells``, ``budget_sources``, ``budget_value_S``, ``budget_cov_S2`` and
        ``budget_contrib_S`` (cells in the order of ``cells``)."""
        if budget.value_S.shape[0] != len(cells):
            raise StoreError(
                f"run {run_id}: budget of {budget.value_S.shape[0]} cells for {len(cells)} cells"
            )
        self.put_result(run_id, "budget_cells", np.asarray(cells, dtype=np.int64).reshape(-1, 2))
        self.put_value(run_id, "budget_sources", sources_to_json(budget.sources))
        self.put_result(run_id, "budget_value_S", budget.value_S)
        self.put_result(run_id, "budget_cov_S2", budget.cov_S2)
        self.put_result(run_id, "budget_contrib_S", budget.contrib_S)

    def put_tcr(
        self,
        run_id: int,
        cells: Sequence[tuple[int, int]],
        *,
        tcr_ppm_per_K: NDArray[np.float64],
        u_tcr_ppm_per_K: NDArray[np.float64],
        conductance_S: NDArray[np.float64],
        reference_C: NDArray[np.float64],
    ) -> int:
        """Store (or replace) a thermal calibration run's element TCRs: arrays (cells, K)
        in the order of ``cells``; NaN is stored as NULL. Returns the number of elements."""
        board = self.board(self.run(run_id).board_id)
        arrays = [np.asarray(a, dtype=np.float64) for a in (tcr_ppm_per_K, u_tcr_ppm_per_K)]
        arrays += [np.asarray(a, dtype=np.float64) for a in (conductance_S, reference_C)]
        for a in arrays:
            if a.shape != (len(cells), board.branches):
                raise StoreError(
                    f"run {run_id}: TCR array of shape {a.shape} for {len(cells)} cells of "
                    f"{board.branches} branches"
                )
        rows = []
        for i, (r, c) in enumerate(cells):
            if not (0 <= r < board.rows and 0 <= c < board.cols):
                raise StoreError(f"run {run_id}: TCR for cell ({r}, {c}) outside the board")
            for k in range(board.branches):
                values = [float(a[i, k]) for a in arrays]
                rows.append(
                    (
                        int(run_id),
                        int(r),
                        int(c),
                        k,
                        *(v if math.isfinite(v) else None for v in values),
                    )
                )
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO element_tcr (run_id, r, c, k, tcr_ppm_per_K, "
                "u_tcr_ppm_per_K, conductance_S, reference_C) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def tcr(self, run_id: int) -> ElementTCR:
        """One run's element TCRs over the whole board (NaN where it has none)."""
        return self._tcr_merge(self.run(run_id).board_id, [run_id])

    def latest_tcr(self, board_id: int) -> ElementTCR | None:
        """The board's TCRs, per cell from its latest completed thermal calibration run
        that estimated it; None when there is none."""
        runs = [
            int(row[0])
            for row in self._conn.execute(
                "SELECT id FROM runs WHERE board_id = ? AND status = 'completed' AND EXISTS "
                "(SELECT 1 FROM element_tcr t WHERE t.run_id = runs.id) "
                "ORDER BY ended_at DESC, id DESC",
                (board_id,),
            )
        ]
        return self._tcr_merge(board_id, runs) if runs else None

    def _tcr_merge(self, board_id: int, runs: Sequence[int]) -> ElementTCR:
        board = self.board(board_id)
        shape = board.shape
        out = [np.full(shape, np.nan) for _ in range(4)]
        run_of = np.full(shape[:2], -1, dtype=np.int64)
        for run_id in runs:  # most recent first: a cell keeps its first run
            taken: set[tuple[int, int]] = set()
            for r, c, k, *values in self._conn.execute(
                "SELECT r, c, k, tcr_ppm_per_K, u_tcr_ppm_per_K, conductance_S, reference_C "
                "FROM element_tcr WHERE run_id = ?",
                (run_id,),
            ):
                if run_of[r, c] not in (-1, run_id):
                    continue
                taken.add((r, c))
                for arr, v in zip(out, values, strict=True):
                    arr[r, c, k] = math.nan if v is None else float(v)
            for r, c in taken:
                run_of[r, c] = run_id
        return ElementTCR(board_id, out[0], out[1], out[2], out[3], run_of)

    def budget(self, run_id: int) -> tuple[NDArray[np.int64], ElementBudget] | None:
        """(cells (N, 2), budget) stored by `put_budget`, or None for a run without one."""
        names = self.result_names(run_id)
        if "budget_sources" not in names:
            return None
        cells = self.get_result(run_id, "budget_cells").astype(np.int64)
        budget = ElementBudget(
            sources_from_json(self.get_value(run_id, "budget_sources")),
            self.get_result(run_id, "budget_value_S").astype(np.float64),
            self.get_result(run_id, "budget_cov_S2").astype(np.float64),
            self.get_result(run_id, "budget_contrib_S").astype(np.float64),
        )
        return cells, budget

    def latest_calibration(self, board_id: int) -> Calibration:
        """The board's calibration, merged per cell over its completed calibration runs
        (most recent first; see `Calibration`). `NoCalibrationError` if there is none.

        Budgets merge too: a meter source (a range's gain or offset) of runs taken with the
        same SMU is one source (the same instrument error); every other source (links,
        temperature, reference anchoring) is its run's own."""
        board = self.board(board_id)
        shape = board.shape
        g = np.full(shape, np.nan)
        s = np.full(shape, np.nan)
        comps = {name: np.full(shape, np.nan) for name in UNCERTAINTY_COMPONENTS}
        any_comps = False
        cell = {name: np.full(shape[:2], np.nan) for name in ("rs", "rs_std", "leak", "leak_std")}
        excluded = np.zeros(shape, dtype=bool)
        measured = np.zeros(shape[:2], dtype=bool)
        cell_run = np.full(shape[:2], -1, dtype=np.int64)
        faults: list[Fault] = []
        latest: tuple[int, float] | None = None
        run_cells: dict[int, set[tuple[int, int]]] = {}
        runs = self._conn.execute(
            "SELECT id, ended_at FROM runs WHERE board_id = ? AND kind = 'calibration' AND "
            "status = 'completed' AND EXISTS (SELECT 1 FROM cell_estimates e WHERE "
            "e.run_id = runs.id) ORDER BY ended_at DESC, id DESC",
            (board_id,),
        ).fetchall()
        for run_id, ended_at in runs:
            if measured.all():
                break
            if latest is None:
                latest = (int(run_id), float(ended_at))
            taken: set[tuple[int, int]] = set()
            for est in self.estimates(run_id):
                if measured[est.r, est.c]:
                    continue
                taken.add((est.r, est.c))
                measured[est.r, est.c] = True
                cell_run[est.r, est.c] = run_id
                g[est.r, est.c] = est.conductance_S
                s[est.r, est.c] = est.std_S
                if est.components is not None:
                    any_comps = True
                    for name, value in est.components.items():
                        comps[name][est.r, est.c] = value
                cell["rs"][est.r, est.c] = est.series_ohm
                cell["rs_std"][est.r, est.c] = est.series_std_ohm
                cell["leak"][est.r, est.c] = est.leakage_S
                cell["leak_std"][est.r, est.c] = est.leakage_std_S
            run_cells[int(run_id)] = taken
            for fault in self.faults(run_id):
                if (fault.r, fault.c) in taken:
                    excluded[fault.r, fault.c, fault.k] = True
                    faults.append(fault)
        if latest is None:
            raise NoCalibrationError(
                f"{self.path}: board {board_id} ({board.serial}) has no completed calibration "
                "run with estimates; run `labrss calibrate` first"
            )
        return Calibration(
            board_id=int(board_id),
            run_id=latest[0],
            ended_at=latest[1],
            conductance_S=g,
            std_S=s,
            series_ohm=cell["rs"],
            series_std_ohm=cell["rs_std"],
            leakage_S=cell["leak"],
            leakage_std_S=cell["leak_std"],
            excluded=excluded,
            measured=measured,
            cell_run_id=cell_run,
            faults=tuple(sorted(faults, key=lambda f: (f.r, f.c, f.k))),
            components=comps if any_comps else None,
            budget=self._merged_budget(shape, run_cells),
        )

    def _merged_budget(
        self, shape: tuple[int, int, int], run_cells: dict[int, set[tuple[int, int]]]
    ) -> ElementBudget | None:
        """The board-wide budget of the cells each run contributes (see
        `latest_calibration`); cells of runs without a budget keep their Type A variance
        (the old std_S) on the diagonal and no shared sources."""
        rows, cols, k = shape
        parts: list[tuple[int, NDArray[np.int64], ElementBudget, str]] = []
        for run_id, taken in run_cells.items():
            if not taken:
                continue
            stored = self.budget(run_id)
            if stored is None:
                continue
            smu = str(self.run(run_id).identities.get("smu", ""))
            parts.append((run_id, stored[0], stored[1], smu))
        if not parts:
            return None
        keys: dict[tuple[str, str], int] = {}
        sources: list[Source] = []
        multi = len(parts) > 1
        for run_id, _, budget, smu in parts:
            for src in budget.sources:
                shared = src.name.startswith(("gain ", "offset ", "reference certificate"))
                key = (smu if shared else f"run {run_id}", src.name)
                if key not in keys:
                    keys[key] = len(sources)
                    name = src.name if shared or not multi else f"run {run_id}: {src.name}"
                    sources.append(dataclasses.replace(src, name=name))
        value = np.full((rows, cols, k + 1), np.nan)
        cov = np.full((rows, cols, k + 2, k + 2), np.nan)
        contrib = np.zeros((rows, cols, k + 1, len(sources)))
        for run_id, cells, budget, smu in parts:
            index = [
                keys[
                    (
                        smu
                        if src.name.startswith(("gain ", "offset ", "reference certificate"))
                        else f"run {run_id}",
                        src.name,
                    )
                ]
                for src in budget.sources
            ]
            taken = run_cells[run_id]
            for pos, (r, c) in enumerate(cells):
                if (int(r), int(c)) not in taken:
                    continue
                value[r, c] = budget.value_S[pos]
                cov[r, c] = budget.cov_S2[pos]
                contrib[r, c][:, index] = budget.contrib_S[pos]
        return ElementBudget(tuple(sources), value, cov, contrib)

    # ------------------------------------------------------------------ results
    def _check_result_name(self, run_id: int, name: str) -> None:
        if not _RESULT_NAME_RE.match(name):
            raise StoreError(
                f"run {run_id}: result name {name!r} must match {_RESULT_NAME_RE.pattern}"
            )
        self.run(run_id)

    def put_result(self, run_id: int, name: str, array: NDArray[Any]) -> None:
        """Store (or replace) a named array result of a run, as NPY bytes (no pickles)."""
        self._check_result_name(run_id, name)
        arr = np.asarray(array)
        if arr.dtype.hasobject:
            raise StoreError(f"run {run_id}, result {name!r}: object arrays cannot be stored")
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        self._put_blob(
            run_id,
            name=name,
            encoding="npy",
            data=buf.getvalue(),
            shape=json.dumps(arr.shape),
            dtype=arr.dtype.str,
        )

    def put_value(self, run_id: int, name: str, value: Any) -> None:
        """Store (or replace) a named JSON-able result of a run (numbers, lists, dicts)."""
        self._check_result_name(run_id, name)
        data = _dumps(value, f"run {run_id} result {name!r}").encode()
        self._put_blob(run_id, name=name, encoding="json", data=data, shape=None, dtype=None)

    def _put_blob(
        self,
        run_id: int,
        *,
        name: str,
        encoding: str,
        data: bytes,
        shape: str | None,
        dtype: str | None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO results (run_id, name, encoding, data, shape, dtype, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (int(run_id), name, encoding, data, shape, dtype, time.time()),
            )

    def _get_blob(self, run_id: int, name: str, encoding: str) -> bytes:
        row = self._conn.execute(
            "SELECT encoding, data FROM results WHERE run_id = ? AND name = ?", (run_id, name)
        ).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: run {run_id} has no result {name!r}")
        if row[0] != encoding:
            raise StoreError(f"run {run_id}: result {name!r} is {row[0]}, not {encoding}")
        return bytes(row[1])

    def get_result(self, run_id: int, name: str) -> NDArray[Any]:
        """A named array result stored by `put_result`."""
        arr: NDArray[Any] = np.load(
            io.BytesIO(self._get_blob(run_id, name, "npy")), allow_pickle=False
        )
        return arr

    def get_value(self, run_id: int, name: str) -> Any:
        """A named JSON result stored by `put_value`."""
        return json.loads(self._get_blob(run_id, name, "json"))

    def result_names(self, run_id: int) -> dict[str, str]:
        """``{name: encoding}`` of a run's results (encoding: ``npy`` or ``json``)."""
        rows = self._conn.execute(
            "SELECT name, encoding FROM results WHERE run_id = ? ORDER BY name", (run_id,)
        )
        return {name: enc for name, enc in rows}


_READING_COLUMNS = ", ".join(
    f"readings.{name}"
    for name in [
        "key",
        "quantity",
        "unit",
        "run_id",
        "seq",
        "r",
        "c",
        "mask",
        "value",
        "voltage_V",
        "current_A",
        "current_range_A",
        "nplc",
        "four_wire",
        "limit_tripped",
        "instrument_time_s",
        "wall_time",
    ]
)
"""The readings columns in the order of `_readings_array`'s structured dtype."""


def _readings_array(rows: list[tuple[Any, ...]]) -> NDArray[np.void]:
    """Rows selected with `_READING_COLUMNS` as a structured array (NULL as NaN)."""
    width = [max((len(row[i]) for row in rows), default=1) or 1 for i in range(3)]
    dtype = np.dtype(
        [
            ("key", f"U{width[0]}"),
            ("quantity", f"U{width[1]}"),
            ("unit", f"U{width[2]}"),
            *READING_NUMERIC_FIELDS,
        ]
    )
    out = np.zeros(len(rows), dtype=dtype)
    if rows:
        cols = list(zip(*rows, strict=True))
        for i, name in enumerate(dtype.names or ()):
            values = cols[i]
            if name == "mask":
                out[name] = np.array([_from_sql_mask(v) for v in values], dtype=np.uint64)
            elif dtype[name].kind == "f":
                out[name] = np.array([math.nan if v is None else v for v in values], float)
            else:
                out[name] = values
    return out
