"""The MVM tab: calibrate, program and run an MVM through the GUI's own buttons on the
embedded simulator's small board; the plots and tables equal the stored MVM run."""

from __future__ import annotations

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from labrss.gui.tabs.mvm_tab import MVMTab, accuracy_rows
from labrss.metrics.mvm import accuracy, confusion_matrix
from labrss.store import Store
from tests.gui.test_program_tab import (
    TIMEOUT_MS,
    calibrate_whole_board,
    load_digits,
    press,
    program_tab,
)

pytestmark = pytest.mark.gui

VECTORS = 30


def mvm_tab(win: MainWindow) -> MVMTab:
    page = win.tab_pages[MVMTab.title]
    assert isinstance(page, MVMTab)
    return page


@pytest.mark.slow  # ~12 s: calibrates the whole small board and programs 12 tiles first
def test_mvm_through_the_buttons_shows_the_stored_run(qtbot: QtBot, connected: MainWindow) -> None:
    tab = mvm_tab(connected)
    assert not tab.run_button.isEnabled()  # nothing programmed yet
    calibrate_whole_board(qtbot, connected)
    prog = program_tab(connected)
    load_digits(qtbot, prog)
    press(qtbot, prog.program_button)
    qtbot.waitUntil(lambda: prog.result is not None and prog.job is None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: tab.program is not None, timeout=TIMEOUT_MS)
    assert prog.result is not None and tab.program is prog.result

    tab.vectors.setValue(VECTORS)
    tab.path.setCurrentIndex(tab.path.findData("adc"))
    tab.drift.setChecked(True)
    press(qtbot, tab.run_button)
    qtbot.waitUntil(lambda: tab.result is not None and tab.job is None, timeout=TIMEOUT_MS)
    r = tab.result
    assert r is not None and r.run_id is not None
    assert r.settings.path == "adc" and r.settings.drift_compensation
    assert r.x.shape[0] == VECTORS

    session = connected.session
    assert session is not None and session.db_path is not None
    with Store(session.db_path) as store:
        y_analog = store.get_result(r.run_id, "y_analog")
        labels = store.get_result(r.run_id, "labels")
        assert store.run(r.run_id).kind == "mvm"
    np.testing.assert_array_equal(y_analog, r.y_analog)
    # the accuracy table: the stored analog scores' accuracy, to the shown precision
    rows = accuracy_rows(r)
    shown = [tab.accuracy.item(i, 0) for i in range(3)]
    assert all(item is not None for item in shown)
    assert [item.text() for item in shown if item] == [f"{v:.2f}" for _, v in rows]
    assert rows[2][1] == pytest.approx(100 * accuracy(y_analog, labels))
    assert rows[1][1] == pytest.approx(100 * accuracy(r.y_programmed, labels))
    # the scatter's data are the stored analog outputs against the programmed digital ones
    data = tab._scatter_data()
    assert data is not None
    col = {name: data.rows[:, i] for i, name in enumerate(data.columns)}
    np.testing.assert_array_equal(col["analog"], y_analog.ravel())
    np.testing.assert_array_equal(col["digital_programmed"], r.y_programmed.ravel())
    trace = tab._trace_data()
    assert trace is not None and trace.rows.shape == (VECTORS, 2)
    # the confusion matrix shown is the analog one of the stored scores
    expected = confusion_matrix(labels, np.argmax(y_analog, axis=1), 10)
    assert tab.confusion.rowCount() == 10
    shown_m = np.array(
        [[int(tab.confusion.item(i, j).text()) for j in range(10)] for i in range(10)]  # type: ignore[union-attr]
    )
    np.testing.assert_array_equal(shown_m, expected)
    assert shown_m.sum() == VECTORS
