"""Reusable widgets of the GUI: status lights, the crossbar heat map, dialogs, a log axis."""
