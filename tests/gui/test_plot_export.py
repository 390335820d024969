"""Plot export: CSV of the data behind a plot, PNG and SVG of the view."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from pytestqt.qtbot import QtBot

from labrss.gui.plot_export import PlotData, PlotPanel, export_image, write_csv

pytestmark = pytest.mark.gui


def test_csv_round_trips_full_precision_and_nan(tmp_path: Path) -> None:
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([0.1 + 0.2, np.nan, 1e-300])
    path = write_csv(tmp_path / "d.csv", PlotData.from_columns(n=x, G_S=y))
    with path.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["n", "G_S"]
    assert float(rows[1][1]) == 0.1 + 0.2  # repr: exact round trip
    assert rows[2][1] == ""
    assert float(rows[3][1]) == 1e-300


def test_plot_data_rejects_ragged_columns() -> None:
    with pytest.raises(ValueError, match=r"differ in length: \[2, 3\]"):
        PlotData.from_columns(a=[1, 2], b=[1, 2, 3])


def test_panel_exports_png_svg_csv(qtbot: QtBot, tmp_path: Path) -> None:
    view = pg.PlotWidget()
    view.plot([0, 1, 2], [3, 1, 2])
    panel = PlotPanel("My plot", view, lambda: PlotData.from_columns(x=[0, 1, 2], y=[3, 1, 2]))
    qtbot.addWidget(panel)
    panel.resize(400, 300)
    panel.show()
    written = panel.export(tmp_path / "my_plot.png")  # a suffix is replaced, not doubled
    assert [p.name for p in written] == ["my_plot.png", "my_plot.svg", "my_plot.csv"]
    assert all(p.stat().st_size > 0 for p in written)
    assert (tmp_path / "my_plot.csv").read_text().splitlines() == [
        "x,y",
        "0.0,3.0",
        "1.0,1.0",
        "2.0,2.0",
    ]
    with pytest.raises(ValueError, match=r"unknown image format '\.jpg'"):
        export_image(view, tmp_path / "x.jpg")
    empty = PlotPanel("Empty", pg.PlotWidget(), lambda: None)
    qtbot.addWidget(empty)
    assert [p.suffix for p in empty.export(tmp_path / "empty")] == [".png", ".svg"]
