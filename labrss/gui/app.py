"""Start the GUI: `run_gui(station_path) -> exit code` (what `labrss gui` calls).

Sets up the `QApplication`, routes Python logging to the window's log panel, turns
uncaught exceptions in Qt callbacks into a readable dialog plus a log line (never a
traceback on the console), opens the `MainWindow`, loads the station and connects in the
worker (with no station: the embedded simulator, shown by the SIMULATOR banner).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import TracebackType

import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from labrss.gui.main_window import MainWindow
from labrss.gui.settings import GuiSettings
from labrss.gui.widgets.dialogs import show_error

log = logging.getLogger(__name__)


def make_application(argv: list[str] | None = None) -> QApplication:
    """The process's `QApplication` (created once), with labrss's names and plot style."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName("labrss")
    app.setApplicationName("labrss-gui")
    pg.setConfigOptions(antialias=True, foreground="k", background="w")
    return app


def install_excepthook(window: MainWindow) -> None:
    """Uncaught exceptions (in Qt slots) go to the log and a dialog, not to the console."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            window.close()
            return
        log.error("unexpected error: %s: %s", exc_type.__name__, exc)
        log.debug("traceback", exc_info=(exc_type, exc, tb))
        show_error(window, "labrss", "Unexpected error", f"{exc_type.__name__}: {exc}")

    sys.excepthook = hook


def run_gui(
    station_path: str | Path | None = None,
    *,
    connect: bool = True,
    db_path: str | Path | None = None,
    settings_path: str | Path | None = None,
) -> int:
    """Open the main window and run the event loop; returns the exit code.

    Args:
        station_path: the station TOML file; None: the last one used, else the embedded
            simulator.
        connect: connect at start-up (in the worker).
        db_path: the store (default: ``LABRSS_DB``, the station's ``[store] path``, the
            per-user default).
        settings_path: an INI file for the settings (default: the user's QSettings).
    """
    app = make_application()
    logging.getLogger().setLevel(logging.INFO)
    logging.captureWarnings(True)  # drivers' warnings go to the log panel, not the console
    window = MainWindow(GuiSettings(settings_path), db_path)
    install_excepthook(window)
    tab = window.connect_tab
    if station_path is not None and not tab.load_station_file(str(station_path)):
        window.show()
        return int(app.exec()) or 2
    window.show()
    if connect:
        tab.connect_bench()
    return int(app.exec())
