"""Declarative, validated SCPI properties and the SCPI instrument base class.

A driver declares each instrument setting once, as a class attribute (PyMeasure's
``control`` / ``measurement`` / ``setting`` idea, with QCoDeS-style strict validation)::

    class Meter(SCPIInstrument):
        nplc = control(
            ":SENS:CURR:NPLC?", ":SENS:CURR:NPLC {value}",
            "Control the integration time in power-line cycles (float strictly 0.01..10).",
            validator=strict_range, values=(0.01, 10.0),
            get_process=float, set_process=format_float, check_set_errors=True,
        )

``meter.nplc = 1`` validates (an out-of-range value raises ValueError naming the property,
the instrument and the command, and nothing is sent), writes ``:SENS:CURR:NPLC 1``, then
reads the error queue; ``meter.nplc`` queries and converts. Command templates may use
``{ch}`` for the instrument's channel number (B2900 ``:SOUR{ch}:VOLT``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, Generic, TypeVar, overload

from drivers.adapters import Adapter
from drivers.errors import InstrumentCommandError, InstrumentError

__all__ = [
    "Control",
    "SCPIInstrument",
    "control",
    "format_bool",
    "format_float",
    "measurement",
    "parse_bool",
    "parse_scpi_error",
    "setting",
    "strict_discrete_set",
    "strict_range",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

T = TypeVar("T")

MAX_ERROR_READS = 32
"""How many ``:SYST:ERR?`` reads ``check_errors`` does at most (real queues hold 10..100)."""

_ERROR_RE = re.compile(r'^\s*([+-]?\d+)\s*,\s*"(.*)"\s*$')


def strict_range(value: float, values: tuple[float, float]) -> float:
    """Return ``value`` if ``values[0] <= value <= values[1]`` (and finite), else raise."""
    low, high = values
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"value {value!r} is not in the range {low:g}..{high:g}")
    return value


def strict_discrete_set(value: T, values: Collection[T]) -> T:
    """Return ``value`` if it is one of ``values``, else raise ValueError listing them."""
    if value in values:
        return value
    listed = ", ".join(repr(v) for v in values)
    raise ValueError(f"value {value!r} is not one of {listed}")


def format_float(value: float) -> str:
    """SCPI NRf text for a float: up to 9 significant digits, ``1e-05`` style exponents."""
    return f"{float(value):.9g}"


def format_bool(value: bool) -> str:
    """SCPI boolean text: ``ON`` / ``OFF``."""
    return "ON" if value else "OFF"


def parse_bool(reply: str) -> bool:
    """Parse an SCPI boolean reply (``1``/``0``/``ON``/``OFF``); anything else raises."""
    text = reply.strip().upper()
    if text in {"1", "ON"}:
        return True
    if text in {"0", "OFF"}:
        return False
    raise ValueError(f"not an SCPI boolean: {reply!r}")


def parse_scpi_error(reply: str) -> tuple[int, str]:
    """Parse ``<code>,"<message>"`` (as ``:SYST:ERR?`` answers) into ``(code, message)``."""
    match = _ERROR_RE.match(reply)
    if match is None:
        raise ValueError(f"not an SCPI error reply: {reply!r}")
    return int(match.group(1)), match.group(2)


class SCPIInstrument:
    """An instrument that speaks SCPI through an :class:`~drivers.adapters.Adapter`.

    ``name`` is how every error names it ("Keithley 2450 04512345 at TCPIP0::...");
    ``channel`` fills ``{ch}`` in command templates.
    """

    channel: int = 1

    def __init__(self, adapter: Adapter, name: str) -> None:
        self.adapter = adapter
        self.name = name
        self.adapter.instrument = name

    def rename(self, name: str) -> None:
        """Change how errors name the instrument (once its identity is known)."""
        self.name = name
        self.adapter.instrument = name

    def write(self, command: str) -> None:
        """Send one command line."""
        self.adapter.write(command)

    def read(self) -> str:
        """Read one reply line."""
        return self.adapter.read()

    def ask(self, command: str) -> str:
        """Send a query and return its reply line."""
        self.adapter.write(command)
        return self.adapter.read()

    def ask_floats(self, command: str, count: int | None = None) -> list[float]:
        """Send a query whose reply is comma-separated numbers; check ``count`` if given."""
        reply = self.ask(command)
        try:
            values = [float(part) for part in reply.split(",")]
        except ValueError:
            raise InstrumentError(
                f"reply {reply!r} is not a list of numbers", instrument=self.name, command=command
            ) from None
        if count is not None and len(values) != count:
            raise InstrumentError(
                f"reply {reply!r} has {len(values)} values, expected {count}",
                instrument=self.name,
                command=command,
            )
        return values

    def identify(self) -> str:
        """``*IDN?``: the identification string."""
        return self.ask("*IDN?").strip()

    def clear_status(self) -> None:
        """``*CLS``: clear the error queue and status registers."""
        self.write("*CLS")

    def next_error(self) -> tuple[int, str]:
        """Pop the oldest error: ``(code, message)``; ``(0, "No error")`` when empty."""
        command = ":SYST:ERR?"
        return self.parse_error_reply(command, self.ask(command))

    def check_error_reply(self, command: str, reply: str) -> None:
        """The error-queue reply that ended ``command``'s line: a queued error raises
        InstrumentCommandError naming the command, with the rest of the queue drained."""
        code, message = self.parse_error_reply(command, reply)
        if code != 0:
            errors = [(code, message), *self.read_errors()]
            raise InstrumentCommandError(errors, instrument=self.name, command=command)

    def parse_error_reply(self, command: str, reply: str) -> tuple[int, str]:
        """An error-queue reply to ``command`` as ``(code, message)``; a malformed one
        raises InstrumentError naming the instrument and the command."""
        try:
            return parse_scpi_error(reply)
        except ValueError:
            raise InstrumentError(
                f"malformed error-queue reply {reply!r}", instrument=self.name, command=command
            ) from None

    def read_errors(self) -> list[tuple[int, str]]:
        """Drain the error queue (at most MAX_ERROR_READS reads); oldest first."""
        errors: list[tuple[int, str]] = []
        for _ in range(MAX_ERROR_READS):
            code, message = self.next_error()
            if code == 0:
                break
            errors.append((code, message))
        return errors

    def check_errors(self, command: str | None = None) -> None:
        """Raise InstrumentCommandError if the error queue holds anything.

        ``command`` is named in the error: the configuration step that was just sent.
        """
        errors = self.read_errors()
        if errors:
            raise InstrumentCommandError(errors, instrument=self.name, command=command)

    def format_command(self, template: str, **fields: object) -> str:
        """Fill a command template: ``{ch}`` is the channel, other fields as given."""
        return template.format(ch=self.channel, **fields)


class Control(Generic[T]):
    """A descriptor for one SCPI setting or reading (see the module docstring).

    Args:
        get_cmd: query template, or None for a write-only setting.
        set_cmd: command template with ``{value}``, or None for a read-only measurement.
        doc: docstring (start with Control/Measure/Set; give units and the allowed values).
        validator: ``validator(value, values) -> value`` raising ValueError when invalid.
        values: what the validator checks against (range tuple or allowed set); a callable
            receives the instrument, for limits that depend on the model or channel.
        map_values: value -> SCPI text on set, SCPI text -> value on get.
        get_process: reply text -> value (when no map_values).
        set_process: value -> SCPI text (when no map_values).
        check_set_errors: read the error queue after every set.
        check_get_errors: read the error queue after every get.
    """

    def __init__(
        self,
        get_cmd: str | None,
        set_cmd: str | None,
        doc: str,
        *,
        validator: Callable[[Any, Any], Any] | None = None,
        values: Any = None,
        map_values: Mapping[T, str] | None = None,
        get_process: Callable[[str], T] | None = None,
        set_process: Callable[[T], str] | None = None,
        check_set_errors: bool = False,
        check_get_errors: bool = False,
    ) -> None:
        self.get_cmd = get_cmd
        self.set_cmd = set_cmd
        self.__doc__ = doc
        self.validator = validator
        self.values = values
        self.map_values = map_values
        self.get_process = get_process
        self.set_process = set_process
        self.check_set_errors = check_set_errors
        self.check_get_errors = check_get_errors
        self.attribute = "<unnamed>"

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Control[T]: ...

    @overload
    def __get__(self, obj: SCPIInstrument, owner: type | None = None) -> T: ...

    def __get__(self, obj: SCPIInstrument | None, owner: type | None = None) -> T | Control[T]:
        if obj is None:
            return self
        if self.get_cmd is None:
            raise AttributeError(f"{self.attribute} is write-only on {obj.name}")
        command = obj.format_command(self.get_cmd)
        reply = obj.ask(command).strip()
        if self.check_get_errors:
            obj.check_errors(command)
        try:
            return self._parse(reply)
        except (ValueError, KeyError):
            raise InstrumentError(
                f"cannot interpret reply {reply!r} for {self.attribute}",
                instrument=obj.name,
                command=command,
            ) from None

    def _parse(self, reply: str) -> T:
        if self.map_values is not None:
            for value, text in self.map_values.items():
                if text.upper() == reply.upper():
                    return value
            raise KeyError(reply)
        if self.get_process is None:
            raise ValueError(f"{self.attribute} has no get_process")
        return self.get_process(reply)

    def __set__(self, obj: SCPIInstrument, value: T) -> None:
        if self.set_cmd is None:
            raise AttributeError(f"{self.attribute} is read-only on {obj.name}")
        command = obj.format_command(self.set_cmd, value=self.encode(obj, value))
        obj.write(command)
        if self.check_set_errors:
            obj.check_errors(command)

    def encode(self, obj: SCPIInstrument, value: T) -> str:
        """Validate ``value`` and return its SCPI text; raise ValueError naming everything.

        Nothing is sent: drivers call this to check a whole configuration before writing.
        """
        if self.validator is not None:
            values = self.values(obj) if callable(self.values) else self.values
            try:
                value = self.validator(value, values)
            except ValueError as exc:
                template = self.set_cmd or self.get_cmd or ""
                raise ValueError(
                    f"{obj.name}: {self.attribute} = {value!r} refused: {exc} "
                    f"(command {template.split(' ')[0].format(ch=obj.channel)!r}, nothing sent)"
                ) from None
        if self.map_values is not None:
            return self.map_values[value]
        if self.set_process is not None:
            return self.set_process(value)
        return str(value)


def control(
    get_cmd: str,
    set_cmd: str,
    doc: str,
    *,
    validator: Callable[[Any, Any], Any] | None = None,
    values: Any = None,
    map_values: Mapping[T, str] | None = None,
    get_process: Callable[[str], T] | None = None,
    set_process: Callable[[T], str] | None = None,
    check_set_errors: bool = False,
    check_get_errors: bool = False,
) -> Control[T]:
    """A readable and writable property (see :class:`Control`)."""
    return Control(
        get_cmd,
        set_cmd,
        doc,
        validator=validator,
        values=values,
        map_values=map_values,
        get_process=get_process,
        set_process=set_process,
        check_set_errors=check_set_errors,
        check_get_errors=check_get_errors,
    )


def measurement(
    get_cmd: str,
    doc: str,
    *,
    map_values: Mapping[T, str] | None = None,
    get_process: Callable[[str], T] | None = None,
    check_get_errors: bool = False,
) -> Control[T]:
    """A read-only property (a query)."""
    return Control(
        get_cmd,
        None,
        doc,
        map_values=map_values,
        get_process=get_process,
        check_get_errors=check_get_errors,
    )


def setting(
    set_cmd: str,
    doc: str,
    *,
    validator: Callable[[Any, Any], Any] | None = None,
    values: Any = None,
    map_values: Mapping[T, str] | None = None,
    set_process: Callable[[T], str] | None = None,
    check_set_errors: bool = False,
) -> Control[T]:
    """A write-only property (a command without a query form)."""
    return Control(
        None,
        set_cmd,
        doc,
        validator=validator,
        values=values,
        map_values=map_values,
        set_process=set_process,
        check_set_errors=check_set_errors,
    )
