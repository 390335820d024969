"""A Keithley 2450 SourceMeter in its native SCPI command set (``*LANG SCPI``).

Faithful to the 2450 Reference Manual (2450-901-01) for what a resistance / current bench
uses: source voltage or current with limits and the limit-tripped query, measure current,
voltage or resistance (2- and 4-wire, offset-compensated ohms), NPLC, ranges and autorange,
output on/off, ``:READ?``, ``:MEASure:<function>?``, ``:FETCh?``, reading buffers
(``:TRACe:...``), a simple trigger loop and linear sweeps (``:INIT``), the error queue and
the IEEE 488.2 common commands. See docs/smu-emulators.md for the command list, the
physics and the deviations from the real instrument.

The instrument never sees the board's true element values: at each reading it calls
``port()`` for the linear model of whatever is routed to it (`PortModel`) and applies the
instrument physics of `simulator.smu_physics` on top. Every reading draws new noise.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.background import TICK, WAIT, BackgroundRun, Step
from simulator.clock import VirtualClock
from simulator.keithley2400_emulator import Keithley2400Emulator
from simulator.keithley2450_trigger import (
    MAX_BLOCKS,
    SWEEP_LIST,
    Block,
    SourceList,
    SweepPoint,
    duration_loop_blocks,
    linear_levels,
    log_levels,
    simple_loop_blocks,
    step_levels,
    sweep_blocks,
)
from simulator.port_model import PortModel
from simulator.scpi import (
    ESR_PON,
    Bool,
    Call,
    Choice,
    CountOrInf,
    Num,
    ScpiDevice,
    ScpiError,
    Special,
    Str,
    Word,
)
from simulator.smu_physics import (
    AUTO_OHMS_VOLTAGE_LIMIT_V,
    K2450_MEASURE_CURRENT,
    K2450_MEASURE_VOLTAGE,
    K2450_SOURCE_CURRENT,
    K2450_SOURCE_VOLTAGE,
    NAN_READING,
    OVERFLOW_READING,
    RANGE_CHANGE_S,
    MeterRanges,
    MeterReading,
    OperatingPoint,
    SourceRanges,
    auto_ohms_point,
    measurement_time_s,
    operating_point,
)

FIRMWARE = "1.7.12b"
EPOCH = _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)
"""Wall-clock date of virtual time 0 (timestamps in buffers are deterministic)."""
RESISTANCE_RANGES_OHM = (20.0, 200.0, 2e3, 20e3, 200e3, 2e6, 20e6, 200e6)
"""The 2450 ohms ranges; a fixed range reports overflow beyond 105 % of it."""
DEFAULT_BUFFER_CAPACITY = 100_000
AUTO_SOURCE_DELAY_S = 1e-3
"""Auto source delay (s): the 2450's auto delay is range dependent, about 1 ms (modelled flat)."""
MAX_BUFFER_ELEMENTS = 14

_SENSE_NAMES = {
    "CURRENT": "CURR",
    "CURR": "CURR",
    "CURRENT:DC": "CURR",
    "CURR:DC": "CURR",
    "VOLTAGE": "VOLT",
    "VOLT": "VOLT",
    "VOLTAGE:DC": "VOLT",
    "VOLT:DC": "VOLT",
    "RESISTANCE": "RES",
    "RES": "RES",
}
_SENSE_REPLY = {"CURR": '"CURR:DC"', "VOLT": '"VOLT:DC"', "RES": '"RES"'}
_UNIT = {"CURR": "Amp DC", "VOLT": "Volt DC", "RES": "Ohm"}
_ELEMENTS = (
    "DATE|FORMatted|FRACtional|READing|RELative|SEConds|SOURce|SOURFORMatted|"
    "SOURSTATus|SOURUNIT|STATus|TIME|TSTamp|UNIT"
)

# Buffer status bits (reference manual, "Buffer status bits for sense measurements").
STAT_QUESTIONABLE = 0x0001
STAT_TERMINAL_FRONT = 0x0008
STAT_START_GROUP = 0x0100
# Source status bits ("SOURSTATus").
SOURSTAT_READBACK = 0x02
SOURSTAT_LIMITED = 0x08
SOURSTAT_FOUR_WIRE = 0x10
SOURSTAT_OUTPUT_ON = 0x20


@dataclass
class _SenseSettings:
    """Per-function measure settings (the 2450 keeps them per function)."""

    range_index: int
    auto: bool = True
    nplc: float = 1.0
    remote_sense: bool = False
    autozero: bool = True
    ocom: bool = False
    last_range: int = 0
    low_limit: int = 0
    high_limit: int = 0
    filter_on: bool = False
    filter_type: str = "REPEAT"
    filter_count: int = 10
    filter_stack: deque[float] = field(default_factory=deque)
    user_delays_s: dict[int, float] = field(default_factory=dict)


@dataclass
class _SourceSettings:
    """Per-function source settings."""

    level: float = 0.0
    range_index: int = 0
    auto: bool = True
    limit: float = 0.0
    delay_s: float = 0.0
    delay_auto: bool = True
    readback: bool = True
    off_mode: str = "NORMAL"
    user_delays_s: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    """One buffer entry (one reading)."""

    reading: float
    function: str
    status: int
    source: float
    source_function: str
    source_status: int
    time_s: float
    range_fs: float = 0.0
    """Full scale of the measure range the reading was made on (for FORMatted)."""
    source_range_fs: float = 0.0


@dataclass
class _Buffer:
    name: str
    capacity: int
    continuous: bool = True
    style: str = "STANDARD"
    entries: deque[_Entry] = field(default_factory=deque)
    stats: list[float] = field(default_factory=list)
    """Readings since the statistics were last cleared (:TRAC:STAT:CLE, :TRAC:CLE)."""

    def add(self, entry: _Entry) -> None:
        if len(self.entries) >= self.capacity:
            if not self.continuous:
                return  # fill-once buffer: full, further readings are not stored
            self.entries.popleft()
        self.entries.append(entry)
        if abs(entry.reading) < 9e37:
            self.stats.append(entry.reading)

    def clear(self) -> None:
        self.entries.clear()
        self.stats.clear()


