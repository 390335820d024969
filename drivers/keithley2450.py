"""Keithley 2450 SourceMeter in its native SCPI command set.

Usage::

    from drivers.smu import SafetyLimits, open_smu
    smu = open_smu("keithley2450", "TCPIP0::192.168.1.50::5025::SOCKET",
                   SafetyLimits(max_voltage_V=1.0, max_current_A=0.01))
    smu.configure_voltage_source(0.1, compliance_A=1e-3)
    smu.configure_measurement(nplc=1.0)
    with smu.output_on():
        reading = smu.measure()        # reading.resistance_ohm, reading.limit_tripped
    smu.shutdown()

On connect the driver asks ``*IDN?`` (must be a Model 2450), ``*LANG?`` (must be ``SCPI``:
the 2400-emulation and TSP command sets are refused with instructions to switch), clears the
status (``*CLS``) and reads the output state (``:OUTP?``). It changes nothing else.

A reading is one line: ``:READ? "defbuffer1",READ,SOUR,REL`` (the current, the source
read-back voltage, the relative time stamp) compounded with ``:SOUR:VOLT:ILIM:TRIP?`` and
``:SENS:CURR:RANG?``, so every reading carries the limit-tripped flag and the range the
autorange chose at the cost of one round trip. Source read-back is switched on, so the
SOUR element is the measured (in 4-wire mode: sensed) voltage, not the programmed one.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from typing import Final

from drivers.adapters import Adapter
from drivers.errors import (
    InstrumentError,
    InstrumentIdentityError,
    InstrumentModeError,
)
from drivers.instrument import (
    control,
    format_bool,
    format_float,
    measurement,
    parse_bool,
    setting,
    strict_discrete_set,
    strict_range,
)
from drivers.plugins import Recognition, SMUConnection, SMUDriver
from drivers.smu import (
    SafetyLimits,
    SCPISourceMeter,
    SeriesPoint,
    SMUReading,
    SourceMeter,
    open_visa_smu,
    output_switch,
    overflow_to_nan,
)

__all__ = ["CURRENT_RANGES_A", "DRIVER", "VOLTAGE_RANGES_V", "Keithley2450"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

VOLTAGE_RANGES_V = (0.02, 0.2, 2.0, 20.0, 200.0)
"""2450 source voltage ranges (V)."""
CURRENT_RANGES_A = (10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0)
"""2450 current measure ranges (A)."""
MAX_SOURCE_V = 210.0
"""Largest programmable source level (V) on the 200 V range."""
CURRENT_LIMIT_RANGE_A = (1e-9, 1.05)
"""Programmable current limit (A)."""
NPLC_RANGE = (0.01, 10.0)
MAX_BUFFERED_READINGS = 100_000
"""Readings that ``defbuffer1`` holds by default."""
BUFFER = '"defbuffer1"'
READING_ELEMENTS = "READ,SOUR,REL"

LANGUAGE_HELP = (
    "switch the 2450 to its native command set: front panel MENU > System > Settings > "
    "Command Set > SCPI, or send *LANG SCPI, then power-cycle the instrument"
)


SCPI2400_HELP = (
    '; or keep the Model 2400 command set and use the 2400 driver: driver = "keithley2400" '
    'in the station file\'s [smu] table (open_smu("keithley2400", ...) in a script)'
)


class Keithley2450(SCPISourceMeter):
    """Keithley 2450 SMU, native SCPI; see the module docstring.

    Args:
        adapter: the connection (a VISAAdapter, or a ProtocolAdapter in tests).
        limits: safety limits checked before anything is sent.
    """

    # ------------------------------------------------------------------ source
    source_function = control(
        ":SOUR:FUNC?",
        ":SOUR:FUNC {value}",
        """Control the source function: "voltage" or "current".""",
        validator=strict_discrete_set,
        values=("voltage", "current"),
        map_values={"voltage": "VOLT", "current": "CURR"},
    )
    source_voltage_V = control(
        ":SOUR:VOLT?",
        ":SOUR:VOLT {value}",
        """Control the source voltage level (V; float strictly within the safety limit and
        +-210 V). Prefer set_voltage(), which raises InstrumentLimitError.""",
        validator=strict_range,
        values=lambda smu: (
            -min(MAX_SOURCE_V, smu.limits.max_voltage_V),
            min(MAX_SOURCE_V, smu.limits.max_voltage_V),
        ),
        get_process=float,
        set_process=format_float,
        check_set_errors=True,
    )
    source_voltage_range_V = control(
        ":SOUR:VOLT:RANG?",
        ":SOUR:VOLT:RANG {value}",
        """Control the fixed source voltage range (V; one of 0.02, 0.2, 2, 20, 200).""",
        validator=strict_discrete_set,
        values=VOLTAGE_RANGES_V,
        get_process=float,
        set_process=format_float,
    )
    source_voltage_autorange = control(
        ":SOUR:VOLT:RANG:AUTO?",
        ":SOUR:VOLT:RANG:AUTO {value}",
        """Control source autorange (bool).""",
        get_process=parse_bool,
        set_process=format_bool,
    )
    source_readback = control(
        ":SOUR:VOLT:READ:BACK?",
        ":SOUR:VOLT:READ:BACK {value}",
        """Control source read-back (bool): ON makes the SOUR element the measured voltage.""",
        get_process=parse_bool,
        set_process=format_bool,
    )
    current_limit_A = control(
        ":SOUR:VOLT:ILIM?",
        ":SOUR:VOLT:ILIM {value}",
        """Control the current limit (compliance) while sourcing voltage (A; float strictly
        within the safety limit and 1 nA..1.05 A).""",
        validator=strict_range,
        values=lambda smu: (
            CURRENT_LIMIT_RANGE_A[0],
            min(CURRENT_LIMIT_RANGE_A[1], smu.limits.max_current_A),
        ),
        get_process=float,
        set_process=format_float,
    )
    current_limit_tripped = measurement(
        ":SOUR:VOLT:ILIM:TRIP?",
        """Get whether the current limit is active (bool).""",
        get_process=parse_bool,
    )

    # ------------------------------------------------------------------ measure
    sense_function = setting(
        ":SENS:FUNC {value}",
        """Set the measure function: "current", "voltage" or "resistance".""",
        validator=strict_discrete_set,
        values=("current", "voltage", "resistance"),
        map_values={"current": '"CURR"', "voltage": '"VOLT"', "resistance": '"RES"'},
    )
    current_range_A = control(
        ":SENS:CURR:RANG?",
        ":SENS:CURR:RANG {value}",
        """Control the fixed current measure range (A; one of 10 nA..1 A in decades).""",
        validator=strict_discrete_set,
        values=CURRENT_RANGES_A,
        get_process=float,
        set_process=format_float,
    )
    current_autorange = control(
        ":SENS:CURR:RANG:AUTO?",
        ":SENS:CURR:RANG:AUTO {value}",
        """Control current measure autorange (bool).""",
        get_process=parse_bool,
        set_process=format_bool,
    )
    current_nplc = control(
        ":SENS:CURR:NPLC?",
        ":SENS:CURR:NPLC {value}",
        """Control the current integration time in power-line cycles (float strictly
        0.01..10; 1 PLC = 20 ms at 50 Hz).""",
        validator=strict_range,
        values=NPLC_RANGE,
        get_process=float,
        set_process=format_float,
    )
    four_wire = control(
        ":SENS:CURR:RSEN?",
        ":SENS:CURR:RSEN {value}",
        """Control remote (4-wire) sense for the current function (bool).""",
        get_process=parse_bool,
        set_process=format_bool,
    )
    measure_count = control(
        ":SENS:COUN?",
        ":SENS:COUN {value}",
        """Control how many readings one trigger makes (int strictly 1..100000).""",
        validator=strict_range,
        values=(1, MAX_BUFFERED_READINGS),
        get_process=lambda reply: int(float(reply)),
        set_process=lambda n: str(int(n)),
    )
    language = measurement(
        "*LANG?",
        """Get the active command set: "SCPI", "SCPI2400" or "TSP".""",
        get_process=str.strip,
    )

    def __init__(self, adapter: Adapter, limits: SafetyLimits) -> None:
        super().__init__(adapter, limits, f"Keithley 2450 at {adapter.name}")
        identity = self.identify()
        fields = [field.strip() for field in identity.split(",")]
        if (
            len(fields) < 3
            or "KEITHLEY" not in fields[0].upper()
            or fields[1].upper()
            not in {
                "MODEL 2450",
                "2450",
            }
        ):
            raise InstrumentIdentityError(
                f"expected a Keithley Model 2450 at {adapter.name}, but *IDN? answered "
                f"{identity!r}",
                instrument=self.name,
                command="*IDN?",
            )
        self.identity = identity
        self.model = "2450"
        self.serial = fields[2]
        self.rename(f"Keithley 2450 {self.serial} at {adapter.name}")
        language = self.language
        if language.upper() != "SCPI":
            also = SCPI2400_HELP if language.upper() == "SCPI2400" else ""
            raise InstrumentModeError(
                f"the instrument uses the {language!r} command set; {LANGUAGE_HELP}{also}",
                instrument=self.name,
                command="*LANG?",
            )
        self.clear_status()
        self.output_enabled = self.output_state
        log.info("connected to %s (%s)", self.name, identity)

    def read_compliance_A(self) -> float:
        """The current compliance in force (A), read back from the instrument."""
        return float(self.current_limit_A)

    def read_output_on(self) -> bool:
        """Whether the output is on, read back from the instrument."""
        return bool(self.output_state)

    # ------------------------------------------------------------------ command lists
    def voltage_source_commands(
        self, level_V: float, compliance_A: float, source_range_V: float | None
    ) -> list[str]:
        """Function, compliance, range, read-back, then the level; all validated first."""
        cls = type(self)
        commands = [
            ":SOUR:FUNC " + cls.source_function.encode(self, "voltage"),
            ":SOUR:VOLT:ILIM " + cls.current_limit_A.encode(self, compliance_A),
        ]
        if source_range_V is None:
            commands.append(":SOUR:VOLT:RANG:AUTO ON")
        else:
            commands.append(
                ":SOUR:VOLT:RANG " + cls.source_voltage_range_V.encode(self, source_range_V)
            )
        commands.append(":SOUR:VOLT:READ:BACK ON")
        commands.append(self.level_command(level_V))
        return commands

    def level_command(self, level_V: float) -> str:
        """``:SOUR:VOLT <level>`` after validation."""
        return ":SOUR:VOLT " + type(self).source_voltage_V.encode(self, level_V)

    def measurement_commands(
        self, nplc: float, current_range_A: float | None, four_wire: bool
    ) -> list[str]:
        """Measure function current, range (or autorange), NPLC, 2/4-wire; validated first."""
        cls = type(self)
        commands = [':SENS:FUNC "CURR"']
        if current_range_A is None:
            commands.append(":SENS:CURR:RANG:AUTO ON")
        else:
            commands.append(":SENS:CURR:RANG " + cls.current_range_A.encode(self, current_range_A))
        commands.append(":SENS:CURR:NPLC " + cls.current_nplc.encode(self, nplc))
        commands.append(":SENS:CURR:RSEN " + format_bool(four_wire))
        return commands

    def _send_checked(self, commands: list[str]) -> None:
        """Send ``commands`` and the error query as one line (one exchange): the 2450
        executes a line's units in order and answers when it is done. The first queued
        error comes back with the line; the rest of the queue is read only when it is not
        empty. Output switches keep the separate path (the interlock watches each one)."""
        if any(output_switch(command) is not None for command in commands):
            super()._send_checked(commands)
            return
        line = ";".join([*commands, ":SYST:ERR?"])
        self.check_error_reply(line, self.ask(line))

    def changed_measurement_commands(
        self,
        commands: list[str],
        known: tuple[float, float | None, bool],
        wanted: tuple[float, float | None, bool],
    ) -> list[str]:
        """Only the range, NPLC and 4-wire commands whose setting changed (the function
        stays current once set): range linking changes the range alone."""
        (nplc0, range0, wires0), (nplc, range_A, wires) = known, wanted
        changed = (range0 != range_A, nplc0 != nplc, wires0 != wires)  # commands[1:] order
        return [command for command, differs in zip(commands[1:], changed, strict=True) if differs]

    # ------------------------------------------------------------------ readings
    def _reading(
        self, current: float, voltage: float, time_s: float, tripped: bool, range_A: float
    ) -> SMUReading:
        return SMUReading(
            voltage_V=overflow_to_nan(voltage, instrument=self.name, what="voltage"),
            current_A=overflow_to_nan(current, instrument=self.name, what="current"),
            limit_tripped=tripped,
            current_range_A=range_A,
            nplc=self.nplc if self.nplc is not None else math.nan,
            four_wire=self.four_wire_sense,
            timestamp_s=time_s,
            instrument=self.label,
        )

    def _split_compound(self, command: str, reply: str) -> tuple[list[float], bool, float]:
        parts = reply.split(";")
        try:
            if len(parts) != 3:
                raise ValueError("expected 3 ';'-separated replies")
            values = [float(value) for value in parts[0].split(",")]
            tripped = parse_bool(parts[1])
            range_A = float(parts[2])
        except ValueError as exc:
            raise InstrumentError(
                f"cannot interpret reading reply {reply!r}: {exc}",
                instrument=self.name,
                command=command,
            ) from None
        return values, tripped, range_A

    def measure(self) -> SMUReading:
        """One reading of current and source read-back voltage, with the trip flag."""
        command = f":READ? {BUFFER},{READING_ELEMENTS};:SOUR:VOLT:ILIM:TRIP?;:SENS:CURR:RANG?"
        self.require_measurable(command)
        values, tripped, range_A = self._split_compound(command, self.ask(command))
        if len(values) != 3:
            raise InstrumentError(
                f"expected 3 reading elements, got {len(values)}",
                instrument=self.name,
                command=command,
            )
        current, voltage, time_s = values
        return self._reading(current, voltage, time_s, tripped, range_A)

    def measure_once(self, level_V: float | None = None) -> SMUReading:
        """See `SourceMeter.measure_once`: one exchange, one line.

        ``[:SOUR:VOLT <level>;]:OUTP ON;:READ? ...;:SOUR:VOLT:ILIM:TRIP?;:SENS:CURR:RANG?;
        :OUTP OFF;:SYST:ERR?``: the level only when it changed. The 2450 executes the units
        of a line in order and answers once the line is done, so the reply proves the
        output-off ran; its last part is the oldest queued error (the rest of the queue is
        read only when it is not empty). A timeout, a reply of another shape or a queued
        error raises (InstrumentTimeoutError, InstrumentError, InstrumentCommandError, each
        naming the line) after a separate ``:OUTP OFF``; the level is then unknown and
        sent again next time.
        """
        line = self._measure_once_line(level_V)
        try:
            reply = self.ask(line)
            parts = reply.split(";", 3)
            if len(parts) != 4:
                raise InstrumentError(
                    f"cannot interpret reading reply {reply!r}: expected 4 ';'-separated replies",
                    instrument=self.name,
                    command=line,
                )
            values, tripped, range_A = self._split_compound(line, ";".join(parts[:3]))
            self.check_error_reply(line, parts[3])
            if len(values) != 3:
                raise InstrumentError(
                    f"expected 3 reading elements, got {len(values)}",
                    instrument=self.name,
                    command=line,
                )
        except BaseException:
            self.level_V = None
            with contextlib.suppress(Exception):
                self.write(self.output_off_command)
            raise
        if level_V is not None:
            self.level_V = float(level_V)
        current, voltage, time_s = values
        return self._reading(current, voltage, time_s, tripped, range_A)

    series_line_bytes: Final = 2048
    """Longest `measure_series` line (bytes): half the 4096 the 2450's emulator accepts,
    so that a real instrument's input buffer is never the limit."""

    series_line_points: Final = 16
    """Most readings per `measure_series` line: at 10 PLC a line then takes ~3.5 s of
    instrument time, inside the adapter's 5 s default timeout."""

    def measure_series(
        self, points: Sequence[SeriesPoint], *, nplc: float, four_wire: bool = False
    ) -> list[SMUReading]:
        """See `SourceMeter.measure_series`: up to `series_line_points` readings per line.

        Per point, what changed of ``[:SENS:CURR:RANG r;][:SOUR:VOLT v;]`` then ``:OUTP ON;
        :READ? ...;:SOUR:VOLT:ILIM:TRIP?;:SENS:CURR:RANG?;:OUTP OFF``; the line ends with
        ``:SYST:ERR?``. Exactly what `configure_measurement` and `measure_once` would send
        point by point, in the same order, with fewer line ends: the instrument does the
        same, and the reply proves each output-off ran. A timeout, a reply of another shape
        or a queued error raises naming the line, after a separate ``:OUTP OFF``; the
        level and the measurement settings are then unknown and sent again next time.
        """
        points = list(points)
        for point in points:
            self.check_voltage_limit(point.level_V, "measure_series")
        if self.compliance_A is None:
            raise self.output_on_refused(self.output_on_command)
        read = f":READ? {BUFFER},{READING_ELEMENTS};:SOUR:VOLT:ILIM:TRIP?;:SENS:CURR:RANG?"
        readings: list[SMUReading] = []
        at = 0
        while at < len(points):
            # one line: the points that fit, each with the settings it changes
            level, known = self.level_V, self._measurement_known
            units: list[str] = []
            n = 0
            for point in points[at : at + self.series_line_points]:
                wanted = (float(nplc), point.current_range_A, four_wire)
                settings = self.measurement_commands(nplc, point.current_range_A, four_wire)
                if known is not None:
                    settings = self.changed_measurement_commands(settings, known, wanted)
                point_units = [*settings]
                if point.level_V != level:
                    point_units.append(self.level_command(point.level_V))
                point_units += [self.output_on_command, read, self.output_off_command]
                size = sum(len(u) + 1 for u in [*units, *point_units]) + len(":SYST:ERR?")
                if n and size > self.series_line_bytes:
                    break
                units += point_units
                level, known, n = point.level_V, wanted, n + 1
            assert level is not None and known is not None  # n >= 1 points set them
            readings += self._series_line(";".join([*units, ":SYST:ERR?"]), n, level, known)
            at += n
        return readings

    def _series_line(
        self, line: str, n: int, level_V: float, known: tuple[float, float | None, bool]
    ) -> list[SMUReading]:
        """Send one `measure_series` line of ``n`` readings; the driver's settings become
        ``level_V`` and ``known`` (NPLC, range, 4-wire) when it succeeded."""
        self.level_V = None  # unknown until the instrument confirmed the line
        self._measurement_known = None
        try:
            reply = self.ask(line)
            parts = reply.split(";", 3 * n)  # the error message may hold ';'
            if len(parts) != 3 * n + 1:
                raise InstrumentError(
                    f"cannot interpret reading reply {reply!r}: expected {3 * n + 1} "
                    "';'-separated replies",
                    instrument=self.name,
                    command=line,
                )
            split = [
                self._split_compound(line, ";".join(parts[3 * i : 3 * i + 3])) for i in range(n)
            ]
            self.check_error_reply(line, parts[-1])
            for values, _, _ in split:
                if len(values) != 3:
                    raise InstrumentError(
                        f"expected 3 reading elements, got {len(values)}",
                        instrument=self.name,
                        command=line,
                    )
        except BaseException:
            with contextlib.suppress(Exception):
                self.write(self.output_off_command)
            raise
        self.level_V = level_V
        self.nplc, self.fixed_current_range_A, self.four_wire_sense = known
        self._measurement_known = known
        return [
            self._reading(values[0], values[1], values[2], tripped, range_A)
            for values, tripped, range_A in split
        ]

    def _measure_once_line(self, level_V: float | None) -> str:
        """The `measure_once` line, every value validated (nothing is sent on a refusal)."""
        if self.compliance_A is None:
            raise self.output_on_refused(self.output_on_command)
        units = []
        if level_V is not None and level_V != self.level_V:
            self.check_voltage_limit(level_V, "measure_once")
            units.append(self.level_command(level_V))
        read = f":READ? {BUFFER},{READING_ELEMENTS};:SOUR:VOLT:ILIM:TRIP?;:SENS:CURR:RANG?"
        if self.nplc is None:
            raise InstrumentError(
                "configure_measurement before measuring", instrument=self.name, command=read
            )
        return ";".join(
            [*units, self.output_on_command, read, self.output_off_command, ":SYST:ERR?"]
        )

    def measure_many(self, n: int) -> list[SMUReading]:
        """``n`` readings from one trigger into ``defbuffer1`` (cleared first).

        The limit-tripped flag of each reading is the instrument's limit state after the
        burst (``:SOUR:VOLT:ILIM:TRIP?``): the source is the same for the whole burst.
        """
        count = type(self).measure_count.encode(self, n)
        fetch = (
            f":TRAC:DATA? 1,{count},{BUFFER},{READING_ELEMENTS};"
            ":SOUR:VOLT:ILIM:TRIP?;:SENS:CURR:RANG?"
        )
        self.require_measurable(fetch)
        self.write(f":SENS:COUN {count}")
        try:
            self.write(f":TRAC:CLE {BUFFER}")
            self.write(f":TRAC:TRIG {BUFFER}")
            values, tripped, range_A = self._split_compound(fetch, self.ask(fetch))
        finally:
            self.write(":SENS:COUN 1")
        if len(values) != 3 * n:
            raise InstrumentError(
                f"expected {3 * n} buffer elements ({n} readings), got {len(values)}",
                instrument=self.name,
                command=fetch,
            )
        return [
            self._reading(values[i], values[i + 1], values[i + 2], tripped, range_A)
            for i in range(0, 3 * n, 3)
        ]


# ---------------------------------------------------------------------- plug-in description
def _open(connection: SMUConnection) -> SourceMeter:
    if connection.channel != 1:
        raise ValueError(
            f"the Keithley 2450 has one channel; channel {connection.channel!r} requested"
        )
    return open_visa_smu(
        connection, "keithley2450", lambda adapter: Keithley2450(adapter, connection.limits)
    )


DRIVER: Final = SMUDriver(
    open=_open,
    description="Keithley 2450 SourceMeter, native SCPI command set",
    recognition=Recognition(
        query="*IDN?",
        pattern=r"^KEITHLEY INSTRUMENTS[^,]*,MODEL 2450,",
        usb_ids=((0x05E6, 0x2450),),
    ),
    channels=1,
    simulator="2450",
    capabilities=("4-wire", "buffered"),
)
"""The ``keithley2450`` entry point of ``labrss.smus`` (pyproject.toml)."""
