"""The Calibrate tab: settings, start / pause / stop, progress with ETA, the map filling in
live, the histogram of deviations from nominal, the faults and past runs to reopen.

The run is `calibration.run.CalibrationRun` (what `labrss calibrate` runs) on the GUI's own
`Lab`, in the bench worker, stored in the session's store. Pause: the workflow has no pause
of its own, so Pause stops the run at its next reading (stored as ``interrupted``) and
Resume starts `calibration.run.resume_run` on it: a real resume through the store, which
measures only the readings no run of the lineage holds.

Live map: while the run measures, each cell shows the share of its planned readings taken
(%); the workflow estimates every cell at the end of the run (one pooled noise scale), so
the deviation map and histogram appear when the run completes.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from calibration.run import CalibrationResult, CalibrationRun, RunProgress, resume_run
from calibration.settings import DESIGNS, CalibrationSettings, parse_cells, resolve_cells
from labrss.gui.calibration_view import cell_map, nominal_conductance_S
from labrss.gui.plot_export import PlotData, PlotPanel, style_plot
from labrss.gui.result_stream import ResultEvent
from labrss.gui.session import Session
from labrss.gui.tabs.base import LabTab, TabContext
from labrss.gui.widgets.dialogs import ask_yes_no
from labrss.gui.widgets.heatmap import CrossbarHeatMap
from labrss.gui.workers import Job, JobContext
from labrss.store import Calibration, RunInfo, Store

log = logging.getLogger(__name__)

#: The live map and progress text are redrawn at most this often while readings stream (ms).
REDRAW_MS = 100


@dataclass(frozen=True)
class CalibrationJobResult:
    """What the calibration job hands back: the workflow's result and whether it paused."""

    result: CalibrationResult
    paused: bool


def calibration_job(
    settings: CalibrationSettings | None,
    db_path: str,
    *,
    resume: int | None = None,
    pause: threading.Event,
) -> Callable[[JobContext], CalibrationJobResult]:
    """Worker job: `CalibrationRun` (or `resume_run` of run ``resume``) on the GUI's `Lab`.

    Progress goes to the status bar and, as ``"calibration_progress"`` events
    (`RunProgress`), to the result stream. The run stops at its next reading when the job
    is cancelled (Stop) or ``pause`` is set (Pause); both leave it ``interrupted`` and the
    bench in the safe state.
    """

    def run(ctx: JobContext) -> CalibrationJobResult:
        lab = ctx.lab

        def progress(p: RunProgress) -> None:
            ctx.progress(p.done, p.total, f"calibration: {p.done}/{p.total} readings")
            ctx.publish("calibration_progress", p)

        with Store(db_path) as store:
            job = (
                resume_run(lab, store, resume)
                if resume is not None
                else CalibrationRun(lab, store, settings)
            )
            result = job.run(progress=progress, should_stop=lambda: ctx.cancelled or pause.is_set())
        paused = result.status == "interrupted" and pause.is_set() and not ctx.cancelled
        if result.status == "interrupted":  # stopped or paused: leave the bench safe
            lab.safe()
            ctx.publish("safe", {"is_safe": lab.board.is_safe()})
        ctx.publish("calibration_done", result)
        return CalibrationJobResult(result, paused)

    return run


def run_calibration_view(store: Store, run_id: int) -> Calibration:
    """One calibration run's estimates and faults as a `Calibration` (for reopening it)."""
    info = store.run(run_id)
    shape = store.board(info.board_id).shape
    g = np.full(shape, np.nan)
    s = np.full(shape, np.nan)
    cell = {name: np.full(shape[:2], np.nan) for name in ("rs", "rs_std", "leak", "leak_std")}
    measured = np.zeros(shape[:2], dtype=bool)
    for est in store.estimates(run_id):
        measured[est.r, est.c] = True
        g[est.r, est.c] = est.conductance_S
        s[est.r, est.c] = est.std_S
        cell["rs"][est.r, est.c] = est.series_ohm
        cell["rs_std"][est.r, est.c] = est.series_std_ohm
        cell["leak"][est.r, est.c] = est.leakage_S
        cell["leak_std"][est.r, est.c] = est.leakage_std_S
    excluded = np.zeros(shape, dtype=bool)
    faults = tuple(sorted(store.faults(run_id), key=lambda f: (f.r, f.c, f.k)))
    for f in faults:
        excluded[f.r, f.c, f.k] = True
    return Calibration(
        board_id=info.board_id,
        run_id=run_id,
        ended_at=float(info.ended_at or info.started_at),
        conductance_S=g,
        std_S=s,
        series_ohm=cell["rs"],
        series_std_ohm=cell["rs_std"],
        leakage_S=cell["leak"],
        leakage_std_S=cell["leak_std"],
        excluded=excluded,
        measured=measured,
        cell_run_id=np.where(measured, run_id, -1).astype(np.int64),
        faults=faults,
    )


