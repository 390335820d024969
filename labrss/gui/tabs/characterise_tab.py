"""The Characterise tab: the memristor modules (form, I-V, retention, endurance, seek) with live
plots, progress and cancel, and sequences of them (a step list you can edit, save, load,
run and resume).

Each module runs its workflow function (`labrss.workflows.memristor_iv.iv_sweep`, ...)
in the bench worker, exactly as the CLI does, stored in the session's database; every
new point is published on the result stream (``characterise_point``) and drawn at once.
The settings form is built from the module's settings dataclass, so a new field appears
without a change here. Cancel (the main window's) stops the module at its next step; the
run is stored ``interrupted`` with its data. The sequence list is the JSON of
`labrss.workflows.sequence` (one row per top-level step, its settings as JSON, editable
in place); Save writes JSON, Load reads TOML or JSON; Run checks every step against the
bench first; Resume continues an interrupted sequence run through the store.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
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
from labrss.gui.workers import Job, JobContext
from labrss.store import Store
from labrss.workflows.memristor_module import ModuleResult, select_devices
from labrss.workflows.sequence import (
    MODULES,
    SequenceResult,
    load_sequence,
    parse_sequence,
    run_sequence,
)

log = logging.getLogger(__name__)

#: Modules offered, in menu order (the sequence registry may hold more).
MODULE_NAMES = ("form", "iv", "retention", "endurance", "seek")
_STEP_COLUMNS = ("step", "cells", "branches", "settings (JSON)")
#: Default field values shown for seek (it has a required target).
_SEEK_DEFAULTS = {"target_S": 40e-6, "tolerance": 0.01}
_PLOT_AXES = {
    "form": (("current", "A"), ("ramp voltage", "V")),
    "iv": (("conductance G", "S"), ("pulse amplitude", "V")),
    "retention": (("conductance G", "S"), ("time since start", "s")),
    "endurance": (("G on / G off", "S"), ("cycle", "")),
    "seek": (("conductance G", "S"), ("pulse number", "")),
}
_COLOURS = ("#1976d2", "#d32f2f", "#388e3c", "#f57c00", "#7b1fa2", "#0097a7", "#5d4037")


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_field(text: str) -> Any:
    """A form field's value: empty -> None, true/false, int, float, else the string."""
    t = text.strip()
    if t == "":
        return None
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t


def module_fields(module: str) -> list[tuple[str, Any]]:
    """The settings fields a module's form shows, with their defaults (flattened for seek:
    its own fields, then the write-verify knobs)."""
    spec = MODULES[module]
    if module == "seek":
        out: list[tuple[str, Any]] = [("target_S", 40e-6), ("reads", 2), ("nplc", None)]
        wv = spec.build(dict(_SEEK_DEFAULTS)).write_verify
        out += [(f.name, getattr(wv, f.name)) for f in dataclasses.fields(wv)]
        return out
    settings = spec.build({})
    return [(f.name, getattr(settings, f.name)) for f in dataclasses.fields(settings)]


def module_job(
    module: str,
    cells: str,
    branches: str,
    values: dict[str, Any],
    db_path: str | None,
) -> Callable[[JobContext], ModuleResult]:
    """Worker job: one module run, stored, each point published live."""
    spec = MODULES[module]
    settings = spec.build(dict(values))  # refuse bad values before the job starts

    def run(ctx: JobContext) -> ModuleResult:
        lab = ctx.lab
        devices = select_devices(lab, cells, branches)
        kwargs: dict[str, Any] = {
            "progress": ctx.progress,
            "should_stop": lambda: ctx.cancelled,
            "on_data": lambda kind, point: ctx.publish("characterise_point", (kind, point)),
            "note": "labrss gui",
        }
        if db_path is None:
            result = spec.run(lab, devices, settings, kwargs | {"store": None})
        else:
            with Store(db_path) as store:
                result = spec.run(lab, devices, settings, kwargs | {"store": store})
        ctx.publish("characterise_done", (module, result))
        return result

    return run


def sequence_job(
    raw: dict[str, Any], db_path: str | None, resume: int | None
) -> Callable[[JobContext], SequenceResult]:
    """Worker job: run (or resume) a sequence, stored, steps and points published live."""
    definition = parse_sequence(raw, "the step list")

    def run(ctx: JobContext) -> SequenceResult:
        kwargs: dict[str, Any] = {
            "progress": ctx.progress,
            "should_stop": lambda: ctx.cancelled,
            "on_step": lambda rec: ctx.publish("characterise_step", rec),
            "on_data": lambda kind, point: ctx.publish("characterise_point", (kind, point)),
            "note": "labrss gui",
        }
        if db_path is None:
            return run_sequence(ctx.lab, definition, **kwargs)
        with Store(db_path) as store:
            return run_sequence(ctx.lab, definition, store=store, resume=resume, **kwargs)

    return run


