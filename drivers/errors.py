"""Exceptions raised by the instrument drivers.

Every error names the instrument (model and address) and, where there is one, the command
that failed, so a message read in a log or a GUI dialog says what to look at on the bench.
"""

from __future__ import annotations

__all__ = [
    "BoardError",
    "BoardIdentityError",
    "InstrumentCommandError",
    "InstrumentError",
    "InstrumentIdentityError",
    "InstrumentLimitError",
    "InstrumentModeError",
    "InstrumentTimeoutError",
]


class InstrumentError(Exception):
    """Base class of every driver error.

    Attributes:
        instrument: who failed, e.g. ``"Keithley 2450 at TCPIP0::10.0.0.5::5025::SOCKET"``.
        command: the command (without terminator) that failed, or None when the failure is
            not tied to one command (e.g. opening the port).
        detail: the message without the instrument/command decoration.
    """

    def __init__(self, detail: str, *, instrument: str, command: str | None = None) -> None:
        self.instrument = instrument
        self.command = command
        self.detail = detail
        text = f"{instrument}: {detail}"
        if command is not None:
            text += f" (command {command!r})"
        super().__init__(text)


class InstrumentIdentityError(InstrumentError):
    """``*IDN?`` answered with something other than the model this driver controls."""


class InstrumentModeError(InstrumentError):
    """The instrument is in a mode the driver refuses, e.g. a 2450 in SCPI2400 emulation."""


class InstrumentLimitError(InstrumentError):
    """A request beyond a configured safety limit; nothing was sent to the instrument."""


class InstrumentCommandError(InstrumentError):
    """The instrument's error queue was not empty after a command.

    Attributes:
        code: SCPI error number of the first queued error (e.g. -222).
        message: its message text as the instrument gave it.
        errors: every ``(code, message)`` read from the queue, oldest first.
    """

    def __init__(
        self,
        errors: list[tuple[int, str]],
        *,
        instrument: str,
        command: str | None = None,
    ) -> None:
        if not errors:
            raise ValueError("InstrumentCommandError needs at least one queued error")
        self.errors = list(errors)
        self.code, self.message = errors[0]
        listed = "; ".join(f'{code},"{message}"' for code, message in errors)
        super().__init__(f"error queue not empty: {listed}", instrument=instrument, command=command)


class InstrumentTimeoutError(InstrumentError):
    """No (complete) reply within the timeout."""


class BoardError(InstrumentError):
    """The crossbar board replied ``ERR code,"message"``, or the link to it failed.

    Attributes:
        code: the board's SCPI-style error number, or None for a link failure or a
            read-back mismatch detected by the driver.
        message: the board's message, or the driver's description of the failure.
    """

    def __init__(
        self,
        message: str,
        *,
        instrument: str,
        command: str | None = None,
        code: int | None = None,
    ) -> None:
        self.code = code
        self.message = message
        detail = message if code is None else f'ERR {code},"{message}"'
        super().__init__(detail, instrument=instrument, command=command)


class BoardIdentityError(BoardError, InstrumentIdentityError):
    """The device on the port is not a labrss crossbar board (or its identity is malformed)."""
