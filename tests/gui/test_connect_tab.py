"""Connect tab: connecting to the embedded simulator through the GUI's buttons."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from tests.gui.conftest import CONNECT_TIMEOUT_MS, connect_small, connect_tab

pytestmark = pytest.mark.gui


def test_connect_shows_identities_lights_limits_and_simulator(
    qtbot: QtBot, window: MainWindow
) -> None:
    tab = connect_tab(window)
    assert window.banner.text() == "NOT CONNECTED"
    assert "SIMULATOR" in tab.sim_hint.text()  # 'sim' addresses are the default
    connect_small(qtbot, window)

    assert "MODEL 2450" in tab.identity_labels["smu"].text()
    assert tab.identity_labels["board"].text().startswith("LABRSS,XBAR-8x8x8,SIM-0")
    assert tab.identity_labels["geometry"].text().startswith("8 rows x 8 columns x 8 branches")
    assert (tab.smu_light.state, tab.board_light.state, tab.store_light.state) == ("ok",) * 3
    assert "TCPIP0::127.0.0.1::" in tab.smu_light.text_label.text()
    assert "socket://127.0.0.1:" in tab.board_light.text_label.text()
    assert window.banner.text() == "SIMULATOR: board small, seed 0"
    limits = {
        tab.limits_form.itemAt(i, tab.limits_form.ItemRole.LabelRole).widget().text(): (
            tab.limits_form.itemAt(i, tab.limits_form.ItemRole.FieldRole).widget().text()
        )
        for i in range(tab.limits_form.rowCount())
    }
    # the default station's limits (docs/station.md)
    assert limits["Max source voltage"] == "1 V"
    assert limits["Compliance current"] == "0.01 A"
    assert limits["Read voltage"] == "0.1 V"
    assert tab.disconnect_button.isEnabled()

    qtbot.mouseClick(tab.disconnect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session is None, timeout=CONNECT_TIMEOUT_MS)
    assert tab.identity_labels["smu"].text() == "–"
    assert tab.smu_light.state == "off"
    assert window.banner.text() == "NOT CONNECTED"


def test_connection_error_is_a_dialog_and_a_log_line(qtbot: QtBot, window: MainWindow) -> None:
    tab = connect_tab(window)
    tab.sim_board.setCurrentText("small")
    # port 9 on loopback: nothing listens, the board driver fails at once
    tab.board_address.setCurrentText("socket://127.0.0.1:9")
    qtbot.mouseClick(tab.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(window.ctx.error_dialogs), timeout=CONNECT_TIMEOUT_MS)
    dialog = window.ctx.error_dialogs[-1]
    assert dialog.isVisible()
    assert "connect to" in dialog.text() and "failed" in dialog.text()
    assert "127.0.0.1:9" in dialog.informativeText()
    assert "Traceback" not in dialog.informativeText()
    assert any("failed" in line and "127.0.0.1:9" in line for line in window.log_panel.lines)
    qtbot.waitUntil(lambda: not window.worker.busy)
    assert window.session is None
    assert tab.smu_light.state == "fault"
    assert tab.connect_button.isEnabled()  # the window stays usable
    dialog.close()

    tab.board_address.setCurrentText("sim (embedded simulator)")
    connect_small(qtbot, window)
    assert window.session is not None


def test_bad_station_file_is_reported(qtbot: QtBot, window: MainWindow, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.toml"
    bad.write_text("[measurement]\nnplc = 20\n")
    assert not connect_tab(window).load_station_file(str(bad))
    dialog = window.ctx.error_dialogs[-1]
    assert "nplc = 20" in dialog.informativeText()
    assert connect_tab(window).station_edit.text() == ""


def test_station_file_fills_the_fields(window: MainWindow, tmp_path) -> None:  # type: ignore[no-untyped-def]
    station = tmp_path / "lab.toml"
    station.write_text(
        '[smu]\ndriver = "keysight_b2900"\naddress = "sim"\n'
        '[simulator]\nboard = "small"\nseed = 7\n'
    )
    tab = connect_tab(window)
    assert tab.load_station_file(str(station))
    assert tab.smu_driver.currentText() == "keysight_b2900"
    assert tab.sim_seed.value() == 7
    built = tab.build_station()
    assert built.smu.driver == "keysight_b2900"
    assert built.simulator.smu_model == "B2902A"
    assert built.simulator.board == "small" and built.simulator.seed == 7
    assert window.settings.station_file == str(station)


def test_the_board_driver_picks_its_simulated_bench(window: MainWindow) -> None:
    tab = connect_tab(window)
    assert tab.board_driver.currentText() == "crossbar"
    assert "keysight34980a" in [
        tab.board_driver.itemText(i) for i in range(tab.board_driver.count())
    ]
    tab.board_driver.setCurrentText("keysight34980a")
    built = tab.build_station()
    assert built.board.driver == "keysight34980a" and built.board.simulated
    assert (built.simulator.bench, built.simulator.board) == ("switch-matrix", "switch-matrix")
    tab.sim_board.setCurrentText("switch-matrix-worn")
    assert tab.build_station().simulator.board == "switch-matrix-worn"
    tab.board_driver.setCurrentText("crossbar")
    back = tab.build_station()
    assert (back.simulator.bench, back.simulator.board) == ("crossbar", "default")
