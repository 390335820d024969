"""A Lake Shore Model 336 temperature controller, emulated from its written command reference.

Implemented from docs/thermal-stage.md ("The controller's commands"), which summarises
chapter 6 of the Lake Shore Model 336 user's manual (Lake Shore Cryotronics, "Model 336
Temperature Controller User's Manual", rev. 2.x, section 6.6 "Command Descriptions"); it
never imports the driver. The 336 serves these commands over Ethernet on TCP port 7777
(here any loopback port), one command per line, replies terminated by CR LF.

Wired to a `simulator.thermal_stage.ThermalStage`: output 1 drives the stage's heater in
closed loop on input A (a platinum RTD in the stage block, units kelvin); inputs B..D are
not connected (their readings are 0 with the invalid-reading status bit). Output 2 exists
but drives nothing.

Errors as on the instrument: an unknown command sets the command-error bit (32) of the
standard event status register, a parameter out of range the execution-error bit (16);
``*ESR?`` reads and clears it. Nothing is echoed for a command without a query.

The commands of one shape are tables: `OUTPUT_SETTINGS` (``SETP``, ``RANGE``, ``RAMP``:
set with ``NAME out,values``, read with ``NAME? out``), `OUTPUT_QUERIES` (read-only
per-output queries) and `INPUT_QUERIES` (per-input readings); the common commands and
``TLIMIT`` are written out.

If an input exceeds its temperature limit (``TLIMIT``, 0 = off), every heater output is
switched off (range 0), as the manual describes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from simulator.clock import VirtualClock
from simulator.thermal_stage import HEATER_RANGES, ThermalStage

__all__ = ["KELVIN_OFFSET", "LakeShore336Emulator"]

log = logging.getLogger(__name__)

KELVIN_OFFSET = 273.15
"""0 degC in kelvin."""
INPUTS = ("A", "B", "C", "D")
OUTPUTS = (1, 2)
MAX_SETPOINT_K = 1500.0
MAX_RAMP_K_PER_MIN = 100.0
MIN_RAMP_K_PER_MIN = 0.1
CME = 32
"""Command error bit of the standard event status register."""
EXE = 16
"""Execution error bit."""
RDGST_INVALID = 1
"""Reading status bit: invalid reading."""


class _ParameterError(ValueError):
    pass


_N = TypeVar("_N", int, float)


def _bounded(text: str, kind: type[_N], low: _N, high: _N) -> _N:
    """``text`` as ``kind`` (int or float) within [low, high], else `_ParameterError`."""
    try:
        value = kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise _ParameterError(f"{text!r} is not {noun}") from None
    if not low <= value <= high:
        raise _ParameterError(f"{value} not in {low}..{high}")
    return value


def _input(args: list[str]) -> str:
    if len(args) != 1 or args[0].upper() not in INPUTS:
        raise _ParameterError(f"input {args!r} is not one of A..D")
    return args[0].upper()


def _output(args: list[str], count: int) -> int:
    """The output number of a command of ``count`` parameters, the output first."""
    if len(args) != count:
        raise _ParameterError(f"expected {count} parameter(s), got {args!r}")
    try:
        out = int(args[0])
    except ValueError:
        raise _ParameterError(f"output {args[0]!r} is not a number") from None
    if out not in OUTPUTS:
        raise _ParameterError(f"output {out} is not 1 or 2")
    return out


def _ramp(args: list[str]) -> tuple[float, ...]:
    on = _bounded(args[0], int, 0, 1)
    rate = _bounded(args[1], float, 0.0, MAX_RAMP_K_PER_MIN)
    if 0 < rate < MIN_RAMP_K_PER_MIN:
        raise _ParameterError(f"ramp rate {rate} below {MIN_RAMP_K_PER_MIN}")
    return (on, rate)


@dataclass(frozen=True)
class OutputSetting:
    """A setting of each output: ``NAME out,values...`` sets it, ``NAME? out`` reads it.
    Output 1 is the stage's heater loop; output 2 drives nothing and only stores it.

    Attributes:
        arity: values after the output number.
        parse: the values, validated (raises `_ParameterError`: nothing is applied).
        apply: gives output 1's values to the stage at time t (s).
        read: output 1's values from the stage.
        reply: the query's reply.
        initial: output 2's values at power-on.
    """

    arity: int
    parse: Callable[[list[str]], tuple[float, ...]]
    apply: Callable[[ThermalStage, float, tuple[float, ...]], None]
    read: Callable[[ThermalStage], tuple[float, ...]]
    reply: Callable[[tuple[float, ...]], str]
    initial: tuple[float, ...]


#: The per-output settings (set point in K, heater range, ramp on/off and rate in K/min).
OUTPUT_SETTINGS: dict[str, OutputSetting] = {
    "SETP": OutputSetting(
        arity=1,
        parse=lambda a: (_bounded(a[0], float, 0.0, MAX_SETPOINT_K),),
        apply=lambda stage, t, v: stage.command_setpoint(t, v[0] - KELVIN_OFFSET),
        read=lambda stage: (stage.setpoint_C + KELVIN_OFFSET,),
        reply=lambda v: f"{v[0]:+.3f}",
        initial=(0.0,),
    ),
    "RANGE": OutputSetting(
        arity=1,
        parse=lambda a: (_bounded(a[0], int, 0, len(HEATER_RANGES) - 1),),
        apply=lambda stage, t, v: stage.command_range(t, int(v[0])),
        read=lambda stage: (stage.range,),
        reply=lambda v: f"{int(v[0]):d}",
        initial=(0,),
    ),
    "RAMP": OutputSetting(
        arity=2,
        parse=_ramp,
        apply=lambda stage, t, v: stage.command_ramp(t, bool(v[0]), v[1]),
        read=lambda stage: (int(stage.ramp_enabled), stage.ramp_K_per_min),
        reply=lambda v: f"{int(v[0])},{v[1]:+.1f}",
        initial=(0, 0.0),
    ),
}

#: Read-only queries of an output: (output 1's reply from the stage at time t (s),
#: output 2's reply).
OUTPUT_QUERIES: dict[str, tuple[Callable[[ThermalStage, float], str], str]] = {
    "HTR?": (lambda stage, t: f"{stage.heater_percent(t):+07.3f}", f"{0.0:+07.3f}"),
    "HTRST?": (lambda stage, t: "0", "0"),
    "RAMPST?": (lambda stage, t: "1" if stage.ramping(t) else "0", "0"),
    "OUTMODE?": (lambda stage, t: "1,1,1", "0,0,0"),
}

#: Queries of an input: (input A's reply from the stage at time t (s), the reply of the
#: unconnected inputs B..D).
INPUT_QUERIES: dict[str, tuple[Callable[[ThermalStage, float], str], str]] = {
    "KRDG?": (lambda stage, t: f"{stage.sensor_C(t) + KELVIN_OFFSET:+.3f}", "+0.000"),
    "CRDG?": (lambda stage, t: f"{stage.sensor_C(t):+.3f}", "+0.000"),
    "RDGST?": (lambda stage, t: "000", f"{RDGST_INVALID:03d}"),
}


class LakeShore336Emulator:
    """A Lake Shore 336 on a `ThermalStage` (a line session for `LineServer`).

    Args:
        stage: the stage output 1 heats and input A reads.
        clock: the bench's virtual clock.
        serial: the instrument's serial number (``*IDN?``).
        query_time_s: how long one command takes on the virtual clock (s).
    """

    MAX_LINE_BYTES = 256

    def __init__(
        self,
        stage: ThermalStage,
        clock: VirtualClock,
        serial: str = "LSA0000",
        *,
        query_time_s: float = 0.02,
    ) -> None:
        self.stage = stage
        self.clock = clock
        self.serial = serial
        self.query_time_s = query_time_s
        self.esr = 0
        self.limits_K = dict.fromkeys(INPUTS, 0.0)
        self.out2: dict[str, tuple[float, ...]] = {
            name: setting.initial for name, setting in OUTPUT_SETTINGS.items()
        }
        """Output 2's settings (it drives nothing: they are only stored and read back)."""

    # ------------------------------------------------------------------ LineSession
    def on_connect(self) -> None:
        """A host connected: nothing changes (the controller keeps controlling)."""

    def on_disconnect(self) -> None:
        """The host went away: the loop keeps running at its set point, as on the bench."""

    def handle_line(self, line: str) -> str | None:
        """Execute one line (several commands may be joined by ``;``)."""
        self.clock.advance(self.query_time_s)
        replies = []
        for part in line.split(";"):
            text = part.strip()
            if not text:
                continue
            try:
                reply = self._command(text)
            except _ParameterError as exc:
                log.debug("Lake Shore 336 emulator: %s: %s", text, exc)
                self.esr |= EXE
                reply = None
            if reply is not None:
                replies.append(reply)
        self._check_limits()
        return ";".join(replies) if replies else None

    # ------------------------------------------------------------------ commands
    def _now(self) -> float:
        return self.clock.now_s

    def _command(self, text: str) -> str | None:
        head, _, rest = text.partition(" ")
        name = head.upper()
        args = [a.strip() for a in rest.split(",")] if rest.strip() else []
        now = self._now()
        if name in OUTPUT_SETTINGS:  # SETP 1,310
            setting = OUTPUT_SETTINGS[name]
            out = _output(args, 1 + setting.arity)
            values = setting.parse(args[1:])
            if out == 1:
                setting.apply(self.stage, now, values)
            else:
                self.out2[name] = values
            return None
        if name.endswith("?") and name[:-1] in OUTPUT_SETTINGS:  # SETP? 1
            setting = OUTPUT_SETTINGS[name[:-1]]
            out = _output(args, 1)
            return setting.reply(setting.read(self.stage) if out == 1 else self.out2[name[:-1]])
        if name in OUTPUT_QUERIES:  # HTR? 1
            heater, other = OUTPUT_QUERIES[name]
            return heater(self.stage, now) if _output(args, 1) == 1 else other
        if name in INPUT_QUERIES:  # KRDG? A
            sensor, other = INPUT_QUERIES[name]
            return sensor(self.stage, now) if _input(args) == "A" else other
        if name == "*IDN?":
            return f"LSCI,MODEL336,{self.serial}/#######,2.9"
        if name == "*CLS":
            self.esr = 0
            return None
        if name == "*ESR?":
            esr, self.esr = self.esr, 0
            return f"{esr:d}"
        if name == "*OPC?":
            return "1"
        if name == "*RST":
            self.stage.command_range(now, 0)
            self.stage.command_ramp(now, False, 0.0)
            self.limits_K = dict.fromkeys(INPUTS, 0.0)
            return None
        if name == "TLIMIT":
            if len(args) != 2:
                raise _ParameterError("TLIMIT takes an input and a limit")
            inp = _input(args[:1])
            self.limits_K[inp] = _bounded(args[1], float, 0.0, MAX_SETPOINT_K)
            return None
        if name == "TLIMIT?":
            return f"{self.limits_K[_input(args)]:+.1f}"
        self.esr |= CME
        log.debug("Lake Shore 336 emulator: unknown command %r", text)
        return None

    def _check_limits(self) -> None:
        """Any input above its limit switches every heater output off (manual, TLIMIT)."""
        limit = self.limits_K["A"]
        if limit > 0 and self.stage.stage_C(self._now()) + KELVIN_OFFSET > limit:
            self.stage.command_range(self._now(), 0)
            self.out2["RANGE"] = (0,)
