"""The Connect tab: station file, instrument addresses (the simulator as a choice),
discovery of the connected instruments (a worker thread; pick the SMU and the board, save
a station file), connect/disconnect in the bench worker, identities, status lights and the
limits in force."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from drivers.discovery import Finding
from drivers.plugins import board_drivers, find_board_driver, find_smu_driver, smu_drivers
from labrss.gui.discovery_panel import DiscoveryPanel
from labrss.gui.result_stream import ResultEvent
from labrss.gui.session import Session
from labrss.gui.tabs.base import LabTab, TabContext
from labrss.gui.widgets.status_light import StatusLight
from labrss.gui.workers import URGENT, JobContext
from labrss.lab import Lab
from labrss.station import SIM_ADDRESS, Station, StationError, default_station, load_station
from labrss.station.discovered import SIM_ORIGIN
from labrss.store import Store, StoreError
from labrss.workflows.boards import register_board

log = logging.getLogger(__name__)

SIM_PRESETS = (
    "small",
    "default",
    "large",
    "memristor",
    "mixed",
    "memristor_unformed",
    "small_long_wire",
    "large_long_wire",
    "thinfilm",
    "thickfilm",
)
MATRIX_PRESETS = ("switch-matrix", "switch-matrix-worn")
"""Presets of the simulated switch-matrix bench (the keysight34980a driver's)."""
_SIM_TEXT = "sim (embedded simulator)"


def _address(combo: QComboBox) -> str:
    text = combo.currentText().strip()
    return SIM_ADDRESS if text in ("", _SIM_TEXT) else text


def connect_job(station: Station, db_path: Path) -> Callable[[JobContext], Any]:
    """The worker job that opens ``station`` (closing any open bench first) and registers
    its board in the store at ``db_path`` as every workflow does
    (`labrss.workflows.boards.register_board`). A store that cannot be opened is logged;
    the bench is connected anyway (the Store light turns red)."""

    def run(ctx: JobContext) -> Session:
        old = ctx.lab_or_none
        if old is not None:
            ctx.set_lab(None)
            old.close()
            ctx.publish("disconnected", {"reason": "reconnecting"})
        lab = Lab(station)
        lab.open()
        ctx.set_lab(lab)
        board_id: int | None = None
        try:
            with Store(db_path) as store:
                board_id = register_board(lab, store)
        except (StoreError, OSError, ValueError) as exc:
            log.error("store %s: the board is not registered: %s", db_path, exc)
        session = Session.from_lab(lab, db_path if board_id is not None else None, board_id)
        ctx.publish("connected", session)
        return session

    return run


def disconnect_job(ctx: JobContext) -> None:
    """The worker job that makes the bench safe and closes it."""
    lab = ctx.lab_or_none
    ctx.set_lab(None)
    if lab is not None:
        lab.close()
        ctx.publish("disconnected", {"reason": "disconnected by the user"})


class ConnectTab(LabTab):
    """Station, addresses, connect/disconnect, identities, lights, limits."""

    title = "Connect"

    def __init__(self, ctx: TabContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        # --- station file
        self.station_edit = QLineEdit()
        self.station_edit.setPlaceholderText("none: the embedded simulator")
        self.browse_button = QPushButton("Browse…")
        self.clear_button = QPushButton("Use simulator")
        self.browse_button.clicked.connect(self._browse)
        self.clear_button.clicked.connect(lambda: self.load_station_file(""))
        self.station_name = QLabel()
        station_box = QGroupBox("Station")
        row = QHBoxLayout()
        row.addWidget(QLabel("Station file"))
        row.addWidget(self.station_edit, 1)
        row.addWidget(self.browse_button)
        row.addWidget(self.clear_button)
        station_layout = QVBoxLayout(station_box)
        station_layout.addLayout(row)
        station_layout.addWidget(self.station_name)

        # --- instruments
        self.smu_driver = QComboBox()
        self.smu_driver.addItems(list(smu_drivers()))  # every installed SMU driver
        self.smu_address = QComboBox()
        self.smu_address.setEditable(True)
        self.smu_address.addItems([_SIM_TEXT, "TCPIP0::192.168.1.50::5025::SOCKET"])
        self.board_driver = QComboBox()
        self.board_driver.addItems(list(board_drivers()))  # every installed board driver
        self.board_address = QComboBox()
        self.board_address.setEditable(True)
        self.board_address.addItems([_SIM_TEXT, "/dev/ttyACM0"])
        self.sim_board = QComboBox()
        self.sim_board.setEditable(True)
        self.sim_board.addItems([*SIM_PRESETS, *MATRIX_PRESETS])
        self.sim_seed = QSpinBox()
        self.sim_seed.setRange(0, 2**31 - 1)
        inst_box = QGroupBox("Instruments")
        form = QFormLayout(inst_box)
        form.addRow("SMU driver", self.smu_driver)
        form.addRow("SMU address (VISA)", self.smu_address)
        form.addRow("Board driver", self.board_driver)
        form.addRow("Board address", self.board_address)
        form.addRow("Simulated board (preset or TOML)", self.sim_board)
        form.addRow("Simulator seed", self.sim_seed)
        for w in (
            self.smu_driver,
            self.smu_address,
            self.board_driver,
            self.board_address,
            self.sim_board,
        ):
            w.currentTextChanged.connect(self._update_sim_hint)

        self.connect_button = QPushButton("Connect")
        self.disconnect_button = QPushButton("Disconnect")
        self.connect_button.setObjectName("connect")
        self.disconnect_button.setObjectName("disconnect")
        self.connect_button.clicked.connect(self.connect_bench)
        self.disconnect_button.clicked.connect(self.disconnect_bench)
        self.disconnect_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.connect_button)
        buttons.addWidget(self.disconnect_button)
        buttons.addStretch(1)

        # --- status
        self.smu_light = StatusLight("SMU")
        self.board_light = StatusLight("Board")
        self.store_light = StatusLight("Store")
        self.sim_hint = QLabel()
        status_box = QGroupBox("Status")
        status_layout = QVBoxLayout(status_box)
        for light in (self.smu_light, self.board_light, self.store_light):
            status_layout.addWidget(light)
        status_layout.addWidget(self.sim_hint)
        self.identity_labels: dict[str, QLabel] = {}
        ident_grid = QGridLayout()
        for i, (key, caption) in enumerate(
            (("smu", "SMU *IDN?"), ("board", "Board *IDN?"), ("geometry", "Board geometry"))
        ):
            label = QLabel("–")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.identity_labels[key] = label
            ident_grid.addWidget(QLabel(caption), i, 0, Qt.AlignmentFlag.AlignTop)
            ident_grid.addWidget(label, i, 1)
        ident_grid.setColumnStretch(1, 1)
        status_layout.addLayout(ident_grid)

        self.limits_box = QGroupBox("Limits in force")
        self.limits_form = QFormLayout(self.limits_box)
        self._show_limits(None)

        # --- discovery
        self.discovery = DiscoveryPanel()
        self.discovery.picked.connect(self.use_discovered)
        self.discovery.save_button.clicked.connect(self._save_discovered)
        self.discovery.saved.connect(self.load_station_file)

        left = QVBoxLayout()
        left.addWidget(station_box)
        left.addWidget(inst_box)
        left.addLayout(buttons)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(status_box)
        right.addWidget(self.limits_box)
        right.addStretch(1)
        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)
        # in a scroll area: on a small screen the tab scrolls instead of squeezing its rows
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addLayout(columns, 1)
        layout.addWidget(self.discovery)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._update_sim_hint()

    # ------------------------------------------------------------------ station
    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Station file", self.station_edit.text(), "Station (*.toml);;All files (*)"
        )
        if path:
            self.load_station_file(path)

    def load_station_file(self, path: str) -> bool:
        """Show ``path``'s instruments in the fields ("" = the embedded simulator).

        A bad file is reported (dialog and log) and the fields are left unchanged.
        """
        try:
            station = load_station(path) if path else default_station()
        except (StationError, OSError) as exc:
            self.ctx.report_error(f"loading the station file {path}", exc)
            return False
        self.station_edit.setText(path)
        self.ctx.settings.station_file = path
        self.discovery.station_file = path
        self._fill(station)
        return True

    def _fill(self, station: Station) -> None:
        self.smu_driver.setCurrentText(station.smu.driver)
        self.board_driver.setCurrentText(station.board.driver)
        self.smu_address.setCurrentText(_SIM_TEXT if station.smu.simulated else station.smu.address)
        self.board_address.setCurrentText(
            _SIM_TEXT if station.board.simulated else station.board.address
        )
        self.sim_board.setCurrentText(station.simulator.board)
        self.sim_seed.setValue(station.simulator.seed)
        self.station_name.setText(f"Station: {station.name}")

    def build_station(self) -> Station:
        """The station to open: the file (or the defaults) with the fields' addresses."""
        path = self.station_edit.text().strip()
        base = load_station(path) if path else default_station()
        driver = self.smu_driver.currentText()
        smu = dataclasses.replace(base.smu, driver=driver, address=_address(self.smu_address))
        board_driver = self.board_driver.currentText() or base.board.driver
        board = dataclasses.replace(base.board, address=_address(self.board_address))
        sim = base.simulator
        preset = self.sim_board.currentText().strip() or sim.board
        if board_driver != base.board.driver:
            # another driver: the simulated bench it speaks, and no other driver's options
            board = dataclasses.replace(board, driver=board_driver, options={})
            bench = find_board_driver(board_driver).simulator
            bench = bench if bench in ("crossbar", "switch-matrix") else "crossbar"
            sim = dataclasses.replace(sim, bench=bench)
        if (
            sim.bench == "switch-matrix"
            and preset not in MATRIX_PRESETS
            and not preset.endswith(".toml")
        ):
            preset = MATRIX_PRESETS[0]
        elif sim.bench == "crossbar" and preset in MATRIX_PRESETS:
            preset = SIM_PRESETS[1]
        smu_model = sim.smu_model
        if driver != base.smu.driver:
            smu_model = find_smu_driver(driver).simulator or smu_model
        sim = dataclasses.replace(
            sim, board=preset, seed=int(self.sim_seed.value()), smu_model=smu_model
        )
        return dataclasses.replace(base, smu=smu, board=board, simulator=sim)

    def use_discovered(self, smu: Finding | None, board: Finding | None) -> None:
        """Fill the instrument fields with discovered instruments (None: the simulator's)."""
        for finding, driver, address in (
            (smu, self.smu_driver, self.smu_address),
            (board, self.board_driver, self.board_address),
        ):
            if finding is None or finding.origin == SIM_ORIGIN:
                address.setCurrentText(_SIM_TEXT)
            else:
                address.setCurrentText(finding.address)
            if finding is not None and finding.driver:
                driver.setCurrentText(finding.driver)

    def _save_discovered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save station file", "lab.toml", "Station (*.toml);;All files (*)"
        )
        if not path:
            return
        try:
            self.discovery.save_station_file(path)
        except (OSError, StationError, RuntimeError) as exc:
            self.ctx.report_error(f"saving the station file {path}", exc)

    def _update_sim_hint(self) -> None:
        sim = SIM_ADDRESS in (_address(self.smu_address), _address(self.board_address))
        self.sim_board.setEnabled(sim)
        self.sim_seed.setEnabled(sim)
        self.sim_hint.setText(
            "<span style='color:#b26a00'><b>SIMULATOR</b>: 'sim' addresses run on the "
            "embedded simulated bench</span>"
            if sim
            else "Real instruments at the addresses above."
        )

    # ------------------------------------------------------------------ actions
    def connect_bench(self) -> None:
        """Open the station in the worker (never blocks the window)."""
        try:
            station = self.build_station()
        except (StationError, OSError, KeyError) as exc:
            self.ctx.report_error("reading the station", exc)
            return
        self.smu_light.set_state("busy", "connecting…")
        self.board_light.set_state("busy", "connecting…")
        self.connect_button.setEnabled(False)
        self.ctx.run(
            f"connect to {station.name}",
            connect_job(station, self.ctx.store.resolve_path(station)),
            on_error=self._failed,
        )

    def disconnect_bench(self) -> None:
        """Make the bench safe and close it (urgent: runs before queued jobs)."""
        self.ctx.worker.cancel_all()
        self.ctx.run("disconnect", disconnect_job, priority=URGENT)

    def _failed(self, exc: BaseException) -> None:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.smu_light.set_state("fault", f"connection failed: {text}")
        self.board_light.set_state("fault", "not connected")
        self.connect_button.setEnabled(True)

    # ------------------------------------------------------------------ hooks
    def on_connected(self, session: Session) -> None:
        self.smu_light.set_state("ok", f"connected at {session.smu_address}")
        self.board_light.set_state("ok", f"connected at {session.board_address}")
        self.identity_labels["smu"].setText(session.identities.get("smu", "?"))
        self.identity_labels["board"].setText(session.identities.get("board", "?"))
        self.identity_labels["geometry"].setText(
            f"{session.rows} rows x {session.cols} columns x {session.branches} branches "
            f"({session.element_kind}s)"
        )
        self._show_limits(session)
        self.connect_button.setEnabled(True)
        self.connect_button.setText("Reconnect")
        self.disconnect_button.setEnabled(True)

    def on_disconnected(self) -> None:
        for light in (self.smu_light, self.board_light):
            light.set_state("off", "not connected")
        for label in self.identity_labels.values():
            label.setText("–")
        self._show_limits(None)
        self.connect_button.setEnabled(True)
        self.connect_button.setText("Connect")
        self.disconnect_button.setEnabled(False)

    def on_event(self, event: ResultEvent) -> None:
        if event.kind == "connected":
            path = self.ctx.store.path
            if path is not None and self.ctx.store.board_id is not None:
                self.store_light.set_state("ok", f"{path} (board id {self.ctx.store.board_id})")
            else:
                self.store_light.set_state("fault", "store not available (see the log)")
        elif event.kind == "safe":
            self.board_light.set_state("ok", "safe state (switches open, DACs 0 V)")

    def set_busy(self, busy: bool) -> None:
        self.connect_button.setEnabled(not busy)

    def _show_limits(self, session: Session | None) -> None:
        while self.limits_form.rowCount():
            self.limits_form.removeRow(0)
        if session is None:
            self.limits_form.addRow(QLabel("(connect to see the limits in force)"))
            return
        for label, value in session.limits():
            self.limits_form.addRow(label, QLabel(value))
        self.limits_form.addRow("Station file", QLabel(str(session.station.source or "none")))

    def restore_state(self) -> None:
        path = self.ctx.settings.station_file
        if path and Path(path).exists():
            self.load_station_file(path)
        else:
            self._fill(default_station())
