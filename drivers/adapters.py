"""Byte-level transports for the SCPI instruments.

An :class:`Adapter` writes one command line and reads one reply line; the instrument
classes in :mod:`drivers.instrument` know nothing else about the transport. Two adapters:

* :class:`VISAAdapter`: any VISA resource string (``TCPIP0::host::5025::SOCKET``,
  ``USB0::0x05E6::0x2450::...::INSTR``, ``GPIB0::18::INSTR``) through pyvisa, with the
  pure-Python ``"@py"`` backend by default. Read and write termination are ``"\\n"``: SOCKET
  sessions end a read only on the termination character, so without it the first query
  times out.
* :class:`ProtocolAdapter`: no I/O at all; it checks every written command against a list of
  expected ``(command, reply)`` pairs and feeds the replies back (PyMeasure's
  ``expected_protocol`` idea). Protocol tests use it to pin the exact SCPI traffic.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

import pyvisa
import pyvisa.constants
import pyvisa.errors
import pyvisa.resources

from drivers.errors import InstrumentError, InstrumentTimeoutError

__all__ = ["TIMEOUT", "Adapter", "ProtocolAdapter", "ProtocolMismatchError", "VISAAdapter"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


@runtime_checkable
class Adapter(Protocol):
    """One command line out, one reply line in.

    ``name`` is how errors refer to the connection (the resource string). ``read`` raises
    :class:`InstrumentTimeoutError` when no reply arrives within ``timeout_s`` and
    :class:`InstrumentError` when the link fails; both name ``instrument`` and the last
    command written.
    """

    name: str
    instrument: str
    timeout_s: float

    def write(self, command: str) -> None:
        """Send one command line (the terminator is added by the adapter)."""

    def read(self) -> str:
        """Read one reply line, terminator stripped."""

    def close(self) -> None:
        """Release the connection; idempotent."""


def _disable_nagle(resource: pyvisa.resources.MessageBasedResource) -> None:
    """Turn off Nagle's algorithm on a raw TCP SOCKET session (as NI-VISA does by default).

    SCPI is a stream of small writes, some without a reply (``:OUTP OFF`` then
    ``:SYST:ERR?``); with Nagle on, the second write waits for the delayed ACK of the
    first (~40 ms on Linux), which made a guarded cell reading take ~90 ms instead of
    ~0.6 ms. pyvisa-py does not implement ``VI_ATTR_TCPIP_NODELAY``, so its session's
    socket is set directly; other backends get the VISA attribute. Best effort: a backend
    that offers neither keeps working, only slower.
    """
    try:
        resource.set_visa_attribute(pyvisa.constants.ResourceAttribute.tcpip_nodelay, True)
        return
    except Exception:  # each backend raises its own type (pyvisa-py: UnknownAttribute)
        pass
    try:
        session = resource.visalib.sessions[resource.session]  # type: ignore[attr-defined]
        sock = session.interface
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, KeyError, OSError, TypeError) as exc:
        log.debug("could not disable Nagle on %s: %s", resource.resource_name, exc)


class VISAAdapter:
    """A VISA resource opened through pyvisa.

    Args:
        resource: any VISA resource string.
        timeout_s: per-read timeout (s).
        visa_library: pyvisa backend; ``"@py"`` (pyvisa-py) by default, ``""`` for the
            system VISA (NI-VISA, Keysight IO libraries).
        instrument: how errors name the instrument until the driver knows its model.
    """

    def __init__(
        self,
        resource: str,
        *,
        timeout_s: float = 5.0,
        visa_library: str = "@py",
        instrument: str | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 s, got {timeout_s!r}")
        self.name = resource
        self.instrument = instrument or f"instrument at {resource}"
        self.timeout_s = timeout_s
        self._last_command: str | None = None
        self._resource: pyvisa.resources.MessageBasedResource | None = None
        try:
            manager = pyvisa.ResourceManager(visa_library)
            opened = manager.open_resource(
                resource,
                read_termination="\n",
                write_termination="\n",
                timeout=round(timeout_s * 1000),
            )
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            hint = ""
            if "://" in resource or resource.upper().startswith(("COM", "/DEV/")):
                hint = " (that looks like a serial port or pyserial URL, not a VISA resource)"
            raise InstrumentError(
                f"cannot open VISA resource {resource!r}{hint}: {exc}",
                instrument=self.instrument,
            ) from exc
        if not isinstance(opened, pyvisa.resources.MessageBasedResource):
            opened.close()
            raise InstrumentError(
                f"VISA resource {resource!r} is not message based (no SCPI possible)",
                instrument=self.instrument,
            )
        self._resource = opened
        if resource.upper().endswith("::SOCKET"):
            _disable_nagle(opened)

    def _session(self) -> pyvisa.resources.MessageBasedResource:
        if self._resource is None:
            raise InstrumentError(
                "connection is closed", instrument=self.instrument, command=self._last_command
            )
        return self._resource

    def write(self, command: str) -> None:
        """Send ``command`` with a LF terminator; link failures raise InstrumentError."""
        self._last_command = command
        log.debug("%s <- %s", self.name, command)
        try:
            self._session().write(command)
        except pyvisa.errors.VisaIOError as exc:
            raise self._translate(exc) from exc
        except OSError as exc:
            raise InstrumentError(
                f"link failure while writing: {exc}", instrument=self.instrument, command=command
            ) from exc

    def read(self) -> str:
        """Read one reply line (LF stripped)."""
        try:
            reply = self._session().read()
        except pyvisa.errors.VisaIOError as exc:
            raise self._translate(exc) from exc
        except OSError as exc:
            raise InstrumentError(
                f"link failure while reading: {exc}",
                instrument=self.instrument,
                command=self._last_command,
            ) from exc
        log.debug("%s -> %s", self.name, reply)
        return reply.rstrip("\r\n")

    def _translate(self, exc: pyvisa.errors.VisaIOError) -> InstrumentError:
        if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
            return InstrumentTimeoutError(
                f"no reply within {self.timeout_s:g} s",
                instrument=self.instrument,
                command=self._last_command,
            )
        return InstrumentError(
            f"VISA I/O error: {exc.description}",
            instrument=self.instrument,
            command=self._last_command,
        )

    def close(self) -> None:
        """Close the VISA session (idempotent; errors while closing are only logged)."""
        resource, self._resource = self._resource, None
        if resource is None:
            return
        try:
            resource.close()
        except (pyvisa.errors.Error, OSError) as exc:  # pragma: no cover - depends on the link
            log.warning("%s: error while closing %s: %s", self.instrument, self.name, exc)


class _Timeout:
    """Marker type of :data:`TIMEOUT`."""

    def __repr__(self) -> str:
        return "TIMEOUT"


TIMEOUT: Final = _Timeout()
"""A reply in a :class:`ProtocolAdapter` pair list that makes the read time out."""


class ProtocolMismatchError(AssertionError):
    """The driver's traffic differs from the expected command/reply pairs."""


