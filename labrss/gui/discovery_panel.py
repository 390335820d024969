"""The Connect tab's discovery panel: find the instruments in a worker thread, pick the SMU
and the board, save a station file for them.

Discovery (`labrss.workflows.discover.run_discovery`) runs in its own `DiscoveryThread`,
not in the bench worker: it takes seconds when resources are silent, and must neither
freeze the window nor queue behind a calibration. The panel shows every finding (status,
driver, address, identity or the reason), fills the SMU and board choices with what was
recognised, and `save_station_file` writes the chosen pair (`labrss.station.discovered`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from drivers.discovery import DiscoveryReport, Finding
from labrss.workflows.discover import DiscoveryOptions, run_discovery, write_station_file

log = logging.getLogger(__name__)

COLUMNS = ("status", "kind", "driver", "address", "identity / reason")
_COLOURS = {
    "recognised": "#2e7d32",
    "unrecognised": "#b26a00",
    "silent": "#b26a00",
    "unreachable": "#c62828",
}


class DiscoveryThread(QThread):
    """Runs one discovery; emits ``found(report)`` or ``failed(message)``."""

    found = Signal(object)
    failed = Signal(str)

    def __init__(self, options: DiscoveryOptions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.options = options

    def run(self) -> None:
        try:
            report = run_discovery(self.options)
        except Exception as exc:  # reported in the panel and the log, never a crash
            log.error("discovery failed: %s", exc)
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.found.emit(report)


class DiscoveryPanel(QGroupBox):
    """Find instruments, pick the SMU and the board, save the station file.

    Signals:
        picked(smu, board): the user chose "Use these" (each a `Finding` or None).
        saved(path): a station file was written.
    """

    picked = Signal(object, object)
    saved = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Find instruments", parent)
        self.report: DiscoveryReport | None = None
        self.station_file = ""
        """The Connect tab's station file: discovery lists with its ``visa_library``."""
        self._thread: DiscoveryThread | None = None
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setObjectName("discover")
        self.refresh_button.setToolTip(
            "List VISA resources and serial ports and identify each (read-only *IDN?)"
        )
        self.refresh_button.clicked.connect(self.refresh)
        self.host_edit = QLineEdit()
        self.host_edit.setPlaceholderText("LAN host or VISA resource/port to try (optional)")
        self.list_system = QCheckBox("List VISA resources and serial ports")
        self.list_system.setChecked(True)
        self.include_sim = QCheckBox("Include the embedded simulator")
        self.status = QLabel("Press Refresh to look for instruments.")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setWordWrap(False)
        self.table.setMinimumHeight(90)
        self.table.setMaximumHeight(130)  # the Connect tab's status and limits come first
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.smu_pick = QComboBox()
        self.board_pick = QComboBox()
        self.use_button = QPushButton("Use these")
        self.save_button = QPushButton("Save station file…")
        self.use_button.clicked.connect(self._use)
        self.use_button.setEnabled(False)
        self.save_button.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(self.refresh_button)
        top.addWidget(self.host_edit, 1)
        top.addWidget(self.list_system)
        top.addWidget(self.include_sim)
        picks = QHBoxLayout()
        picks.addWidget(QLabel("SMU"))
        picks.addWidget(self.smu_pick, 1)
        picks.addWidget(QLabel("Board"))
        picks.addWidget(self.board_pick, 1)
        picks.addWidget(self.use_button)
        picks.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addLayout(picks)

    # ------------------------------------------------------------------ discovery
    @property
    def running(self) -> bool:
        """Whether a discovery is under way: until its thread's ``finished`` reaches the GUI
        thread, so its results (``found``, queued before ``finished``) are shown by then."""
        return self._thread is not None

    def wait(self, timeout_s: float) -> bool:
        """Wait for a running discovery to end (window closing); False on timeout."""
        thread = self._thread
        return thread is None or thread.wait(round(timeout_s * 1000))

    def options(self) -> DiscoveryOptions:
        """What Refresh looks at: the system's resources (unless unticked), the text typed
        (a VISA resource, a serial port/URL, or a LAN host), the simulator if ticked."""
        text = self.host_edit.text().strip()
        resources: tuple[str, ...] = ()
        ports: tuple[str, ...] = ()
        hosts: tuple[str, ...] = ()
        if text:
            if "::" in text:
                resources = (text,)
            elif "://" in text or text.upper().startswith(("COM", "/DEV/")):
                ports = (text,)
            else:
                hosts = (text,)
        return DiscoveryOptions(
            station=Path(self.station_file) if self.station_file else None,
            resources=resources,
            ports=ports,
            hosts=hosts,
            list_system=self.list_system.isChecked(),
            sim=self.include_sim.isChecked(),
        )

    def refresh(self) -> None:
        """Start a discovery in the background (ignored while one runs)."""
        if self.running:
            return
        self.refresh_button.setEnabled(False)
        self.status.setText("Looking for instruments… (the window stays usable)")
        thread = DiscoveryThread(self.options(), self)
        thread.found.connect(self._show)
        thread.failed.connect(self._failed)
        thread.finished.connect(self._done)
        self._thread = thread
        thread.start()

    def _done(self) -> None:
        self.refresh_button.setEnabled(True)
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.deleteLater()

    def _failed(self, message: str) -> None:
        self.status.setText(f"Discovery failed: {message}")

    def _show(self, report: DiscoveryReport) -> None:
        self.report = report
        self.table.setRowCount(len(report.findings))
        for row, f in enumerate(report.findings):
            what = f.reply if f.status == "recognised" and f.reply else f.reason
            if f.fix:
                what = f"{what}. {f.fix}"
            cells = (f.status, f.kind or "", f.driver or "", f.address, what)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if col == 0:
                    item.setForeground(QBrush(QColor(_COLOURS.get(f.status, "#000000"))))
                self.table.setItem(row, col, item)
        self._fill(self.smu_pick, report.recognised("smu"))
        self._fill(self.board_pick, report.recognised("board"))
        n_smu, n_board = len(report.recognised("smu")), len(report.recognised("board"))
        missing = [t.name for t in report.transports if not t.available]
        text = (
            f"{n_smu} SMU(s) and {n_board} board(s) recognised among "
            f"{len(report.findings)} candidate(s) in {report.elapsed_s:.1f} s."
        )
        if missing:
            text += f" Not available here: {', '.join(missing)} (docs/hardware.md)."
        if not n_smu and not n_board:
            text += " Connect and power an instrument, or type its address, then Refresh."
        self.status.setText(text)
        found = bool(n_smu or n_board)
        self.use_button.setEnabled(found)
        self.save_button.setEnabled(True)

    @staticmethod
    def _fill(combo: QComboBox, findings: list[Finding]) -> None:
        combo.clear()
        for f in findings:
            combo.addItem(f"{f.driver} at {f.address}", f)
        combo.addItem("none (the embedded simulator)", None)

    # ------------------------------------------------------------------ choices
    def choice(self) -> tuple[Finding | None, Finding | None]:
        """The SMU and board chosen (None: not found, or "none" chosen)."""
        smu: Any = self.smu_pick.currentData()
        board: Any = self.board_pick.currentData()
        return smu, board

    def _use(self) -> None:
        smu, board = self.choice()
        self.picked.emit(smu, board)

    def save_station_file(self, path: Path | str, *, overwrite: bool = True) -> Path:
        """Write the station file for the chosen SMU and board at ``path``."""
        if self.report is None:
            raise RuntimeError("nothing discovered yet: press Refresh first")
        smu, board = self.choice()
        written = write_station_file(
            self.report, Path(path), overwrite=overwrite, smu=smu, board=board
        )
        self.saved.emit(str(written))
        return written
