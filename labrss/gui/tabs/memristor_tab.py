"""The Memristor tab: a cell's bank on a memristor (or mixed) board, each branch's kind,
conductance and the board's pulse count (``PULS:COUN?``), and write-verify of one branch
with a live plot of conductance against pulse number.

Write-verify is `labrss.workflows.write_verify.write_verify_device` (the loop the CLI runs)
with a `DeviceRecorder` that also publishes every read and pulse on the result stream, so
the plot fills in pulse by pulse; the run is stored as a ``write_verify`` run as
`write_verify` stores it (reads, pulses, the device outcome, a summary with the board's
pulse count). Cancel takes effect at the next reading.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labrss.gui.plot_export import PlotData, PlotPanel, style_plot
from labrss.gui.result_stream import ResultEvent, format_siemens
from labrss.gui.session import Session
from labrss.gui.tabs.base import LabTab, TabContext
from labrss.gui.workers import Job, JobContext
from labrss.lab import Lab, Reading
from labrss.lab.lab import PulseRecord
from labrss.memristor import WriteVerifySettings
from labrss.store import Store
from labrss.workflows.memristor_rss import BankResult, program_bank_rss
from labrss.workflows.write_verify import (
    DeviceRecorder,
    DeviceResult,
    bench_settings,
    board_id_for,
    read_branch_S,
    write_verify_device,
)

log = logging.getLogger(__name__)

_BANK_COLUMNS = ("branch", "kind", "G", "pulses")
#: Readings averaged per verify step (as `write_verify`'s default).
READS_PER_VERIFY = 2


@dataclass(frozen=True)
class BranchState:
    """One branch of a bank as read from the board: kind, conductance (S), pulse count
    (None for a resistor branch, which has no pulse circuit)."""

    k: int
    kind: str
    conductance_S: float
    pulse_count: int | None


def read_bank(lab: Lab, r: int, c: int, recorder: DeviceRecorder) -> list[BranchState]:
    """Each branch of cell (r, c) alone (mean of `READS_PER_VERIFY` reads) and its pulse count;
    the cell's switches are restored afterwards (a programmed bank stays programmed)."""
    kind = str(lab.cell_kind(r, c))
    original = lab.board.cell_mask(r, c)
    states: list[BranchState] = []
    for k in range(lab.geometry.branches):
        g = read_branch_S(lab, r, c, k, reads=READS_PER_VERIFY, nplc=None, recorder=recorder)
        count = lab.pulse_count(r, c, k) if kind == "memristor" else None
        states.append(BranchState(k, kind, g, count))
    lab.set_cell_mask(r, c, original)
    return states


def read_bank_job(r: int, c: int) -> Callable[[JobContext], list[BranchState]]:
    """Worker job: `read_bank` of cell (r, c), published as ``"memristor_bank"``."""

    def run(ctx: JobContext) -> list[BranchState]:
        recorder = _LiveRecorder(ctx, None, None)
        states = read_bank(ctx.lab, r, c, recorder)
        ctx.publish("memristor_bank", ((r, c), states))
        return states

    return run


class _LiveRecorder(DeviceRecorder):
    """A `DeviceRecorder` that publishes each read and pulse and honours Cancel."""

    def __init__(self, ctx: JobContext, store: Store | None, run_id: int | None) -> None:
        super().__init__(store, run_id, "wv")
        self.ctx = ctx

    def read(self, reading: Reading) -> None:
        super().read(reading)
        self.ctx.publish("memristor_read", (len(self.pulses), reading.cell, reading.conductance_S))
        self.ctx.check_cancel()

    def pulse(self, record: PulseRecord) -> None:
        super().pulse(record)
        self.ctx.publish("memristor_pulse", record)


@dataclass(frozen=True)
class WriteVerifyOutcome:
    """The device's outcome, its run and the board's pulse count afterwards."""

    device: DeviceResult
    run_id: int
    board_pulse_count: int


