"""The Board tab: the crossbar as a heat map of the connected board's latest calibration,
with each cell's bank (branch values, switch states, reading history) and "Measure"."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from labrss.gui.calibration_view import (
    QUANTITIES,
    CellMap,
    cell_map,
    describe_cell,
    nominal_conductance_S,
)
from labrss.gui.plot_export import PlotData, PlotPanel, style_plot
from labrss.gui.result_stream import ResultEvent, format_ohm, format_siemens
from labrss.gui.session import Session
from labrss.gui.tabs.base import LabTab, TabContext
from labrss.gui.widgets.heatmap import CrossbarHeatMap
from labrss.gui.workers import JobContext
from labrss.lab import Reading
from labrss.report.uncertainty_budget import budget_rows
from labrss.store import Calibration, ElementTCR

log = logging.getLogger(__name__)

_BRANCH_COLUMNS = ("branch", "G", "u(G)", "R", "deviation", "switch", "fault")

#: Temperature-coefficient maps (``labrss calibrate --temperatures``), beside QUANTITIES.
TCR_QUANTITIES: dict[str, tuple[str, str]] = {
    "tcr": ("temperature coefficient (ppm/K)", ""),
    "tcr_u": ("u(temperature coefficient) (ppm/K)", ""),
}


def tcr_map(tcr: ElementTCR, key: str, branch: int | None, faults: NDArray[np.bool_]) -> CellMap:
    """The TCR map: one branch's coefficient (or its uncertainty), or the whole cell's:
    the conductance-weighted mean of its elements' (what the bank drifts by with every
    branch closed) and its uncertainty."""
    label, unit = TCR_QUANTITIES[key]
    alpha, u, g = tcr.tcr_ppm_per_K, tcr.u_tcr_ppm_per_K, tcr.conductance_S
    with np.errstate(all="ignore"):
        if branch is not None:
            values = (alpha if key == "tcr" else u)[..., branch]
        else:
            w = np.where(tcr.known, g, 0.0)
            total = w.sum(axis=2)
            if key == "tcr":
                values = np.where(total > 0, (w * np.nan_to_num(alpha)).sum(axis=2) / total, np.nan)
            else:
                var = (w * np.nan_to_num(u)) ** 2
                values = np.where(total > 0, np.sqrt(var.sum(axis=2)) / total, np.nan)
    return CellMap(np.asarray(values, dtype=np.float64), label, unit, faults)


_BUDGET_COLUMNS = ("component", "branch", "ppm", "cell as switched", "ppm")


def read_switches_job(r: int, c: int) -> Callable[[JobContext], Any]:
    """Worker job: read cell (r, c)'s switch mask back from the board."""

    def run(ctx: JobContext) -> int:
        mask = ctx.lab.board.cell_mask(r, c)
        ctx.publish("cell_state", {"cell": (r, c), "mask": mask})
        return mask

    return run


def measure_cell_job(r: int, c: int) -> Callable[[JobContext], Any]:
    """Worker job: read cell (r, c) as programmed (no switch changes)."""

    def run(ctx: JobContext) -> Reading:
        reading = ctx.lab.measure_cell(r, c)
        ctx.publish("reading", reading)
        ctx.publish("cell_state", {"cell": (r, c), "mask": reading.mask})
        return reading

    return run


def measure_branches_job(r: int, c: int) -> Callable[[JobContext], Any]:
    """Worker job: each branch of cell (r, c) alone, then the cell's switches restored.

    Cancel is checked before every reading; a cancelled run leaves the bench in the safe
    state (every switch open) instead of restoring the mask.
    """

    def run(ctx: JobContext) -> list[Reading]:
        lab = ctx.lab
        original = lab.board.cell_mask(r, c)
        k_total = lab.geometry.branches
        readings: list[Reading] = []
        for k in range(k_total):
            ctx.check_cancel()
            reading = lab.measure_branch(r, c, k)
            readings.append(reading)
            ctx.publish("reading", reading)
            ctx.progress(k + 1, k_total, f"branch {k} of cell ({r}, {c})")
        lab.set_cell_mask(r, c, original)
        ctx.publish("cell_state", {"cell": (r, c), "mask": original})
        return readings

    return run


