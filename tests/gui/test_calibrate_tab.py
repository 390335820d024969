"""The Calibrate tab: a small calibration through its own buttons on the embedded
simulator; the widgets show the workflow's stored numbers; pause/resume through the store;
the event loop never stalls."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from labrss.gui.calibration_view import cell_map, nominal_conductance_S
from labrss.gui.main_window import MainWindow
from labrss.gui.tabs.calibrate_tab import CalibrateTab, branch_deviations_pct, format_duration
from labrss.store import Store
from tests.gui.test_main_window import _runqueue_waits_s, _starved_s

pytestmark = pytest.mark.gui

RUN_TIMEOUT_MS = 60_000


def click(button: QWidget) -> None:
    """A left click on ``button`` (what the user does)."""
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def press(qtbot: QtBot, button: QWidget) -> None:
    """Wait until ``button`` is enabled (the worker's idle signal may still be queued after
    a job's result arrived), then click it."""
    qtbot.waitUntil(button.isEnabled, timeout=30_000)
    click(button)


def calibrate_tab(win: MainWindow) -> CalibrateTab:
    page = win.tab_pages[CalibrateTab.title]
    assert isinstance(page, CalibrateTab)
    return page


def start_small(qtbot: QtBot, tab: CalibrateTab, cells: str = "0,0-3") -> None:
    tab.cells.setText(cells)
    tab.design.setCurrentText("weighing")
    press(qtbot, tab.start_button)


def test_calibration_through_the_buttons_shows_the_stored_run(
    qtbot: QtBot, connected: MainWindow
) -> None:
    tab = calibrate_tab(connected)
    # a 10 ms timer in the main thread records its ticks; time the kernel kept our threads
    # off the CPU (other processes on 2 busy cores) is subtracted, as in test_main_window
    ticks: list[float] = []
    waits: list[dict[str, float]] = []
    timer = QTimer()
    timer.setInterval(10)

    def tick() -> None:
        ticks.append(time.perf_counter())
        waits.append(_runqueue_waits_s())

    timer.timeout.connect(tick)
    timer.start()
    start_small(qtbot, tab)
    qtbot.waitUntil(lambda: tab.job is None and tab.last_result is not None, timeout=RUN_TIMEOUT_MS)
    timer.stop()
    gaps = np.diff(ticks)
    starved = np.array([_starved_s(a, b) for a, b in itertools.pairwise(waits)])
    stalls = gaps - starved
    result = tab.last_result
    assert result is not None and result.status == "completed"
    assert len(result.cells) == 4
    # the main thread's event loop never stalled more than 100 ms during the run
    assert len(ticks) > 10
    assert stalls.max() < 0.100, f"largest event-loop stall {stalls.max() * 1e3:.0f} ms"
    # the progress bar ended on the plan's total
    assert tab.last_progress is not None
    assert tab.progress_bar.value() == tab.progress_bar.maximum() == tab.last_progress.total
    # the map, histogram and faults equal what the workflow stored
    session = connected.session
    assert session is not None and session.db_path is not None
    with Store(session.db_path) as store:
        estimates = {(e.r, e.c): e for e in store.estimates(result.run_id)}
        faults = store.faults(result.run_id)
    assert set(estimates) == {(0, c) for c in range(4)}
    for cell in result.cells:
        np.testing.assert_array_equal(estimates[cell.r, cell.c].conductance_S, cell.conductance_S)
    cal = tab.calibration
    assert cal is not None and cal.run_id == result.run_id
    nominal, _ = nominal_conductance_S(cal, session.board_info)
    expected = cell_map(cal, "deviation", None, nominal).values
    np.testing.assert_array_equal(tab.heatmap.values, expected)
    assert np.isfinite(tab.heatmap.values[0, :4]).all()
    assert np.isnan(tab.heatmap.values[1:, :]).all()
    np.testing.assert_array_equal(tab.deviations_pct, branch_deviations_pct(cal, nominal))
    assert tab.deviations_pct.size == 4 * session.branches - len(faults)
    assert tab.faults.count() == max(len(faults), 1)
    assert tab.runs.count() == 1 and tab.runs.currentData() == result.run_id


def test_pause_then_resume_finishes_the_run_through_the_store(
    qtbot: QtBot, connected: MainWindow
) -> None:
    tab = calibrate_tab(connected)
    start_small(qtbot, tab, "0-1,*")
    qtbot.waitUntil(
        lambda: tab.last_progress is not None and tab.last_progress.measured_now >= 5,
        timeout=RUN_TIMEOUT_MS,
    )
    press(qtbot, tab.pause_button)
    qtbot.waitUntil(lambda: tab.job is None, timeout=RUN_TIMEOUT_MS)
    assert tab.paused_run is not None and tab.last_result is not None
    assert tab.last_result.status == "interrupted"
    first = tab.paused_run
    total = tab.last_progress.total if tab.last_progress else 0
    press(qtbot, tab.resume_button)
    qtbot.waitUntil(lambda: tab.job is None and tab.paused_run is None, timeout=RUN_TIMEOUT_MS)
    result = tab.last_result
    assert result is not None and result.status == "completed"
    assert len(result.cells) == 16
    session = connected.session
    assert session is not None and session.db_path is not None
    with Store(session.db_path) as store:
        info = store.run(result.run_id)
        assert info.parent_run_id == first
        parent_n = store.run(first).n_readings
        # the resume measured only what the paused run had not: together exactly the plan
        # (the design's readings, known when paused, then the range links planned from them)
        assert 0 < parent_n < total
        final = tab.last_progress
        assert final is not None and final.total > total
        assert parent_n + info.n_readings == final.total
    assert tab.runs.count() == 2


def test_stop_leaves_the_run_interrupted_and_the_bench_safe(
    qtbot: QtBot, connected: MainWindow
) -> None:
    from tests.gui.conftest import is_bench_safe, run_in_worker

    tab = calibrate_tab(connected)
    start_small(qtbot, tab, "*,*")
    qtbot.waitUntil(
        lambda: tab.last_progress is not None and tab.last_progress.measured_now >= 3,
        timeout=RUN_TIMEOUT_MS,
    )
    press(qtbot, tab.stop_button)
    qtbot.waitUntil(lambda: tab.job is None, timeout=RUN_TIMEOUT_MS)
    assert tab.last_result is not None and tab.last_result.status == "interrupted"
    assert "Stopped" in tab.status.text()
    assert run_in_worker(qtbot, connected, is_bench_safe) == (True, True)


def test_bad_cells_give_an_error_dialog_and_no_run(qtbot: QtBot, connected: MainWindow) -> None:
    tab = calibrate_tab(connected)
    tab.cells.setText("0-99,*")
    press(qtbot, tab.start_button)
    qtbot.waitUntil(lambda: bool(connected.ctx.error_dialogs), timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not connected.worker.busy, timeout=RUN_TIMEOUT_MS)
    assert tab.last_result is None
    dialog = connected.ctx.error_dialogs[-1]
    assert isinstance(dialog, QMessageBox)
    assert "99" in dialog.informativeText()
    # a malformed selection is refused before anything is submitted
    tab.cells.setText("*")
    press(qtbot, tab.start_button)
    dialog = connected.ctx.error_dialogs[-1]
    assert isinstance(dialog, QMessageBox) and "ROWS,COLS" in dialog.informativeText()
    assert tab.job is None


def test_format_duration() -> None:
    assert format_duration(float("nan")) == "?"
    assert format_duration(12.34) == "12.3 s"
    assert format_duration(185.0) == "3 min 05 s"
    assert format_duration(3720.0) == "1 h 02 min"


def test_closing_during_a_calibration_asks_stops_it_and_leaves_the_bench_safe(
    qtbot: QtBot, connected: MainWindow
) -> None:
    tab = calibrate_tab(connected)
    start_small(qtbot, tab, "*,*")
    qtbot.waitUntil(
        lambda: tab.last_progress is not None and tab.last_progress.measured_now >= 3,
        timeout=RUN_TIMEOUT_MS,
    )
    lab = connected.worker.lab
    assert lab is not None and lab.simulator is not None
    model = lab.simulator.model
    session = connected.session
    assert session is not None and session.db_path is not None
    questions: list[str] = []

    def answer_yes(parent: QWidget | None, title: str, text: str) -> bool:
        questions.append(text)
        return True

    connected.ask = answer_yes
    assert connected.close()
    assert len(questions) == 1 and "running" in questions[0]
    assert not connected.worker.isRunning() and connected.worker.lab is None
    assert model.is_safe()  # every switch open, routing open, DACs at 0 V
    with Store(session.db_path) as store:
        runs = store.runs(kind="calibration")
    assert [r.status for r in runs] == ["interrupted"]  # stored, resumable
    assert 0 < runs[0].n_readings < (tab.last_progress.total if tab.last_progress else 0)


def test_a_run_left_running_is_marked_interrupted_after_confirming_then_resumed(
    qtbot: QtBot, connected: MainWindow
) -> None:
    # A run whose process died without the store noticing (its pid now belongs to another
    # live process, its heartbeat is recent): recorded as running, not resumable until it is
    # marked interrupted, which the tab does after asking.
    tab = calibrate_tab(connected)
    start_small(qtbot, tab, "0,0-1")
    qtbot.waitUntil(
        lambda: tab.last_progress is not None and tab.last_progress.measured_now >= 3,
        timeout=RUN_TIMEOUT_MS,
    )
    press(qtbot, tab.pause_button)
    qtbot.waitUntil(lambda: tab.job is None, timeout=RUN_TIMEOUT_MS)
    run = tab.paused_run
    assert run is not None
    store = connected.ctx.store.store
    assert store is not None
    with store._write() as conn:
        conn.execute(
            "UPDATE runs SET status = 'running', ended_at = NULL, heartbeat_at = ? WHERE id = ?",
            (time.time(), run),
        )
    tab.paused_run = None  # as after a restart of the GUI
    tab.refresh_runs()
    tab.runs.setCurrentIndex(tab.runs.findData(run))
    assert tab.mark_button.isEnabled()
    assert not tab.resume_button.isEnabled()
    questions: list[str] = []
    answers = iter([False, True])

    def ask(parent: QWidget | None, title: str, text: str) -> bool:
        questions.append(text)
        return next(answers)

    tab.ask = ask
    click(tab.mark_button)  # answered No: nothing changes
    assert store.run(run).status == "running"
    assert "left as it was" in tab.status.text()
    click(tab.mark_button)  # answered Yes
    assert f"Run {run} is recorded as running" in questions[0]
    assert store.run(run).status == "interrupted"
    assert "marked in the GUI" in store.run(run).note
    assert not tab.mark_button.isEnabled()
    press(qtbot, tab.resume_button)
    qtbot.waitUntil(lambda: tab.job is None and tab.paused_run is None, timeout=RUN_TIMEOUT_MS)
    result = tab.last_result
    assert result is not None and result.status == "completed"
    assert store.run(result.run_id).parent_run_id == run
