"""The Store: boards, runs, readings (batches, keys, lineage), estimates, faults, results."""

from __future__ import annotations

import math
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.store import (
    SCHEMA_VERSION,
    CellEstimate,
    DuplicateReadingError,
    Fault,
    NoCalibrationError,
    ReadingRow,
    Store,
    StoreError,
    reading_key,
)


def _rows(n: int, *, r: int = 0, c: int = 0, start: int = 0) -> list[ReadingRow]:
    return [
        ReadingRow(
            key=reading_key(r, c, mask, 0),
            r=r,
            c=c,
            mask=mask,
            value=1e-3 * (mask + 1),
            voltage_V=0.1,
            current_A=1e-4 * (mask + 1),
            current_range_A=1e-3,
            nplc=1.0,
            instrument_time_s=0.02 * mask,
        )
        for mask in range(start, start + n)
    ]


def test_open_sets_wal_foreign_keys_and_schema(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.schema_version == SCHEMA_VERSION
    assert store.integrity_check() == "ok"


def test_register_board_is_idempotent_and_checks_geometry(store: Store) -> None:
    a = store.register_board("ID", "S1", 16, 16, 8)
    assert store.register_board("ID", "S1", 16, 16, 8) == a
    sim = store.register_board("ID", "S1", 16, 16, 8, simulated=True, sim_seed=0)
    assert sim != a
    assert store.register_board("ID", "S1", 16, 16, 8, simulated=True, sim_seed=1) != sim
    with pytest.raises(StoreError, match="now it reports 8x16x8"):
        store.register_board("ID", "S1", 8, 16, 8)
    with pytest.raises(StoreError, match=r"branches must be 1\.\.64"):
        store.register_board("ID", "S2", 1, 1, 65)
    with pytest.raises(StoreError, match="real board"):
        store.register_board("ID", "S3", 1, 1, 8, sim_seed=3)
    info = store.board(sim)
    assert info.shape == (16, 16, 8) and info.simulated and info.sim_seed == 0
    assert [b.id for b in store.boards()] == [a, sim, sim + 1]


def test_run_lifecycle_and_provenance(store: Store, board_id: int) -> None:
    settings = {"design": "weighing", "nplc": np.float64(1.0), "cells": np.arange(3)}
    run = store.start_run("calibration", board_id, settings, {"smu": "KEITHLEY 2450"})
    info = store.run(run)
    assert info.status == "running" and info.pid == os.getpid()
    assert info.settings == {"cells": [0, 1, 2], "design": "weighing", "nplc": 1.0}
    assert info.identities == {"smu": "KEITHLEY 2450"}
    assert info.software_version
    store.add_readings(run, _rows(3))
    store.finish_run(run, "completed", instrument_time_s=0.06)
    info = store.run(run)
    assert info.status == "completed" and info.n_readings == 3
    assert info.instrument_time_s == pytest.approx(0.06)
    assert info.ended_at is not None and info.wall_time_s == pytest.approx(
        info.ended_at - info.started_at
    )
    with pytest.raises(StoreError, match="is completed, not running"):
        store.add_readings(run, _rows(1, start=10))
    with pytest.raises(StoreError, match="is completed, not running"):
        store.finish_run(run)
    with pytest.raises(StoreError, match="lower-case identifier"):
        store.start_run("Calibration!", board_id)
    with pytest.raises(StoreError, match="no board with id 99"):
        store.start_run("calibration", 99)
    with pytest.raises(StoreError, match="not JSON serialisable"):
        store.start_run("calibration", board_id, {"x": object()})


def test_readings_round_trip_as_structured_array(store: Store, board_id: int) -> None:
    run = store.start_run("calibration", board_id)
    rows = _rows(5)
    rows.append(
        ReadingRow(
            key="3,2,0xff,0,odd",
            r=3,
            c=2,
            mask=0xFF,
            value=math.nan,  # an overflow reading is kept, as NaN
            limit_tripped=True,
            four_wire=True,
        )
    )
    assert store.add_readings(run, rows[:2]) == 2
    assert store.add_readings(run, rows[2:]) == 4
    got = store.readings(run)
    assert got["seq"].tolist() == list(range(6))
    assert got["key"].tolist() == [row.key for row in rows]
    assert got["mask"].dtype == np.uint64 and got["mask"][-1] == 0xFF
    np.testing.assert_allclose(got["value"][:5], [1e-3 * (m + 1) for m in range(5)], rtol=0)
    assert math.isnan(got["value"][-1]) and math.isnan(got["voltage_V"][-1])
    assert got["limit_tripped"].tolist() == [False] * 5 + [True]
    assert got["four_wire"][-1] and got["r"][-1] == 3 and got["c"][-1] == 2
    assert got["quantity"][0] == "conductance" and got["unit"][0] == "S"
    assert (got["wall_time"] > 0).all()


def test_add_readings_validates_against_the_board(store: Store, board_id: int) -> None:
    run = store.start_run("calibration", board_id)
    with pytest.raises(StoreError, match=r"cell \(4, 0\) is outside board"):
        store.add_readings(run, [ReadingRow("k", 4, 0, 1, 1.0)])
    with pytest.raises(StoreError, match="mask 0x100 does not fit 8 branches"):
        store.add_readings(run, [ReadingRow("k", 0, 0, 0x100, 1.0)])
    with pytest.raises(StoreError, match="empty key"):
        store.add_readings(run, [ReadingRow("", 0, 0, 1, 1.0)])
    assert store.run(run).n_readings == 0


def test_duplicate_key_rejects_the_whole_batch(store: Store, board_id: int) -> None:
    run = store.start_run("calibration", board_id)
    store.add_readings(run, _rows(3))
    with pytest.raises(DuplicateReadingError, match="already stored"):
        store.add_readings(run, _rows(3, start=2))  # masks 2 (dup), 3, 4
    assert store.run(run).n_readings == 3  # nothing of the failed batch
    with pytest.raises(DuplicateReadingError, match="repeats within the batch"):
        store.add_readings(run, _rows(1, start=7) * 2)


def test_full_64_bit_masks_round_trip(store: Store) -> None:
    board = store.register_board("ID", "WIDE", 1, 1, 64)
    run = store.start_run("calibration", board)
    masks = [0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]
    store.add_readings(run, [ReadingRow(f"m{m}", 0, 0, m, 1.0) for m in masks])
    assert [int(m) for m in store.readings(run)["mask"]] == masks


def test_resume_lineage_keys_and_readings(store: Store, board_id: int) -> None:
    first = store.start_run("calibration", board_id, {"n": 10})
    store.add_readings(first, _rows(4))
    with pytest.raises(StoreError, match="only interrupted or failed"):
        store.start_run("calibration", board_id, parent_run_id=first)
    store.finish_run(first, "interrupted")
    with pytest.raises(StoreError, match="cannot be resumed as a program run"):
        store.start_run("program", board_id, parent_run_id=first)
    second = store.start_run("calibration", board_id, {"n": 10}, parent_run_id=first)
    assert store.completed_keys(second) == {row.key for row in _rows(4)}
    assert store.completed_keys(second, lineage=False) == set()
    with pytest.raises(DuplicateReadingError, match=r"run\(s\) \[2, 1\]"):
        store.add_readings(second, _rows(1, start=3))
    store.add_readings(second, _rows(6, start=4))
    store.finish_run(second, "interrupted")
    third = store.start_run("calibration", board_id, parent_run_id=second)
    assert store.lineage(third) == [third, second, first]
    got = store.readings(third)
    assert got["key"].tolist() == [row.key for row in _rows(10)]
    assert got["run_id"].tolist() == [first] * 4 + [second] * 6
    assert len(store.readings(second, lineage=False)) == 6


def test_mark_interrupted_runs_by_dead_pid_and_by_stale_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    with Store(path) as store:
        board = store.register_board("ID", "S", 2, 2, 4)
        alive = store.start_run("calibration", board)
        dead = store.start_run("calibration", board)
        remote = store.start_run("calibration", board)
        store.add_readings(dead, _rows(2))
        last = store.readings(dead)["wall_time"].max()
        # A pid that cannot exist (beyond pid_max), and a run of another host that went quiet.
        store._conn.execute("UPDATE runs SET pid = 2147483646 WHERE id = ?", (dead,))
        store._conn.execute(
            "UPDATE runs SET host = 'elsewhere', started_at = ?, heartbeat_at = ? WHERE id = ?",
            (time.time() - 7300.0, time.time() - 7200.0, remote),
        )
    with Store(path) as store:  # marks on open
        assert store.run(alive).status == "running"  # this process is alive
        info = store.run(dead)
        assert info.status == "interrupted" and "process 2147483646" in info.note
        assert info.ended_at == pytest.approx(last, abs=1e-6)
        assert store.run(remote).status == "interrupted"
        assert "no heartbeat for" in store.run(remote).note
        assert store.mark_interrupted_runs() == []


def test_estimates_faults_and_latest_calibration_merge_per_cell(
    store: Store, board_id: int
) -> None:
    rng = np.random.default_rng(0)

    def cells(rc: list[tuple[int, int]], scale: float) -> list[CellEstimate]:
        return [
            CellEstimate(
                r,
                c,
                conductance_S=scale * (1 + 0.01 * rng.standard_normal(8)),
                std_S=np.full(8, 1e-6),
                series_ohm=12.0,
                series_std_ohm=0.5,
                leakage_S=1e-8,
                leakage_std_S=1e-9,
                chi2=3.2,
                dof=2,
                holdout_chi2=5.0,
                holdout_dof=4,
                n_readings=14,
            )
            for r, c in rc
        ]

    with pytest.raises(NoCalibrationError, match="no completed calibration"):
        store.latest_calibration(board_id)
    old = store.start_run("calibration", board_id)
    store.put_estimates(old, cells([(0, 0), (1, 1)], 1e-3))
    store.put_faults(old, [Fault(0, 0, 3, "open", {"z": 40.0}), Fault(1, 1, 0, "short", {})])
    store.finish_run(old)
    new = store.start_run("calibration", board_id)
    new_cells = cells([(0, 0)], 2e-3)
    new_cells[0].conductance_S[5] = np.nan  # an element without estimate
    store.put_estimates(new, new_cells)
    store.put_faults(new, [Fault(0, 0, 7, "stuck_closed", {"offset_S": 1e-3})])
    unfinished = store.start_run("calibration", board_id)
    store.put_estimates(unfinished, cells([(2, 2)], 3e-3))  # not completed: ignored
    store.finish_run(new)

    got = store.estimates(new)
    assert len(got) == 1 and got[0].dof == 2 and got[0].holdout_dof == 4
    np.testing.assert_array_equal(got[0].conductance_S, new_cells[0].conductance_S)
    assert store.faults(new) == [Fault(0, 0, 7, "stuck_closed", {"offset_S": 1e-3})]

    cal = store.latest_calibration(board_id)
    assert cal.run_id == new
    assert cal.cell_run_id[0, 0] == new and cal.cell_run_id[1, 1] == old
    assert cal.cell_run_id[2, 2] == -1 and not cal.measured[2, 2]
    assert cal.measured.sum() == 2
    np.testing.assert_array_equal(cal.conductance_S[0, 0], new_cells[0].conductance_S)
    # Faults follow the run the cell's estimates come from: the old open at (0,0,3) is gone.
    assert [(f.r, f.c, f.k, f.kind) for f in cal.faults] == [
        (0, 0, 7, "stuck_closed"),
        (1, 1, 0, "short"),
    ]
    assert cal.excluded.sum() == 2 and cal.excluded[0, 0, 7] and cal.excluded[1, 1, 0]
    usable = cal.usable
    assert not usable[0, 0, 5] and not usable[0, 0, 7] and usable[0, 0, 3]
    assert usable.sum() == 16 - 3
    assert cal.series_ohm[1, 1] == 12.0 and math.isnan(cal.series_ohm[2, 2])


def test_put_estimates_and_faults_validate(store: Store, board_id: int) -> None:
    run = store.start_run("calibration", board_id)
    with pytest.raises(StoreError, match="4 element estimates for a board of 8"):
        store.put_estimates(run, [CellEstimate(0, 0, np.ones(4), np.ones(4))])
    with pytest.raises(StoreError, match="outside board"):
        store.put_faults(run, [Fault(0, 0, 8, "open")])
    with pytest.raises(StoreError, match="fault kind 'broken'"):
        store.put_faults(run, [Fault(0, 0, 1, "broken")])  # type: ignore[arg-type]


@given(
    arr=st.one_of(
        st.lists(st.floats(allow_nan=True), max_size=20).map(np.array),
        st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=12).map(
            lambda xs: np.array(xs, dtype=np.int64).reshape(-1, 1)
        ),
        st.lists(st.booleans(), max_size=30).map(lambda xs: np.array(xs, dtype=bool)),
    )
)
def test_results_round_trip_any_array(
    tmp_path_factory: pytest.TempPathFactory, arr: np.ndarray
) -> None:
    with Store(tmp_path_factory.mktemp("r") / "lab.db") as store:
        board = store.register_board("ID", "S", 1, 1, 2)
        run = store.start_run("program", board)
        store.put_result(run, "masks", arr)
        back = store.get_result(run, "masks")
        assert back.dtype == arr.dtype and back.shape == arr.shape
        np.testing.assert_array_equal(back, arr)


