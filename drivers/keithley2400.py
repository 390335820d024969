"""Keithley 2400-series SourceMeter (2400, 2401, 2410, 2420, 2425, 2430, 2440) in SCPI.

Also a Keithley 2450 switched to its Model 2400 command set (``*LANG SCPI2400`` and a power
cycle), which the 2450 driver refuses and this one accepts.

Usage::

    from drivers.smu import SafetyLimits, open_smu
    smu = open_smu("keithley2400", "GPIB0::24::INSTR",
                   SafetyLimits(max_voltage_V=1.0, max_current_A=0.01))
    smu.configure_voltage_source(0.1, compliance_A=1e-3)
    smu.configure_measurement(nplc=1.0)
    with smu.output_on():
        reading = smu.measure()        # reading.resistance_ohm, reading.limit_tripped
    smu.shutdown()

On connect the driver asks ``*IDN?`` (a 2400-series model, or a Model 2450 whose ``*LANG?``
is ``SCPI2400``), clears the status (``*CLS``) and reads the output state (``:OUTP?``). It
changes nothing else.

A reading is one line: ``:READ?`` (one arm, one trigger: the elements voltage, current,
time, set by ``:FORM:ELEM VOLT,CURR,TIME`` with ``:ARM:COUN 1`` and ``:TRIG:COUN 1`` when
the measurement is configured) compounded
with ``:SENS:CURR:PROT:TRIP?`` and ``:SENS:CURR:RANG?``. Buffered readings: ``:TRIG:COUN n``
then the same ``:READ?`` (n readings), then ``:TRIG:COUN 1``. 4-wire sense is the 2400's
instrument-wide ``:SYST:RSEN``.

Safety as in every labrss SMU driver (:class:`drivers.smu.SCPISourceMeter`): levels and
compliance checked against the limits before anything is sent, compliance programmed before
the level, and every public way to turn the output on (``enable_output``, ``output_on``,
the ``output_state`` property) refuses while no compliance is set.
"""

from __future__ import annotations

import logging
import math
from typing import Final

from drivers.adapters import Adapter
from drivers.errors import InstrumentError, InstrumentIdentityError, InstrumentModeError
from drivers.instrument import (
    control,
    format_bool,
    format_float,
    measurement,
    parse_bool,
    strict_discrete_set,
    strict_range,
)
from drivers.plugins import Recognition, SMUConnection, SMUDriver
from drivers.smu import (
    SafetyLimits,
    SCPISourceMeter,
    SMUReading,
    SourceMeter,
    open_visa_smu,
    overflow_to_nan,
)

