"""Connect tab discovery: a worker thread (the window keeps running), the findings table,
picking the SMU and the board, saving the station file and connecting with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from labrss.station import load_station
from tests.drivers.scripted_server import ScriptedLineServer
from tests.gui.conftest import CONNECT_TIMEOUT_MS, connect_tab

pytestmark = pytest.mark.gui


def test_discovery_runs_in_a_thread_and_lists_a_silent_resource(
    qtbot: QtBot, window: MainWindow
) -> None:
    panel = connect_tab(window).discovery
    panel.list_system.setChecked(False)
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    with ScriptedLineServer(lambda line: None) as silent:
        panel.host_edit.setText(f"TCPIP0::127.0.0.1::{silent.port}::SOCKET")
        timer.start(20)
        qtbot.mouseClick(panel.refresh_button, Qt.MouseButton.LeftButton)
        assert panel.running and not panel.refresh_button.isEnabled()
        qtbot.waitUntil(lambda: not panel.running, timeout=CONNECT_TIMEOUT_MS)
        timer.stop()
    # the event loop kept turning while the resource stayed silent for its 1 s timeout
    assert len(ticks) >= 10
    assert panel.table.rowCount() == 1
    assert panel.table.item(0, 0).text() == "silent"
    assert "no reply to *IDN? within 1 s" in panel.table.item(0, 4).text()
    assert "0 SMU(s) and 0 board(s) recognised" in panel.status.text()
    assert panel.refresh_button.isEnabled() and not panel.use_button.isEnabled()


def test_pick_save_and_connect(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    tab = connect_tab(window)
    panel = tab.discovery
    panel.list_system.setChecked(False)
    panel.include_sim.setChecked(True)
    qtbot.mouseClick(panel.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.report is not None, timeout=CONNECT_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not panel.running, timeout=CONNECT_TIMEOUT_MS)
    statuses = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())]
    assert statuses == ["recognised"] * 3
    assert panel.smu_pick.count() == 3 and panel.board_pick.count() == 2  # + "none"
    assert panel.smu_pick.currentText().startswith("keithley2450 at TCPIP0::127.0.0.1::")
    assert panel.board_pick.currentText().startswith("crossbar at socket://127.0.0.1:")
    tab.smu_address.setCurrentText("TCPIP0::10.0.0.9::5025::SOCKET")
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    assert tab.smu_address.currentText() == "sim (embedded simulator)"  # the simulator's
    assert tab.smu_driver.currentText() == "keithley2450"
    assert tab.board_driver.currentText() == "crossbar"

    path = panel.save_station_file(tmp_path / "lab.toml")
    assert tab.station_edit.text() == str(path)  # the saved file is the tab's station now
    station = load_station(path)
    assert station.smu.simulated and station.board.simulated
    tab.sim_board.setCurrentText("small")
    qtbot.mouseClick(tab.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session is not None, timeout=CONNECT_TIMEOUT_MS)
    assert tab.identity_labels["board"].text().startswith("LABRSS,XBAR-8x8x8,")
