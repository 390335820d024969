"""The Program tab: load the digits MLP, prune it (SLTH), solve and program it through the
tab's own buttons on the embedded simulator's small board; what the widgets show equals
the workflow's stored results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from labrss.gui.tabs.calibrate_tab import CalibrateTab
from labrss.gui.tabs.program_tab import (
    DIGITS,
    ProgramTab,
    load_network,
    predicted_error_ppm,
    prune,
)
from labrss.networks.model import Network
from labrss.store import Store
from labrss.workflows.program import load_program

pytestmark = pytest.mark.gui

TIMEOUT_MS = 120_000
#: A narrow hidden layer keeps the network small on the 8 x 8 board (12 tiles, ~3 s).
HIDDEN = 4


def click(button: QWidget) -> None:
    """A left click on ``button`` (what the user does)."""
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def press(qtbot: QtBot, button: QWidget) -> None:
    """Wait until ``button`` is enabled (the worker's idle signal may still be queued after
    a job's result arrived), then click it."""
    qtbot.waitUntil(button.isEnabled, timeout=30_000)
    click(button)


def program_tab(win: MainWindow) -> ProgramTab:
    page = win.tab_pages[ProgramTab.title]
    assert isinstance(page, ProgramTab)
    return page


def calibrate_whole_board(qtbot: QtBot, win: MainWindow) -> None:
    """Calibrate every cell through the Calibrate tab's Start button."""
    tab = win.tab_pages[CalibrateTab.title]
    assert isinstance(tab, CalibrateTab)
    tab.cells.setText("*,*")
    press(qtbot, tab.start_button)
    qtbot.waitUntil(lambda: tab.job is None and tab.last_result is not None, timeout=TIMEOUT_MS)
    assert tab.last_result is not None and tab.last_result.status == "completed"


def load_digits(qtbot: QtBot, tab: ProgramTab) -> None:
    tab.source_box.setCurrentText(DIGITS)
    tab.hidden.setValue(HIDDEN)
    press(qtbot, tab.load_button)
    qtbot.waitUntil(lambda: tab.source is not None and tab.job is None, timeout=TIMEOUT_MS)


@pytest.mark.slow  # ~11 s: calibrates the whole small board, then programs 12 tiles
def test_program_through_the_buttons_shows_the_stored_run(
    qtbot: QtBot, connected: MainWindow
) -> None:
    calibrate_whole_board(qtbot, connected)
    tab = program_tab(connected)
    load_digits(qtbot, tab)
    assert tab.source is not None
    expected = load_network(DIGITS, hidden=HIDDEN, seed=0)
    assert f"{100 * expected.test_accuracy:.2f} %" in tab.network_label.text()

    press(qtbot, tab.solve_button)
    qtbot.waitUntil(lambda: bool(tab.layers) and tab.job is None, timeout=TIMEOUT_MS)
    assert tab.layer_box.count() == 2
    solved = [predicted_error_ppm(lay) for lay in tab.layers]

    press(qtbot, tab.program_button)
    qtbot.waitUntil(lambda: tab.result is not None and tab.job is None, timeout=TIMEOUT_MS)
    result = tab.result
    assert result is not None and result.run_id is not None
    assert tab.progress_bar.value() == tab.progress_bar.maximum()
    session = connected.session
    assert session is not None and session.db_path is not None
    with Store(session.db_path) as store:
        stored = load_program(store, result.run_id)
    # the predicted-vs-measured plot's data are the stored run's, cell for cell
    data = tab._pvm_data()
    assert data is not None
    col = {name: data.rows[:, i] for i, name in enumerate(data.columns)}
    pred, meas = stored.predicted_vs_measured()
    np.testing.assert_array_equal(col["predicted_S"], pred)
    np.testing.assert_array_equal(col["measured_S"], meas)
    assert int(col["repaired"].sum()) == stored.cells_repaired
    assert int(col["missed"].sum()) == stored.cells_missed
    assert f"{stored.cells_programmed} cells programmed" in tab.status.text()
    # the error map shows the programmed layers (after repair) of the stored run
    tab.layer_box.setCurrentIndex(0)
    np.testing.assert_array_equal(tab.error_map.values, predicted_error_ppm(stored.layers[0]))
    # without repairs the solve predicted the same masks as were programmed
    if stored.cells_repaired == 0:
        np.testing.assert_array_equal(solved[0], predicted_error_ppm(stored.layers[0]))


def test_slth_pruning_shows_the_pruned_networks_own_accuracy(
    qtbot: QtBot, window: MainWindow
) -> None:
    tab = program_tab(window)
    load_digits(qtbot, tab)
    tab.slth_n.setValue(12)
    tab.slth_seed.setValue(3)
    press(qtbot, tab.prune_button)
    qtbot.waitUntil(lambda: tab.slth is not None and tab.job is None, timeout=TIMEOUT_MS)
    assert tab.source is not None
    expected = prune(tab.source, 12, 3)  # seeded: the same pruned network
    assert tab.slth is not None
    assert tab.slth.test_accuracy == expected.test_accuracy
    assert f"test accuracy {100 * expected.test_accuracy:.2f} %" in tab.slth_label.text()
    assert tab.slth_table.rowCount() == len(expected.ticket.layers) == 2
    for i, rep in enumerate(expected.ticket.layers):
        item = tab.slth_table.item(i, 2)
        assert item is not None and item.text() == f"{100 * rep.max_error_rel:.3g}"
    tab.use_slth.setChecked(True)
    assert tab.network_to_program() is tab.slth.ticket.effective


def test_program_without_a_calibration_is_a_readable_error(
    qtbot: QtBot, connected: MainWindow
) -> None:
    tab = program_tab(connected)
    load_digits(qtbot, tab)
    press(qtbot, tab.program_button)
    qtbot.waitUntil(lambda: bool(connected.ctx.error_dialogs), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: tab.job is None, timeout=TIMEOUT_MS)
    dialog = connected.ctx.error_dialogs[-1]
    assert isinstance(dialog, QMessageBox)
    assert "calibration" in dialog.informativeText()
    assert tab.result is None


def test_onnx_weights_files(tmp_path: Path) -> None:
    """An ONNX MLP loads as the tab's network; an ONNX CNN needs reference inputs of its
    input shape."""
    from labrss.gui.tabs.program_tab import WEIGHTS_FILE
    from labrss.networks.files import builtin_path
    from labrss.networks.onnx_file import save_onnx
    from labrss.networks.sequential import SequentialNetwork

    rng = np.random.default_rng(0)
    mlp = SequentialNetwork.from_network(
        Network(
            [
                (rng.normal(size=(6, 4)), rng.normal(size=4)),
                (rng.normal(size=(4, 3)), rng.normal(size=3)),
            ]
        )
    )
    path = save_onnx(mlp, tmp_path / "mlp.onnx", dtype=np.float64)
    ref = tmp_path / "x.npy"
    np.save(ref, rng.random((20, 6)))
    src = load_network(WEIGHTS_FILE, hidden=4, seed=0, weights=str(path), reference=str(ref))
    assert src.network.sizes == (6, 4, 3)
    # an ONNX CNN loads as a CNN (tests/gui/test_cnn_gui.py); its reference must fit it
    with pytest.raises(ValueError, match=r"x\.npy: reference inputs for .*mnist1d"):
        load_network(
            WEIGHTS_FILE,
            hidden=4,
            seed=0,
            weights=str(builtin_path("mnist1d-cnn")),
            reference=str(ref),
        )
