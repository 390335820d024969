"""Keysight (Agilent) B2900 series SMU: B2901A/B2902A (and the B291xA precision models).

Channel-aware: every command carries the channel (``:SOUR2:VOLT``, ``:MEAS? (@2)``), and a
channel the model does not have is refused at connect. Same interface and checks as the
Keithley 2450 driver (:class:`drivers.smu.SourceMeter`).

On connect: ``*IDN?`` (the model must be one of :data:`CHANNELS`), ``*CLS``, and the output
state of the channel (``:OUTP<c>?``). A reading is one line: ``:MEAS? (@c)`` with the
elements voltage, current, time (``:FORM:ELEM:SENS VOLT,CURR,TIME``, set when the
measurement is configured) compounded with ``:SENS<c>:CURR:PROT:TRIP?`` and
``:SENS<c>:CURR:RANG?``. Buffered readings: ``:TRIG<c>:COUN n``, ``:INIT (@c)``, ``*OPC?``,
``:FETC:ARR? (@c)``.
"""

from __future__ import annotations

import logging
import math
from typing import Final

from drivers.adapters import Adapter
from drivers.errors import InstrumentError, InstrumentIdentityError
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

__all__ = ["CHANNELS", "DRIVER", "KeysightB2900"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

CHANNELS = {"B2901A": 1, "B2902A": 2, "B2911A": 1, "B2912A": 2, "B2901B": 1, "B2902B": 2}
"""Supported models and their number of SMU channels."""
VOLTAGE_RANGES_V = (0.2, 2.0, 20.0, 200.0)
CURRENT_RANGES_A = (100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 1.5, 3.0)
"""Current measure ranges common to the B290x/B291x DC ranges (A)."""
MAX_SOURCE_V = 210.0
COMPLIANCE_RANGE_A = (1e-9, 3.03)
NPLC_RANGE = (4e-4, 100.0)
"""Integration time in PLC accepted by the B2900 (0.0004..100 at 50 Hz)."""
MAX_TRIGGER_COUNT = 100_000
ELEMENTS = "VOLT,CURR,TIME"


class KeysightB2900(SCPISourceMeter):
    """Keysight B2900-series SMU, one channel of it; see the module docstring.

    Args:
        adapter: the connection.
        limits: safety limits checked before anything is sent.
        channel: 1, or 2 on a two-channel model.
    """

    zero_voltage_command = ":SOUR{ch}:VOLT 0"
    output_on_command = ":OUTP{ch} ON"
    output_off_command = ":OUTP{ch} OFF"
    output_query_command = ":OUTP{ch}?"

    source_voltage_V = control(
        ":SOUR{ch}:VOLT?",
        ":SOUR{ch}:VOLT {value}",
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
        ":SOUR{ch}:VOLT:RANG?",
        ":SOUR{ch}:VOLT:RANG {value}",
        """Control the fixed source voltage range (V; one of 0.2, 2, 20, 200).""",
        validator=strict_discrete_set,
        values=VOLTAGE_RANGES_V,
        get_process=float,
        set_process=format_float,
    )
    compliance_current_A = control(
        ":SENS{ch}:CURR:PROT?",
        ":SENS{ch}:CURR:PROT {value}",
        """Control the current compliance (A; float strictly within the safety limit and
        1 nA..3.03 A).""",
        validator=strict_range,
        values=lambda smu: (
            COMPLIANCE_RANGE_A[0],
            min(COMPLIANCE_RANGE_A[1], smu.limits.max_current_A),
        ),
        get_process=float,
        set_process=format_float,
    )
    compliance_tripped = measurement(
        ":SENS{ch}:CURR:PROT:TRIP?",
        """Get whether the current compliance is reached (bool).""",
        get_process=parse_bool,
    )
    current_range_A = control(
        ":SENS{ch}:CURR:RANG?",
        ":SENS{ch}:CURR:RANG {value}",
        """Control the fixed current measure range (A; one of 100 nA..3 A).""",
        validator=strict_discrete_set,
        values=CURRENT_RANGES_A,
        get_process=float,
        set_process=format_float,
    )
    current_nplc = control(
        ":SENS{ch}:CURR:NPLC?",
        ":SENS{ch}:CURR:NPLC {value}",
        """Control the current integration time in PLC (float strictly 0.0004..100).""",
        validator=strict_range,
        values=NPLC_RANGE,
        get_process=float,
        set_process=format_float,
    )
    four_wire = control(
        ":SENS{ch}:REM?",
        ":SENS{ch}:REM {value}",
        """Control remote (4-wire) sense of the channel (bool).""",
        get_process=parse_bool,
        set_process=format_bool,
    )
    trigger_count = control(
        ":TRIG{ch}:COUN?",
        ":TRIG{ch}:COUN {value}",
        """Control how many source/measure points one trigger makes (int 1..100000).""",
        validator=strict_range,
        values=(1, MAX_TRIGGER_COUNT),
        get_process=lambda reply: int(float(reply)),
        set_process=lambda n: str(int(n)),
    )

    def __init__(self, adapter: Adapter, limits: SafetyLimits, *, channel: int = 1) -> None:
        super().__init__(adapter, limits, f"Keysight B2900 at {adapter.name}")
        if channel not in (1, 2):
            raise ValueError(f"{self.name}: channel must be 1 or 2, got {channel!r}")
        self.channel = channel
        identity = self.identify()
        fields = [field.strip() for field in identity.split(",")]
        vendor = fields[0].upper() if fields else ""
        model = fields[1].upper() if len(fields) > 1 else ""
        if (
            len(fields) < 3
            or not ("KEYSIGHT" in vendor or "AGILENT" in vendor)
            or (model not in CHANNELS)
        ):
            raise InstrumentIdentityError(
                f"expected a Keysight B2900-series SMU ({', '.join(CHANNELS)}) at "
                f"{adapter.name}, but *IDN? answered {identity!r}",
                instrument=self.name,
                command="*IDN?",
            )
        self.identity = identity
        self.model = model
        self.serial = fields[2]
        self.rename(f"Keysight {model} {self.serial} channel {channel} at {adapter.name}")
        if channel > CHANNELS[model]:
            raise InstrumentError(
                f"the {model} has {CHANNELS[model]} channel(s); channel {channel} requested",
                instrument=self.name,
                command="*IDN?",
            )
        self.clear_status()
        self.output_enabled = self.output_state
        log.info("connected to %s (%s)", self.name, identity)

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
        ch = self.channel
        commands = [
            f":SOUR{ch}:FUNC:MODE VOLT",
            f":SOUR{ch}:VOLT:MODE FIX",
            f":SENS{ch}:CURR:PROT " + cls.compliance_current_A.encode(self, compliance_A),
        ]
        if source_range_V is None:
            commands.append(f":SOUR{ch}:VOLT:RANG:AUTO ON")
        else:
            commands.append(
                f":SOUR{ch}:VOLT:RANG " + cls.source_voltage_range_V.encode(self, source_range_V)
            )
        commands.append(self.level_command(level_V))
        return commands

    def level_command(self, level_V: float) -> str:
        """``:SOUR<c>:VOLT <level>`` after validation."""
        return f":SOUR{self.channel}:VOLT " + type(self).source_voltage_V.encode(self, level_V)

    def measurement_commands(
        self, nplc: float, current_range_A: float | None, four_wire: bool
    ) -> list[str]:
        """Current and voltage measured, range, NPLC, sense, reading elements; validated."""
        cls = type(self)
        ch = self.channel
        commands = [f':SENS{ch}:FUNC "CURR","VOLT"']
        if current_range_A is None:
            commands.append(f":SENS{ch}:CURR:RANG:AUTO ON")
        else:
            commands.append(
                f":SENS{ch}:CURR:RANG " + cls.current_range_A.encode(self, current_range_A)
            )
        commands.append(f":SENS{ch}:CURR:NPLC " + cls.current_nplc.encode(self, nplc))
        commands.append(f":SENS{ch}:REM " + format_bool(four_wire))
        commands.append(f":FORM:ELEM:SENS {ELEMENTS}")
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

    def _measure_command(self) -> str:
        ch = self.channel
        return f":MEAS? (@{ch});:SENS{ch}:CURR:PROT:TRIP?;:SENS{ch}:CURR:RANG?"

    def measure(self) -> SMUReading:
        """One spot reading of voltage and current, with the compliance flag."""
        command = self._measure_command()
        self.require_measurable(command)
        return self._fetch(command, 1)[0]

    def measure_many(self, n: int) -> list[SMUReading]:
        """``n`` readings from one trigger: trigger count ``n``, ``:INIT``, wait, fetch.

        ``*OPC?`` waits for the acquisition to finish; ``:FETC:ARR?`` returns the buffered
        elements. The trigger count is restored to 1 afterwards (also on error). The
        compliance flag of each reading is the channel's state after the burst.
        """
        count = type(self).trigger_count.encode(self, n)
        ch = self.channel
        fetch = f":FETC:ARR? (@{ch});:SENS{ch}:CURR:PROT:TRIP?;:SENS{ch}:CURR:RANG?"
        self.require_measurable(fetch)
        self.write(f":TRIG{ch}:COUN {count}")
        try:
            self.write(f":INIT (@{ch})")
            done = self.ask("*OPC?").strip()
            if done != "1":
                raise InstrumentError(
                    f"unexpected *OPC? reply {done!r}", instrument=self.name, command="*OPC?"
                )
            return self._fetch(fetch, n)
        finally:
            self.write(f":TRIG{ch}:COUN 1")


# ---------------------------------------------------------------------- plug-in description
def _open(connection: SMUConnection) -> SourceMeter:
    return open_visa_smu(
        connection,
        "keysight_b2900",
        lambda adapter: KeysightB2900(adapter, connection.limits, channel=connection.channel),
    )


DRIVER: Final = SMUDriver(
    open=_open,
    description="Keysight B2900 series SMU (B2901A/B2902A/B2911A/B2912A/B2901B/B2902B)",
    recognition=Recognition(
        query="*IDN?",
        pattern=r"^(Keysight|Agilent) Technologies,B29(01|02|11|12)[AB],",
    ),
    channels=2,
    simulator="B2902A",
    capabilities=("4-wire", "buffered", "2 channels (B2902A, B2912A)"),
)
"""The ``keysight_b2900`` entry point of ``labrss.smus`` (pyproject.toml)."""
