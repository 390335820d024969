"""One stream of results that the GUI, the store and the log all subscribe to.

Bench jobs publish `ResultEvent`\\ s from the worker thread; `ResultStream` delivers each
event, in order, in the main thread, to every subscriber (a plain callable). The tabs
update their widgets, `labrss.gui.store_recorder.StoreRecorder` writes readings to the
store, and `log_event` writes a readable line to the log: one stream, three consumers
(the "document stream" of lab_ecosystem.md section 6.4).

Event kinds (``kind``: ``data``):

* ``"connected"``: `labrss.gui.session.Session` of the open bench;
* ``"disconnected"``: ``{"reason": str}``;
* ``"reading"``: a `labrss.lab.Reading` (branch, subset or cell);
* ``"cell_state"``: ``{"cell": (r, c), "mask": int}`` (switches read back from the board);
* ``"safe"``: ``{"is_safe": bool}`` after the bench was put in the safe state.
"""

from __future__ import annotations

import logging
import math
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

log = logging.getLogger(__name__)

Subscriber = Callable[["ResultEvent"], None]


@dataclass(frozen=True)
class ResultEvent:
    """One result: what (``kind``), the payload, which job made it, wall time (POSIX s)."""

    kind: str
    data: Any
    source: str = ""
    wall_time: float = field(default_factory=time.time)


class ResultStream(QObject):
    """Publish from any thread; subscribers are called in the main thread, in order.

    Create it in the main thread. ``publish`` puts the event in a thread-safe FIFO and
    emits an argument-less Qt signal; from another thread that signal is queued, so the
    FIFO is drained in this object's (the main) thread, in publication order. No Python
    object crosses threads inside Qt. A failing subscriber is logged and does not stop
    delivery to the others.
    """

    _incoming = Signal()
    #: Re-emitted after delivery to the subscribers (for Qt-style connections and tests).
    delivered = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._subscribers: list[Subscriber] = []
        self._fifo: queue.SimpleQueue[ResultEvent] = queue.SimpleQueue()
        self._incoming.connect(self._drain)

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(event)`` in the main thread for every later event."""
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        """Stop calling ``callback`` (no error if it was not subscribed)."""
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def publish(self, event: ResultEvent) -> None:
        """Send ``event`` to every subscriber (thread-safe)."""
        self._fifo.put(event)
        self._incoming.emit()

    #: At most this long (s) of delivery per turn of the event loop; the rest follows in
    #: the next turn, so a burst of results never stalls timers and repaints.
    SLICE_S = 0.02

    @Slot()
    def _drain(self) -> None:
        deadline = time.perf_counter() + self.SLICE_S
        while time.perf_counter() < deadline:
            try:
                event = self._fifo.get_nowait()
            except queue.Empty:
                return
            self._deliver(event)
        if not self._fifo.empty():
            QTimer.singleShot(0, self._drain)

    def _deliver(self, event: ResultEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception as exc:  # one bad subscriber must not starve the others
                log.error(
                    "a subscriber of the result stream failed on a %r event: %s: %s",
                    event.kind,
                    type(exc).__name__,
                    exc,
                )
                log.debug("traceback", exc_info=True)
        self.delivered.emit(event)


def format_ohm(value_ohm: float) -> str:
    """A resistance with an SI prefix, e.g. ``"1.2346 kΩ"``."""
    return _si(value_ohm, "Ω")


def format_siemens(value_S: float) -> str:
    """A conductance with an SI prefix, e.g. ``"812.03 µS"``."""
    return _si(value_S, "S")


_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def _si(value: float, unit: str, digits: int = 5) -> str:
    if math.isnan(value):
        return f"n/a {unit}"
    if math.isinf(value):
        return f"{'-' if value < 0 else ''}∞ {unit}"
    magnitude = abs(value)
    for scale, prefix in _PREFIXES:
        if magnitude >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    if magnitude == 0.0:
        return f"0 {unit}"
    return f"{value / 1e-12:.{digits}g} p{unit}"


def log_event(event: ResultEvent) -> None:
    """The log's subscriber: one readable line per event."""
    from labrss.lab import Reading

    data = event.data
    if event.kind == "reading" and isinstance(data, Reading):
        flag = "  COMPLIANCE LIMIT REACHED" if data.limit_tripped else ""
        log.info(
            "%s reading of cell (%d, %d), switches 0x%X: R = %s, G = %s at %.4g V, NPLC %g%s",
            data.kind,
            data.cell[0],
            data.cell[1],
            data.mask,
            format_ohm(data.resistance_ohm),
            format_siemens(data.conductance_S),
            data.voltage_V,
            data.nplc,
            flag,
        )
    elif event.kind == "cell_state":
        log.info("cell %s switches read back: 0x%X", tuple(data["cell"]), data["mask"])
    elif event.kind == "safe":
        log.info("bench in the safe state (SMU output off, switches open, DACs at 0 V)")
    elif event.kind == "connected":
        log.info("connected: %s", data.summary())
    elif event.kind == "disconnected":
        log.info("disconnected (%s)", data.get("reason", ""))