def branch_deviations_pct(
    calibration: Calibration, nominal_S: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Relative deviation of every usable branch from its nominal (%), flat."""
    with np.errstate(all="ignore"):
        dev = 100.0 * (calibration.conductance_S / nominal_S - 1.0)
    out: NDArray[np.float64] = dev[calibration.usable & np.isfinite(dev)]
    return out


def format_duration(seconds: float) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"``, ``"12.3 s"`` or ``"?"`` (NaN)."""
    if not math.isfinite(seconds):
        return "?"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s"


class CalibrateTab(LabTab):
    """Run, pause, resume and stop calibrations; see them fill in; reopen past runs."""

    title = "Calibrate"

    def __init__(self, ctx: TabContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.job: Job | None = None
        self.pause_event = threading.Event()
        self.paused_run: int | None = None
        self.last_progress: RunProgress | None = None
        self.last_result: CalibrationResult | None = None
        self.calibration: Calibration | None = None
        self.deviations_pct: NDArray[np.float64] = np.zeros(0)
        self.live_counts: NDArray[np.float64] = np.zeros((1, 1))
        self.readings_per_cell = 1.0
        self._n_cells = 0
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self._draw_live)

        # --- settings
        self.design = QComboBox()
        for name in DESIGNS:
            self.design.addItem(name)
        self.design.setCurrentText("single")
        self.nplc = QDoubleSpinBox()
        self.nplc.setRange(0.0, 10.0)
        self.nplc.setDecimals(3)
        self.nplc.setSingleStep(0.1)
        self.nplc.setSpecialValueText("station default")
        self.repeats = QSpinBox()
        self.repeats.setRange(1, 100)
        self.cells = QLineEdit("*,*")
        self.cells.setToolTip("rows,cols: '*' every cell, '0-3,*' rows 0..3, '2,5' one cell")
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        form = QFormLayout()
        form.addRow("Design", self.design)
        form.addRow("NPLC", self.nplc)
        form.addRow("Repeats", self.repeats)
        form.addRow("Cells (rows,cols)", self.cells)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            buttons.addWidget(b)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.eta = QLabel("ETA: –")
        self.status = QLabel("Connect to a bench to calibrate it.")
        self.status.setWordWrap(True)
        settings_box = QGroupBox("Calibration run")
        settings_layout = QVBoxLayout(settings_box)
        settings_layout.addLayout(form)
        settings_layout.addLayout(buttons)
        settings_layout.addWidget(self.progress_bar)
        settings_layout.addWidget(self.eta)
        settings_layout.addWidget(self.status)

        self.faults = QListWidget()
        faults_box = QGroupBox("Faults")
        QVBoxLayout(faults_box).addWidget(self.faults)

        self.runs = QComboBox()
        self.runs.currentIndexChanged.connect(lambda _: self._update_buttons())
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(self.open_selected_run)
        self.mark_button = QPushButton("Mark interrupted…")
        self.mark_button.setToolTip(
            "A run recorded as running whose process is gone (crashed, killed, or its pid "
            "reused): mark it interrupted so that it can be resumed. Asks to confirm."
        )
        self.mark_button.clicked.connect(self.mark_selected_interrupted)
        self.ask: Callable[[QWidget | None, str, str], bool] = ask_yes_no  # replaced in tests
        runs_box = QGroupBox("Past runs")
        runs_layout = QHBoxLayout(runs_box)
        runs_layout.addWidget(self.runs, 1)
        runs_layout.addWidget(self.open_button)
        runs_layout.addWidget(self.mark_button)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(settings_box)
        left_layout.addWidget(runs_box)
        left_layout.addWidget(faults_box, 1)

        # --- plots
        self.heatmap = CrossbarHeatMap()
        self.map_panel = ctx.setup_plot(PlotPanel("Calibration map", self.heatmap, self._map_data))
        self.hist_plot = pg.PlotWidget(background="w")
        style_plot(
            self.hist_plot.getPlotItem(),
            left=("branches", ""),
            bottom=("deviation from nominal", "%"),
        )
        self.hist_panel = ctx.setup_plot(
            PlotPanel("Deviations from nominal", self.hist_plot, self._hist_data)
        )
        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(self.map_panel)
        plots.addWidget(self.hist_panel)
        plots.setStretchFactor(0, 3)
        plots.setStretchFactor(1, 2)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(plots)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        QVBoxLayout(self).addWidget(splitter)
        self._update_buttons()

    # ------------------------------------------------------------------ actions
    def settings(self) -> CalibrationSettings:
        """The settings the widgets describe (`SettingsError` on bad cells)."""
        nplc = self.nplc.value()
        return CalibrationSettings(
            cells=parse_cells(self.cells.text().strip() or "*,*"),
            design=self.design.currentText(),  # type: ignore[arg-type]
            nplc=nplc if nplc > 0 else None,
            repeats=self.repeats.value(),
        ).validate()

    def start(self) -> None:
        """Start a new calibration run with the chosen settings."""
        try:
            settings = self.settings()
        except ValueError as exc:
            self.ctx.report_error("calibration settings", exc)
            return
        self._submit(settings, None)

    def pause(self) -> None:
        """Stop the run at its next reading; Resume continues it through the store."""
        if self.job is not None:
            self.pause_event.set()
            self.status.setText("Pausing at the next reading…")

    def resume(self) -> None:
        """Resume the paused (interrupted) run."""
        if self.paused_run is not None:
            self._submit(None, self.paused_run)

    def stop(self) -> None:
        """Stop the run at its next reading (it stays resumable from the store)."""
        if self.job is not None:
            self.job.cancel()

    def _submit(self, settings: CalibrationSettings | None, resume: int | None) -> None:
        session = self.ctx.session
        if session is None or session.db_path is None:
            self.ctx.report_error("calibration", "not connected to a bench (or no store)")
            return
        self.pause_event = threading.Event()
        self.last_progress = None
        self.live_counts = np.zeros((session.rows, session.cols))
        self.readings_per_cell = 1.0
        self._per_cell_plan(session, settings, resume)
        what = f"resume of calibration run {resume}" if resume is not None else "calibration"
        self.status.setText(f"Running the {what}…")
        self.job = self.ctx.run(
            what,
            calibration_job(settings, str(session.db_path), resume=resume, pause=self.pause_event),
            self._done,
            on_error=lambda exc: self._ended(f"{what} failed: see the log"),
            on_cancelled=lambda: self._ended(f"{what} stopped before it started"),
        )
        self._update_buttons()

    def _per_cell_plan(
        self, session: Session, settings: CalibrationSettings | None, resume: int | None
    ) -> None:
        """Readings per cell of the plan (for the live map), from the settings' cell count."""
        self._n_cells = 0
        try:
            if settings is None and resume is not None and self.ctx.store.store is not None:
                settings = CalibrationSettings.from_json(self.ctx.store.store.run(resume).settings)
            if settings is not None:
                self._n_cells = len(resolve_cells(settings.cells, session.rows, session.cols))
        except ValueError:
            self._n_cells = 0

    def _done(self, outcome: CalibrationJobResult) -> None:
        result = outcome.result
        self.last_result = result
        if outcome.paused:
            self.paused_run = result.run_id
            self._ended(
                f"Paused: run {result.run_id} stored as interrupted after "
                f"{result.summary.get('readings', 0)} readings; Resume continues it."
            )
            return
        if result.status == "interrupted":
            self.paused_run = result.run_id
            self._ended(
                f"Stopped: run {result.run_id} stored as interrupted "
                f"(resume it here or with `labrss calibrate --resume {result.run_id}`)."
            )
            return
        self.paused_run = None
        n_faults = len(result.faults)
        self._ended(
            f"Run {result.run_id} completed: {len(result.cells)} cells, {n_faults} "
            f"faulty branch{'es' if n_faults != 1 else ''}, noise scale {result.noise_scale:.3g}."
        )
        self.refresh_runs()
        self.open_run(result.run_id)

    def _ended(self, text: str) -> None:
        self._redraw_timer.stop()
        self._draw_live()  # the last progress, not throttled
        self.job = None
        self.status.setText(text)
        self._update_buttons()

    # ------------------------------------------------------------------ live view
    def on_event(self, event: ResultEvent) -> None:
        if event.kind == "calibration_progress" and isinstance(event.data, RunProgress):
            p = event.data
            self.last_progress = p
            if p.cell is not None and p.measured_now > 0:
                r, c = p.cell
                if 0 <= r < self.live_counts.shape[0] and 0 <= c < self.live_counts.shape[1]:
                    self.live_counts[r, c] += 1
            if self._n_cells > 0:
                self.readings_per_cell = p.total / self._n_cells
            if not self._redraw_timer.isActive():
                self._redraw_timer.start()

    def _draw_live(self) -> None:
        p = self.last_progress
        if p is None:
            return
        self.progress_bar.setRange(0, max(p.total, 1))
        self.progress_bar.setValue(p.done)
        self.progress_bar.setFormat("%v / %m readings (%p %)")
        self.eta.setText(
            f"ETA: instrument {format_duration(p.eta_instrument_s)}, wall "
            f"{format_duration(p.eta_wall_s)} (so far: instrument "
            f"{format_duration(p.instrument_time_s)}, wall {format_duration(p.wall_time_s)})"
        )
        if self.calibration is None or self.job is not None:
            share = 100.0 * self.live_counts / max(self.readings_per_cell, 1.0)
            values = np.where(self.live_counts > 0, np.minimum(share, 100.0), np.nan)
            self.heatmap.set_data(values, "readings taken in the cell (%)", "", levels=(0.0, 100.0))

    # ------------------------------------------------------------------ past runs
    def refresh_runs(self) -> None:
        """List the board's calibration runs (newest first) from the store."""
        self.runs.clear()
        store, board_id = self.ctx.store.store, self.ctx.store.board_id
        if store is None or board_id is None:
            return
        runs: list[RunInfo] = sorted(
            store.runs(board_id, kind="calibration"), key=lambda r: r.id, reverse=True
        )
        for info in runs:
            design = info.settings.get("design", "?")
            parent = f", resumes {info.parent_run_id}" if info.parent_run_id else ""
            self.runs.addItem(
                f"run {info.id}: {info.status}, {design}, {info.n_readings} readings{parent}",
                info.id,
            )

    def _selected_status(self) -> str | None:
        store, run_id = self.ctx.store.store, self.runs.currentData()
        if store is None or run_id is None:
            return None
        return store.run(int(run_id)).status

    def mark_selected_interrupted(self) -> None:
        """Mark the selected ``running`` run interrupted, after a confirmation; then it can
        be resumed (Resume). For a run whose process died without the store noticing (its
        heartbeat is not stale yet)."""
        store, run_id = self.ctx.store.store, self.runs.currentData()
        if store is None or run_id is None or self.job is not None:
            return
        info = store.run(int(run_id))
        if info.status != "running":
            self.status.setText(f"Run {info.id} is {info.status}, not running: nothing to mark.")
            return
        question = (
            f"Run {info.id} is recorded as running (process {info.pid} on {info.host}). Mark "
            "it interrupted only if that process is gone: a run that is still alive fails at "
            "its next reading. Mark it interrupted?"
        )
        if not self.ask(self, "Mark run interrupted", question):
            self.status.setText(f"Run {info.id} left as it was.")
            return
        store.mark_run_interrupted(info.id, "marked in the GUI")
        self.paused_run = info.id
        self.refresh_runs()
        for i in range(self.runs.count()):
            if self.runs.itemData(i) == info.id:
                self.runs.setCurrentIndex(i)
        self.status.setText(f"Run {info.id} marked interrupted; Resume continues it.")
        self._update_buttons()

    def open_selected_run(self) -> None:
        """Show the run selected in the past-runs list."""
        run_id = self.runs.currentData()
        if run_id is not None:
            self.open_run(int(run_id))

    def open_run(self, run_id: int) -> None:
        """Show run ``run_id``'s map (deviation from nominal), histogram and faults."""
        store, session = self.ctx.store.store, self.ctx.session
        if store is None or session is None:
            return
        cal = run_calibration_view(store, run_id)
        self.calibration = cal
        nominal, source = nominal_conductance_S(cal, session.board_info)
        shown = cell_map(cal, "deviation", None, nominal)
        self.heatmap.set_data(shown.values, shown.label, shown.unit, faults=shown.faults)
        self.deviations_pct = branch_deviations_pct(cal, nominal)
        self._draw_histogram(source)
        self.faults.clear()
        for f in cal.faults:
            self.faults.addItem(f"cell ({f.r}, {f.c}) branch {f.k}: {f.kind}")
        if not cal.faults:
            self.faults.addItem("no faults found")
        for i in range(self.runs.count()):
            if self.runs.itemData(i) == run_id:
                self.runs.setCurrentIndex(i)

    def _draw_histogram(self, source: str) -> None:
        plot = self.hist_plot.getPlotItem()
        plot.clear()
        dev = self.deviations_pct
        if dev.size == 0:
            return
        counts, edges = np.histogram(dev, bins=min(40, max(5, dev.size // 8)))
        plot.addItem(
            pg.BarGraphItem(
                x0=edges[:-1], x1=edges[1:], height=counts, brush="#1976d2", pen="#0d47a1"
            )
        )
        plot.setTitle(
            f"{dev.size} branches: mean {dev.mean():+.2f} %, std {dev.std():.2f} % "
            f"(nominal: {source})",
            size="9pt",
        )

    def _map_data(self) -> PlotData | None:
        values = self.heatmap.values
        rows, cols = values.shape
        rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        return PlotData.from_columns(
            row=rr.ravel().astype(float), column=cc.ravel().astype(float), value=values.ravel()
        )

    def _hist_data(self) -> PlotData | None:
        if self.deviations_pct.size == 0:
            return None
        return PlotData.from_columns(deviation_pct=self.deviations_pct)

    # ------------------------------------------------------------------ hooks
    def on_connected(self, session: Session) -> None:
        self.live_counts = np.zeros((session.rows, session.cols))
        self.heatmap.set_data(np.full((session.rows, session.cols), np.nan), "value", "")
        self.status.setText(f"Ready to calibrate board {session.board_serial}.")
        self.refresh_runs()
        self._update_buttons()

    def on_disconnected(self) -> None:
        self.status.setText("Connect to a bench to calibrate it.")
        self.runs.clear()
        self._update_buttons()

    def set_busy(self, busy: bool) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        connected = self.ctx.session is not None
        running = self.job is not None
        self.start_button.setEnabled(connected and not running and not self.ctx.busy)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(
            connected and not running and self.paused_run is not None and not self.ctx.busy
        )
        self.open_button.setEnabled(connected)
        self.mark_button.setEnabled(
            connected and not running and self._selected_status() == "running"
        )

    def plots(self) -> list[PlotPanel]:
        return [self.map_panel, self.hist_panel]

    def save_state(self) -> None:
        s = self.ctx.settings
        s.set_value(self.settings_key("design"), self.design.currentText())
        s.set_value(self.settings_key("nplc"), str(self.nplc.value()))
        s.set_value(self.settings_key("repeats"), str(self.repeats.value()))
        s.set_value(self.settings_key("cells"), self.cells.text())

    def restore_state(self) -> None:
        s = self.ctx.settings
        design = s.value(self.settings_key("design"), "weighing")
        if design in DESIGNS:
            self.design.setCurrentText(design)
        self.nplc.setValue(_float(s.value(self.settings_key("nplc"), "0"), 0.0))
        self.repeats.setValue(int(_float(s.value(self.settings_key("repeats"), "1"), 1)))
        self.cells.setText(s.value(self.settings_key("cells"), "*,*") or "*,*")


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
