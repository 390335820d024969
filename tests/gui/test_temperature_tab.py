"""Temperature tab (the thermal stage) and the Board tab's TCR map, offscreen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from labrss.gui.tabs.temperature_tab import TemperatureTab
from labrss.store import Store
from tests.gui.conftest import CONNECT_TIMEOUT_MS, board_tab, connect_tab

pytestmark = pytest.mark.gui

STATION = """
[simulator]
board = "small"
seed = 4

[thermal]
min_C = 15
max_C = 40
stability_window_s = 120
"""


def _tab(win: MainWindow) -> TemperatureTab:
    page = win.tab_pages[TemperatureTab.title]
    assert isinstance(page, TemperatureTab)
    return page


def _stage_coloured_pixels(tab: TemperatureTab) -> int:
    """Pixels of the stage curve's colour (#1f77b4) in a grab of the plot's data area,
    the legend (which shows a stroke of every curve's colour) left out."""
    item = tab.plot.getPlotItem()
    image = tab.plot.grab().toImage()
    area = tab.plot.mapFromScene(item.getViewBox().sceneBoundingRect()).boundingRect()
    legend = tab.plot.mapFromScene(item.legend.sceneBoundingRect()).boundingRect()
    count = 0
    for y in range(max(area.top(), 0), min(area.bottom(), image.height())):
        for x in range(max(area.left(), 0), min(area.right(), image.width())):
            if legend.contains(x, y):
                continue
            r, g, b, _ = image.pixelColor(x, y).getRgb()
            count += abs(r - 0x1F) <= 24 and abs(g - 0x77) <= 24 and abs(b - 0xB4) <= 24
    return count


def test_go_to_a_set_point_plots_and_settles(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    station = tmp_path / "stage.toml"
    station.write_text(STATION)
    ctab = connect_tab(window)
    assert ctab.load_station_file(str(station))
    qtbot.mouseClick(ctab.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session is not None, timeout=CONNECT_TIMEOUT_MS)
    tab = _tab(window)
    qtbot.waitUntil(lambda: tab.has_stage, timeout=CONNECT_TIMEOUT_MS)
    assert tab.setpoint.minimum() == 15 and tab.setpoint.maximum() == 40
    assert "within 0.05 K" in tab.readout["criterion"].text()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=CONNECT_TIMEOUT_MS)
    # the reading taken at connection is one point: drawn as a marker (a line alone
    # left the plot empty until a second reading)
    window.tabs.setCurrentWidget(tab)
    assert len(tab.samples) == 1
    assert _stage_coloured_pixels(tab) > 4
    tab.setpoint.setValue(32.0)
    qtbot.mouseClick(tab.go_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.info.text().startswith("Stable"), timeout=60_000)
    assert len(tab.samples) > 10
    last = tab.samples[-1]
    assert abs(last.stage_C - 32.0) < 0.05
    assert abs(last.board_C - 32.0) < 0.5  # 2 % of the 7 K to the room, and its offset
    data = tab._plot_data()
    assert data is not None and "board_C" in data.columns
    window.tabs.setCurrentWidget(tab)
    tab.grab().save(str(tmp_path / "temperature_tab.png"))


def test_without_a_stage_the_tab_says_so(qtbot: QtBot, connected: MainWindow) -> None:
    tab = _tab(connected)
    qtbot.waitUntil(lambda: "no thermal stage" in tab.info.text(), timeout=CONNECT_TIMEOUT_MS)
    assert not tab.go_button.isEnabled()


def test_board_tab_shows_the_tcr_map(qtbot: QtBot, connected: MainWindow) -> None:
    assert connected.store.path is not None and connected.store.board_id is not None
    from tests.gui.conftest import store_calibration

    store_calibration(connected.store.path, connected.store.board_id, (8, 8, 8), seed=1)
    rng = np.random.default_rng(0)
    alpha = rng.normal(40.0, 30.0, (64, 8))
    with Store(connected.store.path) as store:
        run = store.start_run("thermal_calibration", connected.store.board_id)
        store.put_tcr(
            run,
            [(r, c) for r in range(8) for c in range(8)],
            tcr_ppm_per_K=alpha,
            u_tcr_ppm_per_K=np.full(alpha.shape, 0.7),
            conductance_S=np.full(alpha.shape, 1e-4),
            reference_C=np.full(alpha.shape, 25.0),
        )
        store.finish_run(run, "completed")
    tab = board_tab(connected)
    qtbot.mouseClick(tab.reload_button, Qt.MouseButton.LeftButton)
    assert "Temperature coefficients of 512 elements" in tab.info.text()
    tab.quantity.setCurrentIndex(tab.quantity.findData("tcr"))
    # whole cell: the conductance-weighted mean (equal conductances: the plain mean)
    np.testing.assert_allclose(tab.heatmap.values, alpha.reshape(8, 8, 8).mean(axis=2))
    tab.branch.setCurrentIndex(tab.branch.findData(3))
    np.testing.assert_allclose(tab.heatmap.values, alpha.reshape(8, 8, 8)[..., 3])
    tab._on_hover(2, 5)
    assert "TCR" in tab.hover.text() and "ppm/K" in tab.hover.text()


def test_rss_explorer_holds_a_target_over_a_span(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    from calibration.settings import CalibrationSettings, parse_cells
    from labrss.station import load_station
    from labrss.workflows.thermal_calibration import (
        ThermalCalibrationSettings,
        run_thermal_calibration,
    )
    from tests.gui.conftest import rss_tab

    station = tmp_path / "stage.toml"
    station.write_text(STATION.replace('"small"', '"thickfilm"'))
    cal = run_thermal_calibration(
        ThermalCalibrationSettings(
            (15.0, 25.0, 35.0), CalibrationSettings(cells=parse_cells("0,0"))
        ),
        station=load_station(station),
        db_path=tmp_path / "lab.db",
    )
    assert cal.fit is not None
    ctab = connect_tab(window)
    assert ctab.load_station_file(str(station))
    qtbot.mouseClick(ctab.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session is not None, timeout=CONNECT_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=CONNECT_TIMEOUT_MS)
    tab = rss_tab(window)
    tab.refresh_calibration()
    assert tab.tcr is not None and tab.span_check.isEnabled()
    tab.row.setValue(0)
    tab.col.setValue(0)
    tab.unit.setCurrentIndex(tab.unit.findData("conductance"))
    total = float(np.nansum(cal.fit.conductance_S[0]))
    tab.set_target(0.5 * total, "conductance")
    tab.span_check.setChecked(True)
    assert tab.span is not None
    info = tab.span.info
    assert info["worst_compensated_S"] <= info["worst_plain_S"]
    assert "compensated 0x" in tab.span_label.text()
    job = tab.program_cell()
    assert job is not None
    qtbot.waitUntil(lambda: tab.last_realised is not None, timeout=60_000)
    assert tab.last_realised is not None
    (cell,) = tab.last_realised.cells
    assert cell.temperature is not None and cell.mask == info["compensated_mask"]
    window.tabs.setCurrentWidget(tab)
    tab.grab().save(str(tmp_path / "rss_explorer_span.png"))
    assert "k = 2" in tab.span_label.text()
    # the Board tab's budget view: the temperature row from the measured TCRs, not the
    # bill of materials' (issue 17): the element's |alpha| g u_T, the bank's |sum alpha g| u_T
    from labrss.workflows.realise import cell_temperatures

    btab = board_tab(window)
    qtbot.mouseClick(btab.reload_button, Qt.MouseButton.LeftButton)
    btab.select_cell(0, 0)
    assert btab.tcr is not None and btab.calibration is not None
    with Store(tmp_path / "lab.db") as store:
        u_t = float(cell_temperatures(store, btab.calibration)[1][0, 0])
    k = btab.budget_branch if btab.budget_branch is not None else 0
    alpha = btab.tcr.tcr_ppm_per_K[0, 0] * 1e-6
    g = btab.tcr.conductance_S[0, 0]
    rows = {btab.budget_table.item(i, 0).text(): i for i in range(btab.budget_table.rowCount())}
    shown_ppm = float(btab.budget_table.item(rows["temperature (TCRs)"], 2).text())
    u_alpha = btab.tcr.u_tcr_ppm_per_K[0, 0, k] * 1e-6
    expected = np.hypot(alpha[k], u_alpha) * g[k] * u_t / btab.calibration.conductance_S[0, 0, k]
    assert shown_ppm == pytest.approx(1e6 * expected, rel=5e-3)  # 3 significant digits
    window.tabs.setCurrentWidget(btab)
    btab.grab().save(str(tmp_path / "board_budget_tcr.png"))