class CharacteriseTab(LabTab):
    """Memristor characterisation modules and sequences, with live plots."""

    title = "Characterise"

    def __init__(self, ctx: TabContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.job: Job | None = None
        self.series: dict[int, list[tuple[float, float]]] = {}
        self.series_off: dict[int, list[tuple[float, float]]] = {}
        self.curves: dict[int, tuple[Any, Any]] = {}
        self.plot_kind = "iv"
        self.last_result: ModuleResult | None = None
        self.sequence_result: SequenceResult | None = None
        self.steps_done: list[str] = []

        # ---- module
        self.module = QComboBox()
        self.module.addItems(list(MODULE_NAMES))
        self.module.currentTextChanged.connect(self._module_changed)
        self.cells = QLineEdit("0,0")
        self.cells.setToolTip("ROWS,COLS: *, N or A-B joined by + (as for calibration)")
        self.branches = QLineEdit("0-1")
        self.branches.setToolTip("*, N, A-B or A+B")
        self.fields_box = QWidget()
        self.fields_form = QFormLayout(self.fields_box)
        self.fields_form.setContentsMargins(0, 0, 0, 0)
        self.field_edits: dict[str, QLineEdit] = {}
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run_module)
        self.add_button = QPushButton("Add to sequence")
        self.add_button.clicked.connect(self.add_module_step)
        self.status = QLabel("Connect to a memristor board (simulator preset 'memristor').")
        self.status.setWordWrap(True)
        module_box = QGroupBox("Module")
        form = QFormLayout(module_box)
        form.addRow("Module", self.module)
        form.addRow("Cells", self.cells)
        form.addRow("Branches", self.branches)
        form.addRow(self.fields_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.add_button)
        form.addRow(buttons)
        form.addRow(self.status)

        # ---- sequence
        self.steps = QTableWidget(0, len(_STEP_COLUMNS))
        self.steps.setHorizontalHeaderLabels(list(_STEP_COLUMNS))
        self.steps.verticalHeader().setVisible(False)
        self.steps.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.steps.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.steps.horizontalHeader().setStretchLastSection(True)
        self.wait_s = QDoubleSpinBox()
        self.wait_s.setRange(0.0, 1e9)
        self.wait_s.setValue(60.0)
        self.wait_s.setSuffix(" s")
        self.add_wait_button = QPushButton("Add wait")
        self.add_wait_button.clicked.connect(lambda: self.add_wait_step(self.wait_s.value()))
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_step)
        self.up_button = QPushButton("Up")
        self.up_button.clicked.connect(lambda: self.move_step(-1))
        self.down_button = QPushButton("Down")
        self.down_button.clicked.connect(lambda: self.move_step(1))
        self.load_button = QPushButton("Load…")
        self.load_button.clicked.connect(self._load_dialog)
        self.save_button = QPushButton("Save…")
        self.save_button.clicked.connect(self._save_dialog)
        self.run_seq_button = QPushButton("Run sequence")
        self.run_seq_button.clicked.connect(lambda: self.run_sequence(None))
        self.resume_run = QSpinBox()
        self.resume_run.setRange(0, 10**9)
        self.resume_run.setSpecialValueText("—")
        self.resume_run.setToolTip("an interrupted sequence run to continue (its id)")
        self.resume_button = QPushButton("Resume run")
        self.resume_button.clicked.connect(
            lambda: self.run_sequence(self.resume_run.value() or None)
        )
        seq_box = QGroupBox("Sequence")
        seq_layout = QVBoxLayout(seq_box)
        seq_layout.addWidget(self.steps, 1)
        row1 = QHBoxLayout()
        for w in (self.wait_s, self.add_wait_button, self.remove_button, self.up_button):
            row1.addWidget(w)
        row1.addWidget(self.down_button)
        row2 = QHBoxLayout()
        for w in (self.load_button, self.save_button, self.run_seq_button):
            row2.addWidget(w)
        row2.addWidget(self.resume_run)
        row2.addWidget(self.resume_button)
        seq_layout.addLayout(row1)
        seq_layout.addLayout(row2)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(module_box)
        left_layout.addWidget(seq_box, 1)

        # ---- plot
        self.plot = pg.PlotWidget(background="w")
        self.plot.addLegend(offset=(-10, 10))
        self.plot_panel = ctx.setup_plot(
            PlotPanel("Characterisation (live)", self.plot, self._plot_data)
        )
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.plot_panel)
        splitter.setSizes([470, 810])
        QVBoxLayout(self).addWidget(splitter)
        self._module_changed(self.module.currentText())
        self._update_buttons()

    # ------------------------------------------------------------------ form
    def _module_changed(self, module: str) -> None:
        while self.fields_form.rowCount():
            self.fields_form.removeRow(0)
        self.field_edits = {}
        for name, value in module_fields(module):
            edit = QLineEdit(_field_text(value))
            edit.setPlaceholderText("station's" if value is None else "")
            self.field_edits[name] = edit
            self.fields_form.addRow(name, edit)

    def values(self) -> dict[str, Any]:
        """The form's settings that differ from the module's defaults."""
        defaults = dict(module_fields(self.module.currentText()))
        out: dict[str, Any] = {}
        for name, edit in self.field_edits.items():
            value = parse_field(edit.text())
            if value != defaults.get(name) or name == "target_S":
                out[name] = value
        return out

    def set_field(self, name: str, value: Any) -> None:
        """Set a form field (tests, restored state)."""
        self.field_edits[name].setText(_field_text(value))

    # ------------------------------------------------------------------ module
    def run_module(self) -> None:
        """Run the chosen module on the chosen devices, stored, plotted live."""
        session = self.ctx.session
        if session is None:
            return
        module = self.module.currentText()
        try:
            job = module_job(
                module,
                self.cells.text(),
                self.branches.text(),
                self.values(),
                None if session.db_path is None else str(session.db_path),
            )
        except (KeyError, TypeError, ValueError) as exc:
            self.ctx.report_error(f"memristor {module}", f"bad setting: {exc}")
            return
        self._reset_plot(module)
        self.status.setText(f"Running {module} on {self.cells.text()} / {self.branches.text()}…")
        self.job = self.ctx.run(
            f"memristor {module}",
            job,
            self._module_done,
            on_error=lambda exc: self._ended(f"{module} failed: see the log."),
            on_cancelled=lambda: self._ended(f"{module} cancelled; the bench is safe."),
        )
        self._update_buttons()

    def _module_done(self, result: ModuleResult) -> None:
        self.last_result = result
        s = result.summary()
        state = "interrupted (cancelled)" if result.cancelled else "completed"
        extra = ""
        if "set" in s:
            med_set, med_reset = s["set"]["median_V"], s["reset"]["median_V"]
            extra = (
                f"; SET median {'–' if med_set is None else f'{med_set:.3g}'} V, RESET median "
                f"{'–' if med_reset is None else f'{med_reset:.3g}'} V"
            )
        elif "yield" in s:
            extra = f"; forming yield {100 * s['yield']:.0f} %"
        elif "failed" in s:
            extra = (
                f"; {s['failed']} failed, median cycles to failure {s['median_cycles_to_failure']}"
            )
        elif "status_counts" in s:
            extra = f"; {s['status_counts']}"
        self._ended(
            f"Run {result.run_id}: {state}, {s['devices']} devices, {s['pulses']} pulses, "
            f"{s['reads']} reads{extra}."
        )

    def _ended(self, text: str) -> None:
        self.job = None
        self.status.setText(text)
        self._update_buttons()

    # ------------------------------------------------------------------ sequence
    def _append_row(self, step: str, cells: str, branches: str, settings: Any) -> None:
        row = self.steps.rowCount()
        self.steps.insertRow(row)
        for j, text in enumerate((step, cells, branches, json.dumps(settings))):
            item = QTableWidgetItem(text)
            if j == 0:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.steps.setItem(row, j, item)

    def add_module_step(self) -> None:
        """Append the module form as a sequence step."""
        self._append_row(
            self.module.currentText(), self.cells.text(), self.branches.text(), self.values()
        )

    def add_wait_step(self, seconds: float) -> None:
        """Append a delay."""
        self._append_row("wait", "", "", {"wait_s": seconds})

    def remove_step(self) -> None:
        """Remove the selected step."""
        row = self.steps.currentRow()
        if row >= 0:
            self.steps.removeRow(row)

    def move_step(self, delta: int) -> None:
        """Move the selected step up (-1) or down (+1)."""
        row = self.steps.currentRow()
        dest = row + delta
        if row < 0 or not 0 <= dest < self.steps.rowCount():
            return
        texts = [self._cell(row, j) for j in range(len(_STEP_COLUMNS))]
        self.steps.removeRow(row)
        self.steps.insertRow(dest)
        for j, text in enumerate(texts):
            item = QTableWidgetItem(text)
            if j == 0:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.steps.setItem(dest, j, item)
        self.steps.setCurrentCell(dest, 0)

    def _cell(self, row: int, col: int) -> str:
        item = self.steps.item(row, col)
        return item.text() if item is not None else ""

    def sequence_dict(self) -> dict[str, Any]:
        """The step list as a sequence (the JSON of `labrss.workflows.sequence`)."""
        steps: list[dict[str, Any]] = []
        for row in range(self.steps.rowCount()):
            kind = self._cell(row, 0)
            try:
                settings = json.loads(self._cell(row, 3) or "{}")
            except json.JSONDecodeError as exc:
                raise ValueError(f"step {row + 1}: settings are not JSON: {exc}") from exc
            if kind in ("wait", "repeat"):
                steps.append(settings)
            else:
                steps.append(
                    {
                        "module": kind,
                        "cells": self._cell(row, 1),
                        "branches": self._cell(row, 2) or "*",
                        **settings,
                    }
                )
        return {"name": "gui sequence", "steps": steps}

    def set_sequence(self, raw: dict[str, Any]) -> None:
        """Show a sequence's top-level steps in the list (a loop is one row)."""
        self.steps.setRowCount(0)
        for step in raw.get("steps", []):
            if "module" in step:
                rest = {k: v for k, v in step.items() if k not in ("module", "cells", "branches")}
                self._append_row(
                    step["module"], step.get("cells", ""), step.get("branches", "*"), rest
                )
            elif "repeat" in step:
                self._append_row("repeat", "", "", step)
            else:
                self._append_row("wait", "", "", step)

    def load_file(self, path: str | Path) -> None:
        """Load a TOML or JSON sequence into the list (validated first)."""
        definition = load_sequence(path)
        self.set_sequence(definition.raw)
        self.status.setText(f"Loaded {definition.name!r} from {path}.")

    def save_file(self, path: str | Path) -> Path:
        """Save the list as a JSON sequence (validated first)."""
        raw = self.sequence_dict()
        parse_sequence(raw, str(path))
        p = Path(path)
        p.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
        self.status.setText(f"Saved {self.steps.rowCount()} steps to {p}.")
        return p

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load sequence", self.ctx.settings.export_dir, "Sequences (*.toml *.json)"
        )
        if path:
            try:
                self.load_file(path)
            except ValueError as exc:
                self.ctx.report_error("load sequence", str(exc))

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save sequence", self.ctx.settings.export_dir, "JSON (*.json)"
        )
        if path:
            try:
                self.save_file(path)
            except ValueError as exc:
                self.ctx.report_error("save sequence", str(exc))

    def run_sequence(self, resume: int | None) -> None:
        """Run (or resume) the step list."""
        session = self.ctx.session
        if session is None:
            return
        try:
            raw = self.sequence_dict()
            job = sequence_job(
                raw, None if session.db_path is None else str(session.db_path), resume
            )
        except ValueError as exc:
            self.ctx.report_error("sequence", str(exc))
            return
        self.steps_done = []
        self.sequence_result = None
        self._reset_plot(self.plot_kind)
        self.status.setText("Running the sequence…" if resume is None else f"Resuming {resume}…")
        self.job = self.ctx.run(
            "sequence",
            job,
            self._sequence_done,
            on_error=lambda exc: self._ended("The sequence failed: see the log."),
            on_cancelled=lambda: self._ended("Sequence cancelled; resume it by its run id."),
        )
        self._update_buttons()

    def _sequence_done(self, result: SequenceResult) -> None:
        self.sequence_result = result
        state = "interrupted" if result.cancelled else "completed"
        if result.run_id is not None:
            self.resume_run.setValue(result.run_id)
        self._ended(
            f"Sequence run {result.run_id}: {state}, {len(result.steps)} steps run, "
            f"{len(result.skipped)} skipped (done before)."
        )

    # ------------------------------------------------------------------ plot
    def _reset_plot(self, kind: str) -> None:
        self.plot_kind = kind
        self.series = {}
        self.series_off = {}
        self.curves = {}
        self.plot.clear()
        left, bottom = _PLOT_AXES[kind]
        item = self.plot.getPlotItem()
        style_plot(item, left=left, bottom=bottom)
        item.setLogMode(x=kind in ("retention", "endurance"), y=kind == "form")

    def on_event(self, event: ResultEvent) -> None:
        if event.kind == "characterise_point":
            kind, point = event.data
            if kind != self.plot_kind:
                self._reset_plot(kind)
            self._add_point(kind, point)
        elif event.kind == "characterise_step":
            rec = event.data
            self.steps_done.append(rec.id)
            self.status.setText(f"Step {rec.id} ({rec.module}): {rec.status}.")

    def _add_point(self, kind: str, p: dict[str, Any]) -> None:
        if kind == "retention":
            for i, g in enumerate(p["conductance_S"]):
                self.series.setdefault(i, []).append((max(p["time_s"], 1e-3), g))
                self._draw(i)
            return
        if kind == "endurance":
            key = int(p["device"])
            self.series.setdefault(key, []).append((p["cycle"], p["g_on_S"]))
            self.series_off.setdefault(key, []).append((p["cycle"], p["g_off_S"]))
        elif kind == "iv":
            key = int(p["device"]) * 1000 + int(p["cycle"])
            self.series.setdefault(key, []).append((p["voltage_V"], p["conductance_S"]))
        elif kind == "form":
            key = int(p["device"])
            self.series.setdefault(key, []).append((p["voltage_V"], abs(p["current_A"])))
        else:
            key = int(p["device"])
            self.series.setdefault(key, []).append((p["pulse"], p["conductance_S"]))
        self._draw(key)

    def _draw(self, key: int) -> None:
        """Update (or create) the curves of one series: only its data changes."""
        curves = self.curves.get(key)
        if curves is None:
            colour = _COLOURS[len(self.curves) % len(_COLOURS)]
            label = (
                f"device {key // 1000} cycle {key % 1000 + 1}"
                if self.plot_kind == "iv"
                else f"device {key}"
            )
            on = self.plot.plot(
                [],
                [],
                pen=pg.mkPen(colour, width=1.2),
                symbol="o",
                symbolSize=4,
                symbolBrush=colour,
                symbolPen=None,
                name=label,
            )
            off = self.plot.plot(
                [],
                [],
                pen=pg.mkPen(colour, width=1.2, style=Qt.PenStyle.DashLine),
                symbol="t",
                symbolSize=5,
                symbolBrush=colour,
                symbolPen=None,
            )
            curves = (on, off)
            self.curves[key] = curves
        for curve, pts in (
            (curves[0], self.series.get(key)),
            (curves[1], self.series_off.get(key)),
        ):
            if pts:
                xy = np.array(pts, dtype=np.float64)
                curve.setData(xy[:, 0], xy[:, 1])

    def points(self) -> int:
        """Points drawn so far (tests)."""
        return sum(len(v) for v in self.series.values()) + sum(
            len(v) for v in self.series_off.values()
        )

    def _plot_data(self) -> PlotData | None:
        rows = [(k, x, y) for k, pts in sorted(self.series.items()) for x, y in pts]
        if not rows:
            return None
        data = np.array(rows, dtype=np.float64)
        return PlotData.from_columns(series=data[:, 0], x=data[:, 1], conductance_S=data[:, 2])

    # ------------------------------------------------------------------ hooks
    def on_connected(self, session: Session) -> None:
        self.status.setText(
            f"Board {session.board_serial}: {session.element_kind} elements."
            + ("" if session.element_kind != "resistor" else " The modules need memristors.")
        )
        self._update_buttons()

    def on_disconnected(self) -> None:
        self._update_buttons()

    def set_busy(self, busy: bool) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        session = self.ctx.session
        ok = self.job is None and not self.ctx.busy and session is not None
        memristors = session is not None and session.element_kind != "resistor"
        for b in (self.run_button, self.run_seq_button, self.resume_button):
            b.setEnabled(ok and memristors)

    def plots(self) -> list[PlotPanel]:
        return [self.plot_panel]

    def save_state(self) -> None:
        s = self.ctx.settings
        s.set_value(self.settings_key("module"), self.module.currentText())
        s.set_value(self.settings_key("cells"), self.cells.text())
        s.set_value(self.settings_key("branches"), self.branches.text())

    def restore_state(self) -> None:
        s = self.ctx.settings
        module = s.value(self.settings_key("module"), "iv")
        if isinstance(module, str) and module in MODULE_NAMES:
            self.module.setCurrentText(module)
        for key, edit in (("cells", self.cells), ("branches", self.branches)):
            text = s.value(self.settings_key(key), edit.text())
            if isinstance(text, str):
                edit.setText(text)


__all__ = ["CharacteriseTab", "module_fields", "parse_field"]
