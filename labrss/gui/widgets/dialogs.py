"""Non-blocking message dialogs: errors are shown without freezing the event loop.

`show_error` opens a window-modal `QMessageBox` with ``open()`` (not ``exec()``), so the
worker's signals, timers and repaints keep running while it is shown.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget | None, title: str, text: str, detail: str = "") -> QMessageBox:
    """Show a readable error (no traceback); returns the dialog (already open)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(text)
    if detail:
        box.setInformativeText(detail)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box


def ask_yes_no(parent: QWidget | None, title: str, text: str) -> bool:
    """Ask a yes/no question (blocking; used only where the answer gates what follows)."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
