"""The main window: toolbar (Connect, Disconnect, Cancel, Safe state), the registered tabs,
the log panel, the SIMULATOR banner and the job/progress status bar.

Closing while a job runs asks first, then cancels it, puts the bench in the safe state and
closes it in the worker thread, and only then lets the window go.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QProgressBar,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QToolBar,
    QWidget,
)

from labrss.gui.log_panel import LogPanel
from labrss.gui.result_stream import ResultEvent, ResultStream, log_event
from labrss.gui.session import Session
from labrss.gui.settings import GuiSettings
from labrss.gui.store_link import StoreLink, StoreRecorder
from labrss.gui.tabs import LabTab, TabContext, tab_classes
from labrss.gui.tabs.connect_tab import ConnectTab
from labrss.gui.widgets.dialogs import ask_yes_no
from labrss.gui.workers import URGENT, BenchWorker, Job, JobContext

log = logging.getLogger(__name__)

_BANNER_SIM = "QLabel { background: #ff9800; color: black; font-weight: bold; padding: 2px 10px; }"
_BANNER_REAL = "QLabel { background: #2e7d32; color: white; font-weight: bold; padding: 2px 10px; }"
_BANNER_NONE = "QLabel { background: #9e9e9e; color: white; padding: 2px 10px; }"


def freeze_startup_heap() -> None:
    """Exempt everything alive now from the cyclic garbage collector's full passes.

    With numpy, scipy, numba, Qt and pyqtgraph loaded the heap holds about a million
    objects; a full (generation 2) collection walks all of them and was measured at
    100-250 ms in the GUI test process: a visible stall of the event loop. The modules
    and the window live until exit anyway, so `gc.freeze` moves them to the permanent
    generation (after one collection, so that no garbage is frozen); later collections
    walk only what was created since.
    """
    gc.collect()
    gc.freeze()


def safe_job(ctx: JobContext) -> bool:
    """Worker job: put the bench in the safe state and confirm with the board's SAFE?."""
    lab = ctx.lab
    lab.safe()
    is_safe = lab.board.is_safe()
    ctx.publish("safe", {"is_safe": is_safe})
    return is_safe


