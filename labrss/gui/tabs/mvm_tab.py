"""The MVM tab: run the programmed network on the board (`labrss.workflows.mvm.run_mvm`,
what `labrss mvm` runs; for a CNN `labrss.workflows.cnn.run_cnn_mvm`, each tile
programmed once and every patch streamed through it) over the network's test set
(digits, or MNIST-1D for its CNN) and compare analog with digital.

Shows: analog vs digital (programmed network) outputs with the identity line, the histogram
of output errors ``y_analog - y_digital``, the per-vector relative L2 error, the accuracy
table (digital target, programmed digital, analog), for a CNN the median relative L2
error of every layer's analog output, and the confusion matrices. The program comes from
the Program tab (its ``"program_done"`` event on the result stream).

**Weight error vs array position** (IR drop, docs/ir-drop.md): the rms weight error by
board row or column pair (`labrss.workflows.ir_drop.position_profile`, computed in the
worker), with and without compensation, like with like (`compared_curves`): measured
against measured when a plain program and an IR-drop-aware one of the same network and
board have both been verified, otherwise the IR-drop-aware program's masks against its
plain solve's masks, both predicted with the wiring it measured. A plain program alone
shows its measured error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labrss.gui.plot_export import PlotData, PlotPanel, style_plot
from labrss.gui.result_stream import ResultEvent
from labrss.gui.session import Session
from labrss.gui.tabs.base import LabTab, TabContext
from labrss.gui.tabs.program_tab import AnyProgram, NetworkSource
from labrss.gui.widgets.log_axis import LogAxis
from labrss.gui.workers import Job, JobCancelledError, JobContext
from labrss.networks.model import Network
from labrss.store import Store
from labrss.workflows.cnn import CNNMVMResult, CNNProgramResult, run_cnn_mvm
from labrss.workflows.ir_drop import PositionProfile, ProfileSource, position_profile
from labrss.workflows.mvm import MVMResult, MVMSettings, run_mvm
from labrss.workflows.program import CancelledError, ProgramResult

#: Either kind of MVM result (dense network or CNN).
AnyMVMResult = MVMResult | CNNMVMResult

log = logging.getLogger(__name__)


def mvm_job(
    program: AnyProgram,
    source: NetworkSource,
    vectors: int,
    settings: MVMSettings,
    db_path: str,
) -> Callable[[JobContext], AnyMVMResult]:
    """Worker job: `run_mvm` (MLP) or `run_cnn_mvm` (CNN) on the first ``vectors`` test
    inputs; Cancel between tiles."""
    if source.x_test is None:
        raise ValueError(
            f"{source.network.name}: no test set to run (digits- or MNIST-1D-shaped networks only)"
        )
    x = source.x_test[:vectors]
    y = None if source.y_test is None else source.y_test[:vectors]

    def run(ctx: JobContext) -> AnyMVMResult:
        def progress(done: int, total: int, text: str) -> None:
            ctx.progress(done, total, f"MVM: {done}/{total} vector-tiles")
            ctx.publish("mvm_progress", (done, total, text))

        result: AnyMVMResult
        with Store(db_path) as store:
            try:
                if isinstance(program, CNNProgramResult):
                    result = run_cnn_mvm(
                        ctx.lab,
                        store,
                        program,
                        x,
                        y,
                        settings=settings,
                        progress=progress,
                        should_stop=lambda: ctx.cancelled,
                        note="labrss gui",
                    )
                    ctx.publish("mvm_done", result)
                    return result
                assert isinstance(source.network, Network)
                result = run_mvm(
                    ctx.lab,
                    store,
                    program,
                    x,
                    y,
                    target=source.network,
                    settings=settings,
                    progress=progress,
                    should_stop=lambda: ctx.cancelled,
                    note="labrss gui",
                )
            except CancelledError as exc:
                raise JobCancelledError(str(exc)) from exc
        ctx.publish("mvm_done", result)
        return result

    return run


#: Curves of the position plot: key -> (legend, colour, dashed). Plain red, compensated
#: blue; measured solid, predicted dashed.
PROFILE_CURVES: dict[str, tuple[str, str, bool]] = {
    "plain_measured": ("plain, measured", "#d32f2f", False),
    "ir_measured": ("IR-drop-aware, measured", "#1976d2", False),
    "plain_predicted": ("plain, predicted", "#d32f2f", True),
    "ir_predicted": ("IR-drop-aware, predicted", "#1976d2", True),
}

#: The program a profile belongs to, for like-with-like pairing: (network name, board id,
#: board rows, board columns).
ProgramKey = tuple[str, int | None, int, int]


def program_key(program: ProgramResult) -> ProgramKey:
    """What a plain and an IR-drop-aware program must share to be compared."""
    plan = program.layers[0].plan
    return (program.network.name, program.board_id, plan.board_rows, plan.board_cols)


def profile_job(program: ProgramResult) -> Callable[[JobContext], dict[str, PositionProfile]]:
    """Worker job: the program's position profiles, keyed as `PROFILE_CURVES` (a plain
    program: ``plain_measured``; an IR-drop-aware one: ``ir_measured``, ``ir_predicted``
    and ``plain_predicted``)."""
    aware = bool(program.compensation) and program.wiring is not None
    wanted: dict[str, ProfileSource] = (
        {
            "ir_measured": "measured",
            "ir_predicted": "predicted",
            "plain_predicted": "plain_predicted",
        }
        if aware
        else {"plain_measured": "measured"}
    )

    def run(ctx: JobContext) -> dict[str, PositionProfile]:
        out: dict[str, PositionProfile] = {}
        for key, source in wanted.items():
            prof = position_profile(program, source)
            if prof is not None:
                out[key] = prof
        return out

    return run


def compared_curves(profiles: dict[str, PositionProfile]) -> tuple[str, ...]:
    """The keys of ``profiles`` the position plot draws: plain and IR-drop-aware measured
    when both are; else both predicted (an IR-drop-aware program's own prediction and its
    plain solve's); else the measured profile there is."""
    for pair in (("plain_measured", "ir_measured"), ("plain_predicted", "ir_predicted")):
        if all(k in profiles for k in pair):
            return pair
    return tuple(k for k in ("plain_measured", "ir_measured") if k in profiles)


def accuracy_rows(result: AnyMVMResult) -> list[tuple[str, float]]:
    """(label, accuracy in %) of the target digital, programmed digital and analog outputs."""

    def pct(v: float | None) -> float:
        return float("nan") if v is None else 100.0 * float(v)

    return [
        ("digital, target network", pct(result.vs_target.accuracy_digital)),
        ("digital, programmed network", pct(result.vs_programmed.accuracy_digital)),
        ("analog, on the board", pct(result.vs_target.accuracy_analog)),
    ]


def _table(rows: int, cols: int) -> QTableWidget:
    table = QTableWidget(rows, cols)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.verticalHeader().setDefaultSectionSize(19)
    table.verticalHeader().setMinimumSectionSize(16)
    return table


class MVMTab(LabTab):
    """Run analog MVMs of the programmed network and compare with digital."""

    title = "MVM"

    def __init__(self, ctx: TabContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.program: AnyProgram | None = None
        self.source: NetworkSource | None = None
        self.result: AnyMVMResult | None = None
        self.job: Job | None = None
        self.profiles: dict[str, PositionProfile] = {}
        self.profile_programs: dict[str, ProgramKey] = {}

        self.program_label = QLabel("No programmed network: use the Program tab first.")
        self.program_label.setWordWrap(True)
        self.vectors = QSpinBox()
        self.vectors.setRange(1, 10_000)
        self.vectors.setValue(100)
        self.path = QComboBox()
        self.path.addItem("ADC (every column at once)", "adc")
        self.path.addItem("SMU (one column at a time)", "smu")
        self.path.addItem(
            "Superposition (one row at a time: benches without DACs)", "superposition"
        )
        self.drift = QCheckBox("Drift compensation (reference reads per batch)")
        self.drift.setChecked(True)
        self.run_button = QPushButton("Run MVM")
        self.run_button.clicked.connect(self.run_mvm)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        # the run summary wraps over up to four lines: keep room for them
        self.status.setMinimumHeight(4 * self.status.fontMetrics().lineSpacing())
        box = QGroupBox("MVM run")
        form = QFormLayout(box)
        form.addRow(self.program_label)
        form.addRow("Test vectors", self.vectors)
        form.addRow("Read-out", self.path)
        form.addRow(self.drift)
        form.addRow(self.run_button)
        form.addRow(self.progress_bar)
        form.addRow(self.status)

        self.accuracy = _table(3, 1)
        self.accuracy.setHorizontalHeaderLabels(["test accuracy (%)"])
        self.accuracy.setVerticalHeaderLabels([label for label, _ in _EMPTY_ACCURACY])
        self.accuracy.horizontalHeader().setStretchLastSection(True)
        self.accuracy.setFixedHeight(86)
        self.confusion_kind = QComboBox()
        self.confusion_kind.addItem("analog (board)", "analog")
        self.confusion_kind.addItem("digital (programmed network)", "digital")
        self.confusion_kind.currentIndexChanged.connect(self._draw_confusion)
        self.confusion = _table(0, 0)
        conf_box = QGroupBox("Confusion matrix (rows: true digit, columns: predicted)")
        conf_layout = QVBoxLayout(conf_box)
        conf_layout.addWidget(self.confusion_kind)
        conf_layout.addWidget(self.confusion, 1)
        self.confusion.setMinimumHeight(200)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(box)
        left_layout.addWidget(self.accuracy)
        self.layers = _table(0, 2)
        self.layers.setHorizontalHeaderLabels(["layer", "median rel. L2 error (%)"])
        self.layers.verticalHeader().setVisible(False)
        self.layers.horizontalHeader().setStretchLastSection(True)
        self.layers_box = QGroupBox("CNN: analog error of every layer")
        layers_layout = QVBoxLayout(self.layers_box)
        layers_layout.addWidget(self.layers)
        self.layers_box.setVisible(False)
        left_layout.addWidget(self.layers_box)
        left_layout.addWidget(conf_box, 1)

        self.scatter = pg.PlotWidget(background="w")
        style_plot(
            self.scatter.getPlotItem(),
            left=("analog output", "a.u."),
            bottom=("digital output (programmed)", "a.u."),
        )
        self.hist = pg.PlotWidget(background="w")
        style_plot(
            self.hist.getPlotItem(),
            left=("outputs", ""),
            bottom=("analog - digital", "a.u."),
        )
        self.trace = pg.PlotWidget(background="w", axisItems={"left": LogAxis("left")})
        style_plot(
            self.trace.getPlotItem(),
            left=("relative L2 error", ""),
            bottom=("test vector (index)", ""),
        )
        self.trace.getPlotItem().setLogMode(y=True)
        self.scatter_panel = ctx.setup_plot(
            PlotPanel("Analog vs digital outputs", self.scatter, self._scatter_data)
        )
        self.hist_panel = ctx.setup_plot(PlotPanel("Output errors", self.hist, self._hist_data))
        self.trace_panel = ctx.setup_plot(
            PlotPanel("Relative error per vector", self.trace, self._trace_data)
        )
        self.position = pg.PlotWidget(background="w", axisItems={"left": LogAxis("left")})
        style_plot(
            self.position.getPlotItem(),
            left=("rms error / max |w|", ""),
            bottom=("board row", ""),
        )
        self.position.getPlotItem().setLogMode(y=True)
        # the legend sits below the plot, under the axis: inside it would hide points
        position_item = self.position.getPlotItem()
        position_item.legend = pg.LegendItem(frame=False, colCount=2, labelTextSize="8pt")
        position_item.layout.addItem(position_item.legend, 4, 1)
        self.position_axis = QComboBox()
        self.position_axis.addItem("by board row", "row")
        self.position_axis.addItem("by column pair", "pair")
        self.position_axis.currentIndexChanged.connect(self._draw_position)
        self.position_panel = ctx.setup_plot(
            PlotPanel("Weight error vs array position", self.position, self._position_data)
        )
        position_box = QWidget()
        position_layout = QVBoxLayout(position_box)
        position_layout.setContentsMargins(0, 0, 0, 0)
        position_layout.addWidget(self.position_axis)
        position_layout.addWidget(self.position_panel, 1)
        plots = QWidget()
        grid = QGridLayout(plots)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.scatter_panel, 0, 0)
        grid.addWidget(position_box, 0, 1)
        grid.addWidget(self.hist_panel, 1, 0)
        grid.addWidget(self.trace_panel, 1, 1)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        # the run's options, tables and confusion matrix are taller than a 1280x800
        # screen leaves them: they scroll
        left_scroll = QScrollArea()
        left_scroll.setWidget(left)
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QFrame.Shape.NoFrame)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setMinimumWidth(max(left.minimumSizeHint().width() + 20, 440))
        splitter.addWidget(left_scroll)
        splitter.addWidget(plots)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        QVBoxLayout(self).addWidget(splitter)
        self._update_buttons()

    # ------------------------------------------------------------------ actions
    def settings(self) -> MVMSettings:
        """The read-out options the widgets describe."""
        data = self.path.currentData()
        path: Literal["smu", "adc", "superposition"] = (
            data if data in ("smu", "superposition") else "adc"
        )
        settings = MVMSettings(path=path, drift_compensation=self.drift.isChecked())
        settings.validate()
        return settings

    def set_program(self, program: AnyProgram, source: NetworkSource) -> None:
        """Use ``program`` (made for ``source``'s network) for the next runs."""
        self.program, self.source = program, source
        n_test = 0 if source.x_test is None else source.x_test.shape[0]
        if n_test:
            self.vectors.setMaximum(n_test)
        kind = "CNN " if isinstance(program, CNNProgramResult) else ""
        if isinstance(program, ProgramResult) and program.wiring is not None:
            kind = "IR-drop-aware "
        self.program_label.setText(
            f"Program run {program.run_id}: {kind}{program.network.name}, "
            f"{len(program.checks)} tiles; test set {n_test} inputs."
        )
        self._update_buttons()
        if isinstance(program, ProgramResult) and program.checks:
            key = program_key(program)
            self.ctx.run(
                "Position profile",
                profile_job(program),
                lambda profiles: self._profiles_done(key, profiles),
            )

    def _profiles_done(self, key: ProgramKey, profiles: dict[str, PositionProfile]) -> None:
        """Keep the new program's profiles, and the other kind's (plain or IR-drop-aware)
        only if they were of the same network on the same board."""
        # an IR-drop-aware program brings three curves, a plain one one: they replace
        # their kind's earlier curves
        own = (
            {"ir_measured", "ir_predicted", "plain_predicted"}
            if "ir_measured" in profiles
            else {"plain_measured"}
        )
        for old in list(self.profiles):
            if old in own or self.profile_programs.get(old) != key:
                self.profiles.pop(old)
                self.profile_programs.pop(old, None)
        self.profiles.update(profiles)
        self.profile_programs.update(dict.fromkeys(profiles, key))
        self._draw_position()

    def run_mvm(self) -> None:
        """Run the MVM in the worker."""
        session = self.ctx.session
        if self.program is None or self.source is None:
            self.ctx.report_error("MVM", "program a network first (Program tab)")
            return
        if session is None or session.db_path is None:
            self.ctx.report_error("MVM", "not connected to a bench (or no store)")
            return
        try:
            job = mvm_job(
                self.program,
                self.source,
                self.vectors.value(),
                self.settings(),
                str(session.db_path),
            )
        except ValueError as exc:
            self.ctx.report_error("MVM", exc)
            return
        self.status.setText("Running…")
        self.progress_bar.setValue(0)
        self.job = self.ctx.run(
            "MVM",
            job,
            self._done,
            on_error=lambda exc: self._ended("MVM failed: see the log."),
            on_cancelled=lambda: self._ended("MVM cancelled; the bench is safe."),
        )
        self._update_buttons()

    def _done(self, result: AnyMVMResult) -> None:
        self.result = result
        self._draw()
        vp = result.vs_programmed
        extra = ""
        if isinstance(result, CNNMVMResult):
            extra = f" ({result.mvms} MVMs; {result.tile_programmings} tiles, each programmed once)"
        self._ended(
            f"MVM run {result.run_id}: {result.x.shape[0]} inputs by {result.settings.path}"
            f"{extra}; "
            f"median relative L2 error {vp.median_rel_l2:.3g} (SNR {vp.snr_db_median:.1f} dB), "
            f"argmax agreement {100 * vp.argmax_agreement:.1f} %; instrument time "
            f"{result.instrument_time_s:.2f} s."
        )

    def _ended(self, text: str) -> None:
        self.job = None
        self.status.setText(text)
        self._update_buttons()

    # ------------------------------------------------------------------ drawing
    def on_event(self, event: ResultEvent) -> None:
        if event.kind == "program_done":
            program, source = event.data
            self.set_program(program, source)
        elif event.kind == "mvm_progress":
            done, total, _ = event.data
            self.progress_bar.setRange(0, max(int(total), 1))
            self.progress_bar.setValue(int(done))

    def _draw(self) -> None:
        r = self.result
        if r is None:
            return
        self.progress_bar.setValue(self.progress_bar.maximum())
        for i, (_, value) in enumerate(accuracy_rows(r)):
            self.accuracy.setItem(i, 0, QTableWidgetItem(f"{value:.2f}"))
        self._draw_layers()
        sc = self.scatter.getPlotItem()
        sc.clear()
        yd, ya = r.y_programmed.ravel(), r.y_analog.ravel()
        lo, hi = float(min(yd.min(), ya.min())), float(max(yd.max(), ya.max()))
        sc.plot([lo, hi], [lo, hi], pen=pg.mkPen("#555", width=1, style=Qt.PenStyle.DashLine))
        sc.plot(yd, ya, pen=None, symbol="o", symbolSize=4, symbolBrush="#1976d2", symbolPen=None)
        sc.setTitle("dashed: analog = digital", size="9pt")
        h = self.hist.getPlotItem()
        h.clear()
        counts, edges = r.vs_programmed.histogram_counts, r.vs_programmed.histogram_edges
        h.addItem(
            pg.BarGraphItem(
                x0=edges[:-1], x1=edges[1:], height=counts, brush="#1976d2", pen="#0d47a1"
            )
        )
        t = self.trace.getPlotItem()
        t.clear()
        eps = r.vs_programmed.rel_l2
        t.plot(
            np.arange(eps.size),
            eps,
            pen=pg.mkPen("#1976d2", width=1.5),
            symbol="o",
            symbolSize=3,
            symbolBrush="#1976d2",
            symbolPen=None,
        )
        self._draw_confusion()

    def _draw_position(self) -> None:
        item = self.position.getPlotItem()
        item.clear()
        by_row = self.position_axis.currentData() != "pair"
        item.setLabel("bottom", "board row" if by_row else "column pair")
        keys = compared_curves(self.profiles)
        item.setTitle(self.position_title(keys), size="9pt")
        for key in keys:
            legend, colour, dashed = PROFILE_CURVES[key]
            y = self._position_values(key, by_row)
            x = np.arange(y.size, dtype=float)
            ok = np.isfinite(y) & (y > 0)
            style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
            item.plot(
                x[ok],
                y[ok],
                pen=pg.mkPen(colour, width=2, style=style),
                symbol="o",
                symbolSize=5,
                symbolBrush=colour,
                symbolPen=None,
                name=legend,
            )

    def position_title(self, keys: tuple[str, ...]) -> str:
        """What the drawn curves ``keys`` are, with their program runs."""
        runs = [self.profiles[k].run_id for k in keys]
        if keys == ("plain_measured", "ir_measured"):
            return f"both measured: plain run {runs[0]}, IR-drop-aware run {runs[1]}"
        if keys == ("plain_predicted", "ir_predicted"):
            return f"both predicted with run {runs[1]}'s measured wiring"
        return f"measured by verification (run {runs[0]})" if keys else ""

    def _position_values(self, key: str, by_row: bool) -> NDArray[np.float64]:
        prof = self.profiles[key]
        return prof.row_rms if by_row else prof.pair_rms

    def _position_data(self) -> PlotData | None:
        keys = compared_curves(self.profiles)
        if not keys:
            return None
        by_row = self.position_axis.currentData() != "pair"
        n = self._position_values(keys[0], by_row).size
        cols: dict[str, NDArray[np.float64]] = {"position": np.arange(n, dtype=float)}
        for key in keys:
            cols[key] = self._position_values(key, by_row)
        return PlotData.from_columns(**cols)

    def layer_errors(self) -> list[tuple[str, float]]:
        """(layer, median relative L2 error in %) of a CNN run's every matrix layer."""
        r, p = self.result, self.program
        if not isinstance(r, CNNMVMResult) or not isinstance(p, CNNProgramResult):
            return []
        return [
            (f"op {m.op_index} {m.kind} {m.d_in}x{m.d_out}", 100.0 * e)
            for m, e in zip(p.matrices, r.layer_rel_l2_median, strict=True)
        ]

    def _draw_layers(self) -> None:
        rows = self.layer_errors()
        self.layers_box.setVisible(bool(rows))
        self.layers.setRowCount(len(rows))
        header = self.layers.horizontalHeader().sizeHint().height()
        self.layers.setFixedHeight(header + 19 * min(len(rows), 6) + 4)
        for i, (name, err) in enumerate(rows):
            self.layers.setItem(i, 0, QTableWidgetItem(name))
            self.layers.setItem(i, 1, QTableWidgetItem(f"{err:.3g}"))

    def confusion_matrix(self) -> NDArray[np.int64] | None:
        """The confusion matrix shown (analog or programmed digital), or None."""
        if self.result is None:
            return None
        c = self.result.vs_programmed
        m = (
            c.confusion_analog
            if self.confusion_kind.currentData() == "analog"
            else (c.confusion_digital)
        )
        return None if m is None else np.asarray(m, dtype=np.int64)

    def _draw_confusion(self) -> None:
        m = self.confusion_matrix()
        if m is None:
            self.confusion.setRowCount(0)
            self.confusion.setColumnCount(0)
            return
        n = m.shape[0]
        self.confusion.setRowCount(n)
        self.confusion.setColumnCount(n)
        labels = [str(i) for i in range(n)]
        self.confusion.setHorizontalHeaderLabels(labels)
        self.confusion.setVerticalHeaderLabels(labels)
        peak = max(int(m.max()), 1)
        for i in range(n):
            for j in range(n):
                item = QTableWidgetItem(str(int(m[i, j])))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if m[i, j]:
                    shade = int(255 - 150 * m[i, j] / peak)
                    colour = (shade, shade, 255) if i == j else (255, shade, shade)
                    item.setBackground(pg.mkColor(*colour))
                self.confusion.setItem(i, j, item)

    def _scatter_data(self) -> PlotData | None:
        if self.result is None:
            return None
        return PlotData.from_columns(
            digital_programmed=self.result.y_programmed.ravel(),
            analog=self.result.y_analog.ravel(),
            digital_target=self.result.y_target.ravel(),
        )

    def _hist_data(self) -> PlotData | None:
        if self.result is None:
            return None
        c = self.result.vs_programmed
        return PlotData.from_columns(
            bin_low=c.histogram_edges[:-1],
            bin_high=c.histogram_edges[1:],
            count=c.histogram_counts,
        )

    def _trace_data(self) -> PlotData | None:
        if self.result is None:
            return None
        eps = self.result.vs_programmed.rel_l2
        return PlotData.from_columns(vector=np.arange(eps.size, dtype=float), rel_l2=eps)

    # ------------------------------------------------------------------ hooks
    def on_connected(self, session: Session) -> None:
        self._update_buttons()

    def on_disconnected(self) -> None:
        self._update_buttons()

    def set_busy(self, busy: bool) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.run_button.setEnabled(
            self.job is None
            and not self.ctx.busy
            and self.ctx.session is not None
            and self.program is not None
        )

    def plots(self) -> list[PlotPanel]:
        return [self.scatter_panel, self.hist_panel, self.trace_panel, self.position_panel]

    def save_state(self) -> None:
        s = self.ctx.settings
        s.set_value(self.settings_key("vectors"), str(self.vectors.value()))
        s.set_value(self.settings_key("path"), str(self.path.currentData()))
        s.set_value(self.settings_key("drift"), "1" if self.drift.isChecked() else "0")

    def restore_state(self) -> None:
        s = self.ctx.settings
        vectors = s.value(self.settings_key("vectors"), "100")
        if vectors.isdigit():
            self.vectors.setValue(int(vectors))
        index = self.path.findData(s.value(self.settings_key("path"), "adc"))
        if index >= 0:
            self.path.setCurrentIndex(index)
        self.drift.setChecked(s.value(self.settings_key("drift"), "1") != "0")


_EMPTY_ACCURACY = [
    ("digital, target network", 0.0),
    ("digital, programmed network", 0.0),
    ("analog, on the board", 0.0),
]
