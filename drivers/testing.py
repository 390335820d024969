"""Expected-protocol helpers: test a driver's exact traffic without any I/O.

For the SCPI instruments, :func:`expected_protocol` builds the driver on a
:class:`~drivers.adapters.ProtocolAdapter` (PyMeasure's ``expected_protocol`` style)::

    with expected_protocol(make_2450, INIT + [(":SOUR:VOLT 0.1", None)]) as smu:
        smu.source_voltage_V = 0.1

For the crossbar board, :class:`ProtocolSerial` is a fake serial port with the same
contract, passed to :class:`~drivers.crossbar_board.CrossbarBoard` instead of a port name.
Byte-level faults can be scripted: a reply ``SILENT`` sends nothing (the read times out), a
reply ``LINK_DOWN`` raises ``SerialException`` on read, and a ``bytes`` reply is sent
verbatim (for garbled or split lines).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Final, TypeVar

import serial

from drivers.adapters import TIMEOUT, ProtocolAdapter, ProtocolMismatchError, Reply

__all__ = [
    "LINK_DOWN",
    "SILENT",
    "TIMEOUT",
    "ProtocolMismatchError",
    "ProtocolSerial",
    "expected_protocol",
]

InstrumentT = TypeVar("InstrumentT")


@contextlib.contextmanager
def expected_protocol(
    factory: Callable[[ProtocolAdapter], InstrumentT],
    pairs: Sequence[tuple[str | None, Reply]],
    *,
    name: str = "TCPIP0::test::5025::SOCKET",
) -> Iterator[InstrumentT]:
    """Build ``factory(adapter)`` on a ProtocolAdapter; at exit assert all pairs were used.

    The construction itself consumes pairs, so lists start with the init traffic.
    """
    adapter = ProtocolAdapter(pairs, name=name)
    instrument = factory(adapter)
    yield instrument
    adapter.assert_done()


class _Fault:
    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return self.label


SILENT: Final = _Fault("SILENT")
"""A reply that never comes: the driver's read times out."""
LINK_DOWN: Final = _Fault("LINK_DOWN")
"""The link fails: the read raises ``serial.SerialException``."""

SerialReply = str | bytes | _Fault | None


class ProtocolSerial:
    """A fake serial port that asserts the exact lines written and returns scripted replies.

    ``pairs`` is a list of ``(line, reply)`` with lines and ``str`` replies without the LF;
    ``str`` replies get a LF appended, ``bytes`` replies are sent as they are, ``None``
    means no reply. A written line that does not match raises :class:`ProtocolMismatchError`.
    """

    def __init__(
        self, pairs: Sequence[tuple[str, SerialReply]], *, port: str = "protocol://board"
    ) -> None:
        self.port = port
        self.timeout: float | None = 0.05
        self.is_open = True
        self._pairs = list(pairs)
        self._index = 0
        self._rx = bytearray()
        self._fault: _Fault | None = None
        self._pending_tx = bytearray()
        self.written: list[str] = []
        self.flushes = 0

    # -- the subset of serial.Serial the driver uses
    def write(self, data: bytes) -> int:
        """Accept bytes; each complete line is checked against the next pair."""
        if not self.is_open:
            raise serial.PortNotOpenError()
        self._pending_tx.extend(data)
        while b"\n" in self._pending_tx:
            raw, _, rest = bytes(self._pending_tx).partition(b"\n")
            self._pending_tx = bytearray(rest)
            self._line(raw.decode("ascii"))
        return len(data)

    def _line(self, line: str) -> None:
        self.written.append(line)
        if self._index >= len(self._pairs):
            raise ProtocolMismatchError(f"unexpected extra line {line!r}; all pairs used")
        expected, reply = self._pairs[self._index]
        if expected != line:
            raise ProtocolMismatchError(f"pair {self._index}: expected {expected!r}, got {line!r}")
        self._index += 1
        if isinstance(reply, _Fault):
            self._fault = reply
        elif isinstance(reply, bytes):
            self._rx.extend(reply)
        elif reply is not None:
            self._rx.extend(reply.encode("ascii") + b"\n")

    @property
    def in_waiting(self) -> int:
        """Bytes ready to read."""
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        """Return up to ``size`` scripted bytes; nothing (a timeout) when none are left."""
        if not self.is_open:
            raise serial.PortNotOpenError()
        if not self._rx and self._fault is LINK_DOWN:
            self._fault = None
            raise serial.SerialException("link down (scripted)")
        data = bytes(self._rx[:size])
        del self._rx[:size]
        if not data:
            self._fault = None
        return data

    def reset_input_buffer(self) -> None:
        """Discard unread bytes (the driver's resynchronisation)."""
        self.flushes += 1
        self._rx.clear()

    def close(self) -> None:
        """Close the fake port."""
        self.is_open = False

    def assert_done(self) -> None:
        """Raise ProtocolMismatchError unless every pair was used and every byte read."""
        if self._index != len(self._pairs):
            raise ProtocolMismatchError(f"pairs not used: {self._pairs[self._index :]!r}")
        if self._rx:
            raise ProtocolMismatchError(f"bytes left unread: {bytes(self._rx)!r}")