Reply = str | _Timeout | None


class ProtocolAdapter:
    """An adapter without I/O that asserts the exact command/reply exchange.

    ``pairs`` is a list of ``(command, reply)``: each ``write`` must equal the next pair's
    command (terminator left out); its reply (``None`` for set commands that have none,
    :data:`TIMEOUT` for a read that times out) becomes the next ``read``'s result. A pair
    with command ``None`` is a reply that arrives without a command. :meth:`assert_done`
    checks every pair was used and no reply is left unread.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str | None, Reply]],
        *,
        name: str = "protocol",
        instrument: str = "instrument under protocol test",
        timeout_s: float = 1.0,
    ) -> None:
        self.name = name
        self.instrument = instrument
        self.timeout_s = timeout_s
        self._pairs = list(pairs)
        self._index = 0
        self._pending: list[str | _Timeout] = []
        self._last_command: str | None = None
        self.closed = False
        self.written: list[str] = []

    def _take_unsolicited(self) -> None:
        while self._index < len(self._pairs) and self._pairs[self._index][0] is None:
            reply = self._pairs[self._index][1]
            if reply is not None:
                self._pending.append(reply)
            self._index += 1

    def write(self, command: str) -> None:
        """Check ``command`` against the next expected pair."""
        self.written.append(command)
        self._last_command = command
        if self._pending:
            raise ProtocolMismatchError(
                f"wrote {command!r} while reply {self._pending[0]!r} was still unread"
            )
        if self._index >= len(self._pairs):
            raise ProtocolMismatchError(f"unexpected extra command {command!r}; all pairs used")
        expected, reply = self._pairs[self._index]
        if expected != command:
            raise ProtocolMismatchError(
                f"pair {self._index}: expected command {expected!r}, got {command!r}"
            )
        self._index += 1
        if reply is not None:
            self._pending.append(reply)

    def read(self) -> str:
        """Return the reply queued by the last command."""
        if not self._pending:
            self._take_unsolicited()
        if not self._pending:
            raise ProtocolMismatchError(
                f"read with no reply expected (last command {self._last_command!r})"
            )
        reply = self._pending.pop(0)
        if isinstance(reply, _Timeout):
            raise InstrumentTimeoutError(
                f"no reply within {self.timeout_s:g} s",
                instrument=self.instrument,
                command=self._last_command,
            )
        return reply

    def close(self) -> None:
        """Mark the adapter closed."""
        self.closed = True

    def assert_done(self) -> None:
        """Raise ProtocolMismatchError unless every pair was consumed and every reply read."""
        if self._pending:
            raise ProtocolMismatchError(f"replies left unread: {self._pending!r}")
        if self._index != len(self._pairs):
            raise ProtocolMismatchError(f"pairs not used: {self._pairs[self._index :]!r}")
