"""The source-measure unit interface that the rest of labrss codes against.

:class:`SourceMeter` is what ``Lab`` and the calibration code use: source a voltage with a
current compliance, measure current and sensed voltage (2- or 4-wire), single or buffered
readings, output as a context manager, :meth:`SourceMeter.shutdown` to a safe state. One
class per model implements it (:mod:`drivers.keithley2450`, :mod:`drivers.keysight_b2900`, or a
plug-in's, `drivers.plugins`); :func:`open_smu` opens one by driver name and VISA resource
string.

Safety lives here: every level and compliance request is checked against the
:class:`SafetyLimits` given at open time, and a request beyond them raises
:class:`~drivers.errors.InstrumentLimitError` before anything is sent; the compliance is set
before the source level; the output refuses to turn on before a compliance is set.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import math
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

from drivers.adapters import Adapter
from drivers.errors import InstrumentError, InstrumentLimitError
from drivers.instrument import SCPIInstrument, parse_bool

if TYPE_CHECKING:
    from drivers.plugins import SMUConnection

__all__ = [
    "OVERFLOW_THRESHOLD",
    "SCPISourceMeter",
    "SMUReading",
    "SafetyLimits",
    "SourceMeter",
    "message_units",
    "open_smu",
    "open_visa_smu",
    "output_effects",
    "output_switch",
    "overflow_to_nan",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

OVERFLOW_THRESHOLD = 9.9e37
"""SCPI instruments report an overflowed reading as 9.9E37 and "not a number" as 9.91E37."""


def overflow_to_nan(value: float, *, instrument: str, what: str) -> float:
    """Return NaN (with a warning naming ``instrument``) for the SCPI overflow values."""
    if math.isnan(value) or abs(value) >= OVERFLOW_THRESHOLD:
        warnings.warn(
            f"{instrument}: {what} overflowed (reading {value:g}); returned as NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        return math.nan
    return value


@dataclass(frozen=True)
class SafetyLimits:
    """Bench limits the SMU drivers never exceed.

    Attributes:
        max_voltage_V: largest |source voltage| that may be programmed (V).
        max_current_A: largest current compliance that may be programmed (A).
    """

    max_voltage_V: float
    max_current_A: float

    def __post_init__(self) -> None:
        for name in ("max_voltage_V", "max_current_A"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"SafetyLimits.{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True)
class SMUReading:
    """One reading: source voltage, measure current (and the voltage sensed).

    Attributes:
        voltage_V: sensed voltage (V); the source read-back, 4-wire when ``four_wire``;
            NaN on overflow.
        current_A: measured current (A), positive into the HI terminal; NaN on overflow.
        limit_tripped: the current compliance was reached during this reading.
        current_range_A: current measure range in use (A), after autorange.
        nplc: integration time in power-line cycles.
        four_wire: remote (4-wire) sense was on.
        timestamp_s: the instrument's time stamp (s, relative to its own origin).
        instrument: ``"<model> <serial>"``.
    """

    voltage_V: float
    current_A: float
    limit_tripped: bool
    current_range_A: float
    nplc: float
    four_wire: bool
    timestamp_s: float
    instrument: str

    @property
    def resistance_ohm(self) -> float:
        """V / I (ohm); +-inf at exactly 0 A, NaN if either reading is NaN."""
        if self.current_A == 0.0:
            return math.copysign(math.inf, self.voltage_V) if self.voltage_V else math.inf
        return self.voltage_V / self.current_A

    @property
    def conductance_S(self) -> float:
        """I / V (S); +-inf at exactly 0 V."""
        if self.voltage_V == 0.0:
            return math.copysign(math.inf, self.current_A) if self.current_A else math.nan
        return self.current_A / self.voltage_V


@dataclass(frozen=True)
class SeriesPoint:
    """One reading of `SourceMeter.measure_series`: the source level (V) and the current
    measure range (A; None: autorange)."""

    level_V: float
    current_range_A: float | None = None


class SourceMeter(abc.ABC):
    """A source-measure unit sourcing voltage and measuring current.

    Attributes:
        identity: the full ``*IDN?`` reply.
        model: e.g. ``"2450"`` or ``"B2902A"``.
        serial: the instrument's serial number.
        limits: the safety limits every request is checked against.
        output_enabled: whether the driver turned the output on (and not off since).
    """

    identity: str
    model: str
    serial: str
    limits: SafetyLimits
    output_enabled: bool

    @property
    def label(self) -> str:
        """``"<model> <serial>"``: how readings name the instrument."""
        return f"{self.model} {self.serial}"

    @property
    @abc.abstractmethod
    def instrument_name(self) -> str:
        """How errors name the instrument (model, serial and address)."""

    # ------------------------------------------------------------------ safety checks
    def check_voltage_limit(self, level_V: float, command: str) -> None:
        """Raise InstrumentLimitError if |level_V| exceeds the limit (nothing is sent)."""
        if not math.isfinite(level_V) or abs(level_V) > self.limits.max_voltage_V:
            raise InstrumentLimitError(
                f"source voltage {level_V!r} V is beyond the safety limit "
                f"+-{self.limits.max_voltage_V:g} V; nothing was sent",
                instrument=self.instrument_name,
                command=command,
            )

    def check_current_limit(self, compliance_A: float, command: str) -> None:
        """Raise InstrumentLimitError unless 0 < compliance_A <= the limit (nothing sent)."""
        if not math.isfinite(compliance_A) or not 0 < compliance_A <= self.limits.max_current_A:
            raise InstrumentLimitError(
                f"current compliance {compliance_A!r} A is not in (0, "
                f"{self.limits.max_current_A:g}] A (the safety limit); nothing was sent",
                instrument=self.instrument_name,
                command=command,
            )

    # ------------------------------------------------------------------ the interface
    @abc.abstractmethod
    def reset(self) -> None:
        """Reset the instrument to its defaults (output off) and clear the error queue."""

    @abc.abstractmethod
    def configure_voltage_source(
        self, level_V: float, compliance_A: float, *, source_range_V: float | None = None
    ) -> None:
        """Source voltage ``level_V`` (V) with current compliance ``compliance_A`` (A).

        Both are checked against the limits before anything is sent; the compliance is
        programmed before the level. ``source_range_V`` None selects source autorange.
        """

    @abc.abstractmethod
    def set_voltage(self, level_V: float) -> None:
        """Change the source level (V), checked against the limits."""

    @abc.abstractmethod
    def configure_measurement(
        self, *, nplc: float, current_range_A: float | None = None, four_wire: bool = False
    ) -> None:
        """Measure current with ``nplc`` power-line cycles; range None = autorange."""

    @abc.abstractmethod
    def enable_output(self) -> None:
        """Turn the output on (refused before a compliance is set)."""

    @abc.abstractmethod
    def disable_output(self) -> None:
        """Turn the output off."""

    @contextlib.contextmanager
    def output_on(self) -> Iterator[None]:
        """Output on for the ``with`` block, off at exit whatever happens."""
        self.enable_output()
        try:
            yield
        finally:
            self.disable_output()

    @abc.abstractmethod
    def measure(self) -> SMUReading:
        """One reading (needs the output on)."""

    @abc.abstractmethod
    def measure_many(self, n: int) -> list[SMUReading]:
        """``n`` readings from one trigger, buffered in the instrument."""

    def measure_once(self, level_V: float | None = None) -> SMUReading:
        """One reading with the output on for it alone (source and measurement configured).

        The source level goes to ``level_V`` (V, checked against the limits; None keeps
        it) while the output is off, then output on, one reading, output off. When this
        returns, the instrument has executed the output-off and its error queue is empty
        (any queued error raises InstrumentCommandError naming the command): the caller may
        switch at once. On any failure the output is sent off (best effort) before the
        exception propagates. This default takes a few exchanges; a driver may do it in one
        line (`drivers.keithley2450.Keithley2450.measure_once`).
        """
        if level_V is not None:
            self.set_voltage(level_V)
        with self.output_on():
            reading = self.measure()
        self.check_errors("output off")
        return reading

    def measure_series(
        self, points: Sequence[SeriesPoint], *, nplc: float, four_wire: bool = False
    ) -> list[SMUReading]:
        """`measure_once` for each point in order, the range set first (nothing switched
        between them): a subset read at +V and -V, or on two adjacent ranges.

        Every level is checked against the limits before anything is sent. Each reading
        has the output on for it alone, as `measure_once`; when this returns the output
        is off and the error queue empty. On any failure the output is sent off (best
        effort) and the readings of the series are not returned. This default takes the
        exchanges of `configure_measurement` and `measure_once` per point; a driver may
        send several readings per line (`drivers.keithley2450.Keithley2450.measure_series`).
        """
        for point in points:
            self.check_voltage_limit(point.level_V, "measure_series")
        readings = []
        for point in points:
            self.configure_measurement(
                nplc=nplc, current_range_A=point.current_range_A, four_wire=four_wire
            )
            readings.append(self.measure_once(point.level_V))
        return readings

    def read_compliance_A(self) -> float:
        """The current compliance in force, read back from the instrument (A).

        For the self-test (``labrss selftest``); a driver that cannot read it back raises
        NotImplementedError, and the self-test then reports the check as failed.
        """
        raise NotImplementedError(f"{self.instrument_name}: no compliance read-back")

    def read_output_on(self) -> bool:
        """Whether the output is on, read back from the instrument (not the driver's flag)."""
        raise NotImplementedError(f"{self.instrument_name}: no output-state read-back")

    @abc.abstractmethod
    def check_errors(self, command: str | None = None) -> None:
        """Raise InstrumentCommandError if the error queue is not empty."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Source 0 V and output off; never raises (a dead link is logged)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection (does not change the output)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down (safe state) and close on every exit path."""
        try:
            self.shutdown()
        finally:
            self.close()


class SCPISourceMeter(SCPIInstrument, SourceMeter):
    """Behaviour shared by the SCPI SMU drivers: state, safety sequencing, shutdown.

    A model class supplies the command lists (:meth:`voltage_source_commands`,
    :meth:`measurement_commands`, validated before anything is sent), the output commands
    and the reading methods. This class sends them in a safe order and checks the error
    queue after every configuration.

    **Output interlock.** Every public path to the output goes through the compliance
    check: :meth:`enable_output`, :meth:`output_on`, the ``output_state`` property (True is
    :meth:`enable_output`, False :meth:`disable_output`) and even a raw :meth:`write` of an
    output-on command (``:OUTP ON``, ``:OUTP2:STAT 1``, ...) are refused, nothing sent,
    while no compliance has been programmed; and each keeps ``output_enabled`` in step with
    the instrument (``*RST`` and output-off commands clear it, reading ``output_state``
    re-synchronises it from the instrument).
    """

    output_on_command = ":OUTP ON"
    output_off_command = ":OUTP OFF"
    output_query_command = ":OUTP?"
    zero_voltage_command = ":SOUR:VOLT 0"

    def __init__(self, adapter: Adapter, limits: SafetyLimits, name: str) -> None:
        if not isinstance(limits, SafetyLimits):
            raise TypeError(f"limits must be SafetyLimits, got {type(limits).__name__}")
        SCPIInstrument.__init__(self, adapter, name)
        self.limits = limits
        self.identity = ""
        self.model = ""
        self.serial = ""
        self.output_enabled = False
        self.compliance_A: float | None = None
        """Programmed current compliance (A); None until configure_voltage_source."""
        self.level_V: float | None = None
        """Programmed source level (V); None until configure_voltage_source."""
        self.nplc: float | None = None
        """Programmed NPLC; None until configure_measurement."""
        self.four_wire_sense = False
        self.fixed_current_range_A: float | None = None
        """Fixed current measure range (A), None for autorange."""
        self._measurement_known: tuple[float, float | None, bool] | None = None
        """(NPLC, fixed range A or None, 4-wire) as programmed and confirmed; None: unknown."""

    @property
    def instrument_name(self) -> str:
        """How errors name the instrument."""
        return self.name

    # ------------------------------------------------------------------ model hooks
    @abc.abstractmethod
    def voltage_source_commands(
        self, level_V: float, compliance_A: float, source_range_V: float | None
    ) -> list[str]:
        """The validated commands for configure_voltage_source, compliance before level."""

    @abc.abstractmethod
    def measurement_commands(
        self, nplc: float, current_range_A: float | None, four_wire: bool
    ) -> list[str]:
        """The validated commands for configure_measurement."""

    @abc.abstractmethod
    def level_command(self, level_V: float) -> str:
        """The validated command that sets the source level."""

    # ------------------------------------------------------------------ output interlock
    def write(self, command: str) -> None:
        """Send one command line, through the output interlock (class docstring)."""
        effects = self._interlock(command)
        super().write(command)
        self._apply_output_effects(effects)

    def ask(self, command: str) -> str:
        """Send a query line, through the output interlock: a compound line's units
        (``:OUTP ON;:READ?``) switch the output as much as a plain write."""
        effects = self._interlock(command)
        reply = super().ask(command)
        self._apply_output_effects(effects)
        return reply

    def _interlock(self, line: str) -> list[str]:
        """The output effects of ``line``'s units, in order; refuses (nothing sent) a line
        that turns the output on without a compliance, also one a ``*RST`` earlier in the
        same line forgot. An off or reset clears ``output_enabled`` before sending: never
        believe the output on when unsure."""
        effects = output_effects(line)
        compliance_known = self.compliance_A is not None
        for effect in effects:
            if effect == "reset":
                compliance_known = False
            elif effect == "on" and not compliance_known:
                raise self.output_on_refused(line)
        if "off" in effects or "reset" in effects:
            self.output_enabled = False
        return effects

    def output_on_refused(self, command: str) -> InstrumentError:
        """The error for ``command`` turning the output on without a programmed compliance
        (raised before anything is sent)."""
        return InstrumentError(
            "refusing to turn the output on before a current compliance is set "
            "(call configure_voltage_source first)",
            instrument=self.name,
            command=command,
        )

    def _apply_output_effects(self, effects: list[str]) -> None:
        """Bring the driver in step with what a sent line did to the output, in order."""
        for effect in effects:
            if effect == "on":
                self.output_enabled = True
            elif effect == "off":
                self.output_enabled = False
            else:  # reset
                self.output_enabled = False
                self.compliance_A = self.level_V = None
                self._measurement_known = None

    @property
    def output_state(self) -> bool:
        """Control the output (bool) through the interlock: reading asks the instrument and
        brings ``output_enabled`` in step; True is :meth:`enable_output` (refused, nothing
        sent, while no compliance is set), False :meth:`disable_output`."""
        state = parse_bool(self.ask(self.format_command(self.output_query_command)))
        self.output_enabled = state
        return state

    @output_state.setter
    def output_state(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"{self.name}: output_state must be True or False, got {value!r}")
        if value:
            self.enable_output()
        else:
            self.disable_output()

    # ------------------------------------------------------------------ configuration
    def _send_checked(self, commands: list[str]) -> None:
        for command in commands:
            self.write(command)
        self.check_errors("; ".join(commands))

    def reset(self) -> None:
        """``*RST`` (output off, defaults) then ``*CLS``; forget the configuration."""
        self.write("*RST")
        self.write("*CLS")
        self.output_enabled = False
        self.compliance_A = self.level_V = self.nplc = self.fixed_current_range_A = None
        self.four_wire_sense = False
        self._measurement_known = None
        self.check_errors("*RST")

    def configure_voltage_source(
        self, level_V: float, compliance_A: float, *, source_range_V: float | None = None
    ) -> None:
        """See :meth:`SourceMeter.configure_voltage_source`."""
        self.check_current_limit(compliance_A, "configure_voltage_source")
        self.check_voltage_limit(level_V, "configure_voltage_source")
        if source_range_V is not None and abs(level_V) > source_range_V:
            raise ValueError(
                f"{self.name}: source level {level_V!r} V does not fit the source range "
                f"{source_range_V!r} V; nothing sent"
            )
        commands = self.voltage_source_commands(level_V, compliance_A, source_range_V)
        self._send_checked(commands)
        self.compliance_A = float(compliance_A)
        self.level_V = float(level_V)

    def set_voltage(self, level_V: float) -> None:
        """See :meth:`SourceMeter.set_voltage`; needs configure_voltage_source first."""
        self.check_voltage_limit(level_V, "set_voltage")
        if self.compliance_A is None:
            raise InstrumentError(
                "configure_voltage_source (with a compliance) before set_voltage",
                instrument=self.name,
                command="set_voltage",
            )
        self.level_V = None  # unknown until the instrument confirmed it
        self._send_checked([self.level_command(level_V)])
        self.level_V = level_V

    def configure_measurement(
        self, *, nplc: float, current_range_A: float | None = None, four_wire: bool = False
    ) -> None:
        """See :meth:`SourceMeter.configure_measurement`.

        Only the settings that differ from what this driver last programmed are sent
        (`changed_measurement_commands`); everything is sent while the state is unknown
        (after connecting, `reset`, or a failed configuration).
        """
        commands = self.measurement_commands(nplc, current_range_A, four_wire)
        known = self._measurement_known
        if known is not None:
            commands = self.changed_measurement_commands(
                commands, known, (float(nplc), current_range_A, four_wire)
            )
            if not commands:
                return
        self._measurement_known = None  # unknown until the instrument confirmed it
        self._send_checked(commands)
        self.nplc = float(nplc)
        self.fixed_current_range_A = current_range_A
        self.four_wire_sense = four_wire
        self._measurement_known = (float(nplc), current_range_A, four_wire)

    def changed_measurement_commands(
        self,
        commands: list[str],
        known: tuple[float, float | None, bool],
        wanted: tuple[float, float | None, bool],
    ) -> list[str]:
        """The commands of ``commands`` (`measurement_commands` for ``wanted`` = (NPLC,
        current range A or None for autorange, 4-wire)) that change a setting from
        ``known``, the programmed one. This default sends them all when anything differs;
        a model whose command list is one command per setting sends only those."""
        return commands if known != wanted else []

    def measure_once(self, level_V: float | None = None) -> SMUReading:
        """See :meth:`SourceMeter.measure_once`; the level is sent only when it differs from
        the one this driver programmed."""
        if level_V is not None and level_V == self.level_V:
            level_V = None
        return SourceMeter.measure_once(self, level_V)

    def enable_output(self) -> None:
        """Output on; refused (nothing sent) while no compliance has been programmed."""
        if self.compliance_A is None:
            raise self.output_on_refused(self.format_command(self.output_on_command))
        self._send_checked([self.format_command(self.output_on_command)])
        self.output_enabled = True

    def disable_output(self) -> None:
        """Output off."""
        self.output_enabled = False
        self.write(self.format_command(self.output_off_command))

    def require_measurable(self, command: str) -> float:
        """Check a reading can be taken (output on, measurement configured); return NPLC."""
        if not self.output_enabled:
            raise InstrumentError(
                "the output is off; turn it on (enable_output / output_on) before measuring",
                instrument=self.name,
                command=command,
            )
        if self.nplc is None:
            raise InstrumentError(
                "configure_measurement before measuring", instrument=self.name, command=command
            )
        return self.nplc

    def shutdown(self) -> None:
        """Source 0 V, then output off; each step best effort, failures are logged."""
        for template in (self.zero_voltage_command, self.output_off_command):
            command = self.format_command(template)
            try:
                self.write(command)
            except Exception as exc:  # a dead link must not stop the rest of the shutdown
                log.warning("%s: shutdown step %r failed: %s", self.name, command, exc)
        self.output_enabled = False
        if self.level_V is not None:
            self.level_V = 0.0

    def close(self) -> None:
        """Close the VISA session (the output is left as it is: call shutdown first)."""
        self.adapter.close()


_OUTPUT_SWITCH = re.compile(r"^\s*:?OUTP(?:UT)?\d?(?::STAT(?:E)?)?\s+(\S+)\s*$", re.IGNORECASE)


def output_switch(command: str) -> str | None:
    """What ``command`` does to the output: ``"on"``, ``"off"``, ``"reset"`` (``*RST``:
    output off, settings forgotten) or None."""
    text = command.strip()
    if text.upper() == "*RST":
        return "reset"
    match = _OUTPUT_SWITCH.match(text)
    if match is None:
        return None
    word = match.group(1).upper()
    if word in ("ON", "1"):
        return "on"
    if word in ("OFF", "0"):
        return "off"
    return None


def message_units(line: str) -> list[str]:
    """The ``;``-separated message units of a SCPI line (``;`` inside quotes kept)."""
    units: list[str] = []
    start = 0
    quote: str | None = None
    for index, char in enumerate(line):
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == ";":
            units.append(line[start:index])
            start = index + 1
    units.append(line[start:])
    return units


def output_effects(line: str) -> list[str]:
    """What each unit of ``line`` does to the output, in order (`output_switch` per unit;
    units that do not touch it are left out). Every exchange passes here: a line naming
    neither ``OUTP`` nor ``*RST`` is not split."""
    upper = line.upper()
    if "OUTP" not in upper and "*RST" not in upper:
        return []
    return [effect for unit in message_units(line) if (effect := output_switch(unit))]


def open_visa_smu(
    connection: SMUConnection,
    driver: str,
    factory: Callable[[Adapter], SourceMeter],
) -> SourceMeter:
    """Open a VISA session for ``connection`` and build the SMU driver on it.

    The session is closed again if ``factory`` raises (a wrong instrument at the address,
    a dead link). For `drivers.plugins.SMUDriver.open` implementations.
    """
    from drivers.adapters import VISAAdapter

    adapter = VISAAdapter(
        connection.resource,
        timeout_s=connection.timeout_s,
        visa_library=connection.visa_library,
        instrument=f"{driver} at {connection.resource}",
    )
    try:
        return factory(adapter)
    except BaseException:
        adapter.close()
        raise


def open_smu(
    driver: str,
    resource: str,
    limits: SafetyLimits,
    *,
    timeout_s: float = 5.0,
    channel: int = 1,
    visa_library: str = "@py",
) -> SourceMeter:
    """Open the SMU at VISA ``resource`` with the named driver and check its identity.

    Args:
        driver: an installed SMU driver's name (entry point group ``labrss.smus``:
            ``keithley2450``, ``keysight_b2900``, or a plug-in's; `labrss drivers` lists
            them).
        resource: any VISA resource string (``TCPIP0::host::5025::SOCKET``, ``USB0::...``).
        limits: the safety limits every request is checked against.
        timeout_s: per-reply timeout (s).
        channel: SMU channel (1-based; only multi-channel models have more than 1).
        visa_library: pyvisa backend, ``"@py"`` by default.

    Raises:
        ValueError: unknown driver name (listing the installed ones), or a channel the
            driver does not have.
        drivers.plugins.PluginError: the driver's plug-in cannot be loaded.
        InstrumentIdentityError: ``*IDN?`` names another model (the message gives the
            address and what answered).
        InstrumentError: the resource cannot be opened.
    """
    from drivers.plugins import SMUConnection, UnknownDriverError, find_smu_driver

    try:
        description = find_smu_driver(driver)
    except UnknownDriverError as exc:
        raise ValueError(str(exc)) from None
    if not 1 <= channel <= description.channels:
        raise ValueError(
            f"the {driver} driver's instruments have {description.channels} channel(s); "
            f"channel {channel!r} requested"
        )
    connection = SMUConnection(
        resource, limits, timeout_s=timeout_s, channel=channel, visa_library=visa_library
    )
    return description.open(connection)