#: The history plot is redrawn at most this often while readings stream in (ms).
HISTORY_REDRAW_MS = 100

_HISTORY_FIELDS = ("run_id", "wall_time_s", "mask", "value", "voltage_V", "current_A", "nplc")


class CellHistory:
    """The selected cell's readings: stored ones, then those taken since (run_id -1 until
    the store has them), as rows of `_HISTORY_FIELDS` (float)."""

    def __init__(self, rows: list[tuple[float, ...]]) -> None:
        self.rows = rows

    @classmethod
    def empty(cls) -> CellHistory:
        return cls([])

    @classmethod
    def from_store(cls, stored: NDArray[np.void]) -> CellHistory:
        names = stored.dtype.names or ()
        if stored.size == 0 or "wall_time" not in names:
            return cls([])
        cols = [
            stored["run_id"],
            stored["wall_time"],
            stored["mask"].astype(np.float64),
            stored["value"],
            stored["voltage_V"],
            stored["current_A"],
            stored["nplc"],
        ]
        return cls([tuple(float(v) for v in row) for row in zip(*cols, strict=True)])

    def append(self, reading: Reading, wall_time: float) -> None:
        self.rows.append(
            (
                -1.0,
                wall_time,
                float(reading.mask),
                reading.conductance_S,
                reading.voltage_V,
                reading.current_A,
                reading.nplc,
            )
        )

    def __len__(self) -> int:
        return len(self.rows)

    def arrays(self) -> dict[str, NDArray[np.float64]]:
        data = np.array(self.rows, dtype=np.float64).reshape(-1, len(_HISTORY_FIELDS))
        return {name: data[:, i] for i, name in enumerate(_HISTORY_FIELDS)}