def test_results_json_values_and_errors(store: Store, board_id: int) -> None:
    run = store.start_run("program", board_id)
    store.put_value(run, "summary", {"rel_err": 0.012, "cells": [1, 2]})
    store.put_result(run, "predicted_S", np.linspace(0, 1e-3, 5).reshape(5, 1))
    assert store.get_value(run, "summary") == {"rel_err": 0.012, "cells": [1, 2]}
    assert store.result_names(run) == {"predicted_S": "npy", "summary": "json"}
    with pytest.raises(StoreError, match="is json, not npy"):
        store.get_result(run, "summary")
    with pytest.raises(StoreError, match="has no result 'nope'"):
        store.get_result(run, "nope")
    with pytest.raises(StoreError, match="result name"):
        store.put_value(run, "bad name/..", 1)
    with pytest.raises(StoreError, match="object arrays"):
        store.put_result(run, "obj", np.array([object()]))


def test_runs_listing_filters(store: Store, board_id: int) -> None:
    other = store.register_board("ID", "OTHER", 1, 1, 2)
    a = store.start_run("calibration", board_id)
    b = store.start_run("program", board_id)
    c = store.start_run("calibration", other)
    assert [r.id for r in store.runs()] == [a, b, c]
    assert [r.id for r in store.runs(board_id)] == [a, b]
    assert [r.id for r in store.runs(kind="calibration")] == [a, c]