__all__ = ["DRIVER", "MODELS", "Keithley2400"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

MODELS = {"2400", "2401", "2410", "2420", "2425", "2430", "2440"}
"""2400-series models this driver accepts (and a 2450 in SCPI2400 mode)."""
VOLTAGE_RANGES_V = (0.2, 2.0, 20.0, 200.0)
"""2400 source voltage ranges (V)."""
CURRENT_RANGES_A = (1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0)
"""2400 current measure ranges (A)."""
CURRENT_RANGES_2450_A = (10e-9, 100e-9, *CURRENT_RANGES_A)
"""A 2450 in SCPI2400 mode also has the 10 nA and 100 nA ranges (A)."""
VOLTAGE_RANGES_2450_V = (0.02, *VOLTAGE_RANGES_V)
MAX_SOURCE_V = 210.0
COMPLIANCE_RANGE_A = (1e-9, 1.05)
NPLC_RANGE = (0.01, 10.0)
MAX_READINGS = 2500
"""Largest trigger count (the 2400's arm x trigger limit and data store size)."""
ELEMENTS = "VOLT,CURR,TIME"


class Keithley2400(SCPISourceMeter):
    """Keithley 2400-series SMU (or a 2450 in SCPI2400 mode); see the module docstring.

    Args:
        adapter: the connection (a VISAAdapter, or a ProtocolAdapter in tests).
        limits: safety limits checked before anything is sent.
    """

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
        """Control the fixed source voltage range (V; 0.2, 2, 20 or 200, and 0.02 on a
        2450).""",
        validator=strict_discrete_set,
        values=lambda smu: smu.voltage_ranges_V,
        get_process=float,
        set_process=format_float,
    )
    compliance_current_A = control(
        ":SENS:CURR:PROT?",
        ":SENS:CURR:PROT {value}",
        """Control the current compliance (A; float strictly within the safety limit and
        1 nA..1.05 A).""",
        validator=strict_range,
        values=lambda smu: (
            COMPLIANCE_RANGE_A[0],
            min(COMPLIANCE_RANGE_A[1], smu.limits.max_current_A),
        ),
        get_process=float,
        set_process=format_float,
    )
    compliance_tripped = measurement(
        ":SENS:CURR:PROT:TRIP?",
        """Get whether the current compliance is reached (bool).""",
        get_process=parse_bool,
    )
    current_range_A = control(
        ":SENS:CURR:RANG?",
        ":SENS:CURR:RANG {value}",
        """Control the fixed current measure range (A; 1 uA..1 A in decades, from 10 nA on
        a 2450).""",
        validator=strict_discrete_set,
        values=lambda smu: smu.current_ranges_A,
        get_process=float,
        set_process=format_float,
    )
    current_nplc = control(
        ":SENS:CURR:NPLC?",
        ":SENS:CURR:NPLC {value}",
        """Control the integration time in power-line cycles (float strictly 0.01..10; one
        setting for every function on the 2400).""",
        validator=strict_range,
        values=NPLC_RANGE,
        get_process=float,
        set_process=format_float,
    )
    four_wire = control(
        ":SYST:RSEN?",
        ":SYST:RSEN {value}",
        """Control remote (4-wire) sense, instrument-wide on the 2400 (bool).""",
        get_process=parse_bool,
        set_process=format_bool,
    )
    trigger_count = control(
        ":TRIG:COUN?",
        ":TRIG:COUN {value}",
        """Control how many source-measure points one :READ? makes (int strictly 1..2500).""",
        validator=strict_range,
        values=(1, MAX_READINGS),
        get_process=lambda reply: int(float(reply)),
        set_process=lambda n: str(int(n)),
    )

    def __init__(self, adapter: Adapter, limits: SafetyLimits) -> None:
        super().__init__(adapter, limits, f"Keithley 2400 at {adapter.name}")
        identity = self.identify()
        fields = [field.strip() for field in identity.split(",")]
        model = fields[1].upper().removeprefix("MODEL").strip() if len(fields) > 1 else ""
        if (
            len(fields) < 3
            or "KEITHLEY" not in fields[0].upper()
            or (model not in MODELS and model != "2450")
        ):
            raise InstrumentIdentityError(
                f"expected a Keithley 2400-series SourceMeter ({', '.join(sorted(MODELS))}, or "
                f"a 2450 in SCPI2400 mode) at {adapter.name}, but *IDN? answered {identity!r}",
                instrument=self.name,
                command="*IDN?",
            )
        self.identity = identity
        self.model = model
        self.serial = fields[2]
        self.rename(f"Keithley {model} {self.serial} at {adapter.name}")
        if model == "2450":
            language = self.ask("*LANG?").strip()
            if language.upper() != "SCPI2400":
                raise InstrumentModeError(
                    f"this 2450 uses the {language!r} command set, not the Model 2400 one: "
                    'use driver "keithley2450" for it, or send *LANG SCPI2400 and '
                    "power-cycle it to use this driver",
                    instrument=self.name,
                    command="*LANG?",
                )
        self.current_ranges_A = CURRENT_RANGES_2450_A if model == "2450" else CURRENT_RANGES_A
        self.voltage_ranges_V = VOLTAGE_RANGES_2450_V if model == "2450" else VOLTAGE_RANGES_V
        self.clear_status()
        self.output_enabled = parse_bool(self.ask(":OUTP?"))
        log.info("connected to %s (%s)", self.name, identity)

    # ------------------------------------------------------------------ output
    def read_compliance_A(self) -> float:
        """The current compliance in force (A), read back from the instrument."""
        return float(self.compliance_current_A)

    def read_output_on(self) -> bool:
        """Whether the output is on, read back from the instrument."""
        return bool(self.output_state)

    # ------------------------------------------------------------------ command lists
    def voltage_source_commands(
        self, level_V: float, compliance_A: float, source_range_V: float | None
    ) -> list[str]:
        """Function, fixed mode, compliance, range, then the level; all validated first."""
        cls = type(self)
        commands = [
            ":SOUR:FUNC VOLT",
            ":SOUR:VOLT:MODE FIX",
            ":SENS:CURR:PROT " + cls.compliance_current_A.encode(self, compliance_A),
        ]
        if source_range_V is None:
            commands.append(":SOUR:VOLT:RANG:AUTO ON")
        else:
            commands.append(
                ":SOUR:VOLT:RANG " + cls.source_voltage_range_V.encode(self, source_range_V)
            )
        commands.append(self.level_command(level_V))
        return commands

    def level_command(self, level_V: float) -> str:
        """``:SOUR:VOLT <level>`` after validation."""
        return ":SOUR:VOLT " + type(self).source_voltage_V.encode(self, level_V)

    def measurement_commands(
        self, nplc: float, current_range_A: float | None, four_wire: bool
    ) -> list[str]:
        """V and I measured, range, NPLC, sense, reading elements; validated first."""
        cls = type(self)
        commands = [":SENS:FUNC:CONC ON", ':SENS:FUNC "VOLT","CURR"']
        if current_range_A is None:
            commands.append(":SENS:CURR:RANG:AUTO ON")
        else:
            commands.append(":SENS:CURR:RANG " + cls.current_range_A.encode(self, current_range_A))
        commands.append(":SENS:CURR:NPLC " + cls.current_nplc.encode(self, nplc))
        commands.append(":SYST:RSEN " + format_bool(four_wire))
        commands.append(f":FORM:ELEM {ELEMENTS}")
        # One arm, one trigger: a :READ? is one reading whatever an earlier host left.
        commands.append(":ARM:COUN 1")
        commands.append(":TRIG:COUN 1")
        return commands

    # ------------------------------------------------------------------ readings
    def _fetch(self, command: str, n: int) -> list[SMUReading]:
        reply = self.ask(command)
        parts = reply.split(";")
        try:
            if len(parts) != 3:
                raise ValueError("expected 3 ';'-separated replies")
            values = [float(value) for value in parts[0].split(",")]
            tripped = parse_bool(parts[1])
            range_A = float(parts[2])
            if len(values) != 3 * n:
                raise ValueError(f"expected {3 * n} elements ({n} readings), got {len(values)}")
        except ValueError as exc:
            raise InstrumentError(
                f"cannot interpret reading reply {reply!r}: {exc}",
                instrument=self.name,
                command=command,
            ) from None
        nplc = self.nplc if self.nplc is not None else math.nan
        return [
            SMUReading(
                voltage_V=overflow_to_nan(values[i], instrument=self.name, what="voltage"),
                current_A=overflow_to_nan(values[i + 1], instrument=self.name, what="current"),
                limit_tripped=tripped,
                current_range_A=range_A,
                nplc=nplc,
                four_wire=self.four_wire_sense,
                timestamp_s=values[i + 2],
                instrument=self.label,
            )
            for i in range(0, 3 * n, 3)
        ]

    def measure(self) -> SMUReading:
        """One reading of voltage and current, with the compliance flag."""
        command = ":READ?;:SENS:CURR:PROT:TRIP?;:SENS:CURR:RANG?"
        self.require_measurable(command)
        return self._fetch(command, 1)[0]

    def measure_many(self, n: int) -> list[SMUReading]:
        """``n`` readings from one ``:READ?`` (trigger count ``n``, restored to 1 after).

        The compliance flag of each reading is the instrument's state after the burst.
        """
        count = type(self).trigger_count.encode(self, n)
        command = ":READ?;:SENS:CURR:PROT:TRIP?;:SENS:CURR:RANG?"
        self.require_measurable(command)
        self.write(f":TRIG:COUN {count}")
        try:
            return self._fetch(command, n)
        finally:
            self.write(":TRIG:COUN 1")


# ---------------------------------------------------------------------- plug-in description
def _open(connection: SMUConnection) -> SourceMeter:
    if connection.channel != 1:
        raise ValueError(
            f"the Keithley 2400 has one channel; channel {connection.channel!r} requested"
        )
    return open_visa_smu(
        connection, "keithley2400", lambda adapter: Keithley2400(adapter, connection.limits)
    )


DRIVER: Final = SMUDriver(
    open=_open,
    description="Keithley 2400-series SourceMeter (2400/2401/2410/2420/2425/2430/2440), SCPI",
    recognition=Recognition(
        query="*IDN?",
        # a 2450 in SCPI2400 mode answers MODEL 2450: the 2450 driver recognises it and
        # its refusal (*LANG? is SCPI2400) says to use this driver
        pattern=r"^KEITHLEY INSTRUMENTS[^,]*,MODEL 24(00|01|10|20|25|30|40),",
    ),
    channels=1,
    simulator="2400",
    capabilities=("4-wire", "buffered"),
)
"""The ``keithley2400`` entry point of ``labrss.smus`` (pyproject.toml)."""
