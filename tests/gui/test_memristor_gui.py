"""Memristor boards in the GUI: the Connect tab offers the memristor and mixed presets; the
Memristor tab's bank view shows each branch's conductance and the board's own pulse count
(``PULS:COUN?``); write-verify through its button plots conductance against pulse number
live and is stored."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from labrss.gui.tabs.connect_tab import SIM_PRESETS
from labrss.gui.tabs.memristor_tab import MemristorTab
from labrss.gui.workers import JobContext
from labrss.store import Store
from tests.gui.conftest import CONNECT_TIMEOUT_MS, connect_tab, run_in_worker

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000


def click(button: QWidget) -> None:
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def press(qtbot: QtBot, button: QWidget) -> None:
    """Wait until ``button`` is enabled (the worker's idle signal may still be queued after
    a job's result arrived), then click it."""
    qtbot.waitUntil(button.isEnabled, timeout=30_000)
    click(button)


def memristor_tab(win: MainWindow) -> MemristorTab:
    page = win.tab_pages[MemristorTab.title]
    assert isinstance(page, MemristorTab)
    return page


def connect_preset(qtbot: QtBot, win: MainWindow, preset: str) -> None:
    tab = connect_tab(win)
    tab.sim_board.setCurrentText(preset)
    press(qtbot, tab.connect_button)
    qtbot.waitUntil(lambda: win.session is not None, timeout=CONNECT_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=CONNECT_TIMEOUT_MS)


def board_counts(r: int, c: int, k_total: int) -> object:
    def run(ctx: JobContext) -> list[int]:
        return [ctx.lab.pulse_count(r, c, k) for k in range(k_total)]

    return run


def test_memristor_and_mixed_presets_are_offered() -> None:
    assert "memristor" in SIM_PRESETS and "mixed" in SIM_PRESETS


def test_bank_and_write_verify_on_the_memristor_preset(qtbot: QtBot, window: MainWindow) -> None:
    connect_preset(qtbot, window, "memristor")
    session = window.session
    assert session is not None and session.element_kind == "memristor"
    tab = memristor_tab(window)
    assert tab.wv_button.isEnabled()
    tab.row.setValue(1)
    tab.col.setValue(2)
    press(qtbot, tab.read_button)
    qtbot.waitUntil(lambda: tab.bank_cell == (1, 2) and tab.job is None, timeout=TIMEOUT_MS)
    k_total = session.branches
    before = run_in_worker(qtbot, window, board_counts(1, 2, k_total))
    assert tab.pulse_counts_shown() == before
    assert all(s.kind == "memristor" and s.conductance_S > 0 for s in tab.bank)

    # write-verify branch 3 to 1.3x its present conductance (inside the device range)
    g0 = tab.bank[3].conductance_S
    tab.branch.setValue(3)
    tab.target_uS.setValue(round(1.3 * g0 * 1e6, 2))
    tab.tolerance.setValue(2.0)
    press(qtbot, tab.wv_button)
    qtbot.waitUntil(lambda: tab.outcome is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: tab.job is None and not window.worker.busy, timeout=TIMEOUT_MS)
    outcome = tab.outcome
    assert outcome is not None
    d = outcome.device
    assert d.pulses > 0
    after = run_in_worker(qtbot, window, board_counts(1, 2, k_total))
    # the bank view (read again after the run) shows the board's PULS:COUN? of every branch
    assert tab.pulse_counts_shown() == after
    assert after[3] == before[3] + d.pulses == outcome.board_pulse_count
    assert [a - b for a, b in zip(after, before, strict=True)].count(0) == k_total - 1
    # the live plot holds one point per verify read (one before each pulse, one after
    # the last), at pulse numbers 0..pulses, ending on the device's final conductance
    x, y = tab.trace_arrays()
    np.testing.assert_array_equal(np.unique(x), np.arange(d.pulses + 1))
    assert x.size == 2 * (d.pulses + 1)  # READS_PER_VERIFY readings per verify step
    assert np.mean(y[-2:]) == pytest.approx(d.final_S, rel=1e-12)
    assert session.db_path is not None
    with Store(session.db_path) as store:
        info = store.run(outcome.run_id)
        assert info.kind == "write_verify" and info.status == "completed"
        pulses = store.get_result(outcome.run_id, "pulses")
        assert pulses.shape[0] == d.pulses
        assert store.get_value(outcome.run_id, "summary")["board_pulse_counts"] == [after[3]]


def test_mixed_preset_shows_resistor_branches_without_pulse_counts(
    qtbot: QtBot, window: MainWindow
) -> None:
    connect_preset(qtbot, window, "mixed")
    session = window.session
    assert session is not None and session.element_kind == "mixed"
    tab = memristor_tab(window)
    kinds = run_in_worker(
        qtbot,
        window,
        lambda ctx: [
            str(ctx.lab.cell_kind(r, c)) for r in range(session.rows) for c in range(session.cols)
        ],
    )
    r_cell = kinds.index("resistor")
    r, c = divmod(r_cell, session.cols)
    tab.row.setValue(r)
    tab.col.setValue(c)
    press(qtbot, tab.read_button)
    qtbot.waitUntil(lambda: tab.bank_cell == (r, c) and tab.job is None, timeout=TIMEOUT_MS)
    assert tab.pulse_counts_shown() == [None] * session.branches
    assert {s.kind for s in tab.bank} == {"resistor"}


def test_coarse_rss_of_a_cell_through_its_button(qtbot: QtBot, window: MainWindow) -> None:
    connect_preset(qtbot, window, "memristor")
    session = window.session
    assert session is not None
    tab = memristor_tab(window)
    tab.row.setValue(0)
    tab.col.setValue(5)
    before = run_in_worker(qtbot, window, board_counts(0, 5, session.branches))
    tab.cell_target_uS.setValue(150.0)
    press(qtbot, tab.rss_button)
    qtbot.waitUntil(lambda: tab.bank_result is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: tab.job is None and not window.worker.busy, timeout=TIMEOUT_MS)
    result = tab.bank_result
    assert result is not None and result.cell == (0, 5)
    after = run_in_worker(qtbot, window, board_counts(0, 5, session.branches))
    assert sum(after) - sum(before) == result.pulses
    assert tab.pulse_counts_shown() == after  # the bank was read again afterwards
    # the trace has every verify read of the coarse programming, at pulse numbers 0..pulses
    x, _ = tab.trace_arrays()
    assert x.size > 0 and x.max() == result.pulses
    assert f"{100 * result.error:+.3f} %" in tab.wv_status.text()
    # the switches the solver chose are what the board holds
    mask = run_in_worker(qtbot, window, lambda ctx: ctx.lab.board.cell_mask(0, 5))
    assert mask == result.mask_int
