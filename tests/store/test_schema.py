"""Schema versions and migrations: an older database is migrated with its data intact."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from labrss.store import SCHEMA_VERSION, Fault, Store, StoreError, StoreSchemaError
from labrss.store.schema import APPLICATION_ID, MIGRATIONS, migrate, schema_version


def _v1_database(path: Path) -> None:
    """A database as labrss schema version 1 wrote it, with a run left running."""
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, path, target=1) == 1
    conn.execute(
        "INSERT INTO boards (identity, serial, rows, cols, branches, element_kind, simulated, "
        "registered_at) VALUES ('ID', 'OLD-1', 2, 2, 4, 'resistor', 0, 0)"
    )
    two_days_ago = time.time() - 2 * 86400.0
    conn.execute(
        "INSERT INTO runs (kind, board_id, status, software_version, started_at) "
        "VALUES ('calibration', 1, 'running', '0.0.1', ?)",
        (two_days_ago,),
    )
    conn.executemany(
        "INSERT INTO readings (run_id, seq, key, r, c, mask, quantity, value, unit, wall_time) "
        "VALUES (1, ?, ?, 0, 0, ?, 'conductance', ?, 'S', ?)",
        [(i, f"k{i}", 1 << i, 1e-3 * (i + 1), two_days_ago + i) for i in range(4)],
    )
    conn.close()


def test_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def test_version_1_database_is_migrated_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v1_database(path)
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.integrity_check() == "ok"
        info = store.run(1)
        # Version 1 had no liveness columns: the old run is judged by its age (no heartbeat
        # for two days) and marked interrupted, ending at its last reading.
        assert info.status == "interrupted" and info.pid is None
        assert info.ended_at == pytest.approx(info.started_at + 3)
        assert store.readings(1)["value"].tolist() == pytest.approx([1e-3, 2e-3, 3e-3, 4e-3])
        # The new tables work on the migrated file.
        resumed = store.start_run("calibration", 1, parent_run_id=1)
        assert store.completed_keys(resumed) == {"k0", "k1", "k2", "k3"}
        store.put_value(resumed, "note", "migrated")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


def test_reopening_a_current_database_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    with Store(path) as store:
        store.register_board("ID", "S", 1, 1, 1)
    with Store(path) as store:
        assert [b.serial for b in store.boards()] == ["S"]
        assert store.schema_version == SCHEMA_VERSION


def test_newer_foreign_and_unversioned_databases_are_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with Store(newer):
        pass
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreSchemaError, match="newer than this labrss supports"):
        Store(newer)

    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()
    with pytest.raises(StoreSchemaError, match="not a labrss store"):
        Store(foreign)

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(StoreSchemaError, match="no labrss schema version"):
        Store(other)
    conn = sqlite3.connect(other)
    assert schema_version(conn) == 0  # untouched, journal mode included
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_version_3_database_gains_mixed_boards_and_memristor_faults(tmp_path: Path) -> None:
    # Migration 4 rebuilds boards and faults (new CHECK constraints): every row survives,
    # references still hold, and foreign keys are enforced again afterwards.
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, path, target=3)
    conn.execute(
        "INSERT INTO boards (identity, serial, rows, cols, branches, element_kind, simulated,"
        " registered_at) VALUES ('LABRSS,XBAR', 'S1', 2, 2, 4, 'resistor', 1, 1.0)"
    )
    conn.execute(
        "INSERT INTO runs (kind, board_id, status, settings_json, identities_json,"
        " software_version, started_at) VALUES ('calibration', 1, 'completed', '{}', '{}',"
        " '0', 1.0)"
    )
    conn.execute("INSERT INTO faults (run_id, r, c, k, kind) VALUES (1, 0, 1, 2, 'open')")
    conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 4
        assert store.integrity_check() == "ok"
        assert [(f.r, f.c, f.k, f.kind) for f in store.faults(1)] == [(0, 1, 2, "open")]
        mixed = store.register_board("LABRSS,XBAR-MIX", "S2", 2, 2, 4, element_kind="mixed")
        run = store.start_run("calibration", mixed)
        store.put_faults(run, [Fault(1, 1, 0, "memristor_stuck_off")])
        assert [f.kind for f in store.faults(run)] == ["memristor_stuck_off"]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO faults (run_id, r, c, k, kind) VALUES (99, 0, 0, 0, 'open')")
    conn.close()


def test_version_5_calibration_opens_with_its_statistical_errors_and_no_budget(
    tmp_path: Path,
) -> None:
    # Migration 6 adds the budget columns; a calibration stored before it keeps its
    # estimates, its std_S (then the statistical standard error) and has no components.
    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, path, target=5)
    conn.execute(
        "INSERT INTO boards (identity, serial, rows, cols, branches, element_kind, simulated,"
        " registered_at) VALUES ('LABRSS,XBAR', 'S1', 1, 1, 2, 'resistor', 1, 1.0)"
    )
    conn.execute(
        "INSERT INTO runs (kind, board_id, status, settings_json, identities_json,"
        " software_version, started_at, ended_at) VALUES ('calibration', 1, 'completed',"
        " '{}', '{}', '0', 1.0, 2.0)"
    )
    conn.execute(
        "INSERT INTO cell_estimates (run_id, r, c, series_ohm, leakage_S, dof, holdout_dof,"
        " n_readings) VALUES (1, 0, 0, 0.3, 1e-10, 1, -1, 10)"
    )
    conn.executemany(
        "INSERT INTO estimates (run_id, r, c, k, conductance_S, std_S) VALUES (1, 0, 0, ?, ?, ?)",
        [(0, 1e-4, 1e-9), (1, 5e-5, 8e-10)],
    )
    conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 6
        (est,) = store.estimates(1)
        assert est.components is None
        assert est.std_S.tolist() == [1e-9, 8e-10]
        cal = store.latest_calibration(1)
        assert cal.components is None and cal.budget is None
        assert cal.std_S[0, 0].tolist() == [1e-9, 8e-10]


def test_version_6_database_gains_switch_counts(tmp_path: Path) -> None:
    # Migration 7 adds the switch_counts table; the boards of a version 6 store stay.
    path = tmp_path / "v6.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, path, target=6)
    conn.execute(
        "INSERT INTO boards (identity, serial, rows, cols, branches, element_kind, simulated,"
        " registered_at) VALUES ('Agilent Technologies,34980A', 'ARRAY-1', 4, 4, 8, 'resistor',"
        " 1, 1.0)"
    )
    conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 7
        assert store.integrity_check() == "ok"
        assert store.switch_counts(1) == []
        store.record_switch_counts(1, {"1101": 5, "5101": 7}, 100_000_000, {"1101": "b"})
        store.record_switch_counts(1, {"1101": 9, "5101": 8}, 100_000_000, {"1101": "b"})
        history = store.switch_counts(1)
        assert [h.counts["1101"] for h in history] == [5, 9]
        assert history[-1].where == {"1101": "b"}
        assert history[-1].fraction_used()["5101"] == pytest.approx(8e-8)
        with pytest.raises(StoreError, match="count -1 is not an integer"):
            store.record_switch_counts(1, {"1101": -1}, None)


def test_version_7_database_gains_element_tcr(tmp_path: Path) -> None:
    # Migration 8 adds per-element temperature coefficients; a version 7 store opens.
    path = tmp_path / "v7.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, path, target=7)
    conn.execute(
        "INSERT INTO boards (identity, serial, rows, cols, branches, element_kind, simulated,"
        " registered_at) VALUES ('labrss crossbar', 'B-1', 2, 2, 2, 'resistor', 1, 1.0)"
    )
    conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 8
        assert store.latest_tcr(1) is None
        run = store.start_run("thermal_calibration", 1)
        nan = float("nan")
        store.put_tcr(
            run,
            [(1, 0)],
            tcr_ppm_per_K=np.array([[12.0, nan]]),
            u_tcr_ppm_per_K=np.array([[0.5, nan]]),
            conductance_S=np.array([[1e-4, nan]]),
            reference_C=np.array([[25.0, nan]]),
        )
        assert store.latest_tcr(1) is None  # the run is not completed yet
        store.finish_run(run, "completed")
        tcr = store.latest_tcr(1)
        assert tcr is not None
        assert tcr.tcr_ppm_per_K[1, 0].tolist()[0] == 12.0
        assert np.isnan(tcr.tcr_ppm_per_K[1, 0, 1]) and np.isnan(tcr.tcr_ppm_per_K[0, 0, 0])
        assert tcr.run_id.tolist() == [[-1, -1], [run, -1]]
