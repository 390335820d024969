"""Export any plot to PNG or SVG, and the data behind it to CSV.

Every plot of the GUI is a `PlotPanel`: a pyqtgraph view plus a data provider that returns
the numbers drawn (`PlotData`: column names with units, one row per point or cell). The
panel's "Export" button and the plot's right-click menu offer PNG, SVG, CSV, or all three.
The functions work on any pyqtgraph `GraphicsView` (PlotWidget, GraphicsLayoutWidget).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters as pg_exporters
from numpy.typing import ArrayLike, NDArray
from PySide6.QtCore import QRect
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)

#: Formats `export_plot` writes, by file suffix.
FORMATS = (".png", ".svg", ".csv")


@dataclass(frozen=True)
class PlotData:
    """The numbers behind a plot: ``columns`` (names with units) and ``rows`` (N, len(columns))."""

    columns: Sequence[str]
    rows: NDArray[np.float64]

    @classmethod
    def from_columns(cls, **columns: ArrayLike) -> PlotData:
        """Build from named 1-D arrays of equal length (names keep their units)."""
        arrays = [np.asarray(v, dtype=np.float64).ravel() for v in columns.values()]
        lengths = {a.shape[0] for a in arrays}
        if len(lengths) > 1:
            raise ValueError(f"plot data columns differ in length: {sorted(lengths)}")
        rows = np.column_stack(arrays) if arrays else np.zeros((0, 0))
        return cls(list(columns), rows)


def write_csv(path: str | Path, data: PlotData) -> Path:
    """Write ``data`` as CSV: a header row, then full-precision floats (NaN as empty)."""
    out = Path(path)
    if data.rows.ndim != 2 or (data.rows.size and data.rows.shape[1] != len(data.columns)):
        raise ValueError(
            f"{out}: plot data has {len(data.columns)} columns but rows of shape {data.rows.shape}"
        )
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(data.columns))
        for row in data.rows:
            writer.writerow(["" if not np.isfinite(v) else repr(float(v)) for v in row])
    return out


def export_image(view: pg.GraphicsView, path: str | Path) -> Path:
    """Write the whole scene of ``view`` (plot, axes, colour bar) as PNG or SVG.

    PNG: pyqtgraph's ImageExporter at the view's size. SVG: the view rendered through
    Qt's `QSvgGenerator` (vector paths and text): pyqtgraph 0.14's own SVG exporter fails
    on the path syntax of current Qt 6 releases (pyqtgraph issue #3485).
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".png":
        exporter = pg_exporters.ImageExporter(view.scene())
        exporter.parameters()["width"] = max(int(view.width()), 2)
        exporter.export(str(out))
    elif suffix == ".svg":
        _render_svg(view, out)
    else:
        raise ValueError(f"{out}: unknown image format {suffix!r}; use .png or .svg")
    if not out.exists() or out.stat().st_size == 0:
        raise OSError(f"{out}: the {suffix[1:].upper()} export wrote nothing")
    return out


def _render_svg(view: pg.GraphicsView, out: Path) -> None:
    size = view.size()
    generator = QSvgGenerator()
    generator.setFileName(str(out))
    generator.setSize(size)
    generator.setViewBox(QRect(0, 0, size.width(), size.height()))
    generator.setTitle(out.stem)
    generator.setDescription("labrss plot")
    painter = QPainter(generator)
    try:
        view.render(painter)  # QGraphicsView.render: the visible scene, as drawn
    finally:
        painter.end()


class PlotPanel(QWidget):
    """A titled pyqtgraph view with an Export button (PNG, SVG, CSV).

    Args:
        title: shown above the plot; also the default export file name.
        view: the pyqtgraph view (PlotWidget, GraphicsLayoutWidget).
        data: returns the numbers currently drawn (None: nothing to export yet).
    """

    def __init__(
        self,
        title: str,
        view: pg.GraphicsView,
        data: Callable[[], PlotData | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.title = title
        self.view = view
        self._data = data
        self.export_dir: Callable[[], str] = lambda: ""
        self.on_exported: Callable[[list[Path]], None] = lambda paths: None

        self.title_label = QLabel(f"<b>{title}</b>")
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setToolTip("Export this plot as PNG/SVG and its data as CSV")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        self._add_export_actions(menu)
        self.export_button.setMenu(menu)

        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title_label)
        head.addStretch(1)
        head.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(head)
        layout.addWidget(view, 1)
        self._extend_view_menus()

    def _add_export_actions(self, menu: QMenu) -> None:
        menu.addAction("Export PNG…", lambda: self._ask_and_export((".png",)))
        menu.addAction("Export SVG…", lambda: self._ask_and_export((".svg",)))
        menu.addAction("Export data (CSV)…", lambda: self._ask_and_export((".csv",)))
        menu.addAction("Export PNG + SVG + CSV…", lambda: self._ask_and_export(FORMATS))

    def _extend_view_menus(self) -> None:
        """Add the export actions to the right-click menu of every ViewBox in the view."""
        for item in self.view.scene().items():
            if isinstance(item, pg.ViewBox) and item.menu is not None:
                item.menu.addSeparator()
                sub = item.menu.addMenu("Export plot and data")
                self._add_export_actions(sub)

    def plot_data(self) -> PlotData | None:
        """The numbers currently drawn."""
        return self._data()

    def export(self, base: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
        """Write ``base`` + each suffix of ``formats``; returns the written paths.

        CSV is skipped (with a log line) when the plot has no data yet.
        """
        stem = Path(base)
        if stem.suffix.lower() in FORMATS:
            stem = stem.with_suffix("")
        written: list[Path] = []
        for suffix in formats:
            path = stem.with_name(stem.name + suffix)
            if suffix == ".csv":
                data = self.plot_data()
                if data is None:
                    log.warning("%s: no data to export yet", self.title)
                    continue
                written.append(write_csv(path, data))
            else:
                written.append(export_image(self.view, path))
        for path in written:
            log.info("exported %s", path)
        self.on_exported(written)
        return written

    def _ask_and_export(self, formats: Sequence[str]) -> None:
        default = str(Path(self.export_dir() or ".") / _file_stem(self.title))
        filters = ";;".join(f"{s[1:].upper()} (*{s})" for s in formats)
        path, _ = QFileDialog.getSaveFileName(self, f"Export {self.title}", default, filters)
        if not path:
            return
        try:
            self.export(path, formats)
        except (OSError, ValueError) as exc:
            log.error("export of %s failed: %s", self.title, exc)


def _file_stem(title: str) -> str:
    keep = [ch.lower() if ch.isalnum() else "_" for ch in title]
    return "_".join(part for part in "".join(keep).split("_") if part) or "plot"


def style_plot(plot: pg.PlotItem, *, left: tuple[str, str], bottom: tuple[str, str]) -> None:
    """Label both axes with names and units; grid; readable fonts (the GUI's plot style)."""
    plot.setLabel("left", left[0], units=left[1] or None)
    plot.setLabel("bottom", bottom[0], units=bottom[1] or None)
    plot.showGrid(x=True, y=True, alpha=0.25)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.enableAutoSIPrefix(bool(left[1] if name == "left" else bottom[1]))
