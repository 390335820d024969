"""A status light: a coloured disc with a caption (grey = unknown, green = ok, red = fault)."""

from __future__ import annotations

from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

LightState = Literal["off", "ok", "busy", "fault"]

_COLOURS: dict[LightState, str] = {
    "off": "#9e9e9e",
    "ok": "#2e7d32",
    "busy": "#f9a825",
    "fault": "#c62828",
}


class StatusLight(QWidget):
    """A light with a caption and a state text, e.g. ``● SMU  connected``."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state: LightState = "off"
        self._disc = QLabel()
        self._disc.setFixedSize(14, 14)
        self._caption = QLabel(f"<b>{caption}</b>")
        self.text_label = QLabel("not connected")
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._disc)
        layout.addWidget(self._caption)
        layout.addWidget(self.text_label, 1)
        self.set_state("off", "not connected")

    def set_state(self, state: LightState, text: str) -> None:
        """Set the colour and the state text."""
        self.state = state
        self._disc.setStyleSheet(
            f"background-color: {_COLOURS[state]}; border-radius: 7px; border: 1px solid #555;"
        )
        self.text_label.setText(text)
        self.setToolTip(text)