def test_bad_paths_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        Store(junk)


_row = st.builds(
    ReadingRow,
    key=st.text(min_size=1, max_size=24),
    r=st.integers(0, 3),
    c=st.integers(0, 2),
    mask=st.integers(0, 255),
    value=st.floats(allow_nan=True, allow_infinity=False),
    voltage_V=st.none() | st.floats(-1, 1),
    limit_tripped=st.booleans(),
)


@given(batches=st.lists(st.lists(_row, max_size=6), max_size=5))
def test_batches_round_trip_and_keys_stay_unique(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[ReadingRow]]
) -> None:
    with Store(tmp_path_factory.mktemp("p") / "lab.db") as store:
        board = store.register_board("ID", "S", 4, 3, 8)
        run = store.start_run("calibration", board)
        kept: list[ReadingRow] = []
        for batch in batches:
            keys = [row.key for row in batch]
            clash = len(set(keys)) < len(keys) or set(keys) & {row.key for row in kept}
            if clash:
                with pytest.raises(DuplicateReadingError):
                    store.add_readings(run, batch)
            else:
                store.add_readings(run, batch)
                kept.extend(batch)
        got = store.readings(run)
        assert got["key"].tolist() == [row.key for row in kept]
        assert got["seq"].tolist() == list(range(len(kept)))
        assert store.completed_keys(run) == {row.key for row in kept}
        np.testing.assert_array_equal(got["value"], [row.value for row in kept])
        assert got["mask"].tolist() == [row.mask for row in kept]
        assert got["limit_tripped"].tolist() == [row.limit_tripped for row in kept]


