"""The store's versioned SQLite schema and its migrations.

The schema version lives in ``PRAGMA user_version``; ``PRAGMA application_id`` marks the file
as a labrss store so that another program's database is refused instead of modified.
`MIGRATIONS` is applied in order, each in its own transaction, from the file's version up to
`SCHEMA_VERSION`. Migrations are append-only: a released migration is never edited; a schema
change is a new entry (and a test that migrates a database of the previous version).

History:

1. boards, runs, readings (the raw data, with UNIQUE (run, key) for resumable runs).
2. analysis tables: per-element estimates, per-cell estimates (series path, leakage,
   residual statistics), faults, and the generic results table (NPY arrays / JSON values).
3. liveness of running runs: pid, host and heartbeat time, so that a run left "running" by
   a killed process is detected and marked interrupted (see `Store.mark_interrupted_runs`).
4. memristor boards: element kind ``mixed`` (resistor and memristor cells on one board) and
   the memristor fault kinds (``memristor_stuck_on``, ``memristor_stuck_off``,
   ``memristor_worn_out``). SQLite cannot alter a CHECK constraint, so the two tables are
   rebuilt (create, copy, drop, rename: SQLite's documented procedure, with foreign keys
   off during the migration and `PRAGMA foreign_key_check` before its commit).
5. an index of readings by cell, for a cell's history across runs (`Store.cell_readings`).
6. the uncertainty budget per element: ``estimates.std_S`` becomes the combined standard
   uncertainty and its components get columns ``u_<component>_S`` (statistical, series,
   leakage, range, offset, scale, temperature; docs/metrology.md). Rows of older runs keep
   NULL components: their ``std_S`` was the statistical part alone.
7. switch (relay) operation counts per board, as the instrument counts them, recorded at
   the start of every run on a bench that counts (`Store.record_switch_counts`).
8. per-element temperature coefficients (TCR, its uncertainty, the conductance at the
   reference temperature) from calibrations at several temperatures (`Store.put_tcr`,
   docs/temperature.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: ``PRAGMA application_id`` of a labrss store (ASCII "LRSS").
APPLICATION_ID = 0x4C525353


class StoreSchemaError(RuntimeError):
    """The database file is not a labrss store, or was written by a newer labrss."""


@dataclass(frozen=True)
class Migration:
    """One schema step: from ``version - 1`` to ``version``."""

    version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        # Statement by statement (executescript would COMMIT the enclosing transaction).
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)

    return run


_V1 = """
CREATE TABLE boards (
    id            INTEGER PRIMARY KEY,
    identity      TEXT    NOT NULL,
    serial        TEXT    NOT NULL,
    rows          INTEGER NOT NULL CHECK (rows > 0),
    cols          INTEGER NOT NULL CHECK (cols > 0),
    branches      INTEGER NOT NULL CHECK (branches > 0 AND branches <= 64),
    element_kind  TEXT    NOT NULL CHECK (element_kind IN ('resistor', 'memristor')),
    simulated     INTEGER NOT NULL CHECK (simulated IN (0, 1)),
    sim_seed      INTEGER,
    sim_preset    TEXT,
    info_json     TEXT    NOT NULL DEFAULT '{}',
    registered_at REAL    NOT NULL
) STRICT;

