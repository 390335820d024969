"""The Qt GUI (PySide6 + pyqtgraph): a thin shell over the workflows."""
