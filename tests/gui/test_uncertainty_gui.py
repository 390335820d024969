"""The uncertainty budget in the GUI: Board tab hover, cell table and budget view, and the
RSS explorer's "Program this cell" (a real calibration on the small simulated board)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from calibration.run import CalibrationRun
from calibration.settings import CalibrationSettings, CellSelection
from labrss.gui.main_window import MainWindow
from labrss.gui.workers import JobContext
from labrss.store import Store
from tests.gui.conftest import board_tab, rss_tab, run_in_worker

pytestmark = pytest.mark.gui


def _calibrate(qtbot: QtBot, win: MainWindow) -> None:
    """Calibrate cells (0, 0) and (0, 1) of the connected board (default settings)."""
    assert win.store.path is not None
    db: Path = win.store.path

    def job(ctx: JobContext) -> Any:
        with Store(db) as store:
            settings = CalibrationSettings(cells=CellSelection(rows=(0,), cols=(0, 1)))
            return CalibrationRun(ctx.lab, store, settings).run()

    run_in_worker(qtbot, win, job, timeout_ms=120_000)


def test_board_tab_shows_the_budget_of_a_branch_and_of_the_cell(
    qtbot: QtBot, connected: MainWindow
) -> None:
    _calibrate(qtbot, connected)
    tab = board_tab(connected)
    tab.reload()
    assert tab.calibration is not None and tab.calibration.budget is not None
    tab.select_cell(0, 1)
    qtbot.waitUntil(lambda: tab.cell_mask is not None, timeout=10_000)
    assert tab.table.horizontalHeaderItem(2).text() == "u(G)"
    tab.table.setCurrentCell(2, 0)
    names = [tab.budget_table.item(i, 0).text() for i in range(tab.budget_table.rowCount())]
    assert names == [
        "statistical",
        "series",
        "leakage",
        "range",
        "offset",
        "scale",
        "temperature",
        "combined u",
        "expanded U (k = 2)",
    ]
    # the cell reads back open (0x0): its budget is the whole cell's, not c0's alone
    assert tab.cell_mask == 0
    assert "Branch 2" in tab.budget_box.title()
    assert "the cell is open: every usable branch closed" in tab.budget_box.title()
    cell_ppm = float(tab.budget_table.item(7, 4).text())
    assert 20 < cell_ppm < 500  # the bank's combined u, ~91 ppm, not c0's 1e3 ppm
    # the branch column is the stored budget of branch 2: its ppm add up in quadrature
    ppm = [float(tab.budget_table.item(i, 2).text()) for i in range(9)]
    assert np.hypot.reduce(ppm[:7]) == pytest.approx(
        ppm[7], rel=6e-3
    )  # shown to 3 significant digits
    assert ppm[8] == pytest.approx(2 * ppm[7], rel=6e-3)  # shown to 3 significant digits
    cal = tab.calibration
    u = cal.std_S[0, 1, 2] / cal.conductance_S[0, 1, 2]
    assert ppm[7] == pytest.approx(1e6 * u, rel=6e-3)  # shown to 3 significant digits
    assert ppm[5] > ppm[0]  # at 1 PLC the meter's scale outweighs the noise
    # hover: the cell's combined uncertainty and its common scale part
    tab.quantity.setCurrentIndex(tab.quantity.findData("uncertainty"))
    tab._on_hover(0, 1)
    assert "u(G)" in tab.hover.text() and "common scale" in tab.hover.text()
    bank_ppm = tab.maps["uncertainty"].values[0, 1]
    assert 20 < bank_ppm < 500


def test_explorer_programs_the_cell_it_shows(qtbot: QtBot, connected: MainWindow) -> None:
    _calibrate(qtbot, connected)
    tab = rss_tab(connected)
    tab.refresh_calibration()
    assert tab.use_cal.isChecked() and tab.program_button.isEnabled()
    tab.row.setValue(0)
    tab.col.setValue(1)
    tab.set_target(40e-6, "conductance")
    assert tab.result is not None
    shown = int(sum(1 << int(k) for k in np.flatnonzero(tab.result.mask)))
    assert "(k = 1)" in tab.sigma.text()
    qtbot.mouseClick(tab.program_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.job is None and tab.last_realised is not None, timeout=60_000)
    assert tab.last_realised is not None
    (cell,) = tab.last_realised.cells
    assert cell.mask == shown  # the subset the explorer showed is what was programmed
    assert "predicted bank" in tab.realised.text() and "(k = 2" in tab.realised.text()

    def probe(ctx: JobContext) -> tuple[int, float]:
        assert ctx.lab.simulator is not None
        with ctx.lab.simulator.lock:
            truth = ctx.lab.simulator.model.truth()
        return ctx.lab.board.cell_mask(0, 1), float(truth["cell_conductance_S"][0, 1])

    mask, true = run_in_worker(qtbot, connected, probe)
    assert mask == shown
    assert abs(cell.predicted_S - true) <= cell.expanded_S
