"""Crash safety: a writer SIGKILLed between (or during) batches loses nothing committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labrss.store import ReadingRow, Store, reading_key

REPO = Path(__file__).resolve().parents[2]
BATCH = 8

# The writer: one run, then batches of BATCH readings forever, announcing each commit.
WRITER = f"""
import sys
from labrss.store import ReadingRow, Store, reading_key
store = Store(sys.argv[1])
board = store.register_board("ID", "CRASH", 4, 4, 8, simulated=True, sim_seed=3)
run = store.start_run("calibration", board, {{"design": "single"}})
print("run", run, flush=True)
n = 0
while True:
    rows = [
        ReadingRow(reading_key(i % 4, (i // 4) % 4, 1 << (i % 8), i), i % 4, (i // 4) % 4,
                   1 << (i % 8), 1e-3 + 1e-6 * i, voltage_V=0.1, current_A=1e-4)
        for i in range(n, n + {BATCH})
    ]
    store.add_readings(run, rows)
    n += {BATCH}
    print("committed", n, flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkilled_writer_loses_nothing_committed(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    run_line = proc.stdout.readline().split()
    assert run_line[0] == "run", run_line
    run_id = int(run_line[1])
    announced = 0
    while announced < 5 * BATCH:  # let it commit a few batches, then kill it mid-stream
        announced = int(proc.stdout.readline().split()[1])
    with Store(db) as reader:  # a second process's view while the writer lives
        assert reader.run(run_id).status == "running"
        assert reader.run(run_id).n_readings >= announced
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)  # reaped: its pid is gone
    assert proc.returncode == -signal.SIGKILL

    with Store(db) as store:
        assert store.integrity_check() == "ok"
        info = store.run(run_id)
        assert info.status == "interrupted"
        assert f"process {proc.pid}" in info.note
        got = store.readings(run_id)
        n = len(got)
        # Every announced batch is there, and only whole batches (each call is atomic).
        assert n >= announced and n % BATCH == 0
        assert got["seq"].tolist() == list(range(n))
        np.testing.assert_allclose(got["value"], 1e-3 + 1e-6 * np.arange(n), rtol=0, atol=0)
        # A resume sees exactly what is stored and continues without duplicates.
        resumed = store.start_run("calibration", info.board_id, parent_run_id=run_id)
        done = store.completed_keys(resumed)
        assert len(done) == n
        todo = [
            i
            for i in range(n + BATCH)
            if reading_key(i % 4, (i // 4) % 4, 1 << (i % 8), i) not in done
        ]
        assert todo == list(range(n, n + BATCH))
        store.add_readings(
            resumed,
            [
                ReadingRow(
                    reading_key(i % 4, (i // 4) % 4, 1 << (i % 8), i),
                    i % 4,
                    (i // 4) % 4,
                    1 << (i % 8),
                    1.0,
                )
                for i in todo
            ],
        )
        store.finish_run(resumed)
        assert len(store.readings(resumed)) == n + BATCH
