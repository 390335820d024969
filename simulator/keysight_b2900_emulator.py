"""A Keysight B2901A (one channel) or B2902A (two channels) precision SMU, SCPI subset.

The subset a resistance / current bench uses (Keysight B2900 SCPI Command Reference):
source function and level per channel, compliance (``:SENS:CURR:PROT``) and its tripped
query, measure functions, NPLC / aperture, measure ranges and autorange, resistance in
manual (V/I of your own source) or auto (test current from the ohms range) mode, remote
sense, output on/off with the automatic output-on of ``:MEAS?`` and ``:INIT``, spot
measurements ``:MEAS[:<f>]? (@list)`` with ``:FORM:ELEM:SENS``, a triggered burst
(``:TRIG:COUN``, ``:INIT``, ``:FETC:ARR:<f>?``), the error queue and the common commands.
Channel suffixes and channel lists address the channels; a B2901A refuses channel 2
(-114 in a header, -222 in a channel list).

Each channel sees the board through its own ``port()`` callable; a channel wired to
nothing gets `simulator.port_model.OPEN_CIRCUIT`. The physics is `simulator.smu_physics`.
See docs/smu-emulators.md for the command list and the deviations from the instrument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.clock import VirtualClock
from simulator.port_model import PortModel
from simulator.scpi import (
    ESR_PON,
    Bool,
    Call,
    Channels,
    Choice,
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
ELEMENT_ORDER = ("VOLT", "CURR", "RES", "TIME", "STAT", "SOUR")
"""Data elements in the fixed order the B2900 returns them."""
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


@dataclass
class _Channel:
    """The settings and meters of one SMU channel."""

    port: Callable[[], PortModel]
    meter_i: MeterRanges
    meter_v: MeterRanges
    source_v: SourceRanges
    source_i: SourceRanges
    source_function: str = "VOLT"
    level: dict[str, float] = field(default_factory=dict)
    source_range: dict[str, int] = field(default_factory=dict)
    source_auto: dict[str, bool] = field(default_factory=dict)
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
    trigger_count: int = 1
    trigger_period_s: float = 0.0
    data: list[dict[str, float]] = field(default_factory=list)


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

    MAX_LINE_BYTES = 4096
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
        from simulator.port_model import OPEN_CIRCUIT

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
        self._register()
        self.reset()
        self.clear_status()
        self.esr |= ESR_PON

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """``*RST``: source 0 V, compliance 100 uA / 2 V, autorange, NPLC 1, output off."""
        for ch in self.channels:
            ch.source_function = "VOLT"
            ch.level = {"VOLT": 0.0, "CURR": 0.0}
            ch.source_range = {
                "VOLT": ch.source_v.index_for(2.0),
                "CURR": ch.source_i.index_for(1e-4),
            }
            ch.source_auto = {"VOLT": True, "CURR": True}
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
            ch.trigger_count = 1
            ch.trigger_period_s = 0.0
            ch.data = []
        self.elements = list(ELEMENT_ORDER)
        self.timer_zero_s = self.clock.now_s

    def power_cycle(self) -> None:
        """Power off and on: reset settings, clear the error queue, set PON."""
        self.reset()
        self.clear_status()
        self.esr |= ESR_PON

    def on_connect(self) -> None:
        """A host connected: state is kept."""

    def on_disconnect(self) -> None:
        """The host went away: state (including outputs) is kept, as on the instrument."""

    def identity(self) -> str:
        """``*IDN?``: Keysight Technologies,<model>,<serial>,<firmware>."""
        return f"Keysight Technologies,{self.model},{self.serial},{FIRMWARE}"

    def error_reply(self, code: int, message: str) -> str:
        """Keysight prints the code with a sign: ``+0,"No error"``."""
        return format_error(code, message).replace(f"{code},", f"{code:+d},", 1)

    # ------------------------------------------------------------------ registration
    def _register(self) -> None:
        n = self.n_channels
        add = self.add
        chans = Channels(n, name="channel list", optional=True)
        add(
            f"[:SOURce#{n}]:FUNCtion:MODE",
            set=self._set_source_function,
            query=lambda c: self._ch(c).source_function,
            params=[Choice("VOLTage|CURRent", name="source function")],
        )
        for fn, long, max_level, unit in (
            ("VOLT", "VOLTage", 210.0, "V"),
            ("CURR", "CURRent", 3.03, "A"),
        ):
            base = f"[:SOURce#{n}]:{long}"
            add(
                f"{base}[:LEVel][:IMMediate][:AMPLitude]",
                set=self._setter_level(fn),
                query=self._query_level(fn),
                params=[Num(-max_level, max_level, 0.0, unit, f"{fn} source level")],
            )
            add(
                f"{base}:MODE",
                set=self._set_source_mode,
                query=lambda c: "FIX",
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
                set=self._setter_source_auto(fn),
                query=self._query_source_auto(fn),
                params=[Bool()],
            )
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
                query=lambda c: _nr3(self._ch(c).nplc),
                params=[Num(4e-4, 100.0, 1.0, "", "NPLC")],
            )
            add(
                f"{base}:APERture",
                set=self._set_aperture,
                query=lambda c: _nr3(self._ch(c).nplc / self.line_frequency_Hz),
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
            ":FORMat:ELEMents:SENSe",
            set=self._set_elements,
            query=lambda c: ",".join(self.elements),
            params=[Choice("VOLTage|CURRent|RESistance|TIME|STATus|SOURce", name="element")],
            variadic=Choice("VOLTage|CURRent|RESistance|TIME|STATus|SOURce", name="element"),
            max_variadic=5,
        )
        add(
            ":FORMat[:DATA]",
            set=self._set_format,
            query=lambda c: "ASC",
            params=[Choice("ASCii|REAL", name="data format")],
        )
        add(":MEASure", query=self._measure_elements, query_params=[chans])
        for fn, long in (("CURR", "CURRent[:DC]"), ("VOLT", "VOLTage[:DC]"), ("RES", "RESistance")):
            add(f":MEASure:{long}", query=self._measure_one(fn), query_params=[chans])
        add(":INITiate[:IMMediate][:ALL]", set=self._initiate, params=[chans])
        add(":INITiate[:IMMediate]:ACQuire", set=self._initiate, params=[chans])
        add(":ABORt[:ALL]", set=lambda c: None, params=[chans])
        add(":ABORt:ACQuire", set=lambda c: None, params=[chans])
        for node in ("", ":ACQuire", ":TRANsient", ":ALL"):
            add(
                f":TRIGger#{n}{node}:COUNt",
                set=self._set_trigger_count,
                query=lambda c: str(self._ch(c).trigger_count),
                params=[Num(1, 100000, 1, "", "trigger count", integer=True)],
            )
            add(
                f":TRIGger#{n}{node}:TIMer",
                set=self._set_trigger_period,
                query=lambda c: _nr3(self._ch(c).trigger_period_s),
                params=[Num(1e-5, 1e5, 1e-5, "S", "trigger period")],
            )
            add(
                f":TRIGger#{n}{node}:SOURce",
                set=lambda c: None,
                query=lambda c: "AINT",
                params=[Choice("AINT|BUS|TIMer|INT1|INT2|LAN|EXT1|EXT2", name="trigger source")],
            )
        for element in ("CURRent", "VOLTage", "RESistance", "TIME", "STATus", "SOURce"):
            add(
                f":FETCh:ARRay:{element}",
                query=self._fetch_array(_ELEMENT_KEY[element.upper()]),
                query_params=[chans],
            )
            add(
                f":FETCh[:SCALar]:{element}",
                query=self._fetch_scalar(_ELEMENT_KEY[element.upper()]),
                query_params=[chans],
            )
        add(":FETCh:ARRay", query=self._fetch_array(None), query_params=[chans])
        add(":FETCh[:SCALar]", query=self._fetch_scalar(None), query_params=[chans])
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
        add(":SYSTem:TIME:TIMer:COUNt", query=lambda c: _nr3(self.clock.now_s - self.timer_zero_s))

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

    # ------------------------------------------------------------------ handlers
    def _set_source_function(self, call: Call) -> None:
        self._ch(call).source_function = "VOLT" if call.args[0] == "VOLTAGE" else "CURR"

    def _set_source_mode(self, call: Call) -> None:
        if call.args[0] != "FIXED":
            raise ScpiError(
                -224, f"{call.header}: {call.args[0]} mode is not emulated (only FIXed)"
            )

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

        return setter

    def _query_level(self, fn: str) -> Callable[[Call], str]:
        return lambda call: _nr3(self._ch(call).level[fn])

    def _setter_source_range(self, fn: str) -> Callable[[Call], None]:
        def setter(call: Call) -> None:
            ch = self._ch(call)
            ch.source_range[fn] = self._source_ranges(ch, fn).index_for(float(call.args[0]))
            ch.source_auto[fn] = False

        return setter

    def _query_source_range(self, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            ch = self._ch(call)
            return _nr3(self._source_ranges(ch, fn).full_scales[ch.source_range[fn]])

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
        return lambda call: _nr3(self._ch(call).protection[fn])

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
            return _nr3(self._sense_scales(ch, fn)[ch.sense_range[fn]])

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
        self._ch(call).output_on = bool(call.args[0])

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

    def _set_elements(self, call: Call) -> None:
        chosen = {_ELEMENT_KEY[str(a)] for a in call.args}
        self.elements = [e for e in ELEMENT_ORDER if e in chosen]

    def _set_format(self, call: Call) -> None:
        if call.args[0] != "ASCII":
            raise ScpiError(-224, f"{call.header}: only ASCii data is emulated")

    def _set_trigger_count(self, call: Call) -> None:
        self._ch(call).trigger_count = int(call.args[0])

    def _set_trigger_period(self, call: Call) -> None:
        self._ch(call).trigger_period_s = float(call.args[0])

    def _set_lfr(self, call: Call) -> None:
        if call.args[0] not in (50, 60):
            raise ScpiError(-224, f"{call.header}: line frequency {call.args[0]} is not 50 or 60")
        self.line_frequency_Hz = float(call.args[0])

    def _reset_timer(self, call: Call) -> None:
        self.timer_zero_s = self.clock.now_s

    # ------------------------------------------------------------------ measuring
    def _op_point(
        self,
        ch: _Channel,
        port: PortModel,
        *,
        source: str | None = None,
        level: float | None = None,
    ) -> OperatingPoint:
        fn = ch.source_function if source is None else source
        ranges = self._source_ranges(ch, fn)
        if level is None:
            actual = ranges.actual(ch.level[fn], ch.source_range[fn])
        else:
            actual = ranges.actual(level, ranges.index_for(level))
        limit = ch.protection["CURR" if fn == "VOLT" else "VOLT"]
        return operating_point(port, fn, actual, limit, remote_sense=ch.remote_sense)

    def _measure(self, index: int, functions: set[str]) -> dict[str, float]:
        """One spot measurement on channel ``index`` of the given functions (SI values)."""
        ch = self.channels[index]
        if not ch.output_on:
            if not ch.on_auto:
                raise ScpiError(
                    -221,
                    f"channel {index + 1}: output off and :OUTP:ON:AUTO OFF; measurement not made",
                )
            ch.output_on = True
        port = ch.port()
        steps = 0
        conversions = 1
        op = self._op_point(ch, port)
        source_value = ch.level[ch.source_function]
        result: dict[str, float] = {}
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
        elapsed = AUTO_SOURCE_DELAY_S + measurement_time_s(
            ch.nplc, self.line_frequency_Hz, autozero=False, conversions=conversions
        )
        elapsed += steps * (
            RANGE_CHANGE_S + measurement_time_s(ch.nplc, self.line_frequency_Hz, autozero=False)
        )
        now = self.clock.advance(elapsed)
        # The reading's stress (read disturb, DC switching, forming) under the current limit.
        climit = ch.protection["CURR"] if ch.source_function == "VOLT" else abs(op.i_A)
        port.hold(op.v_force_V, elapsed, climit)
        result["TIME"] = now - self.timer_zero_s
        result["STAT"] = float(status)
        result["SOUR"] = source_value
        for fn in ("VOLT", "CURR"):
            if fn not in functions:
                result[fn] = NAN_READING
        if "RES" not in functions:
            result["RES"] = NAN_READING
        if ch.off_auto:
            ch.output_on = False
        return result

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

    def _measure_elements(self, call: Call) -> str:
        out: list[str] = []
        for index in self._channels_of(call):
            ch = self.channels[index]
            result = self._measure(index, ch.functions)
            out.extend(_nr3(result[e]) for e in self.elements)
        return ",".join(out)

    def _measure_one(self, fn: str) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            out: list[str] = []
            for index in self._channels_of(call):
                ch = self.channels[index]
                ch.functions.add(fn)
                out.append(_nr3(self._measure(index, ch.functions)[fn]))
            return ",".join(out)

        return query

    def _initiate(self, call: Call) -> None:
        for index in self._channels_of(call):
            ch = self.channels[index]
            ch.data = []
            for k in range(ch.trigger_count):
                if k and ch.trigger_period_s:
                    self.clock.advance(ch.trigger_period_s)
                ch.data.append(self._measure(index, ch.functions))

    def _fetch_array(self, element: str | None) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            out: list[str] = []
            for index in self._channels_of(call):
                data = self.channels[index].data
                if not data:
                    raise ScpiError(
                        -230,
                        f"{call.header}: no data on channel {index + 1} (send :INIT first)",
                        "Data corrupt or stale",
                    )
                for point in data:
                    keys = [element] if element else self.elements
                    out.extend(_nr3(point[k]) for k in keys)
            return ",".join(out)

        return query

    def _fetch_scalar(self, element: str | None) -> Callable[[Call], str]:
        def query(call: Call) -> str:
            out: list[str] = []
            for index in self._channels_of(call):
                data = self.channels[index].data
                if not data:
                    raise ScpiError(
                        -230,
                        f"{call.header}: no data on channel {index + 1}",
                        "Data corrupt or stale",
                    )
                keys = [element] if element else self.elements
                out.extend(_nr3(data[-1][k]) for k in keys)
            return ",".join(out)

        return query


def _nr3(value: float) -> str:
    """The B2900's ASCII number format (``+1.000000E-03``)."""
    return f"{value:+.6E}"