def write_verify_job(
    branch: tuple[int, int, int], target_S: float, tolerance: float, db_path: str
) -> Callable[[JobContext], WriteVerifyOutcome]:
    """Worker job: write-verify ``branch`` to ``target_S`` (S), stored, published live."""

    def run(ctx: JobContext) -> WriteVerifyOutcome:
        lab = ctx.lab
        settings = bench_settings(lab, WriteVerifySettings(tolerance=tolerance))
        with Store(db_path) as store:
            run_id = store.start_run(
                "write_verify",
                board_id_for(lab, store),
                asdict(settings)
                | {
                    "branches": [list(branch)],
                    "targets_S": [target_S],
                    "reads_per_verify": READS_PER_VERIFY,
                    "nplc": None,
                },
                lab.describe(),
                note="labrss gui",
            )
            recorder = _LiveRecorder(ctx, store, run_id)
            time0 = lab.instrument_time_s + lab.pulse_time_s
            try:
                device = write_verify_device(
                    lab, branch, target_S, settings, recorder, reads_per_verify=READS_PER_VERIFY
                )
                recorder.flush()
                count = lab.pulse_count(*branch)
                store.put_value(
                    run_id,
                    "summary",
                    {
                        "devices": 1,
                        "status": {device.status: 1},
                        "pulses": device.pulses,
                        "board_pulse_counts": [count],
                    },
                )
                store.finish_run(
                    run_id, instrument_time_s=lab.instrument_time_s + lab.pulse_time_s - time0
                )
            except BaseException as exc:
                recorder.flush()
                store.finish_run(
                    run_id,
                    "interrupted" if ctx.cancelled else "failed",
                    instrument_time_s=lab.instrument_time_s + lab.pulse_time_s - time0,
                    note=f"{type(exc).__name__}: {exc}"[:500],
                )
                raise
        outcome = WriteVerifyOutcome(device, run_id, count)
        ctx.publish("memristor_write_verify", outcome)
        return outcome

    return run


def bank_rss_job(r: int, c: int, target_S: float) -> Callable[[JobContext], BankResult]:
    """Worker job: `program_bank_rss` of cell (r, c) to ``target_S`` (S): every branch
    coarse-programmed (reads and pulses published live), measured, the subset chosen."""

    def run(ctx: JobContext) -> BankResult:
        result = program_bank_rss(ctx.lab, r, c, target_S, recorder=_LiveRecorder(ctx, None, None))
        ctx.publish("memristor_bank_rss", result)
        return result

    return run


