"""The log panel: Python `logging` routed to a read-only text view, from any thread.

`QtLogHandler` formats each record and emits it through a Qt signal, so records logged in
the worker thread are appended in the main thread (queued). Errors are shown in red,
warnings in orange; the panel keeps the last `LogPanel.MAX_BLOCKS` lines.
"""

from __future__ import annotations

import contextlib
import html
import logging

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QWidget

_COLOURS = {logging.ERROR: "#c62828", logging.WARNING: "#b26a00", logging.DEBUG: "#777777"}


class _Bridge(QObject):
    record = Signal(int, str)


class QtLogHandler(logging.Handler):
    """A logging handler that forwards formatted records to a Qt signal (thread-safe)."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.bridge = _Bridge()
        self.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with contextlib.suppress(RuntimeError):  # the Qt side is gone (shutting down)
            self.bridge.record.emit(record.levelno, text)


class LogPanel(QPlainTextEdit):
    """Read-only view of the log; attach it with `install`."""

    MAX_BLOCKS = 5000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(self.MAX_BLOCKS)
        font: QFont = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.setFont(font)
        self.setPlaceholderText("The log: instrument operations, results and errors appear here.")
        self.handler: QtLogHandler | None = None
        self.lines: list[str] = []

    def install(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        """Route ``logger`` (default: the root logger) to this panel."""
        target = logger if logger is not None else logging.getLogger()
        self.handler = QtLogHandler(level)
        self.handler.bridge.record.connect(self.append_record)
        target.addHandler(self.handler)
        if target.level == logging.NOTSET or target.level > level:
            target.setLevel(level)
        self._logger = target

    def uninstall(self) -> None:
        """Stop receiving records (call before the panel is destroyed)."""
        if self.handler is not None:
            self._logger.removeHandler(self.handler)
            self.handler = None

    @Slot(int, str)
    def append_record(self, level: int, text: str) -> None:
        """Append one formatted record (main thread)."""
        self.lines.append(text)
        if len(self.lines) > self.MAX_BLOCKS:
            del self.lines[: len(self.lines) - self.MAX_BLOCKS]
        colour = next((c for lvl, c in sorted(_COLOURS.items(), reverse=True) if level >= lvl), "")
        if level < logging.INFO:
            colour = _COLOURS[logging.DEBUG]
        escaped = html.escape(text)
        self.appendHtml(f'<span style="color:{colour}">{escaped}</span>' if colour else escaped)
