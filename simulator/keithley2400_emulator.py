"""A Keithley 2400 SourceMeter in its SCPI command set (2400 Series User's Manual, section 18).

Also the command set a Keithley 2450 speaks after ``*LANG SCPI2400`` and a power cycle
(reference manual appendix D): `simulator.keithley2450_emulator` delegates to this engine in
that mode, with the 2450's identity and ranges.

What it serves (docs/smu-emulators.md has the table):

* ``:SOUR`` source function, fixed/sweep/list modes (``:SOUR:<f>:MODE``, ``:STAR``,
  ``:STOP``, ``:STEP``, ``:SOUR:SWE:POIN|SPAC|RANG|DIR``, ``:SOUR:LIST:<f>``), triggered
  level (``:SOUR:<f>:TRIG``), ranges, source delay and auto output-off (``:SOUR:CLE:AUTO``);
* ``:SENS`` functions (concurrent V, I, R), compliance (``:SENS:<f>:PROT``) and its tripped
  query, ranges, one NPLC for all functions, auto/manual ohms, offset-compensated ohms, the
  averaging filter (``:SENS:AVER``);
* ``:FORM:ELEM`` (VOLT, CURR, RES, TIME, STAT in that fixed order), ``:SYST:RSEN``
  (4-wire, instrument-wide), ``:SYST:AZER``;
* the ARM and TRIGger layers (counts, delay, timer): ``:INIT``, ``:READ?``, ``:FETC?``,
  ``:MEAS?``, ``:ABOR`` in instrument time;
* the data store (``:TRAC:POIN|FEED|FEED:CONT|DATA?|CLE``) and ``:CALC3`` statistics;
* the measurement/operation/questionable status registers, with the buffer-full bit that
  PyMeasure's ``wait_for_buffer`` polls through ``*STB?``.

Physics (ranges, accuracy, noise, timing) is `simulator.smu_physics` with the 2400 tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from simulator.background import TICK, BackgroundRun, Step
from simulator.clock import VirtualClock
from simulator.keithley2450_trigger import linear_levels, log_levels
from simulator.port_model import PortModel
from simulator.scpi import (
    ESR_PON,
    Bool,
    Call,
    Choice,
    CountOrInf,
    Num,
    Param,
    ScpiDevice,
    ScpiError,
    Str,
)
from simulator.smu_physics import (
    AUTO_OHMS_VOLTAGE_LIMIT_V,
    K2400_MEASURE_CURRENT,
    K2400_MEASURE_VOLTAGE,
    K2400_SOURCE_CURRENT,
    K2400_SOURCE_VOLTAGE,
    NAN_READING,
    OVERFLOW_READING,
    RANGE_CHANGE_S,
    MeterRanges,
    OperatingPoint,
    RangeSpec,
    SourceRanges,
    auto_ohms_point,
    measurement_time_s,
    operating_point,
)

FIRMWARE = "C33   Oct 10 2008 12:00:00/A02  /S/K"
RESISTANCE_RANGES_OHM = (20.0, 200.0, 2e3, 20e3, 200e3, 2e6, 20e6, 200e6)
ELEMENT_ORDER = ("VOLT", "CURR", "RES", "TIME", "STAT")
"""The 2400 returns the selected elements in this fixed order."""
RangeSpecs = tuple[
    Sequence[RangeSpec], Sequence[RangeSpec], Sequence[RangeSpec], Sequence[RangeSpec]
]
"""Measure current, measure voltage, source voltage, source current range tables."""
AUTO_SOURCE_DELAY_S = 1e-3
MAX_TRIGGERS = 2500
"""Largest arm x trigger count product and data store size (2400)."""
ERROR_MESSAGES_2400 = {803: "Output disabled", 802: "OUTPUT blocks function change"}

# Status word bits of the STAT element (2400 manual, "Status word").
SW_OVERFLOW = 1 << 0
SW_FILTER = 1 << 1
SW_FRONT = 1 << 2
SW_COMPLIANCE = 1 << 3
SW_AUTO_OHMS = 1 << 10
SW_V_MEAS = 1 << 11
SW_I_MEAS = 1 << 12
SW_R_MEAS = 1 << 13
SW_V_SOURCE = 1 << 14
SW_I_SOURCE = 1 << 15
SW_OFFSET_COMP = 1 << 17
SW_REMOTE_SENSE = 1 << 22
# Measurement event register bits (2400 manual, status structure).
MEAS_BUFFER_FULL = 1 << 9
MEAS_READING_AVAILABLE = 1 << 5
STB_MSB = 1
STB_QSB = 8
STB_OSB = 128

_FUNCTION_NAMES = {
    "VOLT": "VOLT",
    "VOLTAGE": "VOLT",
    "VOLT:DC": "VOLT",
    "VOLTAGE:DC": "VOLT",
    "CURR": "CURR",
    "CURRENT": "CURR",
    "CURR:DC": "CURR",
    "CURRENT:DC": "CURR",
    "RES": "RES",
    "RESISTANCE": "RES",
}
_FUNCTION_REPLY = {"VOLT": '"VOLT:DC"', "CURR": '"CURR:DC"', "RES": '"RES"'}


@dataclass
class _Source:
    """Per-function source settings."""

    level: float = 0.0
    trigger_level: float = 0.0
    range_index: int = 0
    auto: bool = True
    mode: str = "FIXED"
    start: float = 0.0
    stop: float = 0.0
    values: list[float] = field(default_factory=list)


class _Autozero(Param):
    """``:SYST:AZER`` argument: ON, OFF, ONCE, 1 or 0."""

    name = "autozero"

    def convert(self, raw: str) -> Any:
        word = raw.strip().upper()
        if word in ("ON", "1"):
            return "ON"
        if word in ("OFF", "0"):
            return "OFF"
        if word == "ONCE":
            return "ONCE"
        raise ScpiError(-224, f"autozero: {raw.strip()!r} is not ON, OFF or ONCE")


def _nr3(value: float) -> str:
    """The 2400's ASCII number format (``+1.000000E-03``)."""
    return f"{value:+.6E}"


