"""Fixtures of the GUI tests: a main window with its settings and store under tmp_path,
connected to the embedded simulator (small board) through the GUI's own Connect button."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from benchmarks.truth_calibration import store_truth_calibration
from labrss.gui.app import make_application
from labrss.gui.main_window import MainWindow
from labrss.gui.settings import GuiSettings
from labrss.gui.tabs.board_tab import BoardTab
from labrss.gui.tabs.connect_tab import ConnectTab
from labrss.gui.tabs.rss_explorer_tab import RSSExplorerTab
from labrss.gui.workers import Job, JobContext
from labrss.store import CellEstimate, Fault, Store

pytestmark = pytest.mark.gui

#: Generous upper bound for connecting to the simulator (it takes ~0.5 s).
CONNECT_TIMEOUT_MS = 30_000


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path) -> Iterator[MainWindow]:
    """A main window, its settings and database in tmp_path, not connected."""
    make_application()
    win = MainWindow(GuiSettings(tmp_path / "settings.ini"), tmp_path / "lab.db")
    win.ask = lambda *args: True  # closing at teardown never blocks on a question
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    if not win._closing:
        win.close()
    assert not win.worker.isRunning()


def connect_tab(win: MainWindow) -> ConnectTab:
    return win.connect_tab


def board_tab(win: MainWindow) -> BoardTab:
    page = win.tab_pages[BoardTab.title]
    assert isinstance(page, BoardTab)
    return page


def rss_tab(win: MainWindow) -> RSSExplorerTab:
    page = win.tab_pages[RSSExplorerTab.title]
    assert isinstance(page, RSSExplorerTab)
    return page


def connect_small(qtbot: QtBot, win: MainWindow) -> None:
    """Choose the small simulated board and press Connect; wait for the session."""
    tab = connect_tab(win)
    tab.sim_board.setCurrentText("small")
    qtbot.mouseClick(tab.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.session is not None, timeout=CONNECT_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=CONNECT_TIMEOUT_MS)


@pytest.fixture
def connected(qtbot: QtBot, window: MainWindow) -> MainWindow:
    """The window connected to the embedded simulator's small board (8 x 8 x 8)."""
    connect_small(qtbot, window)
    return window


def run_in_worker(qtbot: QtBot, win: MainWindow, fn: Any, timeout_ms: int = 20_000) -> Any:
    """Run ``fn(ctx)`` in the bench worker and return its result (test helper)."""
    box: dict[str, Any] = {}
    job = Job(
        "test probe",
        fn,
        on_done=lambda result: box.setdefault("result", result),
        on_error=lambda exc: box.setdefault("error", exc),
    )
    win.worker.submit(job)
    qtbot.waitUntil(lambda: "result" in box or "error" in box, timeout=timeout_ms)
    # The worker's idle signal may still be queued behind the result: wait until the GUI
    # has seen it, so that buttons the test presses next are enabled again.
    qtbot.waitUntil(lambda: not win.ctx.busy, timeout=timeout_ms)
    if "error" in box:
        raise box["error"]
    return box["result"]


def calibrate_from_truth(qtbot: QtBot, win: MainWindow) -> int:
    """Store a calibration of every element of the connected simulated board, written from
    its truth (`benchmarks.truth_calibration`), in the bench worker; its run id."""
    session = win.session
    assert session is not None and session.db_path is not None
    db = session.db_path

    def calibrate(ctx: JobContext) -> int:
        with Store(db) as store:
            return store_truth_calibration(ctx.lab, store)

    return int(run_in_worker(qtbot, win, calibrate))


@dataclass(frozen=True)
class StoredCalibration:
    """What `store_calibration` wrote: element values and per-cell terms (S, ohm)."""

    run_id: int
    conductance_S: np.ndarray  # (R, C, K)
    std_S: np.ndarray
    series_ohm: np.ndarray  # (R, C)
    leakage_S: np.ndarray
    fault: tuple[int, int, int]


def store_calibration(
    db: Path, board_id: int, shape: tuple[int, int, int], seed: int
) -> StoredCalibration:
    """A completed calibration run of ``board_id`` with seeded estimates.

    The values follow the small board's design: branch k nominal 10 kohm x 1.8**k, 5 %
    tolerance; standard errors 100 ppm; series path 15..25 ohm; leakage 1..3 nS; one
    branch of cell (1, 2) an open fault (its estimate ~0).
    """
    rows, cols, k = shape
    rng = np.random.default_rng(seed)
    nominal_ohm = 10e3 * 1.8 ** np.arange(k)
    g = 1.0 / (nominal_ohm * (1.0 + rng.uniform(-0.05, 0.05, size=shape)))
    fault = (1, 2, 3)
    g[fault] = 1e-12
    std = 1e-4 * g
    series = rng.uniform(15.0, 25.0, size=(rows, cols))
    leak = rng.uniform(1e-9, 3e-9, size=(rows, cols))
    with Store(db) as store:
        run = store.start_run("calibration", board_id, settings={"source": "tests/gui"})
        store.put_estimates(
            run,
            [
                CellEstimate(
                    r, c, g[r, c], std[r, c], series_ohm=series[r, c], leakage_S=leak[r, c]
                )
                for r in range(rows)
                for c in range(cols)
            ],
        )
        store.put_faults(run, [Fault(*fault, "open", evidence={"source": "tests/gui"})])
        store.finish_run(run, "completed")
    return StoredCalibration(run, g, std, series, leak, fault)


def is_bench_safe(ctx: JobContext) -> tuple[bool, bool]:
    """(board's SAFE? reply, the simulated board model's own state) in the worker."""
    lab = ctx.lab
    assert lab.simulator is not None
    return lab.board.is_safe(), lab.simulator.model.is_safe()
