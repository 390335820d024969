"""Errors raised by `Lab` itself (instrument failures keep the drivers' own exceptions)."""

from __future__ import annotations


class LabError(Exception):
    """Base class of the errors `Lab` raises on its own account."""


class LabInputError(LabError, ValueError):
    """A bad argument to a bench operation (index, mask, array shape, NPLC, read path).

    Raised before anything is sent to an instrument.
    """


class SafetyLimitError(LabError):
    """A request the station's safety limits forbid; refused before anything is switched.

    Attributes:
        quantity: what was checked, e.g. ``"read voltage"`` or ``"power per element"``.
        value: the requested value (in the unit named in the message).
        limit: the station limit it exceeds.
        limit_key: the station key holding that limit, e.g. ``"[limits] max_source_voltage_V"``.
    """

    def __init__(
        self, message: str, *, quantity: str, value: float, limit: float, limit_key: str
    ) -> None:
        self.quantity = quantity
        self.value = value
        self.limit = limit
        self.limit_key = limit_key
        super().__init__(message)


class BenchNotSafeError(LabError):
    """The bench could not be confirmed safe (an instrument refused or the link died).

    Someone must check the bench by hand: SMU output off, board switches open, DACs at 0 V.
    """
