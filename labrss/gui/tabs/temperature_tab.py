"""The Temperature tab: the thermal stage (``[thermal]``): its readings, a set point to go
to and wait for stability (the station's criterion), and the stage and board temperatures
over time while it settles. Every instrument call runs in the bench worker."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labrss.gui.plot_export import PlotData, PlotPanel, style_plot
from labrss.gui.result_stream import ResultEvent
from labrss.gui.session import Session
from labrss.gui.tabs.base import LabTab, TabContext
from labrss.gui.workers import JobContext
from labrss.lab.stage import StageSample, StageSettled, go_to_temperature, sample_stage

SAMPLE_EVENT = "stage_sample"
"""Result-stream kind of one stage sample (a `StageSample`)."""


def stage_info_job() -> Callable[[JobContext], Any]:
    """The station's stage settings and one sample, or None without a stage."""

    def run(ctx: JobContext) -> tuple[Any, StageSample] | None:
        lab = ctx.lab
        if not lab.has_thermal:
            return None
        sample = sample_stage(lab)
        ctx.publish(SAMPLE_EVENT, sample)
        return lab.station.thermal, sample

    return run


def go_job(setpoint_C: float) -> Callable[[JobContext], Any]:
    """Go to ``setpoint_C`` and wait for stability; each sample on the result stream."""

    def run(ctx: JobContext) -> StageSettled:
        def progress(message: str) -> None:
            ctx.progress(0, 0, message)

        return go_to_temperature(
            ctx.lab,
            setpoint_C,
            progress=progress,
            should_stop=lambda: ctx.cancelled,
            on_sample=lambda s: ctx.publish(SAMPLE_EVENT, s),
        )

    return run


