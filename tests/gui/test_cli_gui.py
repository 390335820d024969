"""`labrss gui`: the sub-command is registered and hands its options to run_gui."""

from __future__ import annotations

from typing import Any

import pytest

from labrss.cli.main import build_parser, main


def test_gui_command_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def fake_run_gui(station: Any, *, connect: bool, db_path: Any) -> int:
        calls.append((station, connect, db_path))
        return 0

    monkeypatch.setattr("labrss.gui.app.run_gui", fake_run_gui)
    assert main(["gui"]) == 0
    assert main(["gui", "--station", "lab.toml", "--no-connect", "--db", "x.db"]) == 0
    assert calls == [(None, True, None), ("lab.toml", False, "x.db")]
    assert "gui" in build_parser().format_help()


@pytest.mark.gui
def test_run_gui_opens_the_window_and_returns_on_close(
    qtbot: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging
    import sys

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from labrss.gui.app import run_gui
    from labrss.gui.main_window import MainWindow

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # run_gui installs its own
    seen: list[str] = []

    def close_windows() -> None:
        for w in QApplication.topLevelWidgets():
            if isinstance(w, MainWindow):
                seen.append(w.banner.text())
                w.close()

    QTimer.singleShot(300, close_windows)
    try:
        code = run_gui(
            None, connect=False, db_path=tmp_path / "lab.db", settings_path=tmp_path / "s.ini"
        )
    finally:
        logging.captureWarnings(False)
    assert code == 0
    assert seen == ["NOT CONNECTED"]
    assert (tmp_path / "s.ini").exists()  # geometry and tab saved on close
