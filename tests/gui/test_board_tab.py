"""Board tab: the calibration heat map from the store, hover, click, measure a cell."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from labrss.lab import Reading
from labrss.store import Store
from tests.gui.conftest import board_tab, is_bench_safe, run_in_worker, store_calibration

pytestmark = pytest.mark.gui


def _click_cell(qtbot: QtBot, win: MainWindow, r: int, c: int) -> None:
    heatmap = board_tab(win).heatmap
    point = heatmap.mapFromScene(heatmap.cell_center_scene(r, c))
    qtbot.mouseClick(heatmap.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_heat_map_shows_the_latest_calibration(qtbot: QtBot, connected: MainWindow) -> None:
    tab = board_tab(connected)
    assert connected.store.board_id is not None and connected.store.path is not None
    assert "No calibration" in tab.info.text()
    cal = store_calibration(connected.store.path, connected.store.board_id, (8, 8, 8), seed=3)
    qtbot.mouseClick(tab.reload_button, Qt.MouseButton.LeftButton)
    assert f"run {cal.run_id}" in tab.info.text()

    usable = np.ones((8, 8, 8), dtype=bool)
    usable[cal.fault] = False
    bank = np.where(usable, cal.conductance_S, 0.0).sum(axis=2)
    expected_g = 1.0 / (cal.series_ohm + 1.0 / (bank + cal.leakage_S))
    # the map is computed in float64 from the same numbers: agreement to rounding
    np.testing.assert_allclose(tab.heatmap.values, expected_g, rtol=1e-12)
    faults = np.zeros((8, 8), dtype=bool)
    faults[1, 2] = True
    np.testing.assert_array_equal(tab.maps["G"].faults, faults)
    assert tab.heatmap.faults.data["x"].tolist() == [2.5]
    assert tab.heatmap.faults.data["y"].tolist() == [1.5]

    tab.quantity.setCurrentIndex(tab.quantity.findData("R"))
    np.testing.assert_allclose(tab.heatmap.values, 1.0 / expected_g, rtol=1e-12)
    tab.branch.setCurrentIndex(tab.branch.findData(5))
    np.testing.assert_allclose(tab.heatmap.values, 1.0 / cal.conductance_S[..., 5], rtol=1e-12)
    # the simulated board reports its bill of materials: deviation from nominal_ohm
    assert tab.nominal_from == "board nominal_ohm"
    assert connected.session is not None
    nominal_ohm = float(connected.session.board_info["nominal_ohm"].split("/")[5])
    tab.quantity.setCurrentIndex(tab.quantity.findData("deviation"))
    np.testing.assert_allclose(
        tab.heatmap.values, 100 * (cal.conductance_S[..., 5] * nominal_ohm - 1), rtol=1e-9
    )

    tab._on_hover(1, 2)  # branch 5 of cell (1, 2) is healthy
    assert tab.hover.text().startswith("cell (1, 2): G = ")
    assert not tab.hover.text().endswith("FAULT")
    tab.branch.setCurrentIndex(tab.branch.findData(3))  # the open branch
    tab._on_hover(1, 2)
    assert tab.hover.text().endswith("FAULT")
    assert np.isnan(tab.heatmap.values[1, 2])  # excluded: no value drawn


def test_click_cell_shows_bank_and_switches(qtbot: QtBot, connected: MainWindow) -> None:
    tab = board_tab(connected)
    assert connected.store.board_id is not None and connected.store.path is not None
    cal = store_calibration(connected.store.path, connected.store.board_id, (8, 8, 8), seed=4)
    tab.reload()
    with qtbot.waitSignal(connected.stream.delivered, timeout=10_000):
        _click_cell(qtbot, connected, 1, 2)
    assert tab.selected == (1, 2)
    assert tab.cell_box.title() == "Cell (1, 2)"
    qtbot.waitUntil(lambda: tab.cell_mask is not None, timeout=10_000)
    assert tab.cell_mask == 0  # after connecting every switch is open
    assert [tab.table.item(k, 5).text() for k in range(8)] == ["open"] * 8
    assert tab.table.item(3, 6).text() == "open"  # branch 3 is the injected open fault
    g1 = cal.conductance_S[1, 2, 1]
    assert tab.table.item(1, 1).text() == f"{g1 * 1e6:.5g} µS"


def test_measure_cell_through_the_button(qtbot: QtBot, connected: MainWindow) -> None:
    tab = board_tab(connected)
    # program cell (2, 5) with branches 0 and 2 closed, as a network would be
    run_in_worker(qtbot, connected, lambda ctx: ctx.lab.set_cell_mask(2, 5, 0b101))
    tab.select_cell(2, 5)
    qtbot.waitUntil(lambda: tab.cell_mask == 0b101, timeout=10_000)
    assert [tab.table.item(k, 5).text() for k in range(3)] == ["closed", "open", "closed"]

    qtbot.mouseClick(tab.measure_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.last_reading is not None, timeout=10_000)
    reading = tab.last_reading
    assert isinstance(reading, Reading)
    assert (reading.cell, reading.mask, reading.kind) == ((2, 5), 0b101, "cell")
    # the small board's branches 0 and 2 are ~10 kohm and ~32 kohm: ~7.6 kohm in parallel;
    # 5 % tolerance, switch and path resistance keep it within 6.5..9 kohm
    assert 6.5e3 < reading.resistance_ohm < 9e3
    assert "Last reading (cell, switches 0x5): R = " in tab.reading_label.text()
    assert f"{reading.resistance_ohm / 1e3:.5g} kΩ" in tab.reading_label.text()

    # the store kept it (run of kind gui_readings, written by the recorder's thread)
    # and the history shows it
    assert connected.store.path is not None
    qtbot.waitUntil(lambda: connected.recorder.written == 1, timeout=10_000)
    with Store(connected.store.path) as store:
        runs = [run for run in store.runs() if run.kind == "gui_readings"]
        assert len(runs) == 1
        rows = store.readings(runs[0].id)
    assert rows.shape == (1,)
    assert (int(rows["r"][0]), int(rows["c"][0]), int(rows["mask"][0])) == (2, 5, 5)
    assert rows["value"][0] == pytest.approx(reading.conductance_S, rel=1e-12)
    assert tab.history.arrays()["value"].tolist() == pytest.approx([reading.conductance_S])
    tab.select_cell(2, 5)  # reloaded from the store: the same reading
    assert tab.history.arrays()["run_id"].tolist() == [runs[0].id]


def test_measure_branches_restores_the_switches(qtbot: QtBot, connected: MainWindow) -> None:
    tab = board_tab(connected)
    run_in_worker(qtbot, connected, lambda ctx: ctx.lab.set_cell_mask(0, 1, 0b1000_0001))
    tab.select_cell(0, 1)
    qtbot.waitUntil(lambda: not connected.worker.busy, timeout=10_000)
    readings: list[Reading] = []
    connected.stream.subscribe(
        lambda ev: readings.append(ev.data) if ev.kind == "reading" else None
    )
    qtbot.mouseClick(tab.branches_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(readings) == 8 and not connected.worker.busy, timeout=60_000)
    assert [r.mask for r in readings] == [1 << k for k in range(8)]
    r_ohm = np.array([r.resistance_ohm for r in readings])
    # the small board is a ladder: each branch ~1.8 x the previous (5 % tolerance each)
    ratios = r_ohm[1:] / r_ohm[:-1]
    assert np.all((ratios > 1.8 * 0.9) & (ratios < 1.8 * 1.1))
    mask = run_in_worker(qtbot, connected, lambda ctx: ctx.lab.board.cell_mask(0, 1))
    assert mask == 0b1000_0001
    # the stream delivers in slices: the tab's view follows within a few turns of the loop
    qtbot.waitUntil(lambda: tab.cell_mask == 0b1000_0001 and len(tab.history) == 8, timeout=20_000)


def test_instrument_error_is_a_dialog_and_the_window_stays_usable(
    qtbot: QtBot, connected: MainWindow
) -> None:
    tab = board_tab(connected)
    tab.selected = (9, 0)  # not on the 8 x 8 board: Lab refuses before switching anything
    tab.measure_cell()
    qtbot.waitUntil(lambda: bool(connected.ctx.error_dialogs), timeout=10_000)
    dialog = connected.ctx.error_dialogs[-1]
    assert dialog.text() == "measure cell (9, 0) failed"
    assert dialog.informativeText().startswith("row 9 not on the board")
    assert any("measure cell (9, 0) failed: row 9" in line for line in connected.log_panel.lines)
    dialog.close()
    tab.select_cell(1, 1)
    qtbot.waitUntil(lambda: not connected.worker.busy, timeout=10_000)
    tab.measure_cell()
    qtbot.waitUntil(lambda: tab.last_reading is not None, timeout=10_000)


def test_cancel_stops_within_one_reading_and_leaves_the_bench_safe(
    qtbot: QtBot, connected: MainWindow
) -> None:
    tab = board_tab(connected)
    tab.select_cell(3, 4)
    qtbot.waitUntil(lambda: not connected.worker.busy, timeout=10_000)
    taken: list[Reading] = []
    connected.stream.subscribe(lambda ev: taken.append(ev.data) if ev.kind == "reading" else None)
    for c in range(8):  # 64 readings queued
        tab.selected = (3, c)
        tab.measure_branches()
    qtbot.waitUntil(lambda: len(taken) >= 3, timeout=20_000)
    assert connected.cancel_action.isEnabled()
    connected.cancel_action.trigger()
    at_cancel = connected.worker.lab.readings_taken  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: not connected.worker.busy, timeout=20_000)
    # the running job stops at its next check, i.e. after at most the reading in progress
    assert connected.worker.lab.readings_taken <= at_cancel + 1  # type: ignore[union-attr]
    assert run_in_worker(qtbot, connected, is_bench_safe) == (True, True)
    assert not connected.cancel_action.isEnabled()


def test_a_calibration_by_the_workflow_is_found(qtbot: QtBot, connected: MainWindow) -> None:
    """`labrss calibrate`'s workflow, on its own Lab of the same station (same simulated
    board: same seed and preset), stores a run the Board tab then shows."""
    from calibration.settings import CalibrationSettings, CellSelection
    from labrss.workflows.calibrate import run_calibration

    assert connected.session is not None and connected.store.path is not None
    outcome = run_calibration(
        CalibrationSettings(cells=CellSelection(rows=(2,), cols=(3, 4))),
        station=connected.session.station,
        db_path=connected.store.path,
    )
    tab = board_tab(connected)
    tab.reload()
    assert tab.calibration is not None
    assert tab.calibration.run_id == outcome.result.run_id
    measured = np.zeros((8, 8), dtype=bool)
    measured[2, 3:5] = True
    np.testing.assert_array_equal(tab.calibration.measured, measured)
    assert np.isfinite(tab.heatmap.values[2, 3]) and np.isnan(tab.heatmap.values[0, 0])