CREATE TABLE runs (
    id                INTEGER PRIMARY KEY,
    kind              TEXT    NOT NULL,
    board_id          INTEGER NOT NULL REFERENCES boards(id),
    status            TEXT    NOT NULL
                      CHECK (status IN ('running', 'completed', 'interrupted', 'failed')),
    settings_json     TEXT    NOT NULL DEFAULT '{}',
    identities_json   TEXT    NOT NULL DEFAULT '{}',
    software_version  TEXT    NOT NULL,
    started_at        REAL    NOT NULL,
    ended_at          REAL,
    wall_time_s       REAL,
    instrument_time_s REAL,
    parent_run_id     INTEGER REFERENCES runs(id),
    note              TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX runs_board ON runs(board_id, started_at);

CREATE TABLE readings (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq               INTEGER NOT NULL,
    key               TEXT    NOT NULL,
    r                 INTEGER NOT NULL,
    c                 INTEGER NOT NULL,
    mask              INTEGER NOT NULL,
    quantity          TEXT    NOT NULL,
    value             REAL,
    unit              TEXT    NOT NULL,
    voltage_V         REAL,
    current_A         REAL,
    current_range_A   REAL,
    nplc              REAL,
    four_wire         INTEGER NOT NULL DEFAULT 0 CHECK (four_wire IN (0, 1)),
    limit_tripped     INTEGER NOT NULL DEFAULT 0 CHECK (limit_tripped IN (0, 1)),
    instrument_time_s REAL,
    wall_time         REAL    NOT NULL,
    UNIQUE (run_id, key),
    UNIQUE (run_id, seq)
) STRICT;
"""

_V2 = """
CREATE TABLE estimates (
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    r             INTEGER NOT NULL,
    c             INTEGER NOT NULL,
    k             INTEGER NOT NULL,
    conductance_S REAL,
    std_S         REAL,
    PRIMARY KEY (run_id, r, c, k)
) STRICT;

CREATE TABLE cell_estimates (
    run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    r              INTEGER NOT NULL,
    c              INTEGER NOT NULL,
    series_ohm     REAL,
    series_std_ohm REAL,
    leakage_S      REAL,
    leakage_std_S  REAL,
    chi2           REAL,
    dof            INTEGER,
    holdout_chi2   REAL,
    holdout_dof    INTEGER,
    n_readings     INTEGER NOT NULL,
    PRIMARY KEY (run_id, r, c)
) STRICT;

CREATE TABLE faults (
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    r             INTEGER NOT NULL,
    c             INTEGER NOT NULL,
    k             INTEGER NOT NULL,
    kind          TEXT    NOT NULL
                  CHECK (kind IN ('open', 'short', 'stuck_open', 'stuck_closed')),
    evidence_json TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, r, c, k)
) STRICT;

CREATE TABLE results (
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    encoding   TEXT    NOT NULL CHECK (encoding IN ('npy', 'json')),
    data       BLOB    NOT NULL,
    shape      TEXT,
    dtype      TEXT,
    created_at REAL    NOT NULL,
    PRIMARY KEY (run_id, name)
) STRICT;
"""

_V3 = """
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN host TEXT;
ALTER TABLE runs ADD COLUMN heartbeat_at REAL;
CREATE INDEX runs_status ON runs(status)
"""

_V4 = """
CREATE TABLE boards_v4 (
    id            INTEGER PRIMARY KEY,
    identity      TEXT    NOT NULL,
    serial        TEXT    NOT NULL,
    rows          INTEGER NOT NULL CHECK (rows > 0),
    cols          INTEGER NOT NULL CHECK (cols > 0),
    branches      INTEGER NOT NULL CHECK (branches > 0 AND branches <= 64),
    element_kind  TEXT    NOT NULL CHECK (element_kind IN ('resistor', 'memristor', 'mixed')),
    simulated     INTEGER NOT NULL CHECK (simulated IN (0, 1)),
    sim_seed      INTEGER,
    sim_preset    TEXT,
    info_json     TEXT    NOT NULL DEFAULT '{}',
    registered_at REAL    NOT NULL
) STRICT;
INSERT INTO boards_v4 SELECT * FROM boards;
DROP TABLE boards;
ALTER TABLE boards_v4 RENAME TO boards;

