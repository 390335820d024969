"""The crossbar heat map: a pyqtgraph `ImageItem` of one value per cell, with a colour
bar, labelled axes, fault markers, a hover read-out and click-to-select.

Cell (r, c) is drawn as the unit square [c, c+1] x [r, r+1]; row 0 is at the top, like
the board. Unknown values (NaN) are transparent. ``cell_hovered(r, c)`` and
``cell_clicked(r, c)`` report cells; (-1, -1) means the pointer left the board.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QWidget


class CrossbarHeatMap(pg.GraphicsLayoutWidget):  # type: ignore[misc]
    """Heat map of a (rows, cols) array with a colour bar."""

    cell_hovered = Signal(int, int)
    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.plot: pg.PlotItem = self.addPlot(row=0, col=0)
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.plot.setMenuEnabled(True)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "column (index)")
        self.plot.setLabel("left", "row (index)")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colormap = pg.colormap.get("viridis")
        self.colorbar = pg.ColorBarItem(colorMap=self.colormap, interactive=False, width=18)
        self.colorbar.setImageItem(self.image)
        self.addItem(self.colorbar, row=0, col=1)
        self.faults = pg.ScatterPlotItem(
            symbol="x", size=14, pen=pg.mkPen("#d50000", width=2.5), brush=None
        )
        self.plot.addItem(self.faults)
        self.selection = pg.QtWidgets.QGraphicsRectItem(QRectF(0, 0, 1, 1))
        self.selection.setPen(QPen(QColor("#ff1744"), 0.08))
        self.selection.setVisible(False)
        self.plot.addItem(self.selection)
        self.values: NDArray[np.float64] = np.full((1, 1), np.nan)
        self.unit = ""
        self.scene().sigMouseMoved.connect(self._on_move)
        self.scene().sigMouseClicked.connect(self._on_click)
        self._last_hover = (-2, -2)
        self.set_data(self.values, "value", "")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) drawn."""
        r, c = self.values.shape
        return int(r), int(c)

    def set_data(
        self,
        values: NDArray[np.float64],
        label: str,
        unit: str,
        *,
        faults: NDArray[np.bool_] | None = None,
        levels: tuple[float, float] | None = None,
    ) -> None:
        """Show ``values`` (rows, cols); ``label``/``unit`` name the colour bar.

        ``faults`` (rows, cols) marks faulty cells with a red cross. ``levels``: the colour
        range (default: the finite values' range).
        """
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 2:
            raise ValueError(f"heat map values must be (rows, cols), got shape {v.shape}")
        self.values = v
        self.unit = unit
        finite = v[np.isfinite(v)]
        if levels is None:
            if finite.size:
                lo, hi = float(finite.min()), float(finite.max())
                if hi <= lo:
                    span = abs(lo) * 1e-6 or 1.0
                    lo, hi = lo - span, hi + span
            else:
                lo, hi = 0.0, 1.0
            levels = (lo, hi)
        self.image.setImage(v, levels=levels, autoLevels=False)
        self.image.setRect(QRectF(0, 0, v.shape[1], v.shape[0]))
        self.colorbar.setLevels(levels)
        self.colorbar.axis.setLabel(label, units=unit or None)
        rows, cols = v.shape
        for name, n in (("bottom", cols), ("left", rows)):
            step = max(1, n // 16)
            ticks = [(i + 0.5, str(i)) for i in range(0, n, step)]
            self.plot.getAxis(name).setTicks([ticks, []])
        self.plot.setRange(QRectF(0, 0, cols, rows), padding=0.02)
        if faults is not None and faults.shape == v.shape:
            rr, cc = np.nonzero(faults)
            self.faults.setData(x=cc + 0.5, y=rr + 0.5)
        else:
            self.faults.setData(x=[], y=[])

    def select(self, r: int, c: int) -> None:
        """Outline cell (r, c); (-1, -1) clears the selection."""
        if r < 0 or c < 0:
            self.selection.setVisible(False)
            return
        self.selection.setRect(QRectF(c, r, 1, 1))
        self.selection.setVisible(True)

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int]:
        """The cell under a scene position, or (-1, -1)."""
        if not self.plot.sceneBoundingRect().contains(scene_pos):
            return (-1, -1)
        p = self.plot.vb.mapSceneToView(scene_pos)
        c, r = int(np.floor(p.x())), int(np.floor(p.y()))
        rows, cols = self.shape
        if 0 <= r < rows and 0 <= c < cols:
            return (r, c)
        return (-1, -1)

    def cell_center_scene(self, r: int, c: int) -> QPointF:
        """Scene position of the centre of cell (r, c) (for tests and tooltips)."""
        point: QPointF = self.plot.vb.mapViewToScene(QPointF(c + 0.5, r + 0.5))
        return point

    def _on_move(self, pos: QPointF) -> None:
        cell = self.cell_at(pos)
        if cell != self._last_hover:
            self._last_hover = cell
            self.cell_hovered.emit(*cell)

    def _on_click(self, event: object) -> None:
        scene_pos = event.scenePos()  # type: ignore[attr-defined]
        cell = self.cell_at(scene_pos)
        if cell != (-1, -1):
            self.cell_clicked.emit(*cell)
