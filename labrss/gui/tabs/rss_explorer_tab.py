"""The RSS explorer: pick a cell (calibrated, or a synthetic bank) and a target, see the
best subset (`labrss.rss.solve`), the achieved value and error, and the bank's
bits-vs-n precision curve (`labrss.gui.bank.bits_vs_n`). On a board with element TCRs
(``labrss calibrate --temperatures``) a temperature span can be asked for: the
compensated subset (`labrss.workflows.realise.cell_span`) beside the plain one, with their
worst errors over the span, and "Program this cell" realises the compensated one."""

from __future__ import annotations

import logging
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from labrss.gui.bank import (
    Bank,
    PrecisionCurve,
    TargetKind,
    bank_from_calibration,
    bits_vs_n,
    reachable_conductance_S,
    solve_bank,
    synthetic_bank,
)
from labrss.gui.plot_export import PlotData, PlotPanel, style_plot
from labrss.gui.result_stream import format_ohm, format_siemens
from labrss.gui.session import Session
from labrss.gui.tabs.base import LabTab, TabContext
from labrss.gui.workers import Job, JobContext
from labrss.metrology.budget import ElementBudget
from labrss.rss import RSSResult
from labrss.store import Calibration, ElementTCR, Store
from labrss.workflows.realise import (
    CellSpan,
    RealiseError,
    RealiseResult,
    RealiseSettings,
    Target,
    cell_span,
    realise,
)

log = logging.getLogger(__name__)

SLIDER_STEPS = 10_000


def format_value(value: float, kind: TargetKind) -> str:
    """A target-unit value as the explorer shows it."""
    return format_siemens(value) if kind == "conductance" else format_ohm(value)


