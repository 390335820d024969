"""Settings remembered between runs (QSettings): window geometry, last station file, tab.

`GuiSettings` wraps a `QSettings`; by default the per-user native store of organisation
"labrss", application "labrss-gui"; with ``path``, an INI file (tests use a tmp_path so
they never touch the user's settings).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ORGANISATION = "labrss"
APPLICATION = "labrss-gui"


class GuiSettings:
    """Typed access to the GUI's settings."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            self.qsettings = QSettings(ORGANISATION, APPLICATION)
        else:
            self.qsettings = QSettings(str(path), QSettings.Format.IniFormat)

    def _text(self, key: str, default: str = "") -> str:
        value = self.qsettings.value(key, default)
        return str(value) if value is not None else default

    # ------------------------------------------------------------------ values
    @property
    def station_file(self) -> str:
        """The last station file used ("" = the embedded simulator)."""
        return self._text("connect/station_file")

    @station_file.setter
    def station_file(self, value: str) -> None:
        self.qsettings.setValue("connect/station_file", value)

    @property
    def last_tab(self) -> str:
        """The title of the last tab shown."""
        return self._text("window/last_tab")

    @last_tab.setter
    def last_tab(self, value: str) -> None:
        self.qsettings.setValue("window/last_tab", value)

    @property
    def geometry(self) -> QByteArray | None:
        """The main window's saved geometry (`QWidget.saveGeometry`), or None."""
        value = self.qsettings.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self.qsettings.setValue("window/geometry", value)

    @property
    def export_dir(self) -> str:
        """The directory of the last plot export."""
        return self._text("export/dir")

    @export_dir.setter
    def export_dir(self, value: str) -> None:
        self.qsettings.setValue("export/dir", value)

    def value(self, key: str, default: str = "") -> str:
        """A free-form text setting (tabs keep their own keys under ``tabs/<name>/``)."""
        return self._text(key, default)

    def set_value(self, key: str, value: str) -> None:
        """Set a free-form text setting."""
        self.qsettings.setValue(key, value)

    def sync(self) -> None:
        """Write to disk now."""
        self.qsettings.sync()