class Keithley2450Emulator(ScpiDevice):
    """Keithley 2450 native-SCPI emulator; `handle_line` is the whole host interface.

    Args:
        port: called at every reading; returns the linear model of what is routed to the
            SMU (the board may change between readings).
        clock: the bench's virtual clock; every reading advances it by its duration.
        seed: fixes this instrument's calibration errors and its noise sequence.
        serial: the serial number in ``*IDN?``.
        line_frequency_Hz: mains frequency (50 or 60 Hz); 1 PLC = 1 / line_frequency_Hz s.
    """

    MAX_LINE_BYTES = 4096

    def __init__(
        self,
        port: Callable[[], PortModel],
        clock: VirtualClock,
        seed: int,
        *,
        serial: str = "04512345",
        line_frequency_Hz: float = 50.0,
    ) -> None:
        if line_frequency_Hz not in (50.0, 60.0):
            raise ValueError(
                f"Keithley 2450: line frequency must be 50 or 60 Hz, got {line_frequency_Hz}"
            )
        super().__init__("Keithley 2450")
        self._port = port
        self.clock = clock
        self.serial = serial
        self._seed = seed
        self.line_frequency_Hz = float(line_frequency_Hz)
        calibration_rng = np.random.default_rng([seed, 2450, 0])
        self._rng = np.random.default_rng([seed, 2450, 1])
        self.meter_i = MeterRanges(K2450_MEASURE_CURRENT, calibration_rng, unit="A")
        self.meter_v = MeterRanges(K2450_MEASURE_VOLTAGE, calibration_rng, unit="V")
        self.source_v = SourceRanges(K2450_SOURCE_VOLTAGE, calibration_rng, unit="V")
        self.source_i = SourceRanges(K2450_SOURCE_CURRENT, calibration_rng, unit="A")
        self.language = "SCPI"
        self.pending_language = "SCPI"
        self._register()
        self._power_on_state()

    # ------------------------------------------------------------------ state
    def _power_on_state(self) -> None:
        self.reset()
        self.clear_status()
        self.esr |= ESR_PON

    def reset(self) -> None:
        """``*RST``: the 2450's reset defaults (source V 0 V, ILIM 105 uA, measure I, autorange)."""
        self.output_on = False
        self.terminals = "FRONT"
        self.source_function = "VOLT"
        self.source = {
            "VOLT": _SourceSettings(
                level=0.0, range_index=self.source_v.index_for(0.2), limit=105e-6
            ),
            "CURR": _SourceSettings(
                level=0.0, range_index=self.source_i.index_for(1e-6), limit=21.0
            ),
        }
        self.sense_function = "CURR"
        self.sense = {
            "CURR": _SenseSettings(
                range_index=self.meter_i.index_for(1e-4),
                high_limit=len(self.meter_i.specs) - 1,
            ),
            "VOLT": _SenseSettings(
                range_index=self.meter_v.index_for(20.0),
                high_limit=len(self.meter_v.specs) - 1,
            ),
            "RES": _SenseSettings(
                range_index=RESISTANCE_RANGES_OHM.index(200e3),
                high_limit=len(RESISTANCE_RANGES_OHM) - 1,
            ),
        }
        self.count = 1
        self.buffers: dict[str, _Buffer] = {
            "DEFBUFFER1": _Buffer("defbuffer1", DEFAULT_BUFFER_CAPACITY),
            "DEFBUFFER2": _Buffer("defbuffer2", DEFAULT_BUFFER_CAPACITY),
        }
        if getattr(self, "run", None) is not None and self.run is not None:
            self.run.abort()
        self.blocks: dict[int, Block] = {}
        """The trigger model (block number -> block); empty after *RST."""
        self.source_lists: dict[str, SourceList] = {}
        self.list_index: dict[str, int] = {}
        self.run: BackgroundRun | None = None
        self.run_block = 0
        self.command_event = False
        self.point_delay_s: float | bool | None = False
        """Source delay of the sweep point in force (False: the source settings' delay)."""
        self.source_value_lists: dict[str, list[float]] = {"VOLT": [], "CURR": []}
        self.ascii_precision = 0
        self.operation_enable = 0
        self.questionable_enable = 0
        self.brightness = "ON50"
        self.display_text = ["", ""]

    def power_cycle(self) -> None:
        """Power off and on: a pending ``*LANG`` takes effect; settings and buffers reset.

        After ``*LANG SCPI2400`` the instrument speaks the Model 2400 command set
        (reference manual appendix D): a `Keithley2400Emulator` engine with this 2450's
        ranges, identity and clock serves every line until ``*LANG SCPI`` and another
        power cycle.
        """
        self.language = self.pending_language
        self._power_on_state()
        self.scpi2400: Keithley2400Emulator | None = None
        if self.language == "SCPI2400":
            engine = Keithley2400Emulator(
                self._port,
                self.clock,
                self._seed,
                serial=self.serial,
                line_frequency_Hz=self.line_frequency_Hz,
                identity=self.identity(),
                ranges=(
                    K2450_MEASURE_CURRENT,
                    K2450_MEASURE_VOLTAGE,
                    K2450_SOURCE_VOLTAGE,
                    K2450_SOURCE_CURRENT,
                ),
                name="Keithley 2450 (SCPI2400 mode)",
            )
            engine.add(
                ":*LANG",
                set=self._set_lang,
                query=lambda c: self.language,
                params=[Choice("SCPI|SCPI2400|TSP", name="*LANG language")],
            )
            self.scpi2400 = engine

    def handle_line(self, line: str) -> str | None:
        """One program message; in SCPI2400 mode the 2400 engine executes it."""
        engine: Keithley2400Emulator | None = getattr(self, "scpi2400", None)
        if engine is not None:
            return engine.handle_line(line)
        return super().handle_line(line)

    def line_too_long(self, n_bytes: int) -> str | None:
        """A discarded overlong line: -363 in the active command set's queue."""
        engine: Keithley2400Emulator | None = getattr(self, "scpi2400", None)
        if engine is not None:
            return engine.line_too_long(n_bytes)
        return super().line_too_long(n_bytes)

    def on_connect(self) -> None:
        """A host connected (LAN): instrument state is kept, as on the real instrument."""

    def on_disconnect(self) -> None:
        """The host went away: state (including the output) is kept, as on the 2450."""

    def identity(self) -> str:
        """``*IDN?``: KEITHLEY INSTRUMENTS,MODEL 2450,<serial>,<firmware>."""
        return f"KEITHLEY INSTRUMENTS,MODEL 2450,{self.serial},{FIRMWARE}"

    def check_header_allowed(self, tokens: list[str], is_common: bool) -> None:
        """In TSP mode only the common commands and ``:SYST:ERR?`` answer (Lua is not emulated)."""
        if self.language == "SCPI" or is_common:
            return
        names = [t.upper().rstrip("0123456789") for t in tokens]
        if names[:2] in (
            ["SYST", "ERR"],
            ["SYSTEM", "ERROR"],
            ["SYST", "ERROR"],
            ["SYSTEM", "ERR"],
        ):
            return
        raise ScpiError(-285, f"{':'.join(tokens)} in TSP mode", "TSP Syntax error")

    # ------------------------------------------------------------------ registration
    def _register(self) -> None:
        add = self.add
        add(
            ":*LANG",
            set=self._set_lang,
            query=lambda c: self.language,
            params=[Choice("SCPI|SCPI2400|TSP", name="*LANG language")],
        )
        add(
            ":ROUTe:TERMinals",
            set=self._set_terminals,
            query=lambda c: self.terminals[:4],
            params=[Choice("FRONt|REAR", name="terminals")],
        )
        add(
            "[:SOURce[1]]:FUNCtion[:MODE]",
            set=self._set_source_function,
            query=lambda c: self.source_function,
            params=[Choice("VOLTage|CURRent", name="source function")],
        )
        for fn, limit_name, limit_lo, limit_hi, limit_def, lvl_max, unit, lim_unit in (
            ("VOLT", "ILIMit", 1e-9, 1.05, 105e-6, 210.0, "V", "A"),
            ("CURR", "VLIMit", 0.02, 210.0, 21.0, 1.05, "A", "V"),
        ):
            long = "VOLTage" if fn == "VOLT" else "CURRent"
            base = f"[:SOURce[1]]:{long}"
            add(
                f"{base}[:LEVel][:IMMediate][:AMPLitude]",
                set=self._setter_level(fn),
                query=self._query_attr("source", fn, "level"),
                params=[Num(-lvl_max, lvl_max, 0.0, unit, f"{fn} source level")],
            )
            add(
                f"{base}:RANGe",
                set=self._setter_source_range(fn),
                query=self._query_source_range(fn),
                params=[Num(-lvl_max, lvl_max, lvl_max, unit, f"{fn} source range")],
            )
            add(
                f"{base}:RANGe:AUTO",
                set=self._setter_attr("source", fn, "auto"),
                query=self._query_attr("source", fn, "auto"),
                params=[Bool()],
            )
            add(
                f"{base}:{limit_name}[:LEVel]",
                set=self._setter_limit(fn),
                query=self._query_attr("source", fn, "limit"),
                params=[Num(limit_lo, limit_hi, limit_def, lim_unit, f"{fn} source limit")],
            )
            add(
                f"{base}:{limit_name}[:LEVel]:TRIPped",
                query=self._query_tripped(fn),
            )
            add(
                f"{base}:DELay",
                set=self._setter_delay(fn),
                query=self._query_attr("source", fn, "delay_s"),
                params=[Num(0.0, 1e4, 0.0, "S", "source delay")],
            )
            add(
                f"{base}:DELay:AUTO",
                set=self._setter_attr("source", fn, "delay_auto"),
                query=self._query_attr("source", fn, "delay_auto"),
                params=[Bool()],
            )
            add(
                f"{base}:READ:BACK",
                set=self._setter_attr("source", fn, "readback"),
                query=self._query_attr("source", fn, "readback"),
                params=[Bool()],
            )
            sweep_tail = [
                Num(-1, 1e4, name="delay", unit="S", optional=True),
                Num(0, 268435455, name="count", integer=True, optional=True),
                Choice("AUTO|BEST|FIXed", name="range type", optional=True),
                Bool(name="fail abort", optional=True),
                Bool(name="dual", optional=True),
                Str(name="buffer name", optional=True),
            ]
            level = Num(-lvl_max, lvl_max, name="level", unit=unit)
            add(
                f"[:SOURce[1]]:SWEep:{long}:LINear",
                set=self._setter_sweep(fn, "LIN"),
                params=[level, level, Num(2, 1e6, name="points", integer=True), *sweep_tail],
            )
            add(
                f"[:SOURce[1]]:SWEep:{long}:LINear:STEP",
                set=self._setter_sweep(fn, "STEP"),
                params=[level, level, Num(0, 2 * lvl_max, name="step", unit=unit), *sweep_tail],
            )
            add(
                f"[:SOURce[1]]:SWEep:{long}:LOG",
                set=self._setter_sweep(fn, "LOG"),
                params=[
                    level,
                    level,
                    Num(2, 1e6, name="points", integer=True),
                    *sweep_tail,
                    Num(-lvl_max, lvl_max, name="asymptote", unit=unit, optional=True),
                ],
            )
            add(
                f"[:SOURce[1]]:SWEep:{long}:LIST",
                set=self._setter_sweep(fn, "LIST"),
                params=[
                    Num(1, 1e6, name="start index", integer=True),
                    Num(-1, 1e4, name="delay", unit="S", optional=True),
                    Num(0, 268435455, name="count", integer=True, optional=True),
                    Bool(name="fail abort", optional=True),
                    Str(name="buffer name", optional=True),
                ],
            )
            add(
                f"[:SOURce[1]]:LIST:{long}",
                set=self._setter_source_list(fn, append=False),
                query=self._query_source_list(fn),
                params=[level],
                query_params=[
                    Num(1, 1e6, name="start index", integer=True, optional=True),
                    Num(1, 1e6, name="count", integer=True, optional=True),
                ],
                variadic=level,
                max_variadic=2499,
            )
            add(
                f"[:SOURce[1]]:LIST:{long}:APPend",
                set=self._setter_source_list(fn, append=True),
                params=[level],
                variadic=level,
                max_variadic=2499,
            )
            add(
                f"[:SOURce[1]]:LIST:{long}:POINts",
                query=self._query_list_points(fn),
            )
            add(
                f"[:SOURce[1]]:{long}:DELay:USER#5",
                set=self._setter_user_delay("source", fn),
                query=self._query_user_delay("source", fn),
                params=[Num(0, 1e4, 0.0, "S", "user delay")],
            )
            add(
                f":OUTPut[1]:{long}:SMODe",
                set=self._setter_smode(fn),
                query=self._query_smode(fn),
                params=[Choice("NORMal|HIMPedance|ZERO|GUARd", name="output-off state")],
            )
        add(
            ":OUTPut[1]:SMODe",
            set=self._setter_smode(None),
            params=[Choice("NORMal|HIMPedance|ZERO|GUARd", name="output-off state")],
        )
        add(
            ":OUTPut[1][:STATe]",
            set=self._set_output,
            query=lambda c: "1" if self.output_on else "0",
            params=[Bool(name="output")],
        )

        add(
            "[:SENSe[1]]:FUNCtion[:ON]",
            set=self._set_sense_function,
            query=lambda c: _SENSE_REPLY[self.sense_function],
            params=[Str(name="measure function")],
        )
        for fn, long, lo, hi in (
            ("CURR", "CURRent[:DC]", 1e-8, 1.05),
            ("VOLT", "VOLTage[:DC]", 0.02, 210.0),
            ("RES", "RESistance", 20.0, 200e6),
        ):
            base = f"[:SENSe[1]]:{long}"
            unit = {"CURR": "A", "VOLT": "V", "RES": "OHM"}[fn]
            add(
                f"{base}:RANGe[:UPPer]",
                set=self._setter_sense_range(fn),
                query=self._query_sense_range(fn),
                params=[Num(lo, hi, hi, unit, f"{fn} measure range", updown=True)],
            )
            add(
                f"{base}:RANGe:AUTO",
                set=self._setter_attr("sense", fn, "auto"),
                query=self._query_attr("sense", fn, "auto"),
                params=[Bool()],
            )
            for limit_node, which in (("LLIMit", "low_limit"), ("ULIMit", "high_limit")):
                add(
                    f"{base}:RANGe:AUTO:{limit_node}",
                    set=self._setter_autorange_limit(fn, which),
                    query=self._query_autorange_limit(fn, which),
                    params=[Num(lo, hi, lo if which == "low_limit" else hi, unit, "limit")],
                )
            add(
                f"{base}:NPLCycles",
                set=self._setter_attr("sense", fn, "nplc"),
                query=self._query_attr("sense", fn, "nplc"),
                params=[Num(0.01, 10.0, 1.0, "", "NPLC")],
            )
            add(
                f"{base}:RSENse",
                set=self._setter_attr("sense", fn, "remote_sense"),
                query=self._query_attr("sense", fn, "remote_sense"),
                params=[Bool(name="remote sense")],
            )
            add(
                f"{base}:AZERo[:STATe]",
                set=self._setter_attr("sense", fn, "autozero"),
                query=self._query_attr("sense", fn, "autozero"),
                params=[Bool(name="autozero")],
            )
            add(
                f"{base}:AVERage[:STATe]",
                set=self._setter_filter(fn, "filter_on"),
                query=self._query_attr("sense", fn, "filter_on"),
                params=[Bool(name="averaging filter")],
            )
            add(
                f"{base}:AVERage:TCONtrol",
                set=self._setter_filter(fn, "filter_type"),
                query=self._query_text("sense", fn, "filter_type", 3),
                params=[Choice("REPeat|MOVing", name="filter type")],
            )
            add(
                f"{base}:AVERage:COUNt",
                set=self._setter_filter(fn, "filter_count"),
                query=self._query_text("sense", fn, "filter_count", 0),
                params=[Num(1, 100, 10, "", "filter count", integer=True)],
            )
            add(
                f"{base}:DELay:USER#5",
                set=self._setter_user_delay("sense", fn),
                query=self._query_user_delay("sense", fn),
                params=[Num(0, 1e4, 0.0, "S", "user delay")],
            )
        add(
            "[:SENSe[1]]:RESistance:OCOMpensated",
            set=self._setter_attr("sense", "RES", "ocom"),
            query=self._query_attr("sense", "RES", "ocom"),
            params=[Bool(name="offset compensation")],
        )
        add("[:SENSe[1]]:AZERo:ONCE", set=self._azero_once)
        add(
            "[:SENSe[1]]:COUNt",
            set=self._set_count,
            query=lambda c: str(self.count),
            params=[Num(1, 300000, 1, "", "count", integer=True)],
        )

        buffer_arg = Str(name="buffer name", optional=True)
        elements = Choice(_ELEMENTS, name="buffer element")
        add(
            ":READ",
            query=self._read,
            query_params=[buffer_arg],
            variadic=elements,
            max_variadic=MAX_BUFFER_ELEMENTS,
        )
        add(
            ":MEASure",
            query=self._read,
            query_params=[buffer_arg],
            variadic=elements,
            max_variadic=MAX_BUFFER_ELEMENTS,
        )
        for fn, long in (("CURR", "CURRent[:DC]"), ("VOLT", "VOLTage[:DC]"), ("RES", "RESistance")):
            add(
                f":MEASure:{long}",
                query=self._measure_function(fn),
                query_params=[buffer_arg],
                variadic=elements,
                max_variadic=MAX_BUFFER_ELEMENTS,
            )
        add(
            ":FETCh",
            query=self._fetch,
            query_params=[buffer_arg],
            variadic=elements,
            max_variadic=MAX_BUFFER_ELEMENTS,
        )
        add(":INITiate[:IMMediate]", set=self._initiate)
        add(":ABORt", set=self._abort)
        add(":*TRG", set=self._bus_trigger)
        add(
            ":TRIGger:LOAD",
            set=self._trigger_load,
            params=[
                Str(name="trigger model"),
                Num(0, 1e5, name="count or duration", optional=True),
                Num(0, 1e4, name="delay", unit="S", optional=True),
                Str(name="buffer name", optional=True),
            ],
        )
        add(":TRIGger:STATe", query=self._trigger_state)
        self._register_blocks()

        add(
            ":TRACe:MAKE",
            set=self._trace_make,
            params=[
                Str(name="buffer name"),
                Num(1, 11_000_000, name="size", integer=True),
                Choice("COMPact|STANdard|FULL|WRITable|FULLWRITable", name="style", optional=True),
            ],
        )
        add(
            ":TRACe:CLEar",
            set=lambda c: self._buffer(c.args, 0).clear(),
            params=[buffer_arg],
        )
        add(":TRACe:DELete", set=self._trace_delete, params=[Str(name="buffer name")])
        add(
            ":TRACe:ACTual",
            query=lambda c: str(len(self._buffer(c.args, 0).entries)),
            query_params=[buffer_arg],
        )
        add(
            ":TRACe:ACTual:STARt",
            query=lambda c: "1" if self._buffer(c.args, 0).entries else "0",
            query_params=[buffer_arg],
        )
        add(
            ":TRACe:ACTual:END",
            query=lambda c: str(len(self._buffer(c.args, 0).entries)),
            query_params=[buffer_arg],
        )
        add(
            ":TRACe:POINts",
            set=self._trace_points,
            query=lambda c: str(self._buffer(c.args, 0).capacity),
            params=[Num(1, 11_000_000, name="size", integer=True), buffer_arg],
            query_params=[buffer_arg],
        )
        add(
            ":TRACe:FILL:MODE",
            set=self._trace_fill,
            query=lambda c: "CONT" if self._buffer(c.args, 0).continuous else "ONCE",
            params=[Choice("CONTinuous|ONCE", name="fill mode"), buffer_arg],
            query_params=[buffer_arg],
        )
        add(
            ":TRACe:DATA",
            query=self._trace_data,
            query_params=[
                Num(1, 11_000_000, name="start index", integer=True),
                Num(1, 11_000_000, name="end index", integer=True),
                buffer_arg,
            ],
            variadic=elements,
            max_variadic=MAX_BUFFER_ELEMENTS,
        )
        add(":TRACe:TRIGger", set=self._trace_trigger, params=[buffer_arg])
        for stat in ("AVERage", "STDDev", "MINimum", "MAXimum", "PK2Pk"):
            add(
                f":TRACe:STATistics:{stat}",
                query=self._trace_stat(stat.upper()),
                query_params=[buffer_arg],
            )
        add(
            ":TRACe:STATistics:CLEar",
            set=lambda c: self._buffer(c.args, 0).stats.clear(),
            params=[buffer_arg],
        )

        add(":STATus:CLEar", set=lambda c: self._clear_events())
        add(":STATus:PRESet", set=self._status_preset)
        for reg in ("OPERation", "QUEStionable"):
            attr = "operation_enable" if reg == "OPERation" else "questionable_enable"
            add(f":STATus:{reg}[:EVENt]", query=lambda c: "0")
            add(f":STATus:{reg}:CONDition", query=lambda c: "0")
            add(
                f":STATus:{reg}:ENABle",
                set=self._setter_register(attr),
                query=self._query_register(attr),
                params=[Num(0, 65535, 0, "", "enable mask", integer=True)],
            )
            self.add_not_emulated(f":STATus:{reg}:MAP", "mapping instrument events to status bits")
        add(":SYSTem:CLEar", set=lambda c: self.errors.clear())
        add(":SYSTem:LFRequency", query=lambda c: f"{self.line_frequency_Hz:g}")
        add(
            ":SYSTem:BEEPer[:IMMediate]",
            set=lambda c: None,
            params=[
                Num(20, 8000, name="frequency", unit="HZ"),
                Num(0.001, 100, name="duration", unit="S"),
            ],
        )
        add(
            ":DISPlay:LIGHt:STATe",
            set=lambda c: setattr(self, "brightness", c.args[0]),
            query=lambda c: self.brightness[:5],
            params=[Choice("ON100|ON75|ON50|ON25|OFF|BLACkout", name="brightness")],
        )
        add(
            ":DISPlay:SCReen",
            set=lambda c: None,
            params=[
                Choice(
                    "HOME|HOME_LARge_reading|READing_table|GRAPh|HISTogram|FPanel|SOURce|SWIPE_USER|"
                    "SWIPE_GRAPh|SWIPE_SETTings|SWIPE_SECondary|SWIPE_STATistics|PROCessing",
                    name="screen",
                )
            ],
        )
        add(":DISPlay:USER#2:TEXT[:DATA]", set=self._display_text, params=[Str(name="text")])
        add(":DISPlay:CLEar", set=self._display_clear)
        add(
            ":FORMat[:DATA]",
            set=self._set_format,
            query=lambda c: "ASC",
            params=[Choice("ASCii|REAL|SREAL", name="data format")],
        )
        add(
            ":FORMat:ASCii:PRECision",
            set=lambda c: setattr(self, "ascii_precision", int(c.args[0])),
            query=lambda c: str(self.ascii_precision),
            params=[Num(0, 16, 0, "", "ASCII precision", integer=True)],
        )
        for pattern, what in (
            ("[:SOURce[1]]:CONFiguration", "source configuration lists"),
            ("[:SENSe[1]]:CONFiguration", "measure configuration lists"),
            ("[:SENSe[1]]:CURRent[:DC]:RELative", "the relative offset"),
            ("[:SENSe[1]]:VOLTage[:DC]:RELative", "the relative offset"),
            ("[:SENSe[1]]:RESistance:RELative", "the relative offset"),
            (":CALCulate", "math and limit tests (:CALC)"),
            (":DIGital", "the digital I/O"),
            (":TRIGger:DIGital", "the digital I/O trigger lines"),
            (":TRIGger:EXTernal", "the external trigger lines"),
            (":TRIGger:TIMer", "the trigger timers"),
            (":TRIGger:LAN", "the LAN trigger events"),
            (":TRIGger:BLENder", "the event blenders"),
            (":TRIGger:BLOCk:BRANch:DELTa", "the BRANCH_DELTA block"),
            (":TRIGger:BLOCk:BRANch:LIMit", "the limit branch blocks"),
            (":TRIGger:BLOCk:BRANch:EVENt", "the BRANCH_ON_EVENT block"),
            (":TRIGger:BLOCk:DIGital", "the DIGITAL_IO block"),
            (":TRIGger:BLOCk:LOG", "the LOG_EVENT block (event log)"),
            (":TRACe:WRITe", "writable buffers"),
            (":TRACe:SAVE", "saving buffers to a USB drive"),
            (":SYSTem:EVENtlog", "the event log"),
            (":SCRipt", "scripts"),
        ):
            self.add_not_emulated(pattern, what)

    # ------------------------------------------------------------------ generic setters
    def _query_attr(self, table: str, key: str, attr: str) -> Callable[[Call], str]:
        """Query handler for a setting: booleans as 1/0, numbers in NR3."""

        def query(call: Call) -> str:
            value = getattr(getattr(self, table)[key], attr)
            if isinstance(value, bool):
                return "1" if value else "0"
            return _nr3(float(value))

        return query

    def _query_tripped(self, fn: str) -> Callable[[Call], str]:
        return lambda call: "1" if self._tripped(fn) else "0"

    def _query_source_range(self, fn: str) -> Callable[[Call], str]:
        return lambda call: _nr3(self._source_ranges(fn).full_scales[self.source[fn].range_index])

    def _query_sense_range(self, fn: str) -> Callable[[Call], str]:
        return lambda call: _nr3(self._sense_full_scales(fn)[self.sense[fn].range_index])

    def _query_smode(self, fn: str) -> Callable[[Call], str]:
        return lambda call: self.source[fn].off_mode[:4]

    def _query_list_points(self, fn: str) -> Callable[[Call], str]:
        return lambda call: str(len(self.source_value_lists[fn]))

    def _query_text(self, table: str, key: str, attr: str, width: int) -> Callable[[Call], str]:
        """Query a setting as text (``width`` > 0: its first characters, a short form)."""

        def query(call: Call) -> str:
            text = str(getattr(getattr(self, table)[key], attr))
            return text[:width] if width else text

        return query

    def _setter_register(self, attr: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            setattr(self, attr, int(call.args[0]))

        return setter

    def _query_register(self, attr: str) -> Callable[[Call], str]:
        return lambda call: str(getattr(self, attr))

    def _setter_attr(self, table: str, key: str, attr: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            setattr(getattr(self, table)[key], attr, call.args[0])

        return setter

    def _clear_events(self) -> None:
        self.esr = 0

    # ------------------------------------------------------------------ handlers
    def _set_lang(self, call: Call) -> None:
        self.pending_language = {"SCPI": "SCPI", "SCPI2400": "SCPI2400", "TSP": "TSP"}[call.args[0]]

    def _set_terminals(self, call: Call) -> None:
        if call.args[0] != self.terminals and self.output_on:
            # The 2450 turns the output off when the terminals are switched.
            self.output_on = False
        self.terminals = call.args[0]

    def _set_source_function(self, call: Call) -> None:
        fn = "VOLT" if call.args[0] == "VOLTAGE" else "CURR"
        if fn != self.source_function:
            self.output_on = False  # changing the source function turns the output off
        self.source_function = fn

    def _source_ranges(self, fn: str) -> SourceRanges:
        return self.source_v if fn == "VOLT" else self.source_i

    def _setter_level(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            level = float(call.args[0])
            settings = self.source[fn]
            ranges = self._source_ranges(fn)
            if settings.auto:
                settings.range_index = ranges.index_for(level)
            else:
                full = ranges.full_scales[settings.range_index]
                if abs(level) > ranges.specs[settings.range_index].max_reading * (1 + 1e-9):
                    raise ScpiError(
                        -221,
                        f"{call.header}: {level:g} exceeds the fixed "
                        f"{full:g} {ranges.unit} source range",
                    )
            settings.level = level

        return setter

    def _setter_source_range(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            settings = self.source[fn]
            ranges = self._source_ranges(fn)
            settings.range_index = ranges.index_for(float(call.args[0]))
            settings.auto = False
            max_level = ranges.specs[settings.range_index].max_reading
            if abs(settings.level) > max_level:
                settings.level = math.copysign(max_level, settings.level)

        return setter

    def _setter_limit(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self.source[fn].limit = float(call.args[0])

        return setter

    def _setter_delay(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self.source[fn].delay_s = float(call.args[0])
            self.source[fn].delay_auto = False

        return setter

    def _setter_smode(self, fn: str | None) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            for key in [fn] if fn else ["VOLT", "CURR"]:
                self.source[key].off_mode = call.args[0]

        return setter

    def _setter_sweep(self, fn: str, kind: str) -> Callable[[Call], None]:
        """``:SOUR:SWE:<f>:LIN|LIN:STEP|LOG|LIST``: a source list and the sweep trigger model.

        The command replaces the trigger model (as on the 2450); it runs on ``:INIT``.
        """

        def setter(call: Call) -> None:
            args = list(call.args)
            if kind == "LIST":
                start_index = int(args[0])
                values = self.source_value_lists[fn]
                if not values:
                    raise ScpiError(
                        -221, f"{call.header}: the source list is empty (send :SOUR:LIST:{fn})"
                    )
                if start_index > len(values):
                    raise ScpiError(
                        -222,
                        f"{call.header}: start index {start_index} beyond the "
                        f"{len(values)} list points",
                    )
                levels = values[start_index - 1 :]
                tail = [args[1] if len(args) > 1 else -1.0, args[2] if len(args) > 2 else 1]
                tail += ["BEST", args[3] if len(args) > 3 else True, False]
                tail += [args[4] if len(args) > 4 else "defbuffer1"]
            else:
                start, stop = float(args[0]), float(args[1])
                try:
                    if kind == "LIN":
                        levels = linear_levels(start, stop, int(args[2]))
                    elif kind == "STEP":
                        levels = step_levels(start, stop, float(args[2]))
                    else:
                        asymptote = float(args[9]) if len(args) > 9 else 0.0
                        levels = log_levels(start, stop, int(args[2]), asymptote)
                except ValueError as exc:
                    raise ScpiError(-222, f"{call.header}: {exc}") from None
                if len(levels) > 1_000_000:
                    raise ScpiError(-222, f"{call.header}: {len(levels)} points exceed 1e6")
                defaults: list[Any] = [-1.0, 1, "BEST", True, False, "defbuffer1"]
                tail = [args[3 + i] if len(args) > 3 + i else d for i, d in enumerate(defaults)]
            delay_arg, count, range_mode, fail_abort, dual, buffer = tail
            self._buffer([buffer], 0)
            if dual:
                levels = levels + levels[::-1]
            delay = None if float(delay_arg) < 0 else float(delay_arg)
            ranges = self._source_ranges(fn)
            settings = self.source[fn]
            if range_mode == "FIXED":
                top = ranges.specs[settings.range_index].max_reading
                worst = max(abs(x) for x in levels)
                if worst > top * (1 + 1e-9):
                    raise ScpiError(
                        -221,
                        f"{call.header}: level {worst:g} exceeds the fixed "
                        f"{ranges.full_scales[settings.range_index]:g} {ranges.unit} source "
                        "range",
                    )
            self.source_lists[SWEEP_LIST] = SourceList(
                fn,
                [SweepPoint(level, delay) for level in levels],
                range_mode=str(range_mode),
                fail_abort=bool(fail_abort),
            )
            self.blocks = sweep_blocks(len(levels), int(count), delay, str(buffer))

        return setter

    def _setter_source_list(self, fn: str, *, append: bool) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            values = [float(v) for v in call.args]
            if append:
                self.source_value_lists[fn].extend(values)
            else:
                self.source_value_lists[fn] = values

        return setter

    def _query_source_list(self, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            values = self.source_value_lists[fn]
            start = int(call.args[0]) if call.args else 1
            count = int(call.args[1]) if len(call.args) > 1 else len(values) - start + 1
            chosen = values[start - 1 : start - 1 + max(count, 0)]
            return ",".join(_nr3(v) for v in chosen)

        return query

    def _setter_user_delay(self, table: str, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            getattr(self, table)[fn].user_delays_s[call.suffix()] = float(call.args[0])

        return setter

    def _query_user_delay(self, table: str, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            return _nr3(getattr(self, table)[fn].user_delays_s.get(call.suffix(), 0.0))

        return query

    def _setter_filter(self, fn: str, attr: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            settings = self.sense[fn]
            value = call.args[0]
            setattr(settings, attr, int(value) if attr == "filter_count" else value)
            settings.filter_stack.clear()  # a changed filter starts a new average

        return setter

    def _status_preset(self, call: Call) -> None:
        self.operation_enable = 0
        self.questionable_enable = 0

    def _set_output(self, call: Call) -> None:
        self.output_on = bool(call.args[0])

    def _set_sense_function(self, call: Call) -> None:
        text = str(call.args[0]).strip().upper()
        fn = _SENSE_NAMES.get(text)
        if fn is None:
            raise ScpiError(
                -224,
                f"{call.header}: measure function {call.raw_args[0]} is not "
                '"CURR", "VOLT" or "RES"',
            )
        self.sense_function = fn

    def _sense_full_scales(self, fn: str) -> tuple[float, ...]:
        if fn == "CURR":
            return self.meter_i.full_scales
        if fn == "VOLT":
            return self.meter_v.full_scales
        return RESISTANCE_RANGES_OHM

    def _setter_sense_range(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            settings = self.sense[fn]
            scales = self._sense_full_scales(fn)
            value = call.args[0]
            if isinstance(value, Special):
                step = 1 if value == "UP" else -1
                settings.range_index = min(max(settings.range_index + step, 0), len(scales) - 1)
            else:
                settings.range_index = next(
                    (i for i, s in enumerate(scales) if abs(value) <= s * (1 + 1e-9)),
                    len(scales) - 1,
                )
            settings.auto = False

        return setter

    def _setter_autorange_limit(self, fn: str, which: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            settings = self.sense[fn]
            scales = self._sense_full_scales(fn)
            value = abs(float(call.args[0]))
            index = next(
                (i for i, s in enumerate(scales) if value <= s * (1 + 1e-9)), len(scales) - 1
            )
            low = index if which == "low_limit" else settings.low_limit
            high = index if which == "high_limit" else settings.high_limit
            if low > high:
                raise ScpiError(
                    -221,
                    f"{call.header}: autorange low limit {scales[low]:g} above high limit "
                    f"{scales[high]:g}",
                )
            setattr(settings, which, index)

        return setter

    def _query_autorange_limit(self, fn: str, which: str) -> Callable[[Call], str]:
        return lambda call: _nr3(self._sense_full_scales(fn)[getattr(self.sense[fn], which)])

    def _azero_once(self, call: Call) -> None:
        settings = self.sense[self.sense_function]
        self.clock.advance(measurement_time_s(settings.nplc, self.line_frequency_Hz, autozero=True))

    def _set_count(self, call: Call) -> None:
        self.count = int(call.args[0])

    def _display_text(self, call: Call) -> None:
        line = call.suffix()
        self.display_text[line - 1] = str(call.args[0])[: 20 if line == 1 else 32]

    def _display_clear(self, call: Call) -> None:
        self.display_text = ["", ""]

    def _set_format(self, call: Call) -> None:
        if call.args[0] != "ASCII":
            raise ScpiError(
                -224, f"{call.header}: only ASCii is emulated (binary {call.args[0]} is not)"
            )

    # ------------------------------------------------------------------ buffers
    def _buffer(self, args: list[Any], index: int) -> _Buffer:
        name = args[index] if len(args) > index and args[index] is not None else "defbuffer1"
        buffer = self.buffers.get(str(name).upper())
        if buffer is None:
            raise ScpiError(-224, f"reading buffer {name!r} does not exist")
        return buffer

    def _trace_make(self, call: Call) -> None:
        name = str(call.args[0])
        if not name or not all(ch.isalnum() or ch == "_" for ch in name) or name[0].isdigit():
            raise ScpiError(-224, f"{call.header}: bad buffer name {name!r}")
        if name.upper() in self.buffers:
            raise ScpiError(-221, f"{call.header}: buffer {name!r} already exists")
        style = call.args[2] if len(call.args) > 2 else "STANDARD"
        if style not in ("STANDARD", "COMPACT", "FULL"):
            raise ScpiError(-224, f"{call.header}: writable buffers are not emulated")
        self.buffers[name.upper()] = _Buffer(name, int(call.args[1]), style=style)

    def _trace_delete(self, call: Call) -> None:
        buffer = self._buffer(call.args, 0)
        if buffer.name.upper() in ("DEFBUFFER1", "DEFBUFFER2"):
            raise ScpiError(-224, f"{call.header}: the default buffers cannot be deleted")
        del self.buffers[buffer.name.upper()]

    def _trace_points(self, call: Call) -> None:
        buffer = self._buffer(call.args, 1)
        buffer.capacity = int(call.args[0])
        buffer.clear()  # resizing clears the buffer, as on the 2450

    def _trace_fill(self, call: Call) -> None:
        self._buffer(call.args, 1).continuous = call.args[0] == "CONTINUOUS"

    def _trace_data(self, call: Call) -> str:
        start, end = int(call.args[0]), int(call.args[1])
        buffer = self._buffer(call.args, 2)
        n = len(buffer.entries)
        if start > end or end > n:
            raise ScpiError(
                -222,
                f"{call.header}: indices {start}..{end} outside the {n} readings of {buffer.name}",
            )
        elements = call.args[3:] or ["READING"]
        entries = itertools.islice(buffer.entries, start - 1, end)
        first = buffer.entries[0].time_s if buffer.entries else 0.0
        return ",".join(self._format_entry(e, elements, first) for e in entries)

    def _trace_trigger(self, call: Call) -> None:
        self._require_idle(call.header)
        buffer = self._buffer(call.args, 0)
        for _ in range(self.count):
            self._store(buffer, self._measure_entry(self.sense_function))

    def _trace_stat(self, statistic: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            buffer = self._buffer(call.args, 0)
            values = np.array(buffer.stats)
            if values.size == 0:
                return _nr3(NAN_READING)
            if statistic == "AVERAGE":
                return _nr3(float(values.mean()))
            if statistic == "STDDEV":
                # The 2450 reports the sample standard deviation.
                return _nr3(float(values.std(ddof=1)) if values.size > 1 else 0.0)
            if statistic == "MINIMUM":
                return _nr3(float(values.min()))
            if statistic == "PK2PK":
                return _nr3(float(values.max() - values.min()))
            return _nr3(float(values.max()))

        return query

    def _store(self, buffer: _Buffer, entry: _Entry) -> None:
        buffer.add(entry)

    def _number(self, value: float) -> str:
        """A reading in the ASCII format (``:FORM:ASC:PREC``: significant digits, 0 = auto)."""
        if self.ascii_precision <= 0:
            return _nr3(value)
        return f"{value:.{self.ascii_precision - 1}E}"

    def _format_entry(self, entry: _Entry, elements: list[Any], first_s: float) -> str:
        out: list[str] = []
        stamp = EPOCH + _dt.timedelta(seconds=entry.time_s)
        nanoseconds = round((entry.time_s - math.floor(entry.time_s)) * 1e9) % 1_000_000_000
        for element in elements:
            if element == "READING":
                out.append(self._number(entry.reading))
            elif element == "SOURCE":
                out.append(self._number(entry.source))
            elif element == "RELATIVE":
                out.append(_nr3(entry.time_s - first_s))
            elif element == "UNIT":
                out.append(_UNIT[entry.function])
            elif element == "SOURUNIT":
                out.append(_UNIT[entry.source_function])
            elif element == "STATUS":
                out.append(_nr3(float(entry.status)))
            elif element == "SOURSTATUS":
                out.append(_nr3(float(entry.source_status)))
            elif element == "DATE":
                out.append(stamp.strftime("%m/%d/%Y"))
            elif element == "TIME":
                # "23:09:43": hours, minutes, seconds (reference manual, bufferVar.times).
                out.append(stamp.strftime("%H:%M:%S"))
            elif element == "TSTAMP":
                # "03/01/2013 14:46:07.714614838": nanoseconds (bufferVar.timestamps).
                out.append(stamp.strftime("%m/%d/%Y %H:%M:%S.") + f"{nanoseconds:09d}")
            elif element == "SECONDS":
                out.append(str(int(stamp.timestamp())))
            elif element == "FRACTIONAL":
                out.append(f"{nanoseconds / 1e9:.9f}")
            elif element == "FORMATTED":
                out.append(_formatted(entry.reading, _UNIT[entry.function], entry.range_fs))
            elif element == "SOURFORMATTED":
                out.append(
                    _formatted(entry.source, _UNIT[entry.source_function], entry.source_range_fs)
                )
        return ",".join(out)

    # ------------------------------------------------------------------ measuring
    def _read(self, call: Call) -> str:
        self._require_idle(call.header)
        buffer = self._buffer(call.args, 0)
        entry: _Entry | None = None
        for _ in range(self.count):
            entry = self._measure_entry(self.sense_function)
            self._store(buffer, entry)
        assert entry is not None
        first = buffer.entries[0].time_s if buffer.entries else entry.time_s
        return self._format_entry(entry, call.args[1:] or ["READING"], first)

    def _measure_function(self, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            self._require_idle(call.header)
            self._buffer(call.args, 0)
            self.sense_function = fn
            return self._read(call)

        return query

    def _fetch(self, call: Call) -> str:
        buffer = self._buffer(call.args, 0)
        if not buffer.entries:
            raise ScpiError(
                -230, f"{call.header}: no reading in {buffer.name}", "Data corrupt or stale"
            )
        first = buffer.entries[0].time_s
        return self._format_entry(buffer.entries[-1], call.args[1:] or ["READING"], first)

    # ------------------------------------------------------------------ trigger model
    def _register_blocks(self) -> None:
        """``:TRIGger:BLOCk:...``: define the building blocks of a trigger model."""
        add = self.add
        block = Num(1, MAX_BLOCKS, name="block number", integer=True)
        target = Num(1, MAX_BLOCKS, name="branch-to block", integer=True)
        buffer_arg = Str(name="buffer name", optional=True)

        def define(kind: str, **fields: Any) -> Callable[[Call], None]:
            def setter(call: Call) -> None:
                self._define_block(call, kind, **fields)

            return setter

        add(":TRIGger:BLOCk:BUFFer:CLEar", set=define("BUFFER_CLEAR"), params=[block, buffer_arg])
        add(
            ":TRIGger:BLOCk:MEASure",
            set=define("MEASURE"),
            params=[block, buffer_arg, CountOrInf(name="count", optional=True)],
        )
        add(
            ":TRIGger:BLOCk:DELay:CONStant",
            set=define("DELAY_CONSTANT"),
            params=[block, Num(0, 1e4, name="delay", unit="S")],
        )
        add(
            ":TRIGger:BLOCk:DELay:DYNamic",
            set=define("DELAY_DYNAMIC"),
            params=[block, Word(name="user delay (M1..M5, S1..S5)")],
        )
        add(":TRIGger:BLOCk:BRANch:ALWays", set=define("BRANCH_ALWAYS"), params=[block, target])
        add(":TRIGger:BLOCk:BRANch:ONCE", set=define("BRANCH_ONCE"), params=[block, target])
        add(
            ":TRIGger:BLOCk:BRANch:ONCE:EXCLuded",
            set=define("BRANCH_ONCE_EXCLUDED"),
            params=[block, target],
        )
        add(
            ":TRIGger:BLOCk:BRANch:COUNter",
            set=define("BRANCH_COUNTER"),
            params=[block, Num(1, 268435455, name="target count", integer=True), target],
        )
        add(
            ":TRIGger:BLOCk:BRANch:COUNter:RESet",
            set=define("BRANCH_COUNTER_RESET"),
            params=[block, target],
        )
        add(
            ":TRIGger:BLOCk:BRANch:COUNter:COUNt",
            query=lambda c: str(self._counters.get(int(c.args[0]), 0)),
            query_params=[block],
        )
        add(
            ":TRIGger:BLOCk:SOURce:STATe",
            set=define("SOURCE_OUTPUT"),
            params=[block, Bool(name="output state")],
        )
        add(
            ":TRIGger:BLOCk:WAIT",
            set=define("WAIT"),
            params=[
                block,
                Word(name="event"),
                Choice("ENTer|NEVer", name="clear", optional=True),
            ],
            variadic=Word(name="logic or event"),
            max_variadic=6,
        )
        add(
            ":TRIGger:BLOCk:NOTify",
            set=define("NOTIFY"),
            params=[block, Num(1, 8, name="notify ID", integer=True)],
        )
        add(":TRIGger:BLOCk:NOP", set=define("NOP"), params=[block])
        for node, kind in (("RECall", "CONFIG_RECALL"), ("NEXT", "CONFIG_NEXT")):
            add(
                f":TRIGger:BLOCk:CONFig:{node}",
                set=define(kind),
                params=[block, Str(name="configuration list")],
                variadic=Num(1, 1e6, name="index", integer=True),
                max_variadic=2,
            )
        add(
            ":TRIGger:BLOCk:CONFig:PREVious",
            set=define("CONFIG_PREV"),
            params=[block, Str(name="configuration list")],
        )
        add(":TRIGger:BLOCk:LIST", query=self._block_list)
        self._counters: dict[int, int] = {}

    def _define_block(self, call: Call, kind: str) -> None:
        if self.run is not None and self.run.active:
            raise ScpiError(-221, f"{call.header}: the trigger model is running")
        args = call.args
        number = int(args[0])
        if kind == "BUFFER_CLEAR":
            name = str(args[1]) if len(args) > 1 and args[1] is not None else "defbuffer1"
            self._buffer([name], 0)
            new = Block(kind, buffer=name)
        elif kind == "MEASURE":
            name = str(args[1]) if len(args) > 1 and args[1] is not None else "defbuffer1"
            self._buffer([name], 0)
            count = int(args[2]) if len(args) > 2 and args[2] is not None else None
            if len(args) <= 2:
                count = 1
            new = Block(kind, buffer=name, count=count)
        elif kind == "DELAY_CONSTANT":
            new = Block(kind, time_s=float(args[1]))
        elif kind == "DELAY_DYNAMIC":
            word = str(args[1])
            if len(word) != 2 or word[0] not in "MS" or word[1] not in "12345":
                raise ScpiError(-224, f"{call.header}: user delay {word} is not M1..M5 or S1..S5")
            new = Block(kind, name=word)
        elif kind in ("BRANCH_ALWAYS", "BRANCH_ONCE", "BRANCH_ONCE_EXCLUDED"):
            new = Block(kind, target=int(args[1]))
        elif kind == "BRANCH_COUNTER":
            new = Block(kind, count=int(args[1]), target=int(args[2]))
        elif kind == "BRANCH_COUNTER_RESET":
            new = Block(kind, target=int(args[1]))
        elif kind == "SOURCE_OUTPUT":
            new = Block(kind, state=bool(args[1]))
        elif kind == "WAIT":
            event = str(args[1])
            if event not in ("COMM", "COMMAND") or len(args) > 3:
                raise ScpiError(
                    -224,
                    f"{call.header}: waiting on {event} is not emulated (only COMMand, the "
                    "*TRG bus trigger, is)",
                )
            clear = len(args) > 2 and args[2] == "ENTER"
            new = Block(kind, name="COMMAND", state=clear)
        elif kind == "NOTIFY":
            new = Block(kind, index=int(args[1]))
        elif kind in ("CONFIG_RECALL", "CONFIG_NEXT", "CONFIG_PREV"):
            list_name = str(args[1])
            if list_name.upper() not in {n.upper() for n in self.source_lists}:
                raise ScpiError(
                    -224,
                    f"{call.header}: configuration list {list_name!r} does not exist "
                    "(user configuration lists are not emulated; sweeps make their own)",
                )
            if len(args) > 3:
                raise ScpiError(
                    -224, f"{call.header}: measure configuration lists are not emulated"
                )
            index = int(args[2]) if len(args) > 2 else 1
            new = Block(kind, name=SWEEP_LIST, index=index)
        else:
            new = Block(kind)
        self.blocks[number] = new

    def _block_list(self, call: Call) -> str:
        return ";".join(self.blocks[n].describe(n) for n in sorted(self.blocks))

    def _trigger_load(self, call: Call) -> None:
        if self.run is not None and self.run.active:
            raise ScpiError(-221, f"{call.header}: the trigger model is running")
        model = str(call.args[0]).upper()
        args = call.args
        if model == "EMPTY":
            self.blocks = {}
            return
        if model not in ("SIMPLELOOP", "DURATIONLOOP"):
            raise ScpiError(
                -224,
                f"{call.header}: the predefined trigger model {call.args[0]!r} is not "
                'emulated ("SimpleLoop", "DurationLoop" and "Empty" are)',
            )
        first = float(args[1]) if len(args) > 1 else 1.0
        delay = float(args[2]) if len(args) > 2 else 0.0
        name = str(args[3]) if len(args) > 3 else "defbuffer1"
        self._buffer([name], 0)
        if model == "SIMPLELOOP":
            if first < 1 or first != int(first):
                raise ScpiError(-222, f"{call.header}: count {first:g} is not an integer >= 1")
            self.blocks = simple_loop_blocks(int(first), delay, name)
        else:
            if first <= 0:
                raise ScpiError(-222, f"{call.header}: duration {first:g} s must be > 0")
            self.blocks = duration_loop_blocks(first, delay, name)

    def _trigger_state(self, call: Call) -> str:
        if self.run is not None:
            state = self.run.state
            block = self.run.block
        else:
            state = "IDLE" if self.blocks else "EMPTY"
            block = 0
        return f"{state};{state};{block}"

    def _initiate(self, call: Call) -> None:
        if self.run is not None and self.run.active:
            raise ScpiError(-221, f"{call.header}: the trigger model is already running")
        if not self.blocks:
            # No trigger model: :INIT makes :SENS:COUN readings into defbuffer1 (the
            # front-panel trigger mode), at once.
            buffer = self._buffer([], 0)
            for _ in range(self.count):
                self._store(buffer, self._measure_entry(self.sense_function))
            return
        numbers = sorted(self.blocks)
        if numbers != list(range(1, len(numbers) + 1)):
            raise ScpiError(
                -221, f"{call.header}: trigger model blocks {numbers} are not numbered 1..n"
            )
        for n, b in self.blocks.items():
            if b.kind.startswith("BRANCH") and not 1 <= b.target <= len(numbers):
                raise ScpiError(-221, f"{call.header}: block {n} branches to missing {b.target}")
            if b.kind == "MEASURE" and b.count is None and n != len(numbers):
                raise ScpiError(
                    -224,
                    f"{call.header}: a MEASURE block with count INF before other blocks "
                    "(background measurements) is not emulated",
                )
        open_ended = any(
            (b.kind == "MEASURE" and b.count is None)
            or (b.kind == "BRANCH_ALWAYS" and b.target <= n)
            for n, b in self.blocks.items()
        )
        self._counters = {}
        self.run = BackgroundRun(
            self._model_steps(dict(self.blocks)),
            lambda: self.clock.now_s,
            open_ended=open_ended,
            on_error=self._run_error,
            on_end=self._run_ended,
        )

    def _run_error(self, exc: Exception) -> None:
        if isinstance(exc, ScpiError):
            self.push_error(exc.code, exc.detail, exc.message)
        else:
            self.push_error(-200, f"trigger model: {exc}")

    def _run_ended(self) -> None:
        self.point_delay_s = False
        self.operations_completed()

    def _abort(self, call: Call) -> None:
        if self.run is not None:
            self.run.abort()

    def _bus_trigger(self, call: Call) -> None:
        """``*TRG``: the COMMAND trigger event; a WAIT block waiting for it continues."""
        self.command_event = True
        if self.run is not None:
            self.run.trigger()

    def before_line(self) -> None:
        """Let a running trigger model progress by the time since the previous line."""
        if self.run is not None and self.run.active:
            self.run.progress()

    def operations_pending(self) -> bool:
        """A started trigger model has not ended."""
        return self.run is not None and self.run.active

    def wait_complete(self) -> bool:
        """Run the trigger model to its end; False for a model that cannot end by itself."""
        if self.run is None or not self.run.active:
            return True
        return self.run.run_to_end()

    def _require_idle(self, command: str) -> None:
        if self.run is not None and self.run.active:
            raise ScpiError(
                -221, f"{command}: the trigger model is running (send :ABOR or wait with *WAI)"
            )

    def _model_steps(self, blocks: dict[int, Block]) -> Generator[Step, None, None]:
        """Execute the trigger model block by block; yields after every block."""
        once_seen: set[int] = set()
        counters = self._counters
        pc = 1
        n_blocks = len(blocks)
        while 1 <= pc <= n_blocks:
            block = blocks[pc]
            following = pc + 1
            kind = block.kind
            if kind == "BUFFER_CLEAR":
                self._buffer([block.buffer], 0).clear()
            elif kind == "MEASURE":
                buffer = self._buffer([block.buffer], 0)
                made = 0
                while block.count is None or made < block.count:
                    self._store(buffer, self._measure_entry(self.sense_function))
                    made += 1
                    if block.count is None or made < block.count:
                        yield TICK, pc
            elif kind == "DELAY_CONSTANT":
                self.clock.advance(block.time_s)
            elif kind == "DELAY_DYNAMIC":
                self.clock.advance(self._dynamic_delay_s(block.name))
            elif kind == "BRANCH_ALWAYS":
                following = block.target
            elif kind == "BRANCH_COUNTER":
                counters[pc] = counters.get(pc, 0) + 1
                if block.count is not None and counters[pc] < block.count:
                    following = block.target
                else:
                    counters[pc] = 0  # reached: reset, so an enclosing loop can repeat it
            elif kind == "BRANCH_COUNTER_RESET":
                counters[block.target] = 0
            elif kind == "BRANCH_ONCE":
                if pc not in once_seen:
                    once_seen.add(pc)
                    following = block.target
            elif kind == "BRANCH_ONCE_EXCLUDED":
                if pc in once_seen:
                    following = block.target
                once_seen.add(pc)
            elif kind == "SOURCE_OUTPUT":
                self.output_on = block.state
            elif kind in ("CONFIG_RECALL", "CONFIG_NEXT", "CONFIG_PREV"):
                self._config_step(block)
            elif kind == "WAIT":
                if block.state:
                    self.command_event = False
                while not self.command_event:
                    yield WAIT, pc
                self.command_event = False
            elif kind == "DURATION":
                yield from self._duration_steps(block, pc)
            # NOTIFY and NOP: nothing the emulator can observe.
            yield TICK, pc
            pc = following

    def _config_step(self, block: Block) -> None:
        """Recall a point of the sweep's source list (recall, next, previous)."""
        source_list = self.source_lists[SWEEP_LIST]
        n = len(source_list.points)
        index = self.list_index.get(SWEEP_LIST, 1)
        if block.kind == "CONFIG_RECALL":
            index = block.index
        elif block.kind == "CONFIG_NEXT":
            index = index + 1 if index < n else 1
        else:
            index = index - 1 if index > 1 else n
        if not 1 <= index <= n:
            raise ScpiError(-222, f"configuration list index {index} outside 1..{n}")
        self.list_index[SWEEP_LIST] = index
        point = source_list.points[index - 1]
        fn = source_list.function
        settings = self.source[fn]
        ranges = self._source_ranges(fn)
        if source_list.range_mode == "AUTO":
            settings.auto = True
            settings.range_index = ranges.index_for(point.level)
        elif source_list.range_mode == "BEST":
            settings.auto = False
            settings.range_index = ranges.index_for(max(abs(p.level) for p in source_list.points))
        if self.source_function != fn:
            self.source_function = fn
        settings.level = point.level
        self.point_delay_s = point.delay_s

    def _dynamic_delay_s(self, name: str) -> float:
        """DELAY_DYNAMIC: a user delay (M<n> measure, S<n> source) or a sweep point's delay."""
        if name == "S1" and self.point_delay_s is not False:
            # In a sweep the point's source delay is the delay (auto: the auto delay).
            delay = self.point_delay_s
            return AUTO_SOURCE_DELAY_S if delay is None else float(delay)
        table = self.sense[self.sense_function] if name[0] == "M" else None
        if table is not None:
            return table.user_delays_s.get(int(name[1]), 0.0)
        return self.source[self.source_function].user_delays_s.get(int(name[1]), 0.0)

    def _duration_steps(self, block: Block, pc: int) -> Generator[Step, None, None]:
        """Duration Loop: readings back to back (each after the delay) until the duration."""
        buffer = self._buffer([block.buffer], 0)
        start = self.clock.now_s
        delay = block.extra.get("delay_s", 0.0)
        while self.clock.now_s - start < block.time_s:
            self.clock.advance(delay)
            self._store(buffer, self._measure_entry(self.sense_function))
            yield TICK, pc

    def _actual_source_level(self, fn: str) -> float:
        settings = self.source[fn]
        return self._source_ranges(fn).actual(settings.level, settings.range_index)

    def _remote_sense(self) -> bool:
        return self.sense[self.sense_function].remote_sense

    def _op_point(self, port: PortModel, level: float | None = None) -> OperatingPoint:
        fn = self.source_function
        settings = self.source[fn]
        actual = self._actual_source_level(fn) if level is None else level
        return operating_point(port, fn, actual, settings.limit, remote_sense=self._remote_sense())

    def _tripped(self, fn: str) -> bool:
        if not self.output_on or fn != self.source_function:
            return False
        return self._op_point(self._port()).tripped

    def _measure_entry(self, fn: str) -> _Entry:
        """One source-measure cycle: source delay, aperture(s), reading; clock advanced."""
        if not self.output_on:
            raise ScpiError(
                -221,
                f"{fn} measurement requested with the output off; turn it on with :OUTP ON",
                "Settings conflict",
            )
        port = self._port()
        sense = self.sense[fn]
        src = self.source[self.source_function]
        delay = AUTO_SOURCE_DELAY_S if src.delay_auto else src.delay_s
        if self.point_delay_s is not False:
            delay = 0.0  # in a sweep the point's delay block has already waited
        conversions = 2 if (fn == "RES" and sense.ocom) else 1
        source_function = self.source_function
        programmed = src.level
        if fn == "RES" and src.level == 0.0:
            # Auto ohms: with no source level programmed, the 2450 forces the test current
            # of the ohms range (autorange picks the range) and computes V/I.
            op, r_index, programmed = auto_ohms_point(
                port,
                RESISTANCE_RANGES_OHM,
                self.source_i,
                fixed_index=None if sense.auto else sense.range_index,
                remote_sense=sense.remote_sense,
                limits=(sense.low_limit, sense.high_limit),
            )
            sense.range_index = r_index
            source_function = "CURR"
        else:
            op = self._op_point(port)
        steps = 0
        if fn == "RES" and sense.ocom:
            # Offset compensation: a second reading with the source at zero; the thermal
            # EMFs and other sources' currents cancel in the difference.
            op0 = operating_point(
                port,
                source_function,
                0.0,
                self.source[source_function].limit
                if source_function == self.source_function
                else AUTO_OHMS_VOLTAGE_LIMIT_V,
                remote_sense=sense.remote_sense,
            )
            v1 = self._read_quantity(self.meter_v, op.v_sense_V)
            i1 = self._read_quantity(self.meter_i, op.i_A)
            v0 = self._read_quantity(self.meter_v, op0.v_sense_V)
            i0 = self._read_quantity(self.meter_i, op0.i_A)
            if i1.overflow or v1.overflow or i1.value == i0.value:
                value, overflow = OVERFLOW_READING, True
            else:
                value = (v1.value - v0.value) / (i1.value - i0.value)
                value, overflow = self._ohms_overflow(value, sense)
        else:
            value, overflow, steps = self._convert(fn, op, sense)
            if sense.filter_on and not overflow:
                value, overflow, conversions = self._filtered(fn, op, sense, value)
        elapsed = delay + measurement_time_s(
            sense.nplc, self.line_frequency_Hz, autozero=sense.autozero, conversions=conversions
        )
        elapsed += steps * (
            RANGE_CHANGE_S + measurement_time_s(sense.nplc, self.line_frequency_Hz, autozero=False)
        )
        now = self.clock.advance(elapsed)
        # The reading's stress on the board (read disturb, DC switching, forming), under the
        # current limit: the compliance of a voltage source, the level of a current source.
        climit = self.source["VOLT"].limit if self.source_function == "VOLT" else abs(op.i_A)
        port.hold(op.v_force_V, elapsed, climit)
        status = STAT_TERMINAL_FRONT if self.terminals == "FRONT" else 0
        if overflow:
            status |= STAT_QUESTIONABLE
        source_status = SOURSTAT_OUTPUT_ON
        if op.tripped:
            source_status |= SOURSTAT_LIMITED
        if sense.remote_sense:
            source_status |= SOURSTAT_FOUR_WIRE
        if src.readback:
            source_status |= SOURSTAT_READBACK
            source_value = (
                self._read_quantity(self.meter_v, op.v_sense_V).value
                if source_function == "VOLT"
                else self._read_quantity(self.meter_i, op.i_A).value
            )
        else:
            source_value = programmed
        source_ranges = self._source_ranges(source_function)
        return _Entry(
            value,
            fn,
            status,
            source_value,
            source_function,
            source_status,
            now,
            range_fs=self._sense_full_scales(fn)[sense.range_index],
            source_range_fs=source_ranges.full_scales[source_ranges.index_for(programmed)],
        )

    def _filtered(
        self, fn: str, op: OperatingPoint, sense: _SenseSettings, first: float
    ) -> tuple[float, bool, int]:
        """The averaging filter: (value, overflow, conversions made for this reading).

        Repeating: ``count`` new conversions averaged for every reading. Moving: a stack of
        the last ``count`` conversions; the first reading fills it, each later reading
        adds one conversion (reference manual, "Filtering measurement data").
        """
        count = sense.filter_count
        if sense.filter_type == "REPEAT":
            values = [first]
            for _ in range(count - 1):
                value, overflow, _ = self._convert(fn, op, sense)
                if overflow:
                    return value, True, count
                values.append(value)
            return float(np.mean(values)), False, count
        stack = sense.filter_stack
        made = 1
        stack.append(first)
        while len(stack) < count:
            value, overflow, _ = self._convert(fn, op, sense)
            if overflow:
                stack.clear()
                return value, True, made
            stack.append(value)
            made += 1
        while len(stack) > count:
            stack.popleft()
        return float(np.mean(stack)), False, made

    def _read_quantity(self, meter: MeterRanges, true_value: float) -> MeterReading:
        """Read V or I on its own autoranged range (ohms function, source readback)."""
        sense = self.sense[self.sense_function]
        return meter.read(true_value, 0, sense.nplc, self._rng, auto=True, previous=0)

    def _ohms_overflow(self, value: float, sense: _SenseSettings) -> tuple[float, bool]:
        limit = RESISTANCE_RANGES_OHM[sense.high_limit if sense.auto else sense.range_index]
        if abs(value) > 1.05 * limit:
            return math.copysign(OVERFLOW_READING, value), True
        return value, False

    def _convert(
        self, fn: str, op: OperatingPoint, sense: _SenseSettings
    ) -> tuple[float, bool, int]:
        """The reading of function ``fn`` at operating point ``op`` (value, overflow, steps)."""
        if fn == "CURR":
            reading = self.meter_i.read(
                op.i_A,
                sense.range_index,
                sense.nplc,
                self._rng,
                auto=sense.auto,
                previous=sense.last_range,
                lower_limit=sense.low_limit,
                upper_limit=sense.high_limit,
            )
            sense.last_range = reading.range_index
            if sense.auto:
                sense.range_index = reading.range_index
            return reading.value, reading.overflow, reading.range_steps
        if fn == "VOLT":
            reading = self.meter_v.read(
                op.v_sense_V,
                sense.range_index,
                sense.nplc,
                self._rng,
                auto=sense.auto,
                previous=sense.last_range,
                lower_limit=sense.low_limit,
                upper_limit=sense.high_limit,
            )
            sense.last_range = reading.range_index
            if sense.auto:
                sense.range_index = reading.range_index
            return reading.value, reading.overflow, reading.range_steps
        v = self.meter_v.read(op.v_sense_V, 0, sense.nplc, self._rng, auto=True, previous=0)
        i = self.meter_i.read(op.i_A, 0, sense.nplc, self._rng, auto=True, previous=0)
        if v.overflow or i.overflow or i.value == 0.0:
            return OVERFLOW_READING, True, 0
        value, overflow = self._ohms_overflow(v.value / i.value, sense)
        if sense.auto and not overflow:
            sense.range_index = next(
                (k for k, s in enumerate(RESISTANCE_RANGES_OHM) if abs(value) <= s),
                len(RESISTANCE_RANGES_OHM) - 1,
            )
        return value, overflow, 0


def _nr3(value: float) -> str:
    """The 2450's ASCII number format (``-1.375422E-11``)."""
    return f"{value:.6E}"


_PREFIXES = (
    (1e-12, "p"),
    (1e-9, "n"),
    (1e-6, "u"),
    (1e-3, "m"),
    (1.0, ""),
    (1e3, "k"),
    (1e6, "M"),
    (1e9, "G"),
)
DISPLAY_DIGITS = 6
"""Digits of a FORMatted value: 6 (the reference manual's sample ``-00.0024 mV``)."""


def _formatted(value: float, unit: str, range_fs: float) -> str:
    """A reading as the front panel shows it: in the range's unit, fixed digits.

    The range picks the prefix and the number of integer digits (the 20 mV range shows
    ``-00.0024 mV`` for -2.4 uV, as in the reference manual's ``:MEAS:VOLT? ...,FORM``
    example); 6 digits in all, sign always shown.
    """
    if abs(value) >= OVERFLOW_READING:
        return "Overflow"
    base = {"Amp DC": "A", "Volt DC": "V", "Ohm": "Ohm"}[unit]
    reference = range_fs if range_fs > 0 else abs(value)
    scale, prefix = 1.0, ""
    for s, p in _PREFIXES:
        if reference * (1 + 1e-9) >= s:
            scale, prefix = s, p
    integer_digits = max(1, len(str(round(reference / scale))))
    decimals = max(0, DISPLAY_DIGITS - integer_digits)
    width = integer_digits + (decimals + 1 if decimals else 0)
    return f"{value / scale:+0{width + 1}.{decimals}f} {prefix}{base}"
