"""Work-arounds for bugs of the Qt binding that would crash the GUI.

**PySide6 6.12.0 `SignalInstance.emit()` leaks a reference to True.** On CPython 3.11,
every ``signal.emit(...)`` made from Python returns ``True`` without a new reference, so
each discarded result lowers ``True``'s reference count by one (measured: exactly -1 per
emit). pyqtgraph emits from Python on every mouse move and range change, the GUI on every
result; after a few thousand emits the count reaches 0 and the interpreter aborts with
"bool_dealloc: deallocating True or False" (at the latest at exit). CPython 3.12 made
True and False immortal, which hides the bug there.

`apply()` detects the leak by measurement (10 emits of a private signal) and, only when it
is present on an interpreter without immortal objects, raises the reference counts of
True and False by 2**60 (CPython keeps ``ob_refcnt``, a signed 64-bit count, first in
every object): what CPython 3.12 does by design. The leak then needs 2**60 emits to do
harm. Remove this module once the project requires a PySide6 release with the fix.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

#: Added to the reference counts of True and False when the leak is present.
IMMORTAL_BOOST = 2**60

_state = {"applied": False}


def emit_leaks_true() -> bool:
    """Whether ``SignalInstance.emit`` drops a reference to True (measured)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(10):
        probe.ping.emit()
    after = sys.getrefcount(True)
    return after <= before - 10


def apply() -> bool:
    """Protect True and False from the emit leak if it is present; True if applied."""
    if _state["applied"]:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # immortal True/False (or another runtime): nothing to protect
    if not emit_leaks_true():
        return False
    for obj in (True, False):
        count = ctypes.c_ssize_t.from_address(id(obj))
        count.value += IMMORTAL_BOOST
    _state["applied"] = True
    import PySide6

    log.debug(
        "PySide6 %s: SignalInstance.emit leaks a reference to True; True and False "
        "protected (labrss.gui.qt_workarounds)",
        PySide6.__version__,
    )
    return True
