"""The main window's tabs and their registry.

`TAB_REGISTRY` lists the tabs in display order as ``(module, class name)``; the main window
imports and builds them in that order. A new tab (Calibrate, Program, MVM) is one
`labrss.gui.tabs.base.LabTab` subclass in its own module plus one line here.
"""

from __future__ import annotations

import importlib

from labrss.gui.tabs.base import LabTab, TabContext

#: Tabs in display order: (module under labrss.gui.tabs, LabTab subclass name).
TAB_REGISTRY: list[tuple[str, str]] = [
    ("connect_tab", "ConnectTab"),
    ("board_tab", "BoardTab"),
    ("rss_explorer_tab", "RSSExplorerTab"),
    ("calibrate_tab", "CalibrateTab"),
    ("program_tab", "ProgramTab"),
    ("mvm_tab", "MVMTab"),
    ("memristor_tab", "MemristorTab"),
    ("characterise_tab", "CharacteriseTab"),
    ("temperature_tab", "TemperatureTab"),
]


def tab_classes() -> list[type[LabTab]]:
    """The registered tab classes, in display order."""
    classes: list[type[LabTab]] = []
    for module_name, class_name in TAB_REGISTRY:
        module = importlib.import_module(f"{__name__}.{module_name}")
        cls = getattr(module, class_name)
        if not (isinstance(cls, type) and issubclass(cls, LabTab)):
            raise TypeError(f"{module_name}.{class_name} is not a LabTab")
        classes.append(cls)
    return classes


__all__ = ["TAB_REGISTRY", "LabTab", "TabContext", "tab_classes"]
