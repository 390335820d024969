"""The demo report: Markdown with the figures table, accuracy table and four PNG plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labrss.report.demo_report import DemoReportData, write_demo_report


def test_report_files_and_tables(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    g = 10 ** rng.uniform(-6, -4, size=(4, 4, 8))
    y = rng.normal(size=(30, 10))
    data = DemoReportData(
        title="unit test",
        summary={"median relative L2 error vs programmed": 0.0055, "cells repaired": 3},
        element_S=g,
        element_std_S=1e-4 * g,
        predicted_S=g.ravel()[:50],
        measured_S=g.ravel()[:50] * (1 + 1e-3 * rng.normal(size=50)),
        y_analog=y + 1e-3 * rng.normal(size=y.shape),
        y_programmed=y,
        y_target=y,
        rel_l2=np.abs(rng.normal(scale=5e-3, size=30)),
        accuracy=[("digital, target network", 0.96889), ("analog, on the board", 0.97111)],
        notes=["a note"],
    )
    path = write_demo_report(tmp_path / "out", data)
    text = path.read_text()
    assert path == tmp_path / "out" / "report.md"
    assert text.startswith("# unit test\n")
    assert "| median relative L2 error vs programmed | 0.0055 |" in text
    assert "| cells repaired | 3 |" in text
    assert "| analog, on the board | 97.11 % |" in text
    assert text.rstrip().endswith("a note")
    for png in (
        "calibration_histogram.png",
        "predicted_vs_measured.png",
        "analog_vs_digital.png",
        "error_histogram.png",
    ):
        assert f"]({png})" in text
        assert (tmp_path / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