CREATE TABLE faults_v4 (
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    r             INTEGER NOT NULL,
    c             INTEGER NOT NULL,
    k             INTEGER NOT NULL,
    kind          TEXT    NOT NULL
                  CHECK (kind IN ('open', 'short', 'stuck_open', 'stuck_closed',
                                  'memristor_stuck_on', 'memristor_stuck_off',
                                  'memristor_worn_out')),
    evidence_json TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, r, c, k)
) STRICT;
INSERT INTO faults_v4 SELECT * FROM faults;
DROP TABLE faults;
ALTER TABLE faults_v4 RENAME TO faults
"""

_V5 = """
CREATE INDEX readings_cell ON readings(r, c)
"""

_V6 = """
ALTER TABLE estimates ADD COLUMN u_statistical_S REAL;
ALTER TABLE estimates ADD COLUMN u_series_S REAL;
ALTER TABLE estimates ADD COLUMN u_leakage_S REAL;
ALTER TABLE estimates ADD COLUMN u_range_S REAL;
ALTER TABLE estimates ADD COLUMN u_offset_S REAL;
ALTER TABLE estimates ADD COLUMN u_scale_S REAL;
ALTER TABLE estimates ADD COLUMN u_temperature_S REAL
"""

_V7 = """
CREATE TABLE switch_counts (
    id                INTEGER PRIMARY KEY,
    board_id          INTEGER NOT NULL REFERENCES boards(id),
    recorded_at       REAL    NOT NULL,
    rated_operations  INTEGER,
    counts_json       TEXT    NOT NULL,
    where_json        TEXT    NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX switch_counts_board ON switch_counts(board_id, recorded_at)
"""

_V8 = """
CREATE TABLE element_tcr (
    run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    r                INTEGER NOT NULL,
    c                INTEGER NOT NULL,
    k                INTEGER NOT NULL,
    tcr_ppm_per_K    REAL,
    u_tcr_ppm_per_K  REAL,
    conductance_S    REAL,
    reference_C      REAL,
    PRIMARY KEY (run_id, r, c, k)
) STRICT
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "boards, runs and raw readings", _script(_V1)),
    Migration(2, "estimates, cell estimates, faults and results", _script(_V2)),
    Migration(3, "run liveness: pid, host, heartbeat", _script(_V3)),
    Migration(4, "mixed boards and memristor fault kinds (table rebuilds)", _script(_V4)),
    Migration(5, "readings indexed by cell (a cell's history)", _script(_V5)),
    Migration(6, "uncertainty budget components per element", _script(_V6)),
    Migration(7, "switch (relay) operation counts per board", _script(_V7)),
    Migration(8, "per-element temperature coefficients", _script(_V8)),
)

#: The version a database has after `migrate`.
SCHEMA_VERSION = MIGRATIONS[-1].version


def schema_version(conn: sqlite3.Connection) -> int:
    """``PRAGMA user_version`` of the open database."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def check_database(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version, after checking that it is (or can become) a labrss store.

    Raises `StoreSchemaError` for a database of another application, an SQLite file with
    tables but no labrss version, or a version above `SCHEMA_VERSION`. Reads only: call it
    before changing anything (journal mode included).
    """
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    version = schema_version(conn)
    if app_id not in (0, APPLICATION_ID):
        raise StoreSchemaError(
            f"{path}: not a labrss store (application_id {app_id:#x}, expected {APPLICATION_ID:#x})"
        )
    if version == 0:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
        if int(tables.fetchone()[0]) > 0:
            raise StoreSchemaError(
                f"{path}: an SQLite database with tables but no labrss schema version; "
                "refusing to modify it"
            )
    if version > SCHEMA_VERSION:
        raise StoreSchemaError(
            f"{path}: schema version {version} is newer than this labrss supports "
            f"({SCHEMA_VERSION}); upgrade labrss"
        )
    return version


def migrate(conn: sqlite3.Connection, path: Path, *, target: int = SCHEMA_VERSION) -> int:
    """Bring the database at ``path`` (open as ``conn``) up to schema version ``target``.

    Each migration runs in one transaction together with its ``user_version`` bump, so a
    crash mid-migration leaves the previous version intact. Returns the version reached.
    Raises `StoreSchemaError` for a database of another application, or one written by a
    newer labrss (version above `SCHEMA_VERSION`).
    """
    version = check_database(conn, path)
    if version >= target:
        return version
    # Table rebuilds (migration 4) must not cascade or check references mid-way; the pragma
    # is a no-op inside a transaction, so it is switched here, around the whole loop.
    fk_on = bool(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for migration in MIGRATIONS:
            if version < migration.version <= target:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # Re-read inside the write lock: another process may have migrated.
                    if schema_version(conn) < migration.version:
                        migration.apply(conn)
                        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            raise StoreSchemaError(
                                f"{path}: migration {migration.version} would break "
                                f"{len(broken)} references (first: {broken[0]})"
                            )
                        conn.execute(f"PRAGMA user_version = {migration.version:d}")
                        conn.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                version = schema_version(conn)
    finally:
        if fk_on:
            conn.execute("PRAGMA foreign_keys = ON")
    return version