def test_default_location_is_created_under_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labrss.store import resolve_db_path

    monkeypatch.delenv("LABRSS_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with Store(resolve_db_path()) as store:
        assert store.path == tmp_path / "xdg" / "labrss" / "lab.db"
    assert (tmp_path / "xdg" / "labrss" / "lab.db").is_file()


def test_cell_readings_gather_one_cell_over_runs_of_one_board(store: Store) -> None:
    board = store.register_board("ID", "S", 2, 2, 8)
    other = store.register_board("ID2", "S2", 2, 2, 8)
    first = store.start_run("calibration", board)
    store.add_readings(first, _rows(3, r=1, c=0) + _rows(2, r=0, c=1))
    second = store.start_run("program", board)
    store.add_readings(second, _rows(2, r=1, c=0, start=10))
    elsewhere = store.start_run("calibration", other)
    store.add_readings(elsewhere, _rows(4, r=1, c=0))
    history = store.cell_readings(board, 1, 0)
    assert history["run_id"].tolist() == [first] * 3 + [second] * 2
    assert history["mask"].tolist() == [0, 1, 2, 10, 11]
    assert history["value"].tolist() == pytest.approx([1e-3, 2e-3, 3e-3, 11e-3, 12e-3])
    assert store.cell_readings(board, 0, 0).size == 0
    with pytest.raises(StoreError):
        store.cell_readings(99, 0, 0)