class Keithley2400Emulator(ScpiDevice):
    """Keithley 2400 SCPI emulator; `handle_line` is the whole host interface.

    Args:
        port: called at every reading; the linear model of what is routed to the SMU.
        clock: the bench's virtual clock.
        seed: fixes the calibration errors and the noise sequence.
        serial: the serial number in ``*IDN?``.
        line_frequency_Hz: 50 or 60.
        identity: the ``*IDN?`` reply (a 2450 in SCPI2400 mode passes its own).
        ranges: measure/source range tables (I, V, source V, source I); the 2400's by
            default, the 2450's for a 2450 in SCPI2400 mode.
    """

    MAX_LINE_BYTES = 4096
    ERROR_QUEUE_CAPACITY = 10

    def __init__(
        self,
        port: Callable[[], PortModel],
        clock: VirtualClock,
        seed: int,
        *,
        serial: str = "1234567",
        line_frequency_Hz: float = 50.0,
        identity: str | None = None,
        ranges: RangeSpecs | None = None,
        name: str = "Keithley 2400",
    ) -> None:
        if line_frequency_Hz not in (50.0, 60.0):
            raise ValueError(f"{name}: line frequency must be 50 or 60 Hz, got {line_frequency_Hz}")
        super().__init__(name)
        self._port = port
        self.clock = clock
        self.serial = serial
        self.line_frequency_Hz = float(line_frequency_Hz)
        self._identity = identity or f"KEITHLEY INSTRUMENTS INC.,MODEL 2400,{serial},{FIRMWARE}"
        tables: Sequence[Sequence[RangeSpec]] = ranges or (
            K2400_MEASURE_CURRENT,
            K2400_MEASURE_VOLTAGE,
            K2400_SOURCE_VOLTAGE,
            K2400_SOURCE_CURRENT,
        )
        calibration_rng = np.random.default_rng([seed, 2400, 0])
        self._rng = np.random.default_rng([seed, 2400, 1])
        self.meter_i = MeterRanges(tables[0], calibration_rng, unit="A")
        self.meter_v = MeterRanges(tables[1], calibration_rng, unit="V")
        self.source_v = SourceRanges(tables[2], calibration_rng, unit="V")
        self.source_i = SourceRanges(tables[3], calibration_rng, unit="A")
        self.run: BackgroundRun | None = None
        self._register()
        self.reset()
        self.clear_status()
        self.esr |= ESR_PON
        self.timer_zero_s = clock.now_s

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """``*RST``: source V 0 V, compliance 105 uA / 21 V, measure I, autorange, NPLC 1."""
        if self.run is not None:
            self.run.abort()
        self.run = None
        self.output_on = False
        self.terminals = "FRONT"
        self.source_function = "VOLT"
        self.source = {
            "VOLT": _Source(range_index=self.source_v.index_for(20.0)),
            "CURR": _Source(range_index=self.source_i.index_for(1e-4)),
        }
        self.protection = {"CURR": 105e-6, "VOLT": 21.0}
        self.functions: list[str] = ["CURR"]
        self.concurrent = True
        self.sense_range = {
            "CURR": self.meter_i.index_for(1e-4),
            "VOLT": self.meter_v.index_for(20.0),
            "RES": RESISTANCE_RANGES_OHM.index(200e3),
        }
        self.sense_auto = {"CURR": True, "VOLT": True, "RES": True}
        self.nplc = 1.0
        self.res_mode = "MANUAL"
        self.res_ocom = False
        self.remote_sense = False
        self.autozero = True
        self.filter_on = False
        self.filter_type = "REPEAT"
        self.filter_count = 10
        self.source_delay_s = 0.0
        self.source_delay_auto = True
        self.auto_clear = False
        self.sweep_points = 2500
        self.sweep_spacing = "LINEAR"
        self.sweep_range = "BEST"
        self.sweep_direction = "UP"
        self.arm_count: int | None = 1
        self.arm_source = "IMMEDIATE"
        self.arm_timer_s = 0.1
        self.trigger_count = 1
        self.trigger_delay_s = 0.0
        self.trigger_source = "IMMEDIATE"
        self.elements = list(ELEMENT_ORDER)
        self.data: list[dict[str, float]] = []
        # The data store, the status enables and the timestamp are not changed by *RST
        # (2400 manual: "*RST has no effect on the TRACe subsystem").
        if not hasattr(self, "store"):
            self.store: list[dict[str, float]] = []
            self.store_size = 100
            self.store_feed = "SENSE1"
            self.store_control = "NEVER"
            self.store_timestamp = "ABSOLUTE"
            self.calc3_format = "MEAN"
            self.measurement_event = 0
            self.measurement_enable = 0
            self.operation_enable = 0
            self.questionable_enable = 0

    def power_cycle(self) -> None:
        """Power off and on: defaults, empty store, error queue cleared, PON set."""
        for attr in ("store",):
            if hasattr(self, attr):
                delattr(self, attr)
        self.reset()
        self.clear_status()
        self.esr |= ESR_PON
        self.timer_zero_s = self.clock.now_s

    def on_connect(self) -> None:
        """A host connected: state is kept."""

    def on_disconnect(self) -> None:
        """The host went away: state (the output included) is kept."""

    def identity(self) -> str:
        """``*IDN?``."""
        return self._identity

    def error_reply(self, code: int, message: str) -> str:
        """``:SYST:ERR?``: ``-113,"Undefined header"``; 2400 device errors are positive."""
        return f'{code},"{message}"'

    def clear_status(self) -> None:
        """``*CLS``: error queue, event registers (ESR and the measurement event register)."""
        super().clear_status()
        self.measurement_event = 0

    def status_byte(self) -> int:
        """``*STB?`` with the 2400's measurement summary bit (MSB, bit 0)."""
        stb = super().status_byte() & ~64
        if self.measurement_event & self.measurement_enable:
            stb |= STB_MSB
        if stb & self.sre:
            stb |= 64
        return stb

    # ------------------------------------------------------------------ overlapped
    def before_line(self) -> None:
        """Let a running ARM/TRIG sequence progress by the time since the previous line."""
        if self.run is not None and self.run.active:
            self.run.progress()

    def operations_pending(self) -> bool:
        """An initiated source-measure sequence has not finished."""
        return self.run is not None and self.run.active

    def wait_complete(self) -> bool:
        """Run the sequence to its end (False for an infinite arm count)."""
        if self.run is None or not self.run.active:
            return True
        return self.run.run_to_end()

    # ------------------------------------------------------------------ registration
    def _register(self) -> None:
        add = self.add
        add(":*TRG", set=lambda c: None)
        add(
            "[:SOURce[1]]:FUNCtion[:MODE]",
            set=self._set_source_function,
            query=lambda c: self.source_function,
            params=[Choice("VOLTage|CURRent", name="source function")],
        )
        for fn, long, max_level, unit in (
            ("VOLT", "VOLTage", 210.0, "V"),
            ("CURR", "CURRent", 1.05, "A"),
        ):
            base = f"[:SOURce[1]]:{long}"
            level = Num(-max_level, max_level, 0.0, unit, f"{fn} level")
            add(
                f"{base}[:LEVel][:IMMediate][:AMPLitude]",
                set=self._setter_source(fn, "level"),
                query=self._query_source(fn, "level"),
                params=[level],
            )
            add(
                f"{base}[:LEVel]:TRIGgered[:AMPLitude]",
                set=self._setter_source(fn, "trigger_level"),
                query=self._query_source(fn, "trigger_level"),
                params=[level],
            )
            add(
                f"{base}:MODE",
                set=self._setter_mode(fn),
                query=partial(self._mode_reply, fn),
                params=[Choice("FIXed|SWEep|LIST", name="source mode")],
            )
            add(
                f"{base}:RANGe",
                set=self._setter_source_range(fn),
                query=self._query_source_range(fn),
                params=[Num(-max_level, max_level, max_level, unit, f"{fn} source range")],
            )
            add(
                f"{base}:RANGe:AUTO",
                set=self._setter_source(fn, "auto"),
                query=self._query_source(fn, "auto"),
                params=[Bool()],
            )
            add(
                f"{base}:STARt",
                set=self._setter_source(fn, "start"),
                query=self._query_source(fn, "start"),
                params=[level],
            )
            add(
                f"{base}:STOP",
                set=self._setter_source(fn, "stop"),
                query=self._query_source(fn, "stop"),
                params=[level],
            )
            add(
                f"{base}:STEP",
                set=self._setter_step(fn),
                query=self._query_step(fn),
                params=[Num(-2 * max_level, 2 * max_level, 0.0, unit, "step")],
            )
            add(
                f"[:SOURce[1]]:LIST:{long}",
                set=self._setter_list(fn, append=False),
                query=partial(self._list_reply, fn),
                params=[level],
                variadic=level,
                max_variadic=99,
            )
            add(
                f"[:SOURce[1]]:LIST:{long}:APPend",
                set=self._setter_list(fn, append=True),
                params=[level],
                variadic=level,
                max_variadic=99,
            )
            add(
                f"[:SOURce[1]]:LIST:{long}:POINts",
                query=partial(self._list_points_reply, fn),
            )
        add(
            "[:SOURce[1]]:SWEep:POINts",
            set=lambda c: setattr(self, "sweep_points", int(c.args[0])),
            query=lambda c: str(self.sweep_points),
            params=[Num(1, 2500, 2500, "", "sweep points", integer=True)],
        )
        add(
            "[:SOURce[1]]:SWEep:SPACing",
            set=lambda c: setattr(self, "sweep_spacing", c.args[0]),
            query=lambda c: self.sweep_spacing[:3],
            params=[Choice("LINear|LOGarithmic", name="sweep spacing")],
        )
        add(
            "[:SOURce[1]]:SWEep:RANGing",
            set=lambda c: setattr(self, "sweep_range", c.args[0]),
            query=lambda c: (
                self.sweep_range[:4].rstrip("E") if self.sweep_range != "FIXED" else "FIX"
            ),
            params=[Choice("BEST|AUTO|FIXed", name="sweep ranging")],
        )
        add(
            "[:SOURce[1]]:SWEep:DIRection",
            set=lambda c: setattr(self, "sweep_direction", c.args[0]),
            query=lambda c: self.sweep_direction,
            params=[Choice("UP|DOWn", name="sweep direction")],
        )
        add(
            "[:SOURce[1]]:DELay",
            set=self._set_source_delay,
            query=lambda c: _nr3(self.source_delay_s),
            params=[Num(0, 9999.999, 0.0, "S", "source delay")],
        )
        add(
            "[:SOURce[1]]:DELay:AUTO",
            set=lambda c: setattr(self, "source_delay_auto", bool(c.args[0])),
            query=lambda c: "1" if self.source_delay_auto else "0",
            params=[Bool()],
        )
        add("[:SOURce[1]]:CLEar[:IMMediate]", set=lambda c: setattr(self, "output_on", False))
        add(
            "[:SOURce[1]]:CLEar:AUTO",
            set=lambda c: setattr(self, "auto_clear", bool(c.args[0])),
            query=lambda c: "1" if self.auto_clear else "0",
            params=[Bool()],
        )
        add(
            ":OUTPut[1][:STATe]",
            set=lambda c: setattr(self, "output_on", bool(c.args[0])),
            query=lambda c: "1" if self.output_on else "0",
            params=[Bool(name="output")],
        )
        add(
            ":OUTPut[1]:SMODe",
            set=lambda c: None,
            query=lambda c: "NORM",
            params=[Choice("HIMPedance|NORMal|ZERO|GUARd", name="output-off state")],
        )
        add(
            ":ROUTe:TERMinals",
            set=lambda c: setattr(self, "terminals", c.args[0]),
            query=lambda c: self.terminals[:4],
            params=[Choice("FRONt|REAR", name="terminals")],
        )
        # Sense
        function_list = Str(name="function")
        add(
            "[:SENSe[1]]:FUNCtion[:ON]",
            set=self._set_functions,
            query=lambda c: ",".join(
                _FUNCTION_REPLY[f] for f in ELEMENT_ORDER if f in self.functions
            ),
            params=[function_list],
            variadic=function_list,
            max_variadic=2,
        )
        add(
            "[:SENSe[1]]:FUNCtion:OFF",
            set=self._set_functions_off,
            params=[function_list],
            variadic=function_list,
            max_variadic=2,
        )
        add(
            "[:SENSe[1]]:FUNCtion:ALL",
            set=lambda c: setattr(self, "functions", ["VOLT", "CURR", "RES"]),
        )
        add("[:SENSe[1]]:FUNCtion:OFF:ALL", set=lambda c: setattr(self, "functions", []))
        add(
            "[:SENSe[1]]:FUNCtion:CONCurrent",
            set=self._set_concurrent,
            query=lambda c: "1" if self.concurrent else "0",
            params=[Bool()],
        )
        for fn, long, lo, hi, unit in (
            ("CURR", "CURRent[:DC]", 1e-9, 1.05, "A"),
            ("VOLT", "VOLTage[:DC]", 0.2e-3, 210.0, "V"),
        ):
            base = f"[:SENSe[1]]:{long}"
            add(
                f"{base}:PROTection[:LEVel]",
                set=self._setter_protection(fn),
                query=partial(self._protection_reply, fn),
                params=[Num(lo, hi, 105e-6 if fn == "CURR" else 21.0, unit, "compliance")],
            )
            add(f"{base}:PROTection:TRIPped", query=self._query_tripped(fn))
        for fn, long, lo, hi, unit in (
            ("CURR", "CURRent[:DC]", 1e-9, 1.05, "A"),
            ("VOLT", "VOLTage[:DC]", 0.2e-3, 210.0, "V"),
            ("RES", "RESistance", 0.0, 2.1e8, "OHM"),
        ):
            base = f"[:SENSe[1]]:{long}"
            add(
                f"{base}:RANGe[:UPPer]",
                set=self._setter_sense_range(fn),
                query=partial(self._sense_range_reply, fn),
                params=[Num(lo, hi, hi, unit, f"{fn} measure range")],
            )
            add(
                f"{base}:RANGe:AUTO",
                set=self._setter_sense_auto(fn),
                query=partial(self._sense_auto_reply, fn),
                params=[Bool()],
            )
            add(
                f"{base}:NPLCycles",
                set=lambda c: setattr(self, "nplc", float(c.args[0])),
                query=lambda c: _nr3(self.nplc),
                params=[Num(0.01, 10.0, 1.0, "", "NPLC")],
            )
        add(
            "[:SENSe[1]]:RESistance:MODE",
            set=lambda c: setattr(self, "res_mode", c.args[0]),
            query=lambda c: self.res_mode[:4],
            params=[Choice("MANual|AUTO", name="ohms mode")],
        )
        add(
            "[:SENSe[1]]:RESistance:OCOMpensated",
            set=lambda c: setattr(self, "res_ocom", bool(c.args[0])),
            query=lambda c: "1" if self.res_ocom else "0",
            params=[Bool()],
        )
        add(
            "[:SENSe[1]]:AVERage[:STATe]",
            set=lambda c: setattr(self, "filter_on", bool(c.args[0])),
            query=lambda c: "1" if self.filter_on else "0",
            params=[Bool(name="filter")],
        )
        add(
            "[:SENSe[1]]:AVERage:TCONtrol",
            set=lambda c: setattr(self, "filter_type", c.args[0]),
            query=lambda c: self.filter_type[:3],
            params=[Choice("REPeat|MOVing", name="filter type")],
        )
        add(
            "[:SENSe[1]]:AVERage:COUNt",
            set=lambda c: setattr(self, "filter_count", int(c.args[0])),
            query=lambda c: str(self.filter_count),
            params=[Num(1, 100, 10, "", "filter count", integer=True)],
        )
        # System, format, display
        add(
            ":SYSTem:RSENse",
            set=lambda c: setattr(self, "remote_sense", bool(c.args[0])),
            query=lambda c: "1" if self.remote_sense else "0",
            params=[Bool(name="remote sense")],
        )
        add(
            ":SYSTem:AZERo[:STATe]",
            set=self._set_autozero,
            query=lambda c: "1" if self.autozero else "0",
            params=[_Autozero()],
        )
        add(
            ":SYSTem:LFRequency",
            set=self._set_line_frequency,
            query=lambda c: f"{self.line_frequency_Hz:g}",
            params=[Num(50, 60, 60, "HZ", "line frequency", integer=True)],
        )
        add(":SYSTem:LFRequency:AUTO", set=lambda c: None, query=lambda c: "0", params=[Bool()])
        add(":SYSTem:PRESet", set=lambda c: self.reset())
        add(":SYSTem:TIME", query=lambda c: _nr3(self.clock.now_s - self.timer_zero_s))
        add(":SYSTem:TIME:RESet", set=lambda c: setattr(self, "timer_zero_s", self.clock.now_s))
        add(
            ":SYSTem:BEEPer[:IMMediate]",
            set=lambda c: None,
            params=[Num(65, 2e6, name="frequency", unit="HZ"), Num(0, 7.9, name="time", unit="S")],
        )
        add(":SYSTem:KEY", set=lambda c: None, params=[Num(1, 31, name="key", integer=True)])
        add(":DISPlay:ENABle", set=lambda c: None, query=lambda c: "1", params=[Bool()])
        add(":DISPlay[:WINDow[1]]:TEXT[:DATA]", set=lambda c: None, params=[Str(name="text")])
        add(":DISPlay[:WINDow[1]]:TEXT:STATe", set=lambda c: None, params=[Bool()])
        add(
            ":FORMat[:DATA]",
            set=self._set_format,
            query=lambda c: "ASC",
            params=[Choice("ASCii|REAL|SREal", name="data format")],
            variadic=Num(32, 32, name="length", integer=True),
            max_variadic=1,
        )
        element = Choice("VOLTage|CURRent|RESistance|TIME|STATus", name="element")
        add(
            ":FORMat:ELEMents[:SENSe[1]]",
            set=self._set_elements,
            query=lambda c: ",".join(self.elements),
            params=[element],
            variadic=element,
            max_variadic=4,
        )
        # Trigger layers
        arm_count = CountOrInf(1, MAX_TRIGGERS, name="arm count")
        add(
            ":ARM[:SEQuence[1]][:LAYer[1]]:COUNt",
            set=lambda c: setattr(self, "arm_count", c.args[0]),
            query=lambda c: "INF" if self.arm_count is None else f"{self.arm_count:+d}",
            params=[arm_count],
        )
        add(
            ":ARM[:SEQuence[1]][:LAYer[1]]:SOURce",
            set=self._set_arm_source,
            query=lambda c: self.arm_source[:4],
            params=[
                Choice("IMMediate|TIMer|MANual|BUS|TLINk|NSTest|PSTest|BSTest", name="arm source")
            ],
        )
        add(
            ":ARM[:SEQuence[1]][:LAYer[1]]:TIMer",
            set=lambda c: setattr(self, "arm_timer_s", float(c.args[0])),
            query=lambda c: _nr3(self.arm_timer_s),
            params=[Num(0.001, 99999.99, 0.1, "S", "arm timer")],
        )
        add(
            ":TRIGger[:SEQuence[1]]:COUNt",
            set=self._set_trigger_count,
            query=lambda c: f"{self.trigger_count:+d}",
            params=[Num(1, MAX_TRIGGERS, 1, "", "trigger count", integer=True)],
        )
        add(
            ":TRIGger[:SEQuence[1]]:DELay",
            set=lambda c: setattr(self, "trigger_delay_s", float(c.args[0])),
            query=lambda c: _nr3(self.trigger_delay_s),
            params=[Num(0, 999.9999, 0.0, "S", "trigger delay")],
        )
        add(
            ":TRIGger[:SEQuence[1]]:SOURce",
            set=self._set_trigger_source,
            query=lambda c: self.trigger_source[:4],
            params=[Choice("IMMediate|TLINk", name="trigger source")],
        )
        add(":TRIGger:CLEar", set=lambda c: None)
        for layer in (":ARM[:SEQuence[1]][:LAYer[1]]", ":TRIGger[:SEQuence[1]]"):
            for node, choices in ((":OUTPut", "SOURce|DELay|SENSe|NONE|TENTer|TEXit"),):
                add(
                    f"{layer}[:TCONfigure]{node}",
                    set=lambda c: None,
                    query=lambda c: "NONE",
                    params=[Choice(choices, name="output trigger")],
                    variadic=Choice(choices, name="output trigger"),
                    max_variadic=2,
                )
            for node in (":ILINe", ":OLINe"):
                add(
                    f"{layer}[:TCONfigure][:ASYNchronous]{node}",
                    set=lambda c: None,
                    query=lambda c: "1",
                    params=[Num(1, 4, 1, "", "trigger line", integer=True)],
                )
        add(":INITiate[:IMMediate]", set=self._initiate)
        add(":ABORt", set=self._abort)
        add(":READ", query=self._read)
        add(":FETCh", query=self._fetch)
        add(":MEASure", query=self._measure(None))
        for fn, long in (("VOLT", "VOLTage[:DC]"), ("CURR", "CURRent[:DC]"), ("RES", "RESistance")):
            add(f":MEASure:{long}", query=self._measure(fn))
            add(f":CONFigure:{long}", set=self._configure(fn))
        add(":CONFigure", query=lambda c: ",".join(_FUNCTION_REPLY[f] for f in self.functions))
        # Data store and statistics
        add(":TRACe:CLEar", set=lambda c: self._clear_store())
        add(
            ":TRACe:POINts",
            set=self._set_store_size,
            query=lambda c: f"{self.store_size:+d}",
            params=[Num(1, MAX_TRIGGERS, 100, "", "buffer size", integer=True)],
        )
        add(":TRACe:POINts:ACTual", query=lambda c: f"{len(self.store):+d}")
        add(
            ":TRACe:FEED",
            set=lambda c: setattr(self, "store_feed", c.args[0]),
            query=lambda c: self.store_feed[:4],
            params=[Choice("SENSe1|SENSe|CALCulate1|CALCulate2", name="buffer feed")],
        )
        add(
            ":TRACe:FEED:CONTrol",
            set=lambda c: setattr(self, "store_control", c.args[0]),
            query=lambda c: self.store_control[:4],
            params=[Choice("NEXT|NEVer", name="buffer control")],
        )
        add(
            ":TRACe:TSTamp:FORMat",
            set=lambda c: setattr(self, "store_timestamp", c.args[0]),
            query=lambda c: self.store_timestamp[:3],
            params=[Choice("ABSolute|DELTa", name="timestamp format")],
        )
        add(":TRACe:DATA", query=self._store_data)
        add(
            ":TRACe:FREE",
            query=lambda c: f"{(MAX_TRIGGERS - len(self.store)) * 40},{len(self.store) * 40}",
        )
        add(
            ":CALCulate#3:FORMat",
            set=self._set_calc3_format,
            query=lambda c: self.calc3_format[:4],
            params=[Choice("MEAN|SDEViation|MAXimum|MINimum|PKPK", name="statistic")],
        )
        add(":CALCulate#3:DATA", query=self._calc3_data)
        # Status registers
        add(":STATus:PRESet", set=self._status_preset)
        add(":STATus:MEASurement[:EVENt]", query=self._read_measurement_event)
        add(":STATus:MEASurement:CONDition", query=lambda c: str(self._measurement_condition()))
        for reg, attr in (
            ("MEASurement", "measurement_enable"),
            ("OPERation", "operation_enable"),
            ("QUEStionable", "questionable_enable"),
        ):
            add(
                f":STATus:{reg}:ENABle",
                set=partial(self._set_register, attr),
                query=partial(self._register_reply, attr),
                params=[Num(0, 65535, 0, "", "enable mask", integer=True)],
            )
        for reg in ("OPERation", "QUEStionable"):
            add(f":STATus:{reg}[:EVENt]", query=lambda c: "0")
            add(f":STATus:{reg}:CONDition", query=lambda c: "0")
        add(":STATus:QUEue[:NEXT]", query=lambda c: self.error_reply(*self.errors.pop()))
        add(":STATus:QUEue:CLEar", set=lambda c: self.errors.clear())
        for pattern, what in (
            (":CALCulate1", "math expressions (:CALC1)"),
            (":CALCulate2", "limit tests and the reading null (:CALC2)"),
            (":SOURce2", "the digital output lines (:SOUR2)"),
            ("[:SOURce[1]]:MEMory", "source memory sweeps"),
            ("[:SOURce[1]]:PULSe", "pulse mode"),
            ("[:SOURce[1]]:VOLTage:PROTection", "the overvoltage protection"),
            ("[:SENSe[1]]:CURRent[:DC]:RANGe:HOLDoff", "the autorange holdoff"),
            (":SYSTem:CCHeck", "contact check"),
            (":SYSTem:GUARd", "the guard selection"),
            (":SYSTem:MEMory", "the setup memories"),
            (":SYSTem:POSetup", "the power-on setup"),
            (":TEST", "the self tests"),
            (":CALibration", "calibration"),
        ):
            self.add_not_emulated(pattern, what)

    # ------------------------------------------------------------------ handlers
    def _mode_reply(self, fn: str, call: Call) -> str:
        return {"FIXED": "FIX", "SWEEP": "SWE", "LIST": "LIST"}[self.source[fn].mode]

    def _list_reply(self, fn: str, call: Call) -> str:
        return ",".join(_nr3(v) for v in self.source[fn].values)

    def _list_points_reply(self, fn: str, call: Call) -> str:
        return str(len(self.source[fn].values))

    def _protection_reply(self, fn: str, call: Call) -> str:
        return _nr3(self.protection[fn])

    def _sense_range_reply(self, fn: str, call: Call) -> str:
        return _nr3(self._sense_scales(fn)[self.sense_range[fn]])

    def _sense_auto_reply(self, fn: str, call: Call) -> str:
        return "1" if self.sense_auto[fn] else "0"

    def _set_register(self, attr: str, call: Call) -> None:
        setattr(self, attr, int(call.args[0]))

    def _register_reply(self, attr: str, call: Call) -> str:
        return str(getattr(self, attr))

    def _set_source_function(self, call: Call) -> None:
        fn = "VOLT" if call.args[0] == "VOLTAGE" else "CURR"
        self.source_function = fn

    def _setter_source(self, fn: str, attr: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            value = call.args[0]
            settings = self.source[fn]
            if attr == "level" and not settings.auto:
                ranges = self._source_ranges(fn)
                if abs(value) > ranges.specs[settings.range_index].max_reading * (1 + 1e-9):
                    raise ScpiError(
                        -221,
                        f"{call.header}: {value:g} exceeds the fixed "
                        f"{ranges.full_scales[settings.range_index]:g} {ranges.unit} range",
                    )
            if attr == "level" and settings.auto:
                settings.range_index = self._source_ranges(fn).index_for(float(value))
            setattr(settings, attr, bool(value) if attr == "auto" else float(value))

        return setter

    def _query_source(self, fn: str, attr: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            value = getattr(self.source[fn], attr)
            if isinstance(value, bool):
                return "1" if value else "0"
            return _nr3(float(value))

        return query

    def _setter_mode(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self.source[fn].mode = call.args[0]

        return setter

    def _setter_source_range(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            settings = self.source[fn]
            settings.range_index = self._source_ranges(fn).index_for(float(call.args[0]))
            settings.auto = False

        return setter

    def _query_source_range(self, fn: str) -> Callable[[Call], str]:
        return lambda call: _nr3(self._source_ranges(fn).full_scales[self.source[fn].range_index])

    def _setter_step(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            settings = self.source[fn]
            step = float(call.args[0])
            if step == 0:
                self.sweep_points = 1
                return
            points = math.floor(abs(settings.stop - settings.start) / abs(step) + 1e-9) + 1
            if not 1 <= points <= MAX_TRIGGERS:
                raise ScpiError(-222, f"{call.header}: step {step:g} gives {points} points")
            self.sweep_points = points

        return setter

    def _query_step(self, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            settings = self.source[fn]
            if self.sweep_points < 2:
                return _nr3(0.0)
            return _nr3((settings.stop - settings.start) / (self.sweep_points - 1))

        return query

    def _setter_list(self, fn: str, *, append: bool) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            values = [float(v) for v in call.args]
            current = self.source[fn].values if append else []
            if len(current) + len(values) > MAX_TRIGGERS:
                raise ScpiError(-222, f"{call.header}: more than {MAX_TRIGGERS} list points")
            self.source[fn].values = current + values

        return setter

    def _set_source_delay(self, call: Call) -> None:
        self.source_delay_s = float(call.args[0])
        self.source_delay_auto = False

    def _set_functions(self, call: Call) -> None:
        names = [self._function(call, a) for a in call.args]
        if not self.concurrent:
            self.functions = [names[-1]]
            return
        for name in names:
            if name not in self.functions:
                self.functions.append(name)

    def _set_functions_off(self, call: Call) -> None:
        for name in [self._function(call, a) for a in call.args]:
            if name in self.functions:
                self.functions.remove(name)

    def _set_concurrent(self, call: Call) -> None:
        self.concurrent = bool(call.args[0])
        if not self.concurrent and len(self.functions) > 1:
            self.functions = [self.functions[0]]

    @staticmethod
    def _function(call: Call, text: Any) -> str:
        name = _FUNCTION_NAMES.get(str(text).strip().upper())
        if name is None:
            raise ScpiError(
                -224, f'{call.header}: function {text!r} is not "VOLT", "CURR" or "RES"'
            )
        return name

    def _setter_protection(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self.protection[fn] = float(call.args[0])

        return setter

    def _query_tripped(self, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            limited_by = "CURR" if self.source_function == "VOLT" else "VOLT"
            if not self.output_on or fn != limited_by:
                return "0"
            return "1" if self._op_point(self._port()).tripped else "0"

        return query

    def _sense_scales(self, fn: str) -> tuple[float, ...]:
        if fn == "CURR":
            return self.meter_i.full_scales
        if fn == "VOLT":
            return self.meter_v.full_scales
        return RESISTANCE_RANGES_OHM

    def _setter_sense_range(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            scales = self._sense_scales(fn)
            value = abs(float(call.args[0]))
            self.sense_range[fn] = next(
                (i for i, s in enumerate(scales) if value <= s * (1 + 1e-9)), len(scales) - 1
            )
            self.sense_auto[fn] = False

        return setter

    def _setter_sense_auto(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self.sense_auto[fn] = bool(call.args[0])

        return setter

    def _set_autozero(self, call: Call) -> None:
        word = str(call.args[0])
        if word == "ONCE":
            self.clock.advance(measurement_time_s(self.nplc, self.line_frequency_Hz))
            return
        self.autozero = word in ("ON", "1")

    def _set_line_frequency(self, call: Call) -> None:
        if call.args[0] not in (50, 60):
            raise ScpiError(-222, f"{call.header}: {call.args[0]} Hz is not 50 or 60")
        self.line_frequency_Hz = float(call.args[0])

    def _set_format(self, call: Call) -> None:
        if call.args[0] != "ASCII":
            raise ScpiError(-224, f"{call.header}: binary {call.args[0]} data is not emulated")

    def _set_elements(self, call: Call) -> None:
        short = {"VOLTAGE": "VOLT", "CURRENT": "CURR", "RESISTANCE": "RES"}
        chosen = {short.get(str(a), str(a)[:4]) for a in call.args}
        self.elements = [e for e in ELEMENT_ORDER if e in chosen]

    def _set_arm_source(self, call: Call) -> None:
        if call.args[0] not in ("IMMEDIATE", "TIMER"):
            raise ScpiError(
                -224, f"{call.header}: arm source {call.args[0]} is not emulated (IMM, TIM)"
            )
        self.arm_source = call.args[0]

    def _set_trigger_source(self, call: Call) -> None:
        if call.args[0] != "IMMEDIATE":
            raise ScpiError(-224, f"{call.header}: trigger link input is not emulated (IMM)")
        self.trigger_source = call.args[0]

    def _set_trigger_count(self, call: Call) -> None:
        count = int(call.args[0])
        if self.arm_count is not None and count * self.arm_count > MAX_TRIGGERS:
            raise ScpiError(
                -221, f"{call.header}: arm count x trigger count exceeds {MAX_TRIGGERS}"
            )
        self.trigger_count = count

    def _clear_store(self) -> None:
        self.store = []
        self.measurement_event &= ~MEAS_BUFFER_FULL

    def _set_store_size(self, call: Call) -> None:
        if self.store_control == "NEXT":
            raise ScpiError(
                +800, f"{call.header}: the data store is storing", "Illegal with storage active"
            )
        self.store_size = int(call.args[0])

    def _require_calc3(self, call: Call) -> None:
        if call.suffix() != 3:
            raise ScpiError(
                -113, f"{call.header}: :CALC{call.suffix()} (math, limits) is not emulated"
            )

    def _set_calc3_format(self, call: Call) -> None:
        self._require_calc3(call)
        self.calc3_format = call.args[0]

    def _status_preset(self, call: Call) -> None:
        self.measurement_enable = self.operation_enable = self.questionable_enable = 0

    def _measurement_condition(self) -> int:
        return MEAS_BUFFER_FULL if len(self.store) >= self.store_size else 0

    def _read_measurement_event(self, call: Call) -> str:
        value, self.measurement_event = self.measurement_event, 0
        return str(value)

    # ------------------------------------------------------------------ source-measure
    def _source_ranges(self, fn: str) -> SourceRanges:
        return self.source_v if fn == "VOLT" else self.source_i

    def _op_point(self, port: PortModel, level: float | None = None) -> OperatingPoint:
        fn = self.source_function
        settings = self.source[fn]
        ranges = self._source_ranges(fn)
        programmed = settings.level if level is None else level
        actual = ranges.actual(programmed, settings.range_index)
        limit = self.protection["CURR" if fn == "VOLT" else "VOLT"]
        return operating_point(port, fn, actual, limit, remote_sense=self.remote_sense)

    def _sweep_levels(self) -> list[float] | None:
        settings = self.source[self.source_function]
        if settings.mode == "FIXED":
            return None
        if settings.mode == "LIST":
            if not settings.values:
                raise ScpiError(-221, "source list mode with an empty list (:SOUR:LIST:...)")
            return list(settings.values)
        points = self.sweep_points
        if self.sweep_spacing == "LINEAR":
            levels = (
                linear_levels(settings.start, settings.stop, points)
                if points > 1
                else [settings.start]
            )
        else:
            try:
                levels = log_levels(settings.start, settings.stop, points)
            except ValueError as exc:
                raise ScpiError(-221, f"log sweep: {exc}") from None
        return levels[::-1] if self.sweep_direction == "DOWN" else levels

    def _initiate(self, call: Call) -> None:
        if self.run is not None and self.run.active:
            raise ScpiError(-213, f"{call.header}: already initiated", "Init ignored")
        if not self.output_on and not self.auto_clear:
            raise ScpiError(
                803, f"{call.header}: turn the output on (:OUTP ON) first", "Output disabled"
            )
        levels = self._sweep_levels()
        self.data = []
        self.run = BackgroundRun(
            self._sequence(levels),
            lambda: self.clock.now_s,
            open_ended=self.arm_count is None,
            on_error=self._run_error,
            on_end=self.operations_completed,
        )

    def _run_error(self, exc: Exception) -> None:
        if isinstance(exc, ScpiError):
            self.push_error(exc.code, exc.detail, exc.message)
        else:
            self.push_error(-200, f"source-measure sequence: {exc}")

    def _abort(self, call: Call) -> None:
        if self.run is not None:
            self.run.abort()
        if self.auto_clear:
            self.output_on = False

    def _sequence(self, levels: list[float] | None) -> Generator[Step, None, None]:
        """ARM layer x TRIGger layer: source (sweep point), delays, measure, store."""
        fn = self.source_function
        settings = self.source[fn]
        saved_level, saved_range, saved_auto = settings.level, settings.range_index, settings.auto
        ranges = self._source_ranges(fn)
        if levels is not None and self.sweep_range == "BEST":
            settings.auto = False
            settings.range_index = ranges.index_for(max(abs(x) for x in levels))
        point = 0
        arm = 0
        try:
            while self.arm_count is None or arm < self.arm_count:
                if arm and self.arm_source == "TIMER":
                    self.clock.advance(self.arm_timer_s)
                for _ in range(self.trigger_count):
                    if levels is not None:
                        level = levels[point % len(levels)]
                        if self.sweep_range == "AUTO":
                            settings.range_index = ranges.index_for(level)
                        settings.level = level
                        point += 1
                    elif settings.mode == "FIXED":
                        pass
                    self.clock.advance(self.trigger_delay_s)
                    reading = self._measure_point()
                    self.data.append(reading)
                    self._store_reading(reading)
                    yield TICK, 1
                arm += 1
        finally:
            if levels is not None:
                # After a sweep the source returns to the bias (the fixed level).
                settings.level, settings.range_index, settings.auto = (
                    saved_level,
                    saved_range,
                    saved_auto,
                )
            elif settings.mode == "FIXED" and settings.trigger_level != settings.level:
                pass
            if self.auto_clear:
                self.output_on = False

    def _store_reading(self, reading: dict[str, float]) -> None:
        if self.store_control != "NEXT":
            return
        if len(self.store) < self.store_size:
            self.store.append(reading)
        if len(self.store) >= self.store_size:
            self.store_control = "NEVER"  # storage stops when the buffer is full
            self.measurement_event |= MEAS_BUFFER_FULL

    def _measure_point(self) -> dict[str, float]:
        """One source-measure point: source delay, conversions, every enabled function."""
        if self.auto_clear:
            self.output_on = True
        if not self.output_on:
            raise ScpiError(803, "measurement with the output off", "Output disabled")
        port = self._port()
        op = self._op_point(port)
        status = SW_FRONT if self.terminals == "FRONT" else 0
        status |= SW_V_SOURCE if self.source_function == "VOLT" else SW_I_SOURCE
        functions = set(self.functions)
        conversions = 0
        result: dict[str, float] = {"VOLT": NAN_READING, "CURR": NAN_READING, "RES": NAN_READING}
        steps = 0
        if "RES" in functions and self.res_mode == "AUTO":
            op, r_index, _ = auto_ohms_point(
                port,
                RESISTANCE_RANGES_OHM,
                self.source_i,
                fixed_index=None if self.sense_auto["RES"] else self.sense_range["RES"],
                remote_sense=self.remote_sense,
            )
            self.sense_range["RES"] = r_index
            status |= SW_AUTO_OHMS
        if op.tripped:
            status |= SW_COMPLIANCE
        n_filter = self.filter_count if self.filter_on and self.filter_type == "REPEAT" else 1
        if self.filter_on:
            status |= SW_FILTER
        v_needed = bool(functions & {"VOLT", "RES"})
        i_needed = bool(functions & {"CURR", "RES"})
        v = i = 0.0
        overflow = False
        if v_needed:
            v, ov, st = self._convert(self.meter_v, "VOLT", op.v_sense_V, n_filter)
            overflow |= ov
            steps = max(steps, st)
            conversions += 1
            if "VOLT" in functions:
                result["VOLT"] = v
                status |= SW_V_MEAS
        if i_needed:
            i, ov, st = self._convert(self.meter_i, "CURR", op.i_A, n_filter)
            overflow |= ov
            steps = max(steps, st)
            conversions += 1
            if "CURR" in functions:
                result["CURR"] = i
                status |= SW_I_MEAS
        if "RES" in functions:
            status |= SW_R_MEAS
            result["RES"] = self._resistance(port, op, v, i, overflow)
            if self.res_ocom:
                status |= SW_OFFSET_COMP
                conversions *= 2
        sourced = self.source_function
        if sourced not in functions:
            # The sourced quantity, when it is not measured, reads as the programmed level
            # (2400 manual, :FORMat:ELEMents).
            result[sourced] = self.source[sourced].level
        if overflow or abs(result["RES"]) == OVERFLOW_READING:
            status |= SW_OVERFLOW
        if self.remote_sense:
            status |= SW_REMOTE_SENSE
        delay = AUTO_SOURCE_DELAY_S if self.source_delay_auto else self.source_delay_s
        elapsed = delay + measurement_time_s(
            self.nplc,
            self.line_frequency_Hz,
            autozero=self.autozero,
            conversions=max(conversions, 1) * n_filter,
        )
        elapsed += steps * (
            RANGE_CHANGE_S + measurement_time_s(self.nplc, self.line_frequency_Hz, autozero=False)
        )
        now = self.clock.advance(elapsed)
        # The reading's stress (read disturb, DC switching, forming) under the current limit.
        climit = self.protection["CURR"] if self.source_function == "VOLT" else abs(op.i_A)
        port.hold(op.v_force_V, elapsed, climit)
        result["TIME"] = now - self.timer_zero_s
        result["STAT"] = float(status)
        self.measurement_event |= MEAS_READING_AVAILABLE
        return result

    def _convert(
        self, meter: MeterRanges, fn: str, true_value: float, n_filter: int
    ) -> tuple[float, bool, int]:
        values = []
        steps = 0
        overflow = False
        for _ in range(n_filter):
            reading = meter.read(
                true_value,
                self.sense_range[fn],
                self.nplc,
                self._rng,
                auto=self.sense_auto[fn],
                previous=self.sense_range[fn],
            )
            if self.sense_auto[fn]:
                self.sense_range[fn] = reading.range_index
            steps = max(steps, reading.range_steps)
            overflow |= reading.overflow
            values.append(reading.value)
        if overflow:
            return math.copysign(OVERFLOW_READING, values[-1]), True, steps
        return float(np.mean(values)), False, steps

    def _resistance(
        self, port: PortModel, op: OperatingPoint, v: float, i: float, overflow: bool
    ) -> float:
        if overflow or i == 0.0:
            return OVERFLOW_READING
        value = v / i
        if self.res_ocom:
            source = "CURR" if self.res_mode == "AUTO" else self.source_function
            limit = (
                AUTO_OHMS_VOLTAGE_LIMIT_V
                if self.res_mode == "AUTO"
                else self.protection["CURR" if source == "VOLT" else "VOLT"]
            )
            op0 = operating_point(port, source, 0.0, limit, remote_sense=self.remote_sense)
            v0 = self.meter_v.read(op0.v_sense_V, 0, self.nplc, self._rng, auto=True, previous=0)
            i0 = self.meter_i.read(op0.i_A, 0, self.nplc, self._rng, auto=True, previous=0)
            if v0.overflow or i0.overflow or i == i0.value:
                return OVERFLOW_READING
            value = (v - v0.value) / (i - i0.value)
        limit_ohm = RESISTANCE_RANGES_OHM[-1 if self.sense_auto["RES"] else self.sense_range["RES"]]
        if abs(value) > 1.05 * limit_ohm:
            return math.copysign(OVERFLOW_READING, value)
        return value

    def _format(self, readings: list[dict[str, float]]) -> str:
        return ",".join(_nr3(r[e]) for r in readings for e in self.elements)

    def _read(self, call: Call) -> str:
        """``:READ?`` = ``:INIT`` then ``:FETC?`` (the sequence runs to its end first)."""
        self._initiate(call)
        if not self.wait_complete():
            assert self.run is not None
            self.run.abort()
            raise ScpiError(-200, f"{call.header}: an infinite arm count never completes")
        return self._fetch(call)

    def _fetch(self, call: Call) -> str:
        if self.run is not None and self.run.active:
            self.wait_complete()
        if not self.data:
            raise ScpiError(
                -230, f"{call.header}: no readings (send :INIT or :READ?)", "Data corrupt or stale"
            )
        return self._format(self.data)

    def _configure(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self.functions = [fn]
            self.sense_auto[fn] = True
            self.arm_count = 1
            self.trigger_count = 1
            self.trigger_delay_s = 0.0
            self.source_delay_auto = True

        return setter

    def _measure(self, fn: str | None) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            if fn is not None:
                self._configure(fn)(call)
                # :MEAS turns the output on (2400 manual, :MEASure? = :CONF;:OUTP ON;:READ?).
                self.output_on = True
            return self._read(call)

        return query

    def _store_data(self, call: Call) -> str:
        if not self.store:
            return ""
        readings = self.store
        if self.store_timestamp == "DELTA":
            first = readings[0]["TIME"]
            readings = [dict(r, TIME=r["TIME"] - first) for r in readings]
        return self._format(readings)

    def _calc3_data(self, call: Call) -> str:
        """``:CALC3:DATA?``: the statistic of V, I and R (and TIME) over the data store."""
        self._require_calc3(call)
        if len(self.store) < 2 and self.calc3_format == "SDEVIATION":
            raise ScpiError(
                804, f"{call.header}: needs 2 readings in the data store", "Expression list full"
            )
        out = []
        for element in ("VOLT", "CURR", "RES"):
            if element not in self.elements:
                continue
            values = np.array([r[element] for r in self.store if abs(r[element]) < 9e37])
            if values.size == 0:
                out.append(_nr3(NAN_READING))
                continue
            fmt = self.calc3_format
            if fmt == "MEAN":
                value = float(values.mean())
            elif fmt == "SDEVIATION":
                value = float(values.std(ddof=1)) if values.size > 1 else 0.0
            elif fmt == "MAXIMUM":
                value = float(values.max())
            elif fmt == "MINIMUM":
                value = float(values.min())
            else:
                value = float(values.max() - values.min())
            out.append(_nr3(value))
        return ",".join(out)