class TemperatureTab(LabTab):
    """The thermal stage: readings, set point, stability, a live plot."""

    title = "Temperature"

    def __init__(self, ctx: TabContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.samples: list[StageSample] = []
        self.has_stage = False
        self.info = QLabel("Connect to a bench whose station has a [thermal] section.")
        self.info.setWordWrap(True)
        self.readout = {
            name: QLabel("-")
            for name in ("stage", "setpoint", "board", "heater", "ramping", "criterion")
        }
        for label in self.readout.values():
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("Stage (controller sensor)", self.readout["stage"])
        form.addRow("Set point", self.readout["setpoint"])
        form.addRow("Board (its own sensor)", self.readout["board"])
        form.addRow("Heater output", self.readout["heater"])
        form.addRow("Ramping", self.readout["ramping"])
        form.addRow("Stable when", self.readout["criterion"])
        status = QGroupBox("Stage")
        status.setLayout(form)

        self.setpoint = QDoubleSpinBox()
        self.setpoint.setDecimals(2)
        self.setpoint.setSuffix(" °C")
        self.setpoint.setRange(-50.0, 150.0)
        self.setpoint.setValue(25.0)
        self.go_button = QPushButton("Go and wait for stability")
        self.go_button.clicked.connect(self.go)
        self.read_button = QPushButton("Read stage")
        self.read_button.clicked.connect(self.read_stage)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Set point"))
        controls.addWidget(self.setpoint)
        controls.addWidget(self.go_button)
        controls.addWidget(self.read_button)
        controls.addStretch(1)

        self.plot = pg.PlotWidget(background="w")
        style_plot(self.plot.getPlotItem(), left=("temperature", "°C"), bottom=("bench clock", "s"))
        self.plot.addLegend(offset=(-5, 5))
        # markers as well as lines: a single reading (the "Read" button) draws no line
        self.stage_curve = self.plot.plot(
            [], [], pen=pg.mkPen("#1f77b4", width=2), symbol="o", symbolSize=5,
            symbolPen=None, symbolBrush="#1f77b4", name="stage",
        )  # fmt: skip
        self.board_curve = self.plot.plot(
            [], [], pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=5,
            symbolPen=None, symbolBrush="#d62728", name="board",
        )  # fmt: skip
        self.setpoint_curve = self.plot.plot(
            [], [], pen=pg.mkPen("#555555", width=1, style=Qt.PenStyle.DashLine), name="set point"
        )
        self.panel = ctx.setup_plot(
            PlotPanel("Stage and board temperature", self.plot, self._plot_data)
        )
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        top = QHBoxLayout()
        top.addWidget(status, 1)
        layout.addLayout(top)
        layout.addLayout(controls)
        layout.addWidget(self.panel, 1)
        self._set_actions_enabled(False)

    # ------------------------------------------------------------------ actions
    def read_stage(self) -> None:
        """Read the stage once (bench worker)."""
        self.ctx.run("read the thermal stage", stage_info_job(), self._got_info)

    def go(self) -> None:
        """Go to the set point and wait for stability (bench worker; Cancel stops it)."""
        value = float(self.setpoint.value())
        self.samples = []
        self.info.setText(f"Going to {value:g} °C and waiting for stability ...")
        self.ctx.run(f"stage to {value:g} degC", go_job(value), self._settled)

    def _got_info(self, result: tuple[Any, StageSample] | None) -> None:
        self.has_stage = result is not None
        self._set_actions_enabled(self.has_stage)
        if result is None:
            self.info.setText("This station has no thermal stage (no [thermal] section).")
            return
        th, _ = result
        lim = th.limits
        self.setpoint.setRange(lim.min_C, lim.max_C)
        self.readout["criterion"].setText(
            f"stage within {th.stability_K:g} K of the set point and the board's sensor moving "
            f"< {th.stability_K:g} K over {th.stability_window_s:g} s (timeout "
            f"{th.stability_timeout_s:g} s)"
        )
        self.info.setText(
            f"Thermal stage: limits {lim.min_C:g}..{lim.max_C:g} °C, ramp <= "
            f"{lim.max_ramp_K_per_min:g} K/min, safe set point {lim.safe_C:g} °C."
        )

    def _settled(self, settled: StageSettled) -> None:
        self.info.setText(
            f"Stable at {settled.setpoint_C:g} °C after {settled.waited_s:.0f} s "
            f"(board {settled.board_C:.2f} °C)."
        )

    # ------------------------------------------------------------------ display
    def _show(self, s: StageSample) -> None:
        self.readout["stage"].setText(f"{s.stage_C:.3f} °C")
        self.readout["setpoint"].setText(f"{s.setpoint_C:.2f} °C")
        board = f"{s.board_C:.2f} °C" if math.isfinite(s.board_C) else "no sensor"
        self.readout["board"].setText(board)
        self.readout["heater"].setText(f"{s.heater_percent:.1f} %")
        self.readout["ramping"].setText("yes" if s.ramping else "no")

    def _redraw(self) -> None:
        if not self.samples:
            for curve in (self.stage_curve, self.board_curve, self.setpoint_curve):
                curve.setData([], [])
            return
        t = np.array([s.time_s for s in self.samples])
        self.stage_curve.setData(t, np.array([s.stage_C for s in self.samples]))
        self.board_curve.setData(t, np.array([s.board_C for s in self.samples]))
        self.setpoint_curve.setData(t, np.array([s.setpoint_C for s in self.samples]))

    def _plot_data(self) -> PlotData | None:
        if not self.samples:
            return None
        return PlotData.from_columns(
            time_s=[s.time_s for s in self.samples],
            stage_C=[s.stage_C for s in self.samples],
            board_C=[s.board_C for s in self.samples],
            setpoint_C=[s.setpoint_C for s in self.samples],
            heater_percent=[s.heater_percent for s in self.samples],
        )

    def plots(self) -> list[PlotPanel]:
        return [self.panel]

    def on_event(self, event: ResultEvent) -> None:
        if event.kind == SAMPLE_EVENT and isinstance(event.data, StageSample):
            self.samples.append(event.data)
            self._show(event.data)
            self._redraw()

    def on_connected(self, session: Session) -> None:
        self.samples = []
        self._redraw()
        if session.station.thermal is None:  # no stage: no bench job (other tabs stay idle)
            self._got_info(None)
            return
        self.read_stage()

    def on_disconnected(self) -> None:
        self.has_stage = False
        self._set_actions_enabled(False)
        self.info.setText("Connect to a bench whose station has a [thermal] section.")

    def set_busy(self, busy: bool) -> None:
        self._set_actions_enabled(self.has_stage and not busy)

    def _set_actions_enabled(self, enabled: bool) -> None:
        self.go_button.setEnabled(enabled)
        self.read_button.setEnabled(enabled)
