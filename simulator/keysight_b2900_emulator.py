"""A Keysight B2901A (one channel) or B2902A (two channels) precision SMU, SCPI.

What a measurement script uses, after the B2900 SCPI Command Reference (B2910-90030) and
User's Guide (B2910-90010):

* source function, FIXed level, its TRIGgered level, staircase SWEep (LIN/LOG, UP/DOWN,
  SINGle/DOUBle, BEST/AUTO/FIXed ranging, start/stop/center/span/step/points couplings)
  and LIST modes (`simulator.b2900_source`); compliance and its tripped query; ranges;
* measure functions, NPLC / aperture, ranges and autorange, resistance in manual (V/I of
  your own source) or auto (test current from the ohms range) mode, remote sense;
* the ARM-TRIGger model per channel and device action (TRANsient, ACQuire): counts,
  delays, AINT / BUS / TIMer sources, ``:INIT``, ``:ABOR``, ``:IDLE?``, ``*TRG``,
  ``*OPC`` / ``*OPC?`` / ``*WAI`` in instrument time (`simulator.b2900_trigger`);
* ``:MEAS?`` (spot), ``:READ[:ARR]?``, ``:FETC[:ARR|:SCAL][:<elem>]?`` with
  ``:FORM:ELEM:SENS``, ``:FORM ASC|REAL,32|REAL,64`` and ``:FORM:BORD``, the trace buffer
  ``:TRAC`` (`simulator.b2900_data`);
* output on/off, low terminal, auto on/off, ``:OUTP:OFF:MODE``, ``:OUTP:PROT``;
* the error queue and the common commands (``*OPT?`` included).

Anything else a script may send is refused with the instrument's error number and a
message saying it is not emulated (docs/smu-emulators.md lists every command family).
Channel suffixes and channel lists address the channels; a B2901A refuses channel 2
(-114 in a header, -222 in a channel list).

Each channel sees the board through its own ``port()`` callable; a channel wired to
nothing gets `simulator.port_model.OPEN_CIRCUIT`. The physics is `simulator.smu_physics`.
The SCPI engine is independent of the transport: `handle_line` is the whole interface.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.b2900_data import (
    ELEMENT_ORDER,
    Reading,
    TraceBuffer,
    format_numbers,
    interleave,
    nan_reading,
    nr3,
)
from simulator.b2900_source import MAX_POINTS, SourceProgram
from simulator.b2900_trigger import (
    ACTIONS,
    ActionLayers,
    Machine,
    TriggerScheduler,
    action_model,
)
from simulator.clock import VirtualClock
from simulator.port_model import OPEN_CIRCUIT, PortModel
from simulator.scpi import (
    ESR_PON,
    Bool,
    Call,
    Channels,
    Choice,
    CountOrInf,
    Num,
    ScpiDevice,
    ScpiError,
    Str,
    format_error,
)
from simulator.smu_physics import (
    B2900_MEASURE_CURRENT,
    B2900_MEASURE_VOLTAGE,
    B2900_SOURCE_CURRENT,
    B2900_SOURCE_VOLTAGE,
    NAN_READING,
    OVERFLOW_READING,
    RANGE_CHANGE_S,
    MeterRanges,
    OperatingPoint,
    SourceRanges,
    auto_ohms_point,
    measurement_time_s,
    operating_point,
)

FIRMWARE = "3.4.2011.5100"
MODELS = {"B2901A": 1, "B2902A": 2}
"""Supported models and their channel counts."""
RESISTANCE_RANGES_OHM = (2.0, 20.0, 200.0, 2e3, 20e3, 200e3, 2e6, 20e6, 200e6)
AUTO_SOURCE_DELAY_S = 1e-3
"""Source wait (s) after a source change: before a spot measurement and per TRANsient step."""
MAX_RESULTS = 100_000
"""Readings one initiation keeps per channel (ARM count x TRIGger count is limited to it)."""
MAX_LEVEL = {"VOLT": 210.0, "CURR": 3.03}
UNIT = {"VOLT": "V", "CURR": "A"}
_ELEMENT_KEY = {
    "VOLTAGE": "VOLT",
    "CURRENT": "CURR",
    "RESISTANCE": "RES",
    "TIME": "TIME",
    "STATUS": "STAT",
    "SOURCE": "SOUR",
}
STATUS_COMPLIANCE = 1 << 3
STATUS_OVERFLOW = 1 << 4
STATUS_REMOTE_SENSE = 1 << 6
_ACTION_NODES = {"": ACTIONS, ":ALL": ACTIONS, ":ACQuire": ("ACQ",), ":TRANsient": ("TRAN",)}
"""Header node of an ARM / TRIGger / INITiate / ABORt / IDLE command -> device actions."""
NOT_EMULATED = (
    (":CALCulate#2", "the CALCulate subsystem (math, limit tests, composite limits)"),
    ("[:SENSe#2]:DATA", "the :SENSe:DATA buffer (use :FETCh, :READ or :TRACe)"),
    ("[:SENSe#2]:WAIT", "the measurement wait time control"),
    ("[:SENSe#2]:CURRent[:DC]:PROTection:POSitive", "separate positive/negative limits"),
    ("[:SENSe#2]:CURRent[:DC]:PROTection:NEGative", "separate positive/negative limits"),
    ("[:SENSe#2]:VOLTage[:DC]:PROTection:POSitive", "separate positive/negative limits"),
    ("[:SENSe#2]:VOLTage[:DC]:PROTection:NEGative", "separate positive/negative limits"),
    ("[:SENSe#2]:CURRent[:DC]:RANGe:AUTO:LLIMit", "autorange limits"),
    ("[:SENSe#2]:VOLTage[:DC]:RANGe:AUTO:LLIMit", "autorange limits"),
    ("[:SENSe#2]:CURRent[:DC]:RANGe:AUTO:ULIMit", "autorange limits"),
    ("[:SENSe#2]:VOLTage[:DC]:RANGe:AUTO:ULIMit", "autorange limits"),
    ("[:SENSe#2]:CURRent[:DC]:RANGe:AUTO:MODE", "autorange modes"),
    ("[:SENSe#2]:CURRent[:DC]:RANGe:AUTO:THReshold", "autorange thresholds"),
    ("[:SOURce#2]:PULSe", "pulse output"),
    ("[:SOURce#2]:FUNCtion:SHAPe", "the pulse shape (DC only)"),
    ("[:SOURce#2]:FUNCtion:TRIGgered", "continuous triggered output"),
    ("[:SOURce#2]:WAIT", "the source wait time control"),
    ("[:SOURce#2]:CURRent:RANGe:AUTO:LLIMit", "source autorange limits"),
    ("[:SOURce#2]:VOLTage:RANGe:AUTO:LLIMit", "source autorange limits"),
    ("[:SOURce#2]:LIST:CURRent:STARt", "a list start point"),
    ("[:SOURce#2]:LIST:VOLTage:STARt", "a list start point"),
    ("[:SOURce#2]:DIGital", "the digital I/O"),
    ("[:SOURce#2]:TOUTput", "trigger outputs"),
    (":ARM#2:ACQuire:TOUTput", "trigger outputs"),
    (":ARM#2:TRANsient:TOUTput", "trigger outputs"),
    (":ARM#2:ALL:TOUTput", "trigger outputs"),
    (":ARM#2:TOUTput", "trigger outputs"),
    (":TRIGger#2:ACQuire:TOUTput", "trigger outputs"),
    (":TRIGger#2:TRANsient:TOUTput", "trigger outputs"),
    (":TRIGger#2:ALL:TOUTput", "trigger outputs"),
    (":TRIGger#2:TOUTput", "trigger outputs"),
    (":ARM#2:ACQuire:BYPass", "event detector bypass"),
    (":ARM#2:TRANsient:BYPass", "event detector bypass"),
    (":ARM#2:ALL:BYPass", "event detector bypass"),
    (":ARM#2:BYPass", "event detector bypass"),
    (":TRIGger#2:ACQuire:BYPass", "event detector bypass"),
    (":TRIGger#2:TRANsient:BYPass", "event detector bypass"),
    (":TRIGger#2:ALL:BYPass", "event detector bypass"),
    (":TRIGger#2:BYPass", "event detector bypass"),
    (":ARM#2:ACQuire:SOURce:LAN", "LXI trigger events"),
    (":ARM#2:TRANsient:SOURce:LAN", "LXI trigger events"),
    (":TRIGger#2:ACQuire:SOURce:LAN", "LXI trigger events"),
    (":TRIGger#2:TRANsient:SOURce:LAN", "LXI trigger events"),
    (":OUTPut#2:FILTer", "the output filter"),
    (":OUTPut#2:HCAPacitance", "the high capacitance mode"),
    (":OUTPut#2:RECovery", "the output recovery"),
    (":OUTPut#2:PROTection:POSitive", "separate protection limits"),
    (":FORMat:ELEMents:CALCulate", "calculation result data (no :CALCulate subsystem)"),
    (":FORMat:DIGital", "the bit pattern format (no limit tests)"),
    (":FORMat:SREGister", "the status register format"),
    (":STATus", "the STATus subsystem registers"),
    (":SYSTem:GROup", "channel grouping"),
    (":SYSTem:LANGuage", "other command languages"),
    (":SYSTem:PRESet", "the preset state"),
    (":PROGram", "program memory"),
    (":MMEMory", "mass memory"),
    (":HCOPy", "hard copies"),
    (":DIAGnostic", "diagnostics"),
    (":CALibration", "calibration"),
    (":LXI", "LXI"),
)
"""Command families the instrument has and the emulator refuses (-113, "not emulated")."""


@dataclass
class _Channel:
    """The settings, meters, trigger layers, data and trace buffer of one SMU channel."""

    port: Callable[[], PortModel]
    meter_i: MeterRanges
    meter_v: MeterRanges
    source_v: SourceRanges
    source_i: SourceRanges
    source_function: str = "VOLT"
    level: dict[str, float] = field(default_factory=dict)
    source_range: dict[str, int] = field(default_factory=dict)
    source_auto: dict[str, bool] = field(default_factory=dict)
    program: SourceProgram = field(default_factory=SourceProgram)
    protection: dict[str, float] = field(default_factory=dict)
    sense_range: dict[str, int] = field(default_factory=dict)
    sense_auto: dict[str, bool] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)
    nplc: float = 1.0
    remote_sense: bool = False
    res_mode: str = "MANUAL"
    res_ocom: bool = False
    output_on: bool = False
    output_low: str = "GROUND"
    on_auto: bool = True
    off_auto: bool = False
    off_mode: str = "NORM"
    output_protection: bool = False
    layers: dict[str, ActionLayers] = field(default_factory=dict)
    out_level: float | None = None
    """The level a running TRANsient action outputs (None: the programmed level)."""
    out_range: int | None = None
    results: list[Reading] = field(default_factory=list)
    trace: TraceBuffer = field(default_factory=TraceBuffer)


@dataclass(frozen=True)
class _Stress:
    """What a reading held on the port: reported to the board when its time has passed."""

    port: PortModel
    v_force_V: float
    current_limit_A: float

    def report(self, duration_s: float) -> None:
        """`PortModel.hold` for the last ``duration_s`` (read disturb, switching, forming)."""
        self.port.hold(self.v_force_V, duration_s, self.current_limit_A)


class _ProtectionTripError(Exception):
    """The channel reached compliance with ``:OUTP:PROT ON``: output off, actions stopped."""


class KeysightB2900Emulator(ScpiDevice):
    """Keysight B2901A / B2902A emulator; `handle_line` is the whole host interface.

    Args:
        ports: one callable per channel returning what is routed to that channel; a
            B2902A given one callable gets channel 2 open (`OPEN_CIRCUIT`).
        clock: the bench's virtual clock, advanced by every measurement.
        seed: fixes the calibration errors and the noise sequence.
        model: "B2901A" (one channel) or "B2902A" (two channels).
        serial: the serial number in ``*IDN?``.
        line_frequency_Hz: 50 or 60 (``:SYST:LFR``).
    """

    MAX_LINE_BYTES = 65536
    """A 2500-value ``:SOUR:LIST`` fits in one program message."""
    ERROR_QUEUE_CAPACITY = 30

    def __init__(
        self,
        ports: Sequence[Callable[[], PortModel]],
        clock: VirtualClock,
        seed: int,
        *,
        model: str = "B2902A",
        serial: str = "MY51140001",
        line_frequency_Hz: float = 50.0,
    ) -> None:
        if model not in MODELS:
            raise ValueError(
                f"Keysight B2900: model must be one of {sorted(MODELS)}, got {model!r}"
            )
        n_channels = MODELS[model]
        if not 1 <= len(ports) <= n_channels:
            raise ValueError(
                f"Keysight {model}: {len(ports)} port callables given, it has {n_channels} "
                "channel(s)"
            )
        if line_frequency_Hz not in (50.0, 60.0):
            raise ValueError(f"Keysight {model}: line frequency must be 50 or 60 Hz")
        super().__init__(f"Keysight {model}")
        self.model = model
        self.n_channels = n_channels
        self.serial = serial
        self.clock = clock
        self.line_frequency_Hz = float(line_frequency_Hz)
        self._rng = np.random.default_rng([seed, 2900, 1])
        calibration_rng = np.random.default_rng([seed, 2900, 0])
        port_list = list(ports) + [lambda: OPEN_CIRCUIT] * (n_channels - len(ports))
        self.channels = [
            _Channel(
                port=p,
                meter_i=MeterRanges(B2900_MEASURE_CURRENT, calibration_rng, unit="A"),
                meter_v=MeterRanges(B2900_MEASURE_VOLTAGE, calibration_rng, unit="V"),
                source_v=SourceRanges(B2900_SOURCE_VOLTAGE, calibration_rng, unit="V"),
                source_i=SourceRanges(B2900_SOURCE_CURRENT, calibration_rng, unit="A"),
            )
            for p in port_list
        ]
        self.scheduler = TriggerScheduler(
            clock,
            on_error=self._action_failed,
            on_machine_end=self._action_ended,
            on_idle=self.operations_completed,
        )
        self._register()
        for pattern, what in NOT_EMULATED:
            self.add_not_emulated(pattern, what)
        self.reset()
        self.clear_status()
        self.esr |= ESR_PON

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """``*RST``: running actions aborted; source 0 V, compliance 100 uA / 2 V,
        autorange, NPLC 1, output off, FIXed mode, trigger counts 1 from AINT, ASCII data."""
        self.scheduler.abort(range(self.n_channels), ACTIONS)
        for ch in self.channels:
            ch.source_function = "VOLT"
            ch.level = {"VOLT": 0.0, "CURR": 0.0}
            ch.source_range = {
                "VOLT": ch.source_v.index_for(2.0),
                "CURR": ch.source_i.index_for(1e-4),
            }
            ch.source_auto = {"VOLT": True, "CURR": True}
            ch.program = SourceProgram()
            ch.protection = {"CURR": 1e-4, "VOLT": 2.0}
            ch.sense_range = {
                "CURR": ch.meter_i.index_for(1e-4),
                "VOLT": ch.meter_v.index_for(2.0),
                "RES": RESISTANCE_RANGES_OHM.index(2e3),
            }
            ch.sense_auto = {"CURR": True, "VOLT": True, "RES": True}
            ch.functions = {"VOLT", "CURR"}
            ch.nplc = 1.0
            ch.remote_sense = False
            ch.res_mode = "MANUAL"
            ch.res_ocom = False
            ch.output_on = False
            ch.output_low = "GROUND"
            ch.on_auto = True
            ch.off_auto = False
            ch.off_mode = "NORM"
            ch.output_protection = False
            ch.layers = {action: ActionLayers() for action in ACTIONS}
            ch.out_level = None
            ch.out_range = None
            ch.results = []
            ch.trace = TraceBuffer()
        self.elements = list(ELEMENT_ORDER)
        self.data_format = "ASC"
        self.swapped = False
        self.timer_zero_s = self.clock.now_s

    def power_cycle(self) -> None:
        """Power off and on: reset settings, clear the error queue, set PON."""
        self.reset()
        self.clear_status()
        self.esr |= ESR_PON

    def on_connect(self) -> None:
        """A host connected: state is kept."""

    def on_disconnect(self) -> None:
        """The host went away: state (including outputs and running actions) is kept."""

    def identity(self) -> str:
        """``*IDN?``: Keysight Technologies,<model>,<serial>,<firmware>."""
        return f"Keysight Technologies,{self.model},{self.serial},{FIRMWARE}"

    def error_reply(self, code: int, message: str) -> str:
        """Keysight prints the code with a sign: ``+0,"No error"``."""
        return format_error(code, message).replace(f"{code},", f"{code:+d},", 1)

    # ------------------------------------------------------------------ overlapped operations
    def before_line(self) -> None:
        """Running trigger models progress by the (wall) time since the previous line."""
        self.scheduler.progress()

    def operations_pending(self) -> bool:
        """A device action of some channel is running."""
        return self.scheduler.active()

    def wait_complete(self) -> bool:
        """Run every device action to its end; False when one cannot end by itself."""
        return self.scheduler.run_to_end()

    # ------------------------------------------------------------------ registration
    def _register(self) -> None:
        self._register_source()
        self._register_sense()
        self._register_output()
        self._register_trigger()
        self._register_data()
        self._register_system()

    def _register_source(self) -> None:
        n = self.n_channels
        add = self.add
        add(
            f"[:SOURce#{n}]:FUNCtion:MODE",
            set=self._set_source_function,
            query=lambda c: self._ch(c).source_function,
            params=[Choice("VOLTage|CURRent", name="source function")],
        )
        for fn, long in (("VOLT", "VOLTage"), ("CURR", "CURRent")):
            top, unit = MAX_LEVEL[fn], UNIT[fn]
            base = f"[:SOURce#{n}]:{long}"
            add(
                f"{base}[:LEVel][:IMMediate][:AMPLitude]",
                set=self._setter_level(fn),
                query=self._query_level(fn),
                params=[Num(-top, top, 0.0, unit, f"{fn} source level")],
            )
            add(
                f"{base}[:LEVel]:TRIGgered[:AMPLitude]",
                set=self._setter_program(fn, "triggered"),
                query=self._query_program(fn, "triggered"),
                params=[Num(-top, top, 0.0, unit, f"{fn} triggered level")],
            )
            add(
                f"{base}:MODE",
                set=self._setter_mode(fn),
                query=self._program_reply(fn, lambda p, fn: p.mode[fn]),
                params=[Choice("FIXed|SWEep|LIST", name="source mode")],
            )
            for node in ("STARt", "STOP", "CENTer", "SPAN"):
                bound = 2 * top if node == "SPAN" else top
                add(
                    f"{base}:{node}",
                    set=self._setter_sweep_end(fn, node[:4].upper()),
                    query=self._query_sweep_end(fn, node[:4].upper()),
                    params=[Num(-bound, bound, 0.0, unit, f"{fn} sweep {node.lower()}")],
                )
            add(
                f"{base}:STEP",
                set=self._setter_step(fn),
                query=self._program_reply(fn, lambda p, fn: nr3(p.step[fn])),
                params=[Num(-2 * top, 2 * top, 0.0, unit, f"{fn} sweep step")],
            )
            add(
                f"{base}:POINts",
                set=self._set_points,
                query=lambda c: str(self._ch(c).program.points),
                params=[Num(1, MAX_POINTS, 1, "", "sweep points", integer=True)],
            )
            add(
                f"{base}:RANGe",
                set=self._setter_source_range(fn),
                query=self._query_source_range(fn),
                params=[Num(-top, top, top, unit, f"{fn} source range")],
            )
            add(
                f"{base}:RANGe:AUTO",
                set=self._setter_source_auto(fn),
                query=self._query_source_auto(fn),
                params=[Bool()],
            )
            value = Num(-top, top, 0.0, unit, f"{fn} list value")
            add(
                f"[:SOURce#{n}]:LIST:{long}",
                set=self._setter_list(fn, append=False),
                query=self._program_reply(fn, lambda p, fn: ",".join(nr3(v) for v in p.lists[fn])),
                params=[value],
                variadic=value,
                max_variadic=MAX_POINTS - 1,
            )
            add(
                f"[:SOURce#{n}]:LIST:{long}:APPend",
                set=self._setter_list(fn, append=True),
                params=[value],
                variadic=value,
                max_variadic=MAX_POINTS - 1,
            )
            add(
                f"[:SOURce#{n}]:LIST:{long}:POINts",
                query=self._program_reply(fn, lambda p, fn: str(len(p.lists[fn]))),
            )
        add(
            f"[:SOURce#{n}]:SWEep:POINts",
            set=self._set_points,
            query=lambda c: str(self._ch(c).program.points),
            params=[Num(1, MAX_POINTS, 1, "", "sweep points", integer=True)],
        )
        for node, attr, choices in (
            ("SPACing", "spacing", "LINear|LOGarithmic"),
            ("STAir", "stair", "SINGle|DOUBle"),
            ("DIRection", "direction", "UP|DOWN"),
            ("RANGing", "ranging", "BEST|FIXed|AUTO"),
        ):
            add(
                f"[:SOURce#{n}]:SWEep:{node}",
                set=self._setter_sweep_choice(attr),
                query=self._program_reply(attr, lambda p, attr: str(getattr(p, attr))),
                params=[Choice(choices, name=f"sweep {attr}")],
            )

    def _register_sense(self) -> None:
        n = self.n_channels
        add = self.add
        for fn, long, lo, hi, unit in (
            ("CURR", "CURRent[:DC]", 1e-8, 3.03, "A"),
            ("VOLT", "VOLTage[:DC]", 0.02, 210.0, "V"),
        ):
            base = f"[:SENSe#{n}]:{long}"
            add(
                f"{base}:PROTection[:LEVel]",
                set=self._setter_protection(fn),
                query=self._query_protection(fn),
                params=[Num(lo, hi, 1e-4 if fn == "CURR" else 2.0, unit, "compliance")],
            )
            add(f"{base}:PROTection:TRIPped", query=self._query_tripped(fn))
            add(
                f"{base}:NPLCycles",
                set=self._set_nplc,
                query=lambda c: nr3(self._ch(c).nplc),
                params=[Num(4e-4, 100.0, 1.0, "", "NPLC")],
            )
            add(
                f"{base}:APERture",
                set=self._set_aperture,
                query=lambda c: nr3(self._ch(c).nplc / self.line_frequency_Hz),
                params=[Num(8e-6, 2.0, 0.1 / self.line_frequency_Hz, "S", "aperture")],
            )
        for fn, long, lo, hi, unit in (
            ("CURR", "CURRent[:DC]", 1e-8, 3.03, "A"),
            ("VOLT", "VOLTage[:DC]", 0.02, 210.0, "V"),
            ("RES", "RESistance", 2.0, 200e6, "OHM"),
        ):
            base = f"[:SENSe#{n}]:{long}"
            add(
                f"{base}:RANGe[:UPPer]",
                set=self._setter_sense_range(fn),
                query=self._query_sense_range(fn),
                params=[Num(lo, hi, hi, unit, f"{fn} measure range")],
            )
            add(
                f"{base}:RANGe:AUTO",
                set=self._setter_sense_auto(fn),
                query=self._query_sense_auto(fn),
                params=[Bool()],
            )
        add(
            f"[:SENSe#{n}]:RESistance:MODE",
            set=self._set_res_mode,
            query=lambda c: self._ch(c).res_mode[:4],
            params=[Choice("AUTO|MANual", name="resistance mode")],
        )
        add(
            f"[:SENSe#{n}]:RESistance:OCOMpensated",
            set=self._set_ocom,
            query=lambda c: "1" if self._ch(c).res_ocom else "0",
            params=[Bool(name="offset compensation")],
        )
        add(
            f"[:SENSe#{n}]:REMote",
            set=self._set_remote,
            query=lambda c: "1" if self._ch(c).remote_sense else "0",
            params=[Bool(name="remote sense")],
        )
        fn_str = Str(name="function")
        add(
            f"[:SENSe#{n}]:FUNCtion[:ON]",
            set=self._set_functions_on,
            query=self._query_functions,
            params=[fn_str],
            variadic=fn_str,
            max_variadic=2,
        )
        add(
            f"[:SENSe#{n}]:FUNCtion:OFF",
            set=self._set_functions_off,
            params=[fn_str],
            variadic=fn_str,
            max_variadic=2,
        )
        add(f"[:SENSe#{n}]:FUNCtion:OFF:ALL", set=lambda c: self._ch(c).functions.clear())
        add(f"[:SENSe#{n}]:FUNCtion:ALL", set=self._set_functions_all)

    def _register_output(self) -> None:
        n = self.n_channels
        add = self.add
        add(
            f":OUTPut#{n}[:STATe]",
            set=self._set_output,
            query=lambda c: "1" if self._ch(c).output_on else "0",
            params=[Bool(name="output")],
        )
        add(
            f":OUTPut#{n}:LOW",
            set=self._set_low,
            query=lambda c: self._ch(c).output_low[:3],
            params=[Choice("GROund|FLOat", name="low terminal")],
        )
        add(
            f":OUTPut#{n}:ON:AUTO",
            set=self._setter_channel_bool("on_auto"),
            query=lambda c: "1" if self._ch(c).on_auto else "0",
            params=[Bool()],
        )
        add(
            f":OUTPut#{n}:OFF:AUTO",
            set=self._setter_channel_bool("off_auto"),
            query=lambda c: "1" if self._ch(c).off_auto else "0",
            params=[Bool()],
        )
        add(
            f":OUTPut#{n}:OFF:MODE",
            set=self._set_off_mode,
            query=lambda c: self._ch(c).off_mode,
            params=[Choice("ZERO|HIZ|NORMal", name="output-off mode")],
        )
        add(
            f":OUTPut#{n}:PROTection[:STATe]",
            set=self._setter_channel_bool("output_protection"),
            query=lambda c: "1" if self._ch(c).output_protection else "0",
            params=[Bool(name="output protection")],
        )

    def _register_trigger(self) -> None:
        n = self.n_channels
        add = self.add
        chans = Channels(n, name="channel list", optional=True)
        for node, actions in _ACTION_NODES.items():
            add(
                f":INITiate[:IMMediate]{node}",
                set=self._initiator(actions),
                params=[chans],
            )
            add(f":ABORt{node}", set=self._aborter(actions), params=[chans])
            add(f":IDLE{node}", query=self._idler(actions), query_params=[chans])
            for layer in ("ARM", "TRIG"):
                root = f":ARM#{n}" if layer == "ARM" else f":TRIGger#{n}"
                add(
                    f"{root}{node}:COUNt",
                    set=self._setter_layer(actions, layer, "count"),
                    query=self._query_layer(actions, layer, "count"),
                    params=[CountOrInf(1, 100_000, name=f"{layer} count")],
                )
                add(
                    f"{root}{node}:DELay",
                    set=self._setter_layer(actions, layer, "delay_s"),
                    query=self._query_layer(actions, layer, "delay_s"),
                    params=[Num(0.0, 100_000.0, 0.0, "S", f"{layer} delay")],
                )
                add(
                    f"{root}{node}:TIMer",
                    set=self._setter_layer(actions, layer, "timer_s"),
                    query=self._query_layer(actions, layer, "timer_s"),
                    params=[Num(1e-5, 100_000.0, 1e-5, "S", f"{layer} timer interval")],
                )
                add(
                    f"{root}{node}:SOURce[:SIGNal]",
                    set=self._setter_layer(actions, layer, "source"),
                    query=self._query_layer(actions, layer, "source"),
                    params=[
                        Choice(
                            "AINT|BUS|TIMer|INT1|INT2|LAN|EXT1|EXT2|EXT3|EXT4|EXT5|EXT6|"
                            "EXT7|EXT8|EXT9|EXT10|EXT11|EXT12|EXT13|EXT14",
                            name=f"{layer} source",
                        )
                    ],
                )
                add(f"{root}{node}[:IMMediate]", set=self._immediate(actions, layer))
        add(":*TRG", set=lambda c: self.scheduler.bus_trigger())

    def _register_data(self) -> None:
        n = self.n_channels
        add = self.add
        chans = Channels(n, name="channel list", optional=True)
        element = Choice("VOLTage|CURRent|RESistance|TIME|STATus|SOURce", name="element")
        add(
            ":FORMat:ELEMents:SENSe",
            set=self._set_elements,
            query=lambda c: ",".join(self.elements),
            params=[element],
            variadic=element,
            max_variadic=5,
        )
        add(
            ":FORMat[:DATA]",
            set=self._set_format,
            query=self._query_format,
            params=[
                Choice("ASCii|REAL", name="data format"),
                Num(32, 64, 64, "", "REAL length", optional=True, integer=True),
            ],
        )
        add(
            ":FORMat:BORDer",
            set=self._set_byte_order,
            query=lambda c: "SWAP" if self.swapped else "NORM",
            params=[Choice("NORMal|SWAPped", name="byte order")],
        )
        add(":MEASure", query=self._measure_elements, query_params=[chans])
        for fn, long in (("CURR", "CURRent[:DC]"), ("VOLT", "VOLTage[:DC]"), ("RES", "RESistance")):
            add(f":MEASure:{long}", query=self._measure_one(fn), query_params=[chans])
        for root, initiate in ((":FETCh", False), (":READ", True)):
            add(f"{root}:ARRay", query=self._fetcher(None, True, initiate), query_params=[chans])
            add(
                f"{root}[:SCALar]", query=self._fetcher(None, False, initiate), query_params=[chans]
            )
            for name in ("CURRent", "VOLTage", "RESistance", "TIME", "STATus", "SOURce"):
                key = _ELEMENT_KEY[name.upper()]
                add(
                    f"{root}:ARRay:{name}",
                    query=self._fetcher(key, True, initiate),
                    query_params=[chans],
                )
                add(
                    f"{root}[:SCALar]:{name}",
                    query=self._fetcher(key, False, initiate),
                    query_params=[chans],
                )
        trace = f":TRACe#{n}"
        add(f"{trace}:CLEar", set=self._trace_clear)
        add(
            f"{trace}:POINts",
            set=self._trace_points,
            query=lambda c: str(self._ch(c).trace.size),
            params=[Num(1, 100_000, 100_000, "", "trace buffer size", integer=True)],
        )
        add(
            f"{trace}:POINts:ACTual",
            query=lambda c: str(len(self._ch(c).trace.readings)),
        )
        add(f"{trace}:FREE", query=self._trace_free)
        add(
            f"{trace}:FEED",
            set=self._trace_feed,
            query=lambda c: "SENS",
            params=[Choice("SENSe|MATH|LIMit", name="trace feed")],
        )
        add(
            f"{trace}:FEED:CONTrol",
            set=self._trace_control,
            query=lambda c: self._ch(c).trace.control,
            params=[Choice("NEVer|NEXT", name="trace control")],
        )
        add(
            f"{trace}:DATA",
            query=self._trace_data,
            query_params=[
                Num(0, 99_999, 0, "", "offset", optional=True, integer=True),
                Num(1, 100_000, 100_000, "", "size", optional=True, integer=True),
            ],
        )
        add(
            f"{trace}:TSTamp:FORMat",
            set=self._trace_setter("timestamp_format", {"ABSOLUTE": "ABS", "DELTA": "DELT"}),
            query=lambda c: self._ch(c).trace.timestamp_format,
            params=[Choice("ABSolute|DELTa", name="timestamp format")],
        )
        add(
            f"{trace}:STATistic:FORMat",
            set=self._trace_setter(
                "statistic",
                {
                    "MEAN": "MEAN",
                    "SDEVIATION": "SDEV",
                    "MINIMUM": "MIN",
                    "MAXIMUM": "MAX",
                    "PKPK": "PKPK",
                },
            ),
            query=lambda c: self._ch(c).trace.statistic,
            params=[Choice("MEAN|SDEViation|MINimum|MAXimum|PKPK", name="statistic")],
        )
        add(f"{trace}:STATistic:DATA", query=self._trace_statistic)

    def _register_system(self) -> None:
        add = self.add
        add(
            ":SYSTem:LFRequency",
            set=self._set_lfr,
            query=lambda c: f"{self.line_frequency_Hz:g}",
            params=[Num(50, 60, 50, "HZ", "line frequency", integer=True)],
        )
        add(":SYSTem:BEEPer:STATe", set=lambda c: None, query=lambda c: "0", params=[Bool()])
        add(
            ":SYSTem:BEEPer[:IMMediate]",
            set=lambda c: None,
            params=[Num(55, 6640, name="frequency", unit="HZ"), Num(0.05, 12.75, name="time")],
        )
        add(":DISPlay:ENABle", set=lambda c: None, query=lambda c: "1", params=[Bool()])
        add(":SYSTem:TIME:TIMer:COUNt:RESet", set=self._reset_timer)
        add(":SYSTem:TIME:TIMer:COUNt", query=lambda c: nr3(self.clock.now_s - self.timer_zero_s))
        add(":*OPT", query=lambda c: "0")

    # ------------------------------------------------------------------ helpers
    def _ch(self, call: Call) -> _Channel:
        return self.channels[call.suffix() - 1]

    def _channels_of(self, call: Call) -> list[int]:
        """Channels from a ``(@list)`` argument; channel 1 when absent (the B2900 default)."""
        if call.args and call.args[-1] is not None and isinstance(call.args[-1], tuple):
            return [c - 1 for c in call.args[-1]]
        return [0]

    @staticmethod
    def _source_ranges(ch: _Channel, fn: str) -> SourceRanges:
        return ch.source_v if fn == "VOLT" else ch.source_i

    @staticmethod
    def _sense_scales(ch: _Channel, fn: str) -> tuple[float, ...]:
        if fn == "CURR":
            return ch.meter_i.full_scales
        if fn == "VOLT":
            return ch.meter_v.full_scales
        return RESISTANCE_RANGES_OHM

    def _require_idle(self, index: int, command: str) -> None:
        if self.scheduler.active([index]):
            raise ScpiError(
                -221,
                f"{command}: channel {index + 1} is running a triggered operation "
                "(wait with *OPC? or :IDLE?, or send :ABOR)",
            )

    def _program_reply(
        self, key: str, render: Callable[[SourceProgram, str], str]
    ) -> Callable[[Call], str]:
        """A query answering ``render(program, key)`` for the addressed channel."""
        return lambda call: render(self._ch(call).program, key)

    # ------------------------------------------------------------------ source handlers
    def _set_source_function(self, call: Call) -> None:
        self._ch(call).source_function = "VOLT" if call.args[0] == "VOLTAGE" else "CURR"

    def _setter_mode(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self._ch(call).program.mode[fn] = {"FIXED": "FIX", "SWEEP": "SWE"}.get(
                call.args[0], call.args[0]
            )

        return setter

    def _setter_program(self, fn: str, attr: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            getattr(self._ch(call).program, attr)[fn] = float(call.args[0])

        return setter

    def _query_program(self, fn: str, attr: str) -> Callable[[Call], str]:
        return lambda call: nr3(getattr(self._ch(call).program, attr)[fn])

    def _setter_sweep_end(self, fn: str, which: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            program = self._ch(call).program
            value = float(call.args[0])
            start, stop = program.start[fn], program.stop[fn]
            if which == "STAR":
                start = value
            elif which == "STOP":
                stop = value
            else:
                center = value if which == "CENT" else program.center(fn)
                span = value if which == "SPAN" else program.span(fn)
                start, stop = center - span / 2, center + span / 2
                top = MAX_LEVEL[fn]
                if max(abs(start), abs(stop)) > top * (1 + 1e-12):
                    raise ScpiError(
                        -222,
                        f"{call.header}: start {start:g} / stop {stop:g} outside "
                        f"-{top:g}..{top:g} {UNIT[fn]}",
                    )
            program.set_start_stop(fn, start, stop)

        return setter

    def _query_sweep_end(self, fn: str, which: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            program = self._ch(call).program
            value = {
                "STAR": program.start[fn],
                "STOP": program.stop[fn],
                "CENT": program.center(fn),
                "SPAN": program.span(fn),
            }[which]
            return nr3(value)

        return query

    def _setter_step(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self._ch(call).program.set_step(fn, float(call.args[0]), call.header)

        return setter

    def _set_points(self, call: Call) -> None:
        self._ch(call).program.set_points(int(call.args[0]))

    def _setter_sweep_choice(self, attr: str) -> Callable[[Call], None]:
        short = {
            "LINEAR": "LIN",
            "LOGARITHMIC": "LOG",
            "SINGLE": "SING",
            "DOUBLE": "DOUB",
            "FIXED": "FIX",
        }

        def setter(call: Call) -> None:
            setattr(self._ch(call).program, attr, short.get(call.args[0], call.args[0]))

        return setter

    def _setter_list(self, fn: str, *, append: bool) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            program = self._ch(call).program
            values = [float(v) for v in call.args]
            new = (program.lists[fn] + values) if append else values
            if len(new) > MAX_POINTS:
                raise ScpiError(
                    -222, f"{call.header}: {len(new)} list values (at most {MAX_POINTS})"
                )
            program.lists[fn] = new

        return setter

    def _setter_level(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            ch = self._ch(call)
            level = float(call.args[0])
            ranges = self._source_ranges(ch, fn)
            if ch.source_auto[fn]:
                ch.source_range[fn] = ranges.index_for(level)
            elif abs(level) > ranges.specs[ch.source_range[fn]].max_reading * (1 + 1e-9):
                raise ScpiError(
                    -221,
                    f"{call.header}: {level:g} exceeds the fixed "
                    f"{ranges.full_scales[ch.source_range[fn]]:g} "
                    f"{ranges.unit} source range",
                )
            ch.level[fn] = level
            ch.program.triggered[fn] = level  # the triggered level follows until set apart

        return setter

    def _query_level(self, fn: str) -> Callable[[Call], str]:
        return lambda call: nr3(self._ch(call).level[fn])

    def _setter_source_range(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            ch = self._ch(call)
            ch.source_range[fn] = self._source_ranges(ch, fn).index_for(float(call.args[0]))
            ch.source_auto[fn] = False

        return setter

    def _query_source_range(self, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            ch = self._ch(call)
            return nr3(self._source_ranges(ch, fn).full_scales[ch.source_range[fn]])

        return query

    def _setter_source_auto(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self._ch(call).source_auto[fn] = bool(call.args[0])

        return setter

    def _query_source_auto(self, fn: str) -> Callable[[Call], str]:
        return lambda call: "1" if self._ch(call).source_auto[fn] else "0"

    def _setter_protection(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self._ch(call).protection[fn] = float(call.args[0])

        return setter

    def _query_protection(self, fn: str) -> Callable[[Call], str]:
        return lambda call: nr3(self._ch(call).protection[fn])

    def _query_tripped(self, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            ch = self._ch(call)
            # CURR:PROT trips only while sourcing voltage, VOLT:PROT while sourcing current.
            limited_by = "CURR" if ch.source_function == "VOLT" else "VOLT"
            if not ch.output_on or fn != limited_by:
                return "0"
            return "1" if self._op_point(ch, ch.port()).tripped else "0"

        return query

    def _set_nplc(self, call: Call) -> None:
        self._ch(call).nplc = float(call.args[0])

    def _set_aperture(self, call: Call) -> None:
        self._ch(call).nplc = float(call.args[0]) * self.line_frequency_Hz

    def _setter_sense_range(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            ch = self._ch(call)
            scales = self._sense_scales(ch, fn)
            value = abs(float(call.args[0]))
            ch.sense_range[fn] = next(
                (i for i, s in enumerate(scales) if value <= s * (1 + 1e-9)), len(scales) - 1
            )
            ch.sense_auto[fn] = False

        return setter

    def _query_sense_range(self, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            ch = self._ch(call)
            return nr3(self._sense_scales(ch, fn)[ch.sense_range[fn]])

        return query

    def _setter_sense_auto(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            self._ch(call).sense_auto[fn] = bool(call.args[0])

        return setter

    def _query_sense_auto(self, fn: str) -> Callable[[Call], str]:
        return lambda call: "1" if self._ch(call).sense_auto[fn] else "0"

    def _set_res_mode(self, call: Call) -> None:
        self._ch(call).res_mode = call.args[0]

    def _set_ocom(self, call: Call) -> None:
        self._ch(call).res_ocom = bool(call.args[0])

    def _set_remote(self, call: Call) -> None:
        self._ch(call).remote_sense = bool(call.args[0])

    @staticmethod
    def _function_name(call: Call, text: Any) -> str:
        name = str(text).strip().upper()
        for key, forms in (
            ("CURR", ("CURR", "CURRENT", "CURR:DC", "CURRENT:DC")),
            ("VOLT", ("VOLT", "VOLTAGE", "VOLT:DC", "VOLTAGE:DC")),
            ("RES", ("RES", "RESISTANCE")),
        ):
            if name in forms:
                return key
        raise ScpiError(-224, f'{call.header}: function {text!r} is not "CURR", "VOLT" or "RES"')

    def _set_functions_on(self, call: Call) -> None:
        ch = self._ch(call)
        for text in call.args:
            ch.functions.add(self._function_name(call, text))

    def _set_functions_off(self, call: Call) -> None:
        ch = self._ch(call)
        for text in call.args:
            ch.functions.discard(self._function_name(call, text))

    def _set_functions_all(self, call: Call) -> None:
        self._ch(call).functions = {"VOLT", "CURR", "RES"}

    def _query_functions(self, call: Call) -> str:
        ch = self._ch(call)
        return ",".join(f'"{f}"' for f in ELEMENT_ORDER if f in ch.functions)

    def _set_output(self, call: Call) -> None:
        index = call.suffix() - 1
        on = bool(call.args[0])
        if not on and self.scheduler.active([index]):
            # The source cannot go on stepping with its output off: its actions stop.
            self.scheduler.abort([index], ACTIONS)
        self.channels[index].output_on = on

    def _set_low(self, call: Call) -> None:
        ch = self._ch(call)
        if ch.output_on:
            raise ScpiError(
                -221, f"{call.header}: the low terminal cannot change with the output on"
            )
        ch.output_low = call.args[0]

    def _setter_channel_bool(self, attr: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            setattr(self._ch(call), attr, bool(call.args[0]))

        return setter

    def _set_off_mode(self, call: Call) -> None:
        self._ch(call).off_mode = "NORM" if call.args[0] == "NORMAL" else call.args[0]

    def _set_elements(self, call: Call) -> None:
        chosen = {_ELEMENT_KEY[str(a)] for a in call.args}
        self.elements = [e for e in ELEMENT_ORDER if e in chosen]

    def _set_format(self, call: Call) -> None:
        if call.args[0] == "ASCII":
            if len(call.args) > 1:
                raise ScpiError(-108, f"{call.header}: ASCii takes no length")
            self.data_format = "ASC"
            return
        length = int(call.args[1]) if len(call.args) > 1 else 64
        if length not in (32, 64):
            raise ScpiError(-224, f"{call.header}: REAL length {length} is not 32 or 64")
        self.data_format = f"REAL{length}"

    def _query_format(self, call: Call) -> str:
        return "ASC" if self.data_format == "ASC" else f"REAL,{self.data_format[4:]}"

    def _set_byte_order(self, call: Call) -> None:
        self.swapped = call.args[0] == "SWAPPED"

    def _set_lfr(self, call: Call) -> None:
        if call.args[0] not in (50, 60):
            raise ScpiError(-224, f"{call.header}: line frequency {call.args[0]} is not 50 or 60")
        self.line_frequency_Hz = float(call.args[0])

    def _reset_timer(self, call: Call) -> None:
        self.timer_zero_s = self.clock.now_s

    # ------------------------------------------------------------------ trigger handlers
    def _setter_layer(
        self, actions: Sequence[str], layer: str, attr: str
    ) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            value: Any = call.args[0]
            if attr == "source":
                value = "TIM" if value == "TIMER" else value
                if value not in ("AINT", "BUS", "TIM"):
                    raise ScpiError(
                        -224,
                        f"{call.header}: the {value} trigger source (internal bus, LXI, "
                        "digital I/O) is not emulated by this simulator; use AINT, BUS or "
                        "TIMer (docs/smu-emulators.md)",
                    )
            ch = self._ch(call)
            for action in actions:
                target = ch.layers[action].arm if layer == "ARM" else ch.layers[action].trig
                setattr(target, attr, value)

        return setter

    def _query_layer(self, actions: Sequence[str], layer: str, attr: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            layers = self._ch(call).layers[actions[-1]]  # ALL reports the ACQuire setting
            target = layers.arm if layer == "ARM" else layers.trig
            value = getattr(target, attr)
            if attr == "count":
                return "2147483647" if value is None else str(value)
            if attr == "source":
                return str(value)
            return nr3(float(value))

        return query

    def _initiator(self, actions: Sequence[str]) -> Callable[[Call], None]:
        return lambda call: self._initiate(self._channels_of(call), actions, call.header)

    def _aborter(self, actions: Sequence[str]) -> Callable[[Call], None]:
        return lambda call: self.scheduler.abort(self._channels_of(call), actions)

    def _idler(self, actions: Sequence[str]) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            self._wait_for(self._channels_of(call), call.header)
            return "1"

        return query

    def _immediate(self, actions: Sequence[str], layer: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            index = call.suffix() - 1
            for action in actions:
                self.scheduler.bus_trigger(index, action, layer)

        return setter

    def _wait_for(self, channels: Sequence[int], command: str) -> None:
        """Run the channels' actions to their end, or refuse if they cannot end (-200)."""
        if not self.scheduler.run_to_end(channels):
            raise ScpiError(
                -200,
                f"{command}: the triggered operation of channel(s) "
                f"{', '.join(str(c + 1) for c in channels)} never completes by itself "
                "(INFinity count or waiting for *TRG); the instrument would wait forever, "
                "the emulator refuses instead (send :ABOR)",
            )

    def _initiate(self, channels: Sequence[int], actions: Sequence[str], command: str) -> None:
        """``:INIT``: start the ARM-TRIGger models of the channels' device actions."""
        plans: list[tuple[int, list[float], list[int]]] = []
        for index in channels:
            ch = self.channels[index]
            for action in actions:
                if self.scheduler.find(index, action) is not None:
                    raise ScpiError(
                        -213,
                        f"{command}: channel {index + 1} {action} is already initiated",
                        "Init ignored",
                    )
                steps = ch.layers[action].steps
                if steps is not None and steps > MAX_RESULTS:
                    raise ScpiError(
                        -221,
                        f"{command}: ARM count x TRIGger count = {steps} exceeds "
                        f"{MAX_RESULTS} for channel {index + 1} {action}",
                    )
            if not ch.output_on and not ch.on_auto:
                raise ScpiError(
                    -221,
                    f"{command}: channel {index + 1} output off and :OUTP:ON:AUTO OFF; "
                    "nothing initiated",
                )
            values, ranges = (
                ([], []) if "TRAN" not in actions else self._transient_plan(ch, index, command)
            )
            plans.append((index, values, ranges))
        for index, values, ranges in plans:
            ch = self.channels[index]
            ch.output_on = True
            if "ACQ" in actions:
                ch.results = []
            group: dict[str, Machine] = {}
            for action in ACTIONS:
                if action in actions:
                    group[action] = Machine(index, action, ch.layers[action].open_ended)
            for action, machine in group.items():
                other = "ACQ" if action == "TRAN" else "TRAN"
                if action == "TRAN":
                    act = self._transient_action(index, values, ranges)
                    finish: Callable[[int], None] | None = self._transient_settled(index)
                else:
                    act, finish = self._acquire_action(index)
                model = action_model(
                    machine,
                    ch.layers[action],
                    self.clock,
                    act,
                    _partner(group, other),
                    finish=finish,
                )
                self.scheduler.start(machine, model)

    def _transient_plan(
        self, ch: _Channel, index: int, command: str
    ) -> tuple[list[float], list[int]]:
        """The levels the TRANsient action outputs and the source range of each."""
        fn = ch.source_function
        where = f"{command} (channel {index + 1})"
        values = ch.program.values(fn, where)
        ranges_of = self._source_ranges(ch, fn)
        top = max(abs(v) for v in values)
        try:
            best = ranges_of.index_for(top)
        except ValueError as exc:
            raise ScpiError(-221, f"{where}: {exc}") from None
        ranging = ch.program.ranging if ch.program.mode[fn] != "FIX" else "FIX"
        if ranging == "FIX" and ch.source_auto[fn]:
            ranging = "AUTO"
        if ranging == "FIX":
            fixed = ch.source_range[fn]
            limit = ranges_of.specs[fixed].max_reading
            if top > limit * (1 + 1e-9):
                raise ScpiError(
                    -221,
                    f"{where}: level {top:g} exceeds the fixed {ranges_of.full_scales[fixed]:g}"
                    f" {ranges_of.unit} source range",
                )
            return values, [fixed] * len(values)
        if ranging == "BEST" and ch.program.spacing == "LIN":
            return values, [best] * len(values)
        return values, [ranges_of.index_for(v) for v in values]

    def _transient_action(
        self, index: int, values: list[float], ranges: list[int]
    ) -> Callable[[int], float]:
        ch = self.channels[index]
        fn = ch.source_function
        fixed_mode = ch.program.mode[fn] == "FIX"

        def act(step: int) -> float:
            k = step % len(values)
            ch.out_level, ch.out_range = values[k], ranges[k]
            if fixed_mode:
                ch.level[fn] = values[k]  # the triggered level becomes the output level
            return AUTO_SOURCE_DELAY_S

        return act

    def _transient_settled(self, index: int) -> Callable[[int], None]:
        """After a source step's wait: its stress on the board (`PortModel.hold`)."""
        ch = self.channels[index]

        def finish(step: int) -> None:
            port = ch.port()
            op = self._op_point(ch, port)
            climit = ch.protection["CURR"] if ch.source_function == "VOLT" else abs(op.i_A)
            _Stress(port, op.v_force_V, climit).report(AUTO_SOURCE_DELAY_S)

        return finish

    def _acquire_action(self, index: int) -> tuple[Callable[[int], float], Callable[[int], None]]:
        """The measurement: converted at the trigger, stored when its conversion ends."""
        ch = self.channels[index]
        pending: list[tuple[Reading, bool, _Stress, float]] = []

        def act(step: int) -> float:
            start_s = self.clock.now_s
            reading, duration_s, tripped, stress = self._reading(index, ch.functions)
            reading["TIME"] = start_s - self.timer_zero_s
            pending.append((reading, tripped, stress, duration_s))
            return duration_s

        def finish(step: int) -> None:
            reading, tripped, stress, duration_s = pending.pop()
            stress.report(duration_s)  # read disturb, switching, forming on the board
            ch.results.append(reading)
            if len(ch.results) >= MAX_RESULTS + MAX_RESULTS // 10:
                # An INFinity count keeps the newest readings; trimmed in chunks (amortised O(1)).
                del ch.results[: len(ch.results) - MAX_RESULTS]
            ch.trace.store(reading)
            if tripped and ch.output_protection:
                ch.output_on = False
                raise _ProtectionTripError()

        return act, finish

    def _action_failed(self, channel: int, exc: Exception) -> None:
        if isinstance(exc, _ProtectionTripError):
            return
        if isinstance(exc, ScpiError):
            self.push_error(exc.code, exc.detail, exc.message)
        else:
            self.push_error(-200, f"channel {channel + 1} triggered operation: {exc}")

    def _action_ended(self, machine: Machine) -> None:
        ch = self.channels[machine.channel]
        others = [
            m
            for m in self.scheduler.machines
            if m.alive and m.channel == machine.channel and m is not machine
        ]
        if others:
            return
        # The channel went idle: later spot measurements use the programmed level again.
        ch.out_level, ch.out_range = None, None
        if ch.off_auto:
            ch.output_on = False

    # ------------------------------------------------------------------ measuring
    def _op_point(
        self,
        ch: _Channel,
        port: PortModel,
        *,
        source: str | None = None,
        level: float | None = None,
        range_index: int | None = None,
    ) -> OperatingPoint:
        fn = ch.source_function if source is None else source
        ranges = self._source_ranges(ch, fn)
        if level is None:
            if ch.out_level is not None and fn == ch.source_function:
                index = ch.out_range
                if index is None:
                    index = ranges.index_for(ch.out_level)
                actual = ranges.actual(ch.out_level, index)
            else:
                actual = ranges.actual(ch.level[fn], ch.source_range[fn])
        else:
            index = ranges.index_for(level) if range_index is None else range_index
            actual = ranges.actual(level, index)
        limit = ch.protection["CURR" if fn == "VOLT" else "VOLT"]
        return operating_point(port, fn, actual, limit, remote_sense=ch.remote_sense)

    def _reading(self, index: int, functions: set[str]) -> tuple[Reading, float, bool, _Stress]:
        """One reading of channel ``index`` at its present output (SI values).

        Returns the reading (TIME still to fill), its conversion time (s), whether the
        source was in compliance, and the stress to report to the board once that time has
        passed (`PortModel.hold`). The clock is not advanced here.
        """
        ch = self.channels[index]
        port = ch.port()
        conversions = 1
        op = self._op_point(ch, port)
        source_value = ch.out_level if ch.out_level is not None else ch.level[ch.source_function]
        result: Reading = {}
        status = 0
        if "RES" in functions and ch.res_mode == "AUTO":
            op, r_index, source_value = self._auto_ohms(ch, port)
            ch.sense_range["RES"] = r_index
        if op.tripped:
            status |= STATUS_COMPLIANCE
        if ch.remote_sense:
            status |= STATUS_REMOTE_SENSE
        v = ch.meter_v.read(
            op.v_sense_V,
            ch.sense_range["VOLT"],
            ch.nplc,
            self._rng,
            auto=ch.sense_auto["VOLT"],
            previous=ch.sense_range["VOLT"],
        )
        i = ch.meter_i.read(
            op.i_A,
            ch.sense_range["CURR"],
            ch.nplc,
            self._rng,
            auto=ch.sense_auto["CURR"],
            previous=ch.sense_range["CURR"],
        )
        if ch.sense_auto["VOLT"]:
            ch.sense_range["VOLT"] = v.range_index
        if ch.sense_auto["CURR"]:
            ch.sense_range["CURR"] = i.range_index
        steps = max(v.range_steps, i.range_steps)
        result["VOLT"] = v.value
        result["CURR"] = i.value
        if v.overflow or i.overflow:
            status |= STATUS_OVERFLOW
        if "RES" in functions:
            result["RES"] = self._resistance(ch, port, v.value, i.value, v.overflow or i.overflow)
            if ch.res_ocom:
                conversions = 2
            if abs(result["RES"]) >= OVERFLOW_READING:
                status |= STATUS_OVERFLOW
        duration_s = measurement_time_s(
            ch.nplc, self.line_frequency_Hz, autozero=False, conversions=conversions
        )
        duration_s += steps * (
            RANGE_CHANGE_S + measurement_time_s(ch.nplc, self.line_frequency_Hz, autozero=False)
        )
        result["TIME"] = 0.0
        result["STAT"] = float(status)
        result["SOUR"] = source_value
        for fn in ("VOLT", "CURR"):
            if fn not in functions:
                result[fn] = NAN_READING
        if "RES" not in functions:
            result["RES"] = NAN_READING
        # Under the current limit: the compliance of a voltage source, the current sourced.
        climit = ch.protection["CURR"] if ch.source_function == "VOLT" else abs(op.i_A)
        return result, duration_s, op.tripped, _Stress(port, op.v_force_V, climit)

    def _spot(self, index: int, functions: set[str], command: str) -> Reading:
        """``:MEAS``: one spot measurement at the programmed output; replaces the data."""
        ch = self.channels[index]
        self._require_idle(index, command)
        if not ch.output_on:
            if not ch.on_auto:
                raise ScpiError(
                    -221,
                    f"channel {index + 1}: output off and :OUTP:ON:AUTO OFF; measurement not made",
                )
            ch.output_on = True
        start_s = self.clock.advance(AUTO_SOURCE_DELAY_S)
        reading, duration_s, tripped, stress = self._reading(index, functions)
        reading["TIME"] = start_s - self.timer_zero_s
        self.clock.advance(duration_s)
        # The reading's stress on the board (memristor read disturb): wait + conversion.
        stress.report(AUTO_SOURCE_DELAY_S + duration_s)
        ch.results = [reading]
        ch.trace.store(reading)
        if ch.off_auto or (tripped and ch.output_protection):
            ch.output_on = False
        return reading

    def _auto_ohms(self, ch: _Channel, port: PortModel) -> tuple[OperatingPoint, int, float]:
        """Auto-ohms mode: the test current of the ohms range (autorange: smallest that fits)."""
        return auto_ohms_point(
            port,
            RESISTANCE_RANGES_OHM,
            ch.source_i,
            fixed_index=None if ch.sense_auto["RES"] else ch.sense_range["RES"],
            remote_sense=ch.remote_sense,
        )

    def _resistance(
        self, ch: _Channel, port: PortModel, v: float, i: float, overflow: bool
    ) -> float:
        if overflow or i == 0.0:
            return OVERFLOW_READING
        value = v / i
        if ch.res_ocom:
            op0 = self._op_point(ch, port, level=0.0)
            v0 = ch.meter_v.read(op0.v_sense_V, 0, ch.nplc, self._rng, auto=True, previous=0)
            i0 = ch.meter_i.read(op0.i_A, 0, ch.nplc, self._rng, auto=True, previous=0)
            if i0.overflow or v0.overflow or i == i0.value:
                return OVERFLOW_READING
            value = (v - v0.value) / (i - i0.value)
        limit = (
            RESISTANCE_RANGES_OHM[-1]
            if ch.sense_auto["RES"]
            else RESISTANCE_RANGES_OHM[ch.sense_range["RES"]]
        )
        if abs(value) > 1.05 * limit:
            return math.copysign(OVERFLOW_READING, value)
        return value

    # ------------------------------------------------------------------ data queries
    def _data_reply(self, values: list[float]) -> str:
        return format_numbers(values, self.data_format, self.swapped)

    def _measure_elements(self, call: Call) -> str:
        readings = [
            [self._spot(index, self.channels[index].functions, call.header)]
            for index in self._channels_of(call)
        ]
        return self._data_reply(interleave(readings, self.elements))

    def _measure_one(self, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            readings = []
            for index in self._channels_of(call):
                ch = self.channels[index]
                ch.functions.add(fn)
                readings.append([self._spot(index, ch.functions, call.header)])
            return self._data_reply(interleave(readings, [fn]))

        return query

    def _fetcher(self, element: str | None, array: bool, initiate: bool) -> Callable[[Call], str]:
        """``:FETC`` / ``:READ`` (``:ARR`` or ``:SCAL``, all elements or one)."""

        def query(call: Call) -> str:
            channels = self._channels_of(call)
            if initiate:
                self._initiate(channels, ACTIONS, call.header)
            # The data are complete when the acquisition has ended: wait for it.
            self._wait_for(channels, call.header)
            per_channel: list[list[Reading]] = []
            for index in channels:
                results = self.channels[index].results[-MAX_RESULTS:] or [nan_reading()]
                per_channel.append(results if array else results[-1:])
            keys = [element] if element else self.elements
            return self._data_reply(interleave(per_channel, keys))

        return query

    # ------------------------------------------------------------------ trace buffer
    def _require_trace_idle(self, call: Call) -> None:
        if self._ch(call).trace.control != "NEV":
            raise ScpiError(
                -221,
                f"{call.header}: the trace buffer is storing (:TRAC:FEED:CONT NEXT); "
                "set :TRAC:FEED:CONT NEV first",
            )

    def _trace_clear(self, call: Call) -> None:
        self._require_trace_idle(call)
        self._ch(call).trace.readings = []

    def _trace_points(self, call: Call) -> None:
        self._require_trace_idle(call)
        trace = self._ch(call).trace
        trace.size = int(call.args[0])
        trace.readings = trace.readings[: trace.size]

    def _trace_free(self, call: Call) -> str:
        trace = self._ch(call).trace
        return f"{trace.size - len(trace.readings)},{trace.size}"

    def _trace_feed(self, call: Call) -> None:
        self._require_trace_idle(call)
        if call.args[0] != "SENSE":
            raise ScpiError(
                -224,
                f"{call.header}: feeding {call.args[0]} results (no :CALCulate subsystem) "
                "is not emulated by this simulator; SENSe data only (docs/smu-emulators.md)",
            )

    def _trace_control(self, call: Call) -> None:
        trace = self._ch(call).trace
        trace.control = "NEV" if call.args[0] == "NEVER" else "NEXT"
        if trace.control == "NEXT" and len(trace.readings) >= trace.size:
            trace.control = "NEV"  # full: storing stops at once, as when it fills

    def _trace_setter(self, attr: str, names: dict[str, str]) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            setattr(self._ch(call).trace, attr, names[call.args[0]])

        return setter

    def _trace_data(self, call: Call) -> str:
        trace = self._ch(call).trace
        offset = int(call.args[0]) if call.args else 0
        size = int(call.args[1]) if len(call.args) > 1 else None
        if not trace.readings:
            raise ScpiError(
                -230, f"{call.header}: the trace buffer is empty", "Data corrupt or stale"
            )
        if offset >= len(trace.readings):
            raise ScpiError(
                -222,
                f"{call.header}: offset {offset} beyond the {len(trace.readings)} stored readings",
            )
        return self._data_reply(trace.data(self.elements, offset, size))

    def _trace_statistic(self, call: Call) -> str:
        return self._data_reply(self._ch(call).trace.statistics(self.elements))


def _partner(group: dict[str, Machine], action: str) -> Callable[[], Machine | None]:
    """The machine of ``action`` initiated together with another one (None if it was not)."""
    return lambda: group.get(action)
