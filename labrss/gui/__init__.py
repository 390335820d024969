"""The Qt GUI (PySide6 + pyqtgraph): a thin shell over the workflows.

Importing the package applies `labrss.gui.qt_workarounds` (a PySide6 6.12.0 reference
leak that would otherwise abort the interpreter after a few thousand signal emits).
"""

from labrss.gui import qt_workarounds

qt_workarounds.apply()
