"""The PySide6 emit leak cannot bring True's reference count to zero."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

from labrss.gui import qt_workarounds


class _Emitter(QObject):
    ping = Signal(int)


def test_many_emits_leave_true_alive() -> None:
    applied = qt_workarounds.apply()  # idempotent; labrss.gui applied it at import
    emitter = _Emitter()
    for i in range(20_000):  # ~5x the reference count True starts with
        emitter.ping.emit(i)
    if applied:
        assert sys.getrefcount(True) > qt_workarounds.IMMORTAL_BOOST // 2
    else:  # a fixed binding, or immortal True (CPython >= 3.12)
        assert sys.version_info >= (3, 12) or not qt_workarounds.emit_leaks_true()