class RSSExplorerTab(LabTab):
    """Best subset for a target on one cell's bank, and the bank's precision curve."""

    title = "RSS explorer"

    def __init__(self, ctx: TabContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.calibration: Calibration | None = None
        self.bank: Bank | None = None
        self.curve: PrecisionCurve | None = None
        self.result: RSSResult | None = None
        self.g_range_S = (0.0, 1.0)
        self._updating = False

        # --- bank source
        self.use_cal = QRadioButton("calibrated cell")
        self.use_syn = QRadioButton("synthetic bank")
        self.use_syn.setChecked(True)
        self.use_cal.setEnabled(False)
        self.use_cal.setToolTip("needs a connected board with a calibration in the store")
        group = QButtonGroup(self)
        group.addButton(self.use_cal)
        group.addButton(self.use_syn)
        self.row = QSpinBox()
        self.col = QSpinBox()
        self.syn_k = QSpinBox()
        self.syn_k.setRange(1, 20)
        self.syn_k.setValue(8)
        self.syn_seed = QSpinBox()
        self.syn_seed.setRange(0, 2**31 - 1)
        self.syn_r0 = QDoubleSpinBox()
        self.syn_r0.setRange(1.0, 1e9)
        self.syn_r0.setDecimals(0)
        self.syn_r0.setValue(10e3)
        self.syn_r0.setSuffix(" Ω")
        self.syn_tol = QDoubleSpinBox()
        self.syn_tol.setRange(0.0, 90.0)
        self.syn_tol.setValue(20.0)
        self.syn_tol.setSuffix(" %")
        source_box = QGroupBox("Bank")
        grid = QGridLayout(source_box)
        grid.addWidget(self.use_cal, 0, 0)
        grid.addWidget(QLabel("row"), 0, 1)
        grid.addWidget(self.row, 0, 2)
        grid.addWidget(QLabel("column"), 0, 3)
        grid.addWidget(self.col, 0, 4)
        grid.addWidget(self.use_syn, 1, 0)
        grid.addWidget(QLabel("K"), 1, 1)
        grid.addWidget(self.syn_k, 1, 2)
        grid.addWidget(QLabel("seed"), 1, 3)
        grid.addWidget(self.syn_seed, 1, 4)
        grid.addWidget(QLabel("R0"), 2, 1)
        grid.addWidget(self.syn_r0, 2, 2)
        grid.addWidget(QLabel("± tolerance"), 2, 3)
        grid.addWidget(self.syn_tol, 2, 4)
        self.source_label = QLabel()
        self.source_label.setWordWrap(True)
        grid.addWidget(self.source_label, 3, 0, 1, 5)
        for w in (self.row, self.col, self.syn_k, self.syn_seed):
            w.valueChanged.connect(self.rebuild_bank)
        for d in (self.syn_r0, self.syn_tol):
            d.valueChanged.connect(self.rebuild_bank)
        self.use_cal.toggled.connect(self.rebuild_bank)
        self.use_cal.toggled.connect(lambda _: self._update_program_button())
        self.use_cal.toggled.connect(lambda _: self._update_span_enabled())

        # --- target
        self.unit = QComboBox()
        self.unit.addItem("conductance (µS)", "conductance")
        self.unit.addItem("resistance (Ω)", "resistance")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(1, SLIDER_STEPS)
        self.slider.setValue(SLIDER_STEPS // 3)
        self.target = QDoubleSpinBox()
        self.target.setRange(0.0, 1e12)
        self.target.setKeyboardTracking(False)
        target_box = QGroupBox("Target")
        trow = QHBoxLayout(target_box)
        trow.addWidget(self.unit)
        trow.addWidget(self.slider, 1)
        trow.addWidget(self.target)
        self.unit.currentIndexChanged.connect(self._unit_changed)
        self.slider.valueChanged.connect(self._slider_moved)
        self.target.valueChanged.connect(self._target_edited)

        # --- result
        self.switches = QLabel()
        self.switches.setTextFormat(Qt.TextFormat.RichText)
        self.achieved = QLabel("–")
        self.error = QLabel("–")
        self.rel_error = QLabel("–")
        self.sigma = QLabel("–")
        self.reachable = QLabel("–")
        self.method = QLabel("–")
        for lab in (self.achieved, self.error, self.rel_error, self.sigma, self.reachable):
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        result_box = QGroupBox("Best subset (labrss.rss.solve)")
        form = QFormLayout(result_box)
        form.addRow("Switches (branch 0 first)", self.switches)
        form.addRow("Achieved", self.achieved)
        form.addRow("Error (achieved − target)", self.error)
        form.addRow("Relative error", self.rel_error)
        form.addRow("Predicted u", self.sigma)
        form.addRow("Reachable", self.reachable)
        form.addRow("Method", self.method)
        self.program_button = QPushButton("Program this cell")
        self.program_button.setToolTip(
            "Realise the target on the board (labrss realise): program the cell's switches, "
            "verify by measurement, store the run"
        )
        self.program_button.clicked.connect(self.program_cell)
        self.program_button.setEnabled(False)
        self.realised = QLabel("")
        self.realised.setWordWrap(True)
        self.realised.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.program_button, self.realised)
        self.job: Job | None = None
        self.last_realised: RealiseResult | None = None

        # --- temperature span (a board with element TCRs)
        self.tcr: ElementTCR | None = None
        self.span: CellSpan | None = None
        self.span_check = QCheckBox("hold over")
        self.span_check.setToolTip(
            "choose the subset whose worst error over this board-temperature span is "
            "smallest, from the elements' TCRs (labrss calibrate --temperatures)"
        )
        self.span_lo = QDoubleSpinBox()
        self.span_hi = QDoubleSpinBox()
        for box, value in ((self.span_lo, 15.0), (self.span_hi, 35.0)):
            box.setRange(-50.0, 150.0)
            box.setDecimals(1)
            box.setSuffix(" °C")
            box.setValue(value)
            box.valueChanged.connect(self.solve)
        self.span_check.toggled.connect(self.solve)
        self.span_label = QLabel("needs a calibrated cell with element TCRs")
        self.span_label.setWordWrap(True)
        self.span_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        span_row = QHBoxLayout()
        span_row.addWidget(self.span_check)
        span_row.addWidget(self.span_lo)
        span_row.addWidget(QLabel("to"))
        span_row.addWidget(self.span_hi)
        span_row.addStretch(1)
        form.addRow("Temperature span", span_row)
        form.addRow("", self.span_label)
        self._update_span_enabled()

        # --- bits vs n
        self.bits_plot = pg.PlotWidget(background="w")
        style_plot(
            self.bits_plot.getPlotItem(),
            left=("precision (bits)", ""),
            bottom=("elements used n (the first n usable branches)", ""),
        )
        self.bits_plot.addLegend(offset=(10, 5))
        self.bits_panel = ctx.setup_plot(
            PlotPanel("Precision against the number of elements", self.bits_plot, self._bits_data)
        )
        self.interval = QComboBox()
        self.interval.addItem("worst case over the middle half of the reachable interval", "middle")
        self.interval.addItem("worst case over the whole reachable interval", "full")
        self.interval.currentIndexChanged.connect(self.rebuild_bank)
        right = QVBoxLayout()
        right.addWidget(self.bits_panel, 1)
        right.addWidget(self.interval)

        left = QVBoxLayout()
        left.addWidget(source_box)
        left.addWidget(target_box)
        left.addWidget(result_box)
        left.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 2)
        layout.addLayout(right, 3)
        self.rebuild_bank()

    # ------------------------------------------------------------------ bank
    @property
    def kind(self) -> TargetKind:
        """The target's unit: conductance (S) or resistance (ohm)."""
        return "resistance" if self.unit.currentData() == "resistance" else "conductance"

    @property
    def interval_full(self) -> bool:
        """Whether the precision curve is over the whole reachable interval."""
        return bool(self.interval.currentData() == "full")

    def rebuild_bank(self) -> None:
        """Build the bank from the chosen source, then re-solve and redraw the curve."""
        try:
            if self.use_cal.isChecked() and self.calibration is not None:
                self.bank = bank_from_calibration(
                    self.calibration, self.row.value(), self.col.value()
                )
            else:
                if self.use_cal.isChecked():
                    self.use_syn.setChecked(True)  # no calibration: the synthetic bank
                    return
                self.bank = synthetic_bank(
                    self.syn_k.value(),
                    self.syn_seed.value(),
                    self.syn_r0.value(),
                    self.syn_tol.value() / 100.0,
                )
            self.g_range_S = reachable_conductance_S(self.bank)
            self.curve = bits_vs_n(self.bank, "full" if self.interval_full else "middle")
        except ValueError as exc:
            self.source_label.setText(f"<span style='color:#c62828'>{exc}</span>")
            self.bank = None
            return
        b = self.bank
        excl = int(b.exclude.sum())
        self.source_label.setText(
            f"{b.source}: {b.size} branches"
            + (f", {excl} excluded (faulty or unknown)" if excl else "")
            + (f", series path {format_ohm(b.series_ohm)}" if b.series_ohm else "")
        )
        self._draw_curve()
        self._slider_moved(self.slider.value())

    def _draw_curve(self) -> None:
        plot = self.bits_plot.getPlotItem()
        plot.clear()
        plot.legend.clear()
        c = self.curve
        if c is None:
            return
        n = c.n.astype(float)
        plot.plot(
            n,
            c.bits,
            pen=pg.mkPen("#1565c0", width=2),
            symbol="o",
            symbolSize=7,
            symbolBrush="#1565c0",
            name=f"this bank ({'whole interval' if c.interval == 'full' else 'middle half'})",
        )
        plot.plot(
            n,
            n,
            pen=pg.mkPen("#757575", width=1.5, style=Qt.PenStyle.DashLine),
            name="counting limit: n bits",
        )
        if c.noise_floor_bits is not None and np.isfinite(c.noise_floor_bits).any():
            plot.plot(
                n,
                c.noise_floor_bits,
                pen=pg.mkPen("#c62828", width=1.5, style=Qt.PenStyle.DotLine),
                name="measurement noise floor",
            )
        plot.setXRange(0.5, float(n[-1]) + 0.5)
        top = float(np.nanmax(n))
        if c.noise_floor_bits is not None and np.isfinite(c.noise_floor_bits).any():
            top = max(top, float(np.nanmax(c.noise_floor_bits[np.isfinite(c.noise_floor_bits)])))
        finite = c.bits[np.isfinite(c.bits)]
        bottom = min(0.0, float(finite.min())) - 0.5 if finite.size else 0.0
        plot.setYRange(bottom, 1.3 * top + 1.0)  # head room for the legend (top left)

    def _bits_data(self) -> PlotData | None:
        c = self.curve
        if c is None:
            return None
        floor = c.noise_floor_bits if c.noise_floor_bits is not None else np.full(c.n.shape, np.nan)
        return PlotData.from_columns(
            n=c.n,
            bits=c.bits,
            worst_error_S=c.worst_error_S,
            reachable_width_S=c.width_S,
            interval_lo_S=c.interval_lo_S,
            interval_hi_S=c.interval_hi_S,
            counting_limit_bits=c.n.astype(np.float64),
            noise_floor_bits=floor,
        )

    # ------------------------------------------------------------------ target
    def _target_from_slider(self, pos: int) -> float:
        lo, hi = self.g_range_S
        g = lo + (hi - lo) * pos / SLIDER_STEPS
        if self.kind == "conductance":
            return g * 1e6
        return 1.0 / g if g > 0 else math.inf

    def _unit_changed(self) -> None:
        if self.kind == "conductance":
            self.target.setDecimals(4)
            self.target.setSuffix(" µS")
        else:
            self.target.setDecimals(2)
            self.target.setSuffix(" Ω")
        self._slider_moved(self.slider.value())

    def _slider_moved(self, pos: int) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            self.target.setValue(self._target_from_slider(pos))
        finally:
            self._updating = False
        self.solve()

    def _target_edited(self, value: float) -> None:
        if self._updating:
            return
        lo, hi = self.g_range_S
        g = value * 1e-6 if self.kind == "conductance" else (1.0 / value if value > 0 else 0.0)
        self._updating = True
        try:
            if hi > lo:
                self.slider.setValue(round((g - lo) / (hi - lo) * SLIDER_STEPS))
        finally:
            self._updating = False
        self.solve()

    def target_value(self) -> float:
        """The target in the solver's unit: S or ohm."""
        v = self.target.value()
        return v * 1e-6 if self.kind == "conductance" else v

    def set_target(self, value: float, kind: TargetKind) -> None:
        """Set the unit and the target (S or ohm) as a user would, and solve."""
        self.unit.setCurrentIndex(self.unit.findData(kind))
        self.target.setValue(value * 1e6 if kind == "conductance" else value)

    def solve(self) -> RSSResult | None:
        """Solve the bank for the current target and show the result."""
        if self.bank is None:
            return None
        target = self.target_value()
        if not math.isfinite(target) or target <= 0:
            self.achieved.setText("–")
            return None
        res = solve_bank(self.bank, target, self.kind)
        self.result = res
        mask = np.asarray(res.mask, dtype=bool)
        cells = []
        for k, closed in enumerate(mask):
            colour = "#2e7d32" if closed else ("#bdbdbd" if not self.bank.exclude[k] else "#c62828")
            mark = "■" if closed else ("✕" if self.bank.exclude[k] else "□")
            cells.append(f"<span style='color:{colour}; font-size:15pt'>{mark}</span>")
        closed_list = ", ".join(str(k) for k in np.flatnonzero(mask)) or "none"
        self.switches.setText(" ".join(cells) + f"&nbsp;&nbsp;closed: {closed_list}")
        value, err = float(res.value), float(res.error)
        self.achieved.setText(format_value(value, self.kind))
        self.achieved.setToolTip(repr(value))
        self.error.setText(f"{format_value(err, self.kind)}")
        rel = err / target
        self.rel_error.setText(
            f"{100 * rel:+.4g} %" if abs(rel) >= 1e-3 else f"{1e6 * rel:+.4g} ppm"
        )
        sigma: float | None = None if res.sigma is None else float(res.sigma)
        if sigma is not None and self.use_cal.isChecked() and self.calibration is not None:
            sigma = self._budget_sigma(np.asarray(res.mask, dtype=bool), value) or sigma
        self.sigma.setText(
            format_value(float(sigma), self.kind) + " (k = 1)"
            if sigma is not None
            else "– (synthetic bank)"
        )
        lo, hi = float(res.reachable_lo), float(res.reachable_hi)
        flag = "" if bool(res.reachable) else "  (target outside: nearest end)"
        self.reachable.setText(
            f"{format_value(lo, self.kind)} … {format_value(hi, self.kind)}{flag}"
        )
        self.method.setText(f"{res.method}, {'exact' if bool(res.exact) else 'heuristic'}")
        self._solve_span()
        return res

    def _span_active(self) -> bool:
        return (
            self.span_check.isChecked()
            and self.use_cal.isChecked()
            and self.calibration is not None
            and self.tcr is not None
        )

    def _update_span_enabled(self) -> None:
        ok = self.use_cal.isChecked() and self.calibration is not None and self.tcr is not None
        for w in (self.span_check, self.span_lo, self.span_hi):
            w.setEnabled(ok)
        if not ok:
            self.span = None
            self.span_label.setText("needs a calibrated cell with element TCRs")

    def _solve_span(self) -> None:
        """The compensated subset over the span beside the plain one (worst errors)."""
        self.span = None
        if not self._span_active():
            if self.span_check.isEnabled():
                self.span_label.setText("off: the best subset at the present temperature")
            return
        assert self.calibration is not None and self.tcr is not None
        lo, hi = float(self.span_lo.value()), float(self.span_hi.value())
        if not lo < hi:
            self.span_label.setText("the span's low end must be below its high end")
            return
        try:
            target = self.bank_target()
            leak = self.ctx.store.leakage_model(self.calibration)
            span = cell_span(
                self.calibration,
                self.tcr,
                target.r,
                target.c,
                target.target_S,
                (lo, hi),
                leakage_rate=leak[0] if leak is not None else None,
                c0_reference_C=float(leak[1][target.r, target.c]) if leak else float("nan"),
            )
        except (RealiseError, ValueError) as exc:
            self.span_label.setText(f"<span style='color:#c62828'>{exc}</span>")
            return
        self.span = span
        info = span.info
        t = info["target_S"]
        at_ref = 1e6 * info["error_at_reference_compensated_S"] / t
        self.span_label.setText(
            f"worst error over {lo:g}..{hi:g} °C (ratio part; the target follows the common "
            f"TCR {info['common_tcr_ppm_per_K']:+.1f} ppm/K): plain 0x{info['plain_mask']:X} "
            f"{1e6 * info['worst_plain_S'] / t:.2f} ppm, compensated "
            f"0x{info['compensated_mask']:X} {1e6 * info['worst_compensated_S'] / t:.2f} ppm "
            f"(within {1e6 * info['worst_compensated_bound_S'] / t:.2f} ppm, k = 2; at "
            f"{info['reference_C']:g} °C: {at_ref:+.2f} ppm); Program realises the "
            "compensated one"
        )

    def _budget_sigma(self, mask: np.ndarray, value: float) -> float | None:
        """The predicted value's combined standard uncertainty from the calibration's
        budget (correlated sources add linearly), in the target's unit; None without one."""
        cal = self.calibration
        if cal is None or cal.budget is None:
            return None
        r, c = self.row.value(), self.col.value()
        b = cal.budget
        cell = ElementBudget(b.sources, b.value_S[r, c], b.cov_S2[r, c], b.contrib_S[r, c])
        bank = cell.bank(mask)
        g_bank, u_bank = float(bank.value_S), float(bank.u_S)
        if not (math.isfinite(u_bank) and g_bank > 0):
            return None
        rs = self.bank.series_ohm if self.bank is not None else 0.0
        # through the series path: G = g / (1 + r_s g), dG/dg = 1 / (1 + r_s g)^2
        u_cell = u_bank / (1.0 + rs * g_bank) ** 2
        if self.kind == "conductance":
            return u_cell
        return u_cell * value**2  # R = 1 / G: u_R = u_G R^2

    # ------------------------------------------------------------------ program
    def bank_target(self) -> Target:
        """The explorer's target as the bank's own value (its series path removed): what
        `labrss.workflows.realise.realise` realises."""
        rs = self.bank.series_ohm if self.bank is not None else 0.0
        v = self.target_value()
        if self.kind == "conductance":
            den = 1.0 - rs * v
            if den <= 0:
                raise ValueError(f"target {v:g} S is beyond the series path's 1/r_s")
            return Target(self.row.value(), self.col.value(), v / den, "conductance")
        if v <= rs:
            raise ValueError(f"target {v:g} ohm is below the series path {rs:g} ohm")
        return Target(self.row.value(), self.col.value(), v - rs, "resistance")

    def program_cell(self) -> Job | None:
        """Realise the current target on the calibrated cell (worker job)."""
        session = self.ctx.session
        if session is None or session.db_path is None or not self.use_cal.isChecked():
            return None
        try:
            target = self.bank_target()
        except ValueError as exc:
            self.realised.setText(f"<span style='color:#c62828'>{exc}</span>")
            return None
        db = str(session.db_path)
        span = (
            (float(self.span_lo.value()), float(self.span_hi.value()))
            if self._span_active() and self.span is not None
            else None
        )

        def run(ctx: JobContext) -> RealiseResult:
            with Store(db) as store:
                return realise(
                    ctx.lab,
                    store,
                    [target],
                    RealiseSettings(temperature_range_C=span),
                    progress=ctx.progress,
                )

        self.realised.setText("programming …")
        self.job = self.ctx.run(
            f"realise cell ({target.r}, {target.c})",
            run,
            self._realised,
            on_error=lambda exc: self._program_ended(f"failed: {exc}"),
        )
        self._update_program_button()
        return self.job

    def _realised(self, result: RealiseResult) -> None:
        self.last_realised = result
        (cell,) = result.cells
        rel = cell.measured_S / cell.target_S - 1
        off = f"{100 * rel:+.3g} %" if abs(rel) >= 1e-3 else f"{1e6 * rel:+.3g} ppm"
        met = f"{off} from the target"
        self._program_ended(
            f"run {result.run_id}: switches 0x{cell.mask:X}; predicted bank "
            f"{format_siemens(cell.predicted_S)} ± {format_siemens(cell.expanded_S)} (k = 2, "
            f"{1e6 * cell.expanded_S / cell.predicted_S:.3g} ppm); measured "
            f"{format_siemens(cell.measured_S)}, {met}"
        )

    def _program_ended(self, text: str) -> None:
        self.job = None
        self.realised.setText(text)
        self._update_program_button()

    def _update_program_button(self) -> None:
        session = self.ctx.session
        self.program_button.setEnabled(
            session is not None
            and self.calibration is not None
            and self.use_cal.isChecked()
            and self.job is None
            and not self.ctx.busy
        )

    def set_busy(self, busy: bool) -> None:
        self._update_program_button()

    # ------------------------------------------------------------------ hooks
    def on_connected(self, session: Session) -> None:
        self.row.setRange(0, session.rows - 1)
        self.col.setRange(0, session.cols - 1)
        self.syn_k.setValue(min(session.branches, self.syn_k.maximum()))
        self.refresh_calibration()

    def refresh_calibration(self) -> None:
        """Take the connected board's latest calibration from the store (if any)."""
        self.calibration = self.ctx.store.latest_calibration()
        self.tcr = self.ctx.store.latest_tcr() if self.calibration is not None else None
        self.use_cal.setEnabled(self.calibration is not None)
        if self.calibration is not None:
            self.use_cal.setChecked(True)
        self._update_span_enabled()
        self.rebuild_bank()
        self._update_program_button()

    def on_disconnected(self) -> None:
        self.calibration = None
        self.tcr = None
        self._update_span_enabled()
        self.use_cal.setEnabled(False)
        self.use_syn.setChecked(True)
        self._update_program_button()

    def plots(self) -> list[PlotPanel]:
        return [self.bits_panel]