class BoardTab(LabTab):
    """Heat map of the latest calibration; the selected cell's bank and history."""

    title = "Board"

    def __init__(self, ctx: TabContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.calibration: Calibration | None = None
        self.nominal_S: NDArray[np.float64] | None = None
        self.nominal_from = ""
        self.maps: dict[str, CellMap] = {}
        self.tcr: ElementTCR | None = None
        self.cell_u_K: NDArray[np.float64] | None = None
        self.selected: tuple[int, int] | None = None
        self.cell_mask: int | None = None
        self.last_reading: Reading | None = None
        self.history = CellHistory.empty()
        self._history_timer = QTimer(self)
        self._history_timer.setSingleShot(True)
        self._history_timer.setInterval(HISTORY_REDRAW_MS)
        self._history_timer.timeout.connect(self._draw_history)

        # --- map controls
        self.quantity = QComboBox()
        listed: dict[str, tuple[str, str]] = {**dict(QUANTITIES.items()), **TCR_QUANTITIES}
        for key, (label, unit) in listed.items():
            self.quantity.addItem(f"{label}" + (f" [{unit}]" if unit else ""), key)
        self.branch = QComboBox()
        self.branch.addItem("whole cell (all usable branches closed)", -1)
        self.reload_button = QPushButton("Reload calibration")
        self.quantity.currentIndexChanged.connect(self._redraw)
        self.branch.currentIndexChanged.connect(self._redraw)
        self.reload_button.clicked.connect(self.reload)
        self.info = QLabel("Connect to a bench to see its calibration.")
        self.info.setWordWrap(True)
        self.hover = QLabel("Hover over a cell to read its values; click it to see its bank.")
        self.hover.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.heatmap = CrossbarHeatMap()
        self.heatmap.cell_hovered.connect(self._on_hover)
        self.heatmap.cell_clicked.connect(self.select_cell)
        self.map_panel = ctx.setup_plot(
            PlotPanel("Crossbar calibration map", self.heatmap, self._map_data)
        )
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Show"))
        controls.addWidget(self.quantity, 1)
        controls.addWidget(QLabel("of"))
        controls.addWidget(self.branch, 1)
        controls.addWidget(self.reload_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(controls)
        left_layout.addWidget(self.info)
        left_layout.addWidget(self.map_panel, 1)
        left_layout.addWidget(self.hover)

        # --- the selected cell
        self.cell_box = QGroupBox("Cell: none selected")
        self.table = QTableWidget(0, len(_BRANCH_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(_BRANCH_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setToolTip(
            "u(G): combined standard uncertainty (k = 1) of each branch; select a branch to "
            "see its uncertainty budget"
        )
        self.table.currentCellChanged.connect(self._branch_selected)
        self.budget_branch: int | None = None
        self.budget_box = QGroupBox("Uncertainty budget (docs/metrology.md)")
        self.budget_table = QTableWidget(0, len(_BUDGET_COLUMNS))
        self.budget_table.setHorizontalHeaderLabels(list(_BUDGET_COLUMNS))
        self.budget_table.verticalHeader().setVisible(False)
        self.budget_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.budget_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.budget_table.horizontalHeader().setStretchLastSection(True)
        self.budget_table.verticalHeader().setDefaultSectionSize(20)
        self.budget_table.setToolTip(
            "standard uncertainties (k = 1) of the selected branch and of the cell's bank as "
            "switched, per component; sources shared by the cell's branches (a range's gain, "
            "the common scale) add linearly in the cell (docs/metrology.md)"
        )
        budget_layout = QVBoxLayout(self.budget_box)
        budget_layout.setContentsMargins(4, 4, 4, 4)
        budget_layout.addWidget(self.budget_table)
        self.read_button = QPushButton("Read switches")
        self.measure_button = QPushButton("Measure cell")
        self.branches_button = QPushButton("Measure branches")
        self.measure_button.setObjectName("measure_cell")
        self.read_button.clicked.connect(self.read_switches)
        self.measure_button.clicked.connect(self.measure_cell)
        self.branches_button.clicked.connect(self.measure_branches)
        self.reading_label = QLabel("Last reading: –")
        self.reading_label.setWordWrap(True)
        self.reading_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.history_plot = pg.PlotWidget(background="w")
        style_plot(
            self.history_plot.getPlotItem(),
            left=("conductance G", "S"),
            bottom=("time since first reading", "s"),
        )
        self.history_plot.addLegend(offset=(-5, 5))
        self.history_panel = ctx.setup_plot(
            PlotPanel("Reading history of the cell", self.history_plot, self._history_data)
        )
        buttons = QHBoxLayout()
        for b in (self.read_button, self.measure_button, self.branches_button):
            buttons.addWidget(b)
        self.cell_pages = QTabWidget()
        self.cell_pages.addTab(self.budget_box, "Uncertainty budget")
        self.cell_pages.addTab(self.history_panel, "Reading history")
        cell_layout = QVBoxLayout(self.cell_box)
        cell_layout.addWidget(self.table, 3)
        cell_layout.addLayout(buttons)
        cell_layout.addWidget(self.reading_label)
        cell_layout.addWidget(self.cell_pages, 4)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.cell_box)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._set_actions_enabled(False)

    # ------------------------------------------------------------------ data
    def reload(self) -> None:
        """Fetch the latest calibration of the connected board from the store and redraw."""
        session = self.ctx.session
        self.calibration = self.ctx.store.latest_calibration() if session else None
        self.tcr = self.ctx.store.latest_tcr() if session else None
        self.cell_u_K = (
            self.ctx.store.cell_temperature_u_K(self.calibration)
            if self.calibration is not None and self.tcr is not None
            else None
        )
        if self.calibration is not None and session is not None:
            self.nominal_S, self.nominal_from = nominal_conductance_S(
                self.calibration, session.board_info
            )
            cal = self.calibration
            n_faults = len(cal.faults)
            self.info.setText(
                f"Latest calibration of board {session.board_serial}: run {cal.run_id}, "
                f"{int(cal.measured.sum())} of {cal.measured.size} cells measured, "
                f"{n_faults} faulty branch{'es' if n_faults != 1 else ''} (red crosses); "
                f"nominal = {self.nominal_from}."
                + (
                    f" Temperature coefficients of {int(self.tcr.known.sum())} elements "
                    f"(thermal calibration run {int(self.tcr.run_id.max())})."
                    if self.tcr is not None
                    else ""
                )
            )
        elif session is not None:
            self.nominal_S = None
            self.info.setText(
                f"No calibration of board {session.board_serial} in {self.ctx.store.path}: "
                "run `labrss calibrate` (or the Calibrate tab), then Reload."
            )
        self._redraw()
        if self.selected is not None:
            self._show_cell()

    def _current(self) -> tuple[str, int | None]:
        quantity = str(self.quantity.currentData())
        k = int(self.branch.currentData() if self.branch.currentData() is not None else -1)
        return quantity, (None if k < 0 else k)

    def _redraw(self) -> None:
        session = self.ctx.session
        quantity, k = self._current()
        all_quantities: dict[str, tuple[str, str]] = {**dict(QUANTITIES.items()), **TCR_QUANTITIES}
        label, unit = all_quantities[quantity]
        if self.calibration is None or self.nominal_S is None:
            shape = (session.rows, session.cols) if session else (1, 1)
            self.maps = {}
            self.heatmap.set_data(np.full(shape, np.nan), label, unit)
            return
        self.maps = {q: cell_map(self.calibration, q, k, self.nominal_S) for q in QUANTITIES}
        if self.tcr is not None:
            faults = self.maps["G"].faults
            for key in TCR_QUANTITIES:
                self.maps[key] = tcr_map(self.tcr, key, k, faults)
        if quantity not in self.maps:  # a TCR map without TCRs: empty, with its label
            t_label, t_unit = TCR_QUANTITIES[quantity]
            self.heatmap.set_data(np.full(self.maps["G"].values.shape, np.nan), t_label, t_unit)
            return
        shown = self.maps[quantity]
        self.heatmap.set_data(shown.values, shown.label, shown.unit, faults=shown.faults)
        if self.selected is not None:
            self.heatmap.select(*self.selected)

    def _map_data(self) -> PlotData | None:
        if not self.maps:
            return None
        rows, cols = self.heatmap.shape
        rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        columns: dict[str, NDArray[np.float64]] = {
            "row": rr.ravel().astype(np.float64),
            "column": cc.ravel().astype(np.float64),
        }
        names = {
            "G": "G_S",
            "R": "R_ohm",
            "deviation": "deviation_pct",
            "uncertainty": "u_G_ppm",
            "tcr": "tcr_ppm_per_K",
            "tcr_u": "u_tcr_ppm_per_K",
        }
        for q, m in self.maps.items():
            columns[names[q]] = m.values.ravel()
        columns["fault"] = next(iter(self.maps.values())).faults.ravel().astype(float)
        return PlotData.from_columns(**columns)

    # ------------------------------------------------------------------ hover and cell
    def _on_hover(self, r: int, c: int) -> None:
        if r < 0:
            return
        text = f"cell ({r}, {c})"
        if self.maps:
            g = self.maps["G"].values[r, c]
            text += (
                f": G = {format_siemens(g)}, R = {format_ohm(self.maps['R'].values[r, c])}, "
                f"deviation {self.maps['deviation'].values[r, c]:+.3g} %, "
                f"u(G) {self.maps['uncertainty'].values[r, c]:.3g} ppm"
            )
            rows = budget_rows(self.calibration, r, c, None, None)
            scale = next((row[4] for row in rows if row[0] == "scale"), float("nan"))
            if np.isfinite(scale):
                text += f" (k = 1; of which the common scale {1e6 * scale:.3g} ppm)"
            if "tcr" in self.maps and np.isfinite(self.maps["tcr"].values[r, c]):
                text += (
                    f", TCR {self.maps['tcr'].values[r, c]:+.2f} "
                    f"+- {self.maps['tcr_u'].values[r, c]:.2f} ppm/K"
                )
            if self.maps["G"].faults[r, c]:
                text += "  FAULT"
        else:
            text += ": no calibration"
        self.hover.setText(text)

    def select_cell(self, r: int, c: int) -> None:
        """Show cell (r, c)'s bank and history; read its switches from the board."""
        self.selected = (r, c)
        self.cell_mask = None
        self.last_reading = None
        self.heatmap.select(r, c)
        self._show_cell()
        self._load_history()
        if self.ctx.session is not None and not self.ctx.busy:
            self.read_switches()

    def _show_cell(self) -> None:
        if self.selected is None:
            return
        r, c = self.selected
        self.cell_box.setTitle(f"Cell ({r}, {c})")
        session = self.ctx.session
        k_total = session.branches if session else 0
        rows = describe_cell(self.calibration, r, c, self.nominal_S)
        self.table.setRowCount(k_total)
        for k in range(k_total):
            info = rows[k] if k < len(rows) else {}
            closed = None if self.cell_mask is None else bool(self.cell_mask >> k & 1)
            cells = [
                str(k),
                format_siemens(float(info["G_S"])) if info else "–",
                format_siemens(float(info["std_S"])) if info else "–",
                format_ohm(float(info["R_ohm"])) if info else "–",
                f"{float(info['deviation_pct']):+.3g} %" if info else "–",
                "?" if closed is None else ("closed" if closed else "open"),
                str(info.get("fault", "")) if info else "",
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col and col < 5:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(k, col, item)
        self._show_budget()

    def _branch_selected(self, row: int, *_: int) -> None:
        self.budget_branch = row if row >= 0 else None
        self._show_budget()

    def _show_budget(self) -> None:
        """The budget view: the selected branch (default 0) and the cell as switched."""
        if self.selected is None:
            return
        r, c = self.selected
        session = self.ctx.session
        k_total = session.branches if session else 0
        chosen = self.budget_branch if self.budget_branch is not None else 0
        k = chosen if 0 <= chosen < k_total else None
        # an open cell (0x0) is its off-leakage c0 alone, whose ppm say nothing: show the
        # whole cell (every usable branch closed) instead
        mask = self.cell_mask or None
        rows = budget_rows(
            self.calibration,
            r,
            c,
            k,
            mask,
            tcr=self.tcr,
            cell_u_K=float(self.cell_u_K[r, c]) if self.cell_u_K is not None else float("nan"),
        )
        measured_tcr = (
            self.tcr is not None
            and self.calibration is not None
            and bool(self.tcr.known[r, c][self.calibration.usable[r, c]].all())
        )
        if mask is None:
            where = "the cell is open: " if self.cell_mask == 0 else ""
            mask_text = f"{where}every usable branch closed"
        else:
            mask_text = f"0x{mask:X}"
        self.budget_box.setTitle(
            f"Branch {k if k is not None else '-'} and the cell as switched ({mask_text})"
        )
        self.budget_table.setRowCount(len(rows))
        for i, (name, uk, rk, ub, rb) in enumerate(rows):
            if name == "temperature" and measured_tcr:
                name = "temperature (TCRs)"
            texts = [
                name,
                format_siemens(uk) if np.isfinite(uk) else "–",
                f"{1e6 * rk:.3g}" if np.isfinite(rk) else "–",
                format_siemens(ub) if np.isfinite(ub) else "–",
                f"{1e6 * rb:.3g}" if np.isfinite(rb) else "–",
            ]
            for col, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.budget_table.setItem(i, col, item)

    def _load_history(self) -> None:
        """The selected cell's stored readings (store query), then drawn."""
        if self.selected is None:
            return
        self.history = CellHistory.from_store(self.ctx.store.cell_history(*self.selected))
        self._draw_history()

    def _draw_history(self) -> None:
        plot = self.history_plot.getPlotItem()
        plot.clear()
        plot.legend.clear()
        h = self.history.arrays()
        if h["value"].size == 0:
            return
        t = h["wall_time_s"] - h["wall_time_s"][0]
        single = np.array([m != 0 and m & (m - 1) == 0 for m in h["mask"].astype(np.int64)])
        for sel, name, colour, symbol in (
            (single, "one branch", "#1565c0", "o"),
            (~single, "cell / subset", "#e65100", "s"),
        ):
            if sel.any():
                plot.plot(
                    t[sel],
                    h["value"][sel],
                    pen=None,
                    symbol=symbol,
                    symbolSize=7,
                    symbolBrush=colour,
                    symbolPen=None,
                    name=name,
                )

    def _history_data(self) -> PlotData | None:
        h = self.history.arrays()
        if h["value"].size == 0:
            return None
        return PlotData.from_columns(
            run_id=h["run_id"],
            wall_time_s=h["wall_time_s"],
            mask=h["mask"],
            G_S=h["value"],
            voltage_V=h["voltage_V"],
            current_A=h["current_A"],
            nplc=h["nplc"],
        )

    # ------------------------------------------------------------------ bench actions
    def read_switches(self) -> None:
        """Read the selected cell's switch mask (worker)."""
        if self.selected is not None:
            r, c = self.selected
            self.ctx.run(f"read switches of cell ({r}, {c})", read_switches_job(r, c))

    def measure_cell(self) -> None:
        """Measure the selected cell as programmed (worker)."""
        if self.selected is not None:
            r, c = self.selected
            self.ctx.run(f"measure cell ({r}, {c})", measure_cell_job(r, c))

    def measure_branches(self) -> None:
        """Measure each branch of the selected cell alone (worker, cancellable)."""
        if self.selected is not None:
            r, c = self.selected
            self.ctx.run(f"measure the branches of cell ({r}, {c})", measure_branches_job(r, c))

    def on_event(self, event: ResultEvent) -> None:
        if event.kind == "cell_state" and tuple(event.data["cell"]) == self.selected:
            self.cell_mask = int(event.data["mask"])
            self._show_cell()
        elif event.kind == "reading" and isinstance(event.data, Reading):
            reading = event.data
            if reading.cell == self.selected:
                self.last_reading = reading
                flag = " (COMPLIANCE LIMIT)" if reading.limit_tripped else ""
                self.reading_label.setText(
                    f"Last reading ({reading.kind}, switches 0x{reading.mask:X}): "
                    f"R = {format_ohm(reading.resistance_ohm)}, "
                    f"G = {format_siemens(reading.conductance_S)} at "
                    f"{reading.voltage_V:.4g} V, NPLC {reading.nplc:g}{flag}"
                )
                self.history.append(reading, event.wall_time)
                if not self._history_timer.isActive():  # redraw at most every 100 ms
                    self._history_timer.start()
        elif event.kind == "safe":
            self.cell_mask = 0 if self.selected is not None else None
            self._show_cell()

    def on_connected(self, session: Session) -> None:
        self.branch.blockSignals(True)
        self.branch.clear()
        self.branch.addItem("whole cell (all usable branches closed)", -1)
        for k in range(session.branches):
            self.branch.addItem(f"branch {k}", k)
        self.branch.blockSignals(False)
        if self.selected is not None and not (
            self.selected[0] < session.rows and self.selected[1] < session.cols
        ):
            self.selected = None
        self.reload()
        self._set_actions_enabled(not self.ctx.busy)

    def on_disconnected(self) -> None:
        self.calibration = None
        self.maps = {}
        self.info.setText("Not connected.")
        self._set_actions_enabled(False)

    def set_busy(self, busy: bool) -> None:
        self._set_actions_enabled(not busy and self.ctx.session is not None)

    def _set_actions_enabled(self, enabled: bool) -> None:
        for b in (self.read_button, self.measure_button, self.branches_button):
            b.setEnabled(enabled)

    def plots(self) -> list[PlotPanel]:
        return [self.map_panel, self.history_panel]

    def save_state(self) -> None:
        self.ctx.settings.set_value(self.settings_key("quantity"), str(self.quantity.currentData()))

    def restore_state(self) -> None:
        saved = self.ctx.settings.value(self.settings_key("quantity"))
        i = self.quantity.findData(saved)
        if i >= 0:
            self.quantity.setCurrentIndex(i)