class MainWindow(QMainWindow):
    """The labrss lab window.

    Args:
        settings: where to remember geometry, station file and tab (default: QSettings).
        db_path: the store to use (default: ``LABRSS_DB``, the station's, the user's).
    """

    def __init__(
        self, settings: GuiSettings | None = None, db_path: str | Path | None = None
    ) -> None:
        super().__init__()
        self.setWindowTitle("labrss: crossbar lab")
        self.settings = settings if settings is not None else GuiSettings()
        self.stream = ResultStream(self)
        self.worker = BenchWorker(self.stream)
        self.store = StoreLink(db_path)
        self.recorder = StoreRecorder(self.store)
        self.session: Session | None = None
        self._closing = False
        self.ask = ask_yes_no  # replaced in tests

        self.log_panel = LogPanel()
        self.log_panel.install()
        self.ctx = TabContext(self, self.worker, self.stream, self.store, self.settings)

        # subscription order: the store first (tabs then see stored history), the log, tabs
        self.stream.subscribe(self.recorder)
        self.stream.subscribe(log_event)
        self.stream.subscribe(self._on_event)

        self.tabs = QTabWidget()
        self.tab_pages: dict[str, LabTab] = {}
        for cls in tab_classes():
            page = cls(self.ctx)
            self.tab_pages[cls.title] = page
            self.tabs.addTab(page, cls.title)
            self.stream.subscribe(page.on_event)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tabs)
        splitter.addWidget(self.log_panel)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([640, 130])
        self.setCentralWidget(splitter)

        self._build_toolbar()
        self.banner = QLabel()
        self.job_label = QLabel("idle")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.statusBar().addPermanentWidget(self.banner)
        self.statusBar().addWidget(self.job_label, 1)
        self.statusBar().addPermanentWidget(self.progress)

        self.worker.job_started.connect(self._job_started)
        self.worker.busy_changed.connect(self._busy_changed)
        self.worker.progress.connect(self._progress)
        self.worker.start()

        for page in self.tab_pages.values():
            page.restore_state()
        self._restore_window()
        self._update_banner()
        freeze_startup_heap()

    # ------------------------------------------------------------------ layout
    def _build_toolbar(self) -> None:
        bar = QToolBar("Bench")
        bar.setObjectName("bench_toolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        connect = self.connect_tab
        self.connect_action = QAction("Connect", self)
        self.connect_action.triggered.connect(connect.connect_bench)
        self.disconnect_action = QAction("Disconnect", self)
        self.disconnect_action.triggered.connect(connect.disconnect_bench)
        self.cancel_action = QAction("Cancel", self)
        self.cancel_action.setToolTip("Stop the running operation at its next reading")
        self.cancel_action.triggered.connect(self.cancel)
        self.cancel_action.setEnabled(False)
        self.safe_action = QAction("⚠ Safe state", self)
        self.safe_action.setToolTip(
            "Stop everything, SMU output off, every switch open, DACs at 0 V"
        )
        self.safe_action.triggered.connect(self.make_safe)
        for action in (self.connect_action, self.disconnect_action, self.cancel_action):
            bar.addAction(action)
        bar.addSeparator()
        bar.addAction(self.safe_action)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        self.toolbar_banner = QLabel()
        bar.addWidget(self.toolbar_banner)
        self.safe_button = bar.widgetForAction(self.safe_action)
        self.safe_button.setObjectName("safe_state")
        self.safe_button.setStyleSheet(
            "QToolButton { background: #c62828; color: white; font-weight: bold; "
            "padding: 3px 12px; border-radius: 3px; }"
        )

    @property
    def connect_tab(self) -> ConnectTab:
        """The Connect tab."""
        page = self.tab_pages[ConnectTab.title]
        if not isinstance(page, ConnectTab):
            raise TypeError("the Connect tab is missing from the tab registry")
        return page

    def _update_banner(self) -> None:
        s = self.session
        if s is None:
            text, style = "NOT CONNECTED", _BANNER_NONE
        elif s.simulated:
            sim = s.station.simulator
            board = Path(sim.board).name if sim.board.endswith(".toml") else sim.board
            text, style = f"SIMULATOR: board {board}, seed {sim.seed}", _BANNER_SIM
        else:
            text, style = f"HARDWARE: {s.station.name}", _BANNER_REAL
        for label in (self.banner, self.toolbar_banner):
            label.setText(text)
            label.setStyleSheet(style)

    # ------------------------------------------------------------------ actions
    def make_safe(self) -> None:
        """Cancel everything and put the bench in the safe state (first in the queue)."""
        self.worker.cancel_all()
        if self.session is None:
            log.info("safe state: not connected (nothing to make safe)")
            return
        self.worker.submit(
            Job(
                "safe state",
                safe_job,
                on_error=lambda exc: self.ctx.report_error("safe state", exc),
                priority=URGENT,
            )
        )

    def cancel(self) -> None:
        """Cancel the running job and everything queued."""
        self.worker.cancel_all()

    # ------------------------------------------------------------------ worker feedback
    def _on_event(self, event: ResultEvent) -> None:
        if event.kind == "connected":
            self.session = event.data
            self.ctx.session = event.data
            for page in self.tab_pages.values():
                page.on_connected(event.data)
            self._update_banner()
        elif event.kind == "disconnected":
            self.session = None
            self.ctx.session = None
            for page in self.tab_pages.values():
                page.on_disconnected()
            self._update_banner()

    def _job_started(self, job: Job) -> None:
        self.job_label.setText(f"running: {job.name}")

    def _busy_changed(self, busy: bool) -> None:
        busy = busy or self.worker.busy
        self.ctx.busy = busy
        self.cancel_action.setEnabled(busy)
        if not busy:
            self.job_label.setText("idle")
            self.progress.setVisible(False)
        for page in self.tab_pages.values():
            page.set_busy(busy)

    def _progress(self, job: Job, done: int, total: int, text: str) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.job_label.setText(f"running: {job.name}: {text}")

    # ------------------------------------------------------------------ settings and close
    def _restore_window(self) -> None:
        geometry = self.settings.geometry
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        last = self.settings.last_tab
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i) == last:
                self.tabs.setCurrentIndex(i)

    def save_settings(self) -> None:
        """Remember geometry, the current tab and each tab's choices."""
        self.settings.geometry = QByteArray(self.saveGeometry())
        self.settings.last_tab = self.tabs.tabText(self.tabs.currentIndex())
        for page in self.tab_pages.values():
            page.save_state()
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask if a job runs; then stop it, leave the bench safe and closed, and go."""
        if self._closing:
            event.accept()
            return
        if self.worker.busy and not self.ask(
            self,
            "labrss",
            "A bench operation is running. Stop it, leave the bench in the safe state and quit?",
        ):
            event.ignore()
            return
        self._closing = True
        self.save_settings()
        log.info("closing: stopping the worker and leaving the bench safe")
        if not self.worker.stop(timeout_s=60.0):
            log.error("the bench worker did not stop within 60 s; check the bench by hand")
        if not self.connect_tab.discovery.wait(timeout_s=60.0):
            log.error("instrument discovery did not end within 60 s")
        self.recorder.finish()
        self.store.close()
        self.log_panel.uninstall()
        event.accept()