class MemristorTab(LabTab):
    """A memristor bank's states and pulse counts; write-verify with a live plot."""

    title = "Memristor"

    def __init__(self, ctx: TabContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.job: Job | None = None
        self.bank: list[BranchState] = []
        self.bank_cell: tuple[int, int] | None = None
        self.trace: list[tuple[int, float]] = []  # (pulses so far, conductance S) per read
        self.outcome: WriteVerifyOutcome | None = None
        self.bank_result: BankResult | None = None
        self._tracing = False  # a write-verify or coarse + RSS job feeds the plot

        self.row = QSpinBox()
        self.col = QSpinBox()
        self.read_button = QPushButton("Read bank")
        self.read_button.clicked.connect(self.read)
        cell_row = QHBoxLayout()
        cell_row.addWidget(QLabel("Cell row"))
        cell_row.addWidget(self.row)
        cell_row.addWidget(QLabel("column"))
        cell_row.addWidget(self.col)
        cell_row.addWidget(self.read_button)
        self.table = QTableWidget(0, len(_BANK_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(_BANK_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header = self.table.horizontalHeaderItem(3)
        if header is not None:
            header.setToolTip("the board's PULS:COUN? since power-up")
        self.info = QLabel("Connect to a memristor board (simulator preset 'memristor').")
        self.info.setWordWrap(True)
        bank_box = QGroupBox("Bank")
        bank_layout = QVBoxLayout(bank_box)
        bank_layout.addLayout(cell_row)
        bank_layout.addWidget(self.info)
        bank_layout.addWidget(self.table, 1)

        self.branch = QSpinBox()
        self.target_uS = QDoubleSpinBox()
        self.target_uS.setRange(0.1, 10_000.0)
        self.target_uS.setDecimals(2)
        self.target_uS.setValue(40.0)
        self.target_uS.setSuffix(" µS")
        self.tolerance = QDoubleSpinBox()
        self.tolerance.setRange(0.05, 50.0)
        self.tolerance.setValue(1.0)
        self.tolerance.setSuffix(" %")
        self.wv_button = QPushButton("Write-verify")
        self.wv_button.clicked.connect(self.write_verify)
        self.wv_status = QLabel("")
        self.wv_status.setWordWrap(True)
        wv_box = QGroupBox("Program: one branch (write-verify) or the whole cell (coarse + RSS)")
        wv_form = QFormLayout(wv_box)
        wv_form.addRow("Branch", self.branch)
        wv_form.addRow("Target", self.target_uS)
        wv_form.addRow("Tolerance", self.tolerance)
        wv_form.addRow(self.wv_button)
        self.cell_target_uS = QDoubleSpinBox()
        self.cell_target_uS.setRange(0.1, 100_000.0)
        self.cell_target_uS.setDecimals(2)
        self.cell_target_uS.setValue(150.0)
        self.cell_target_uS.setSuffix(" µS")
        self.rss_button = QPushButton("Coarse + RSS (whole cell)")
        self.rss_button.setToolTip(
            "every branch write-verified loosely to a coarse level, measured, then the "
            "subset closest to the cell target chosen (labrss.workflows.memristor_rss)"
        )
        self.rss_button.clicked.connect(self.coarse_rss)
        wv_form.addRow("Cell target", self.cell_target_uS)
        wv_form.addRow(self.rss_button)
        wv_form.addRow(self.wv_status)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(bank_box, 1)
        left_layout.addWidget(wv_box)

        self.plot = pg.PlotWidget(background="w")
        style_plot(
            self.plot.getPlotItem(), left=("conductance G", "S"), bottom=("pulse number", "")
        )
        self.curve = self.plot.plot(
            [],
            [],
            pen=pg.mkPen("#1976d2", width=1.5),
            symbol="o",
            symbolSize=5,
            symbolBrush="#1976d2",
            symbolPen=None,
        )
        self.band = pg.LinearRegionItem(
            orientation="horizontal", movable=False, brush=pg.mkBrush(76, 175, 80, 50)
        )
        self.band.setVisible(False)
        self.plot.addItem(self.band)
        self.plot.getPlotItem().getAxis("bottom").setTickSpacing(major=5, minor=1)
        self.plot_panel = ctx.setup_plot(
            PlotPanel("Write-verify: conductance vs pulse", self.plot, self._plot_data)
        )
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.plot_panel)
        splitter.setSizes([380, 900])
        QVBoxLayout(self).addWidget(splitter)
        self._update_buttons()

    # ------------------------------------------------------------------ actions
    def read(self) -> None:
        """Read the selected cell's bank: conductances and pulse counts."""
        r, c = self.row.value(), self.col.value()
        self.job = self.ctx.run(
            f"read bank ({r}, {c})",
            read_bank_job(r, c),
            lambda states: self._ended(),
            on_error=lambda exc: self._ended(),
            on_cancelled=self._ended,
        )
        self._update_buttons()

    def write_verify(self) -> None:
        """Write-verify the chosen branch to the target, then read the bank again."""
        session = self.ctx.session
        if session is None or session.db_path is None:
            self.ctx.report_error("write-verify", "not connected to a bench (or no store)")
            return
        branch = (self.row.value(), self.col.value(), self.branch.value())
        target_S = self.target_uS.value() * 1e-6
        tol = self.tolerance.value() / 100.0
        self.trace = []
        self.outcome = None
        self.band.setRegion((target_S * (1 - tol), target_S * (1 + tol)))
        self.band.setVisible(True)
        self._tracing = True
        self._draw()
        self.wv_status.setText(f"Write-verify of branch {branch} to {format_siemens(target_S)}…")
        self.job = self.ctx.run(
            f"write-verify {branch}",
            write_verify_job(branch, target_S, tol, str(session.db_path)),
            self._written,
            on_error=lambda exc: self._ended("Write-verify failed: see the log."),
            on_cancelled=lambda: self._ended("Write-verify cancelled; the bench is safe."),
        )
        self._update_buttons()

    def coarse_rss(self) -> None:
        """Coarse-program the cell's bank and choose the subset for the cell target."""
        r, c = self.row.value(), self.col.value()
        target_S = self.cell_target_uS.value() * 1e-6
        self.trace = []
        self.outcome = None
        self.bank_result = None
        self.band.setVisible(False)
        self._tracing = True
        self._draw()
        self.wv_status.setText(f"Coarse + RSS of cell ({r}, {c}) to {format_siemens(target_S)}…")
        self.job = self.ctx.run(
            f"coarse + RSS ({r}, {c})",
            bank_rss_job(r, c, target_S),
            self._bank_done,
            on_error=lambda exc: self._ended("Coarse + RSS failed: see the log."),
            on_cancelled=lambda: self._ended("Coarse + RSS cancelled; the bench is safe."),
        )
        self._update_buttons()

    def _bank_done(self, result: BankResult) -> None:
        self.bank_result = result
        closed = ", ".join(str(int(k)) for k in np.flatnonzero(result.mask)) or "none"
        self._ended(
            f"Cell {result.cell}: branches {closed} closed; predicted "
            f"{format_siemens(result.predicted_S)}, measured {format_siemens(result.measured_S)}"
            f" ({100 * result.error:+.3f} % from the target) after {result.pulses} pulses."
        )
        self.read()

    def _written(self, outcome: WriteVerifyOutcome) -> None:
        self.outcome = outcome
        d = outcome.device
        self._ended(
            f"Run {outcome.run_id}: {d.status} after {d.pulses} pulses, G = "
            f"{format_siemens(d.final_S)} ({100 * d.error:+.2f} % from the target); the "
            f"board counts {outcome.board_pulse_count} pulses on this branch."
        )
        self.read()

    def _ended(self, text: str | None = None) -> None:
        self.job = None
        self._tracing = False
        if text is not None:
            self.wv_status.setText(text)
        self._update_buttons()

    # ------------------------------------------------------------------ display
    def on_event(self, event: ResultEvent) -> None:
        if event.kind == "memristor_bank":
            self.bank_cell, self.bank = event.data
            self._show_bank()
        elif event.kind == "memristor_read" and self._tracing:
            pulses, _, g = event.data
            if math.isfinite(g):
                self.trace.append((int(pulses), float(g)))
                self._draw()

    def _show_bank(self) -> None:
        self.table.setRowCount(len(self.bank))
        for i, s in enumerate(self.bank):
            cells = (
                str(s.k),
                s.kind,
                format_siemens(s.conductance_S),
                "–" if s.pulse_count is None else str(s.pulse_count),
            )
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        if self.bank_cell is not None:
            r, c = self.bank_cell
            kind = self.bank[0].kind if self.bank else "?"
            total = sum(s.pulse_count or 0 for s in self.bank)
            self.info.setText(
                f"Cell ({r}, {c}): {kind} bank of {len(self.bank)} branches, each read alone; "
                f"pulses: the board's PULS:COUN?, {total} in total since power-up."
            )

    def pulse_counts_shown(self) -> list[int | None]:
        """The pulse counts in the bank table (None where it shows none)."""
        out: list[int | None] = []
        for i in range(self.table.rowCount()):
            item = self.table.item(i, 3)
            text = item.text() if item is not None else "–"
            out.append(None if text == "–" else int(text))
        return out

    def trace_arrays(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(pulse number, conductance S) of every verify read so far."""
        if not self.trace:
            return np.zeros(0), np.zeros(0)
        data = np.array(self.trace, dtype=np.float64)
        return data[:, 0], data[:, 1]

    def _draw(self) -> None:
        x, y = self.trace_arrays()
        self.curve.setData(x, y)

    def _plot_data(self) -> PlotData | None:
        x, y = self.trace_arrays()
        if x.size == 0:
            return None
        return PlotData.from_columns(pulse=x, conductance_S=y)

    # ------------------------------------------------------------------ hooks
    def on_connected(self, session: Session) -> None:
        self.row.setRange(0, session.rows - 1)
        self.col.setRange(0, session.cols - 1)
        self.branch.setRange(0, session.branches - 1)
        self.info.setText(
            f"Board {session.board_serial}: {session.element_kind} elements. Choose a cell "
            "and Read bank."
        )
        self._update_buttons()

    def on_disconnected(self) -> None:
        self._update_buttons()

    def set_busy(self, busy: bool) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        ok = self.job is None and not self.ctx.busy and self.ctx.session is not None
        self.read_button.setEnabled(ok)
        memristors = self.ctx.session is not None and self.ctx.session.element_kind != "resistor"
        self.wv_button.setEnabled(ok and memristors)
        self.rss_button.setEnabled(ok and memristors)

    def plots(self) -> list[PlotPanel]:
        return [self.plot_panel]
