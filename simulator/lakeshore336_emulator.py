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

If an input exceeds its temperature limit (``TLIMIT``, 0 = off), every heater output is
switched off (range 0), as the manual describes.
"""

from __future__ import annotations

import logging

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
        self.out2_setpoint_K = 0.0
        self.out2_range = 0
        self.out2_ramp: tuple[int, float] = (0, 0.0)

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
        if name in ("KRDG?", "CRDG?"):
            inp = self._input(args)
            if inp != "A":
                return "+0.000"
            t_c = self.stage.sensor_C(now)
            return f"{t_c + KELVIN_OFFSET:+.3f}" if name == "KRDG?" else f"{t_c:+.3f}"
        if name == "RDGST?":
            return "000" if self._input(args) == "A" else f"{RDGST_INVALID:03d}"
        if name == "SETP":
            out = self._output(args, 2)
            value = self._number(args[1], 0.0, MAX_SETPOINT_K)
            if out == 1:
                self.stage.command_setpoint(now, value - KELVIN_OFFSET)
            else:
                self.out2_setpoint_K = value
            return None
        if name == "SETP?":
            out = self._output(args, 1)
            value = self.stage.setpoint_C + KELVIN_OFFSET if out == 1 else self.out2_setpoint_K
            return f"{value:+.3f}"
        if name == "RAMP":
            out = self._output(args, 3)
            on = self._integer(args[1], 0, 1)
            rate = self._number(args[2], 0.0, MAX_RAMP_K_PER_MIN)
            if 0 < rate < MIN_RAMP_K_PER_MIN:
                raise _ParameterError(f"ramp rate {rate} below {MIN_RAMP_K_PER_MIN}")
            if out == 1:
                self.stage.command_ramp(now, bool(on), rate)
            else:
                self.out2_ramp = (on, rate)
            return None
        if name == "RAMP?":
            out = self._output(args, 1)
            if out == 1:
                return f"{int(self.stage.ramp_enabled)},{self.stage.ramp_K_per_min:+.1f}"
            on, rate = self.out2_ramp
            return f"{on},{rate:+.1f}"
        if name == "RAMPST?":
            out = self._output(args, 1)
            return "1" if out == 1 and self.stage.ramping(now) else "0"
        if name == "RANGE":
            out = self._output(args, 2)
            value = self._integer(args[1], 0, len(HEATER_RANGES) - 1)
            if out == 1:
                self.stage.command_range(now, value)
            else:
                self.out2_range = value
            return None
        if name == "RANGE?":
            out = self._output(args, 1)
            return f"{self.stage.range if out == 1 else self.out2_range:d}"
        if name == "HTR?":
            out = self._output(args, 1)
            return f"{self.stage.heater_percent(now) if out == 1 else 0.0:+07.3f}"
        if name == "HTRST?":
            self._output(args, 1)
            return "0"
        if name == "OUTMODE?":
            out = self._output(args, 1)
            return "1,1,1" if out == 1 else "0,0,0"
        if name == "TLIMIT":
            if len(args) != 2:
                raise _ParameterError("TLIMIT takes an input and a limit")
            inp = self._input(args[:1])
            self.limits_K[inp] = self._number(args[1], 0.0, MAX_SETPOINT_K)
            return None
        if name == "TLIMIT?":
            return f"{self.limits_K[self._input(args)]:+.1f}"
        self.esr |= CME
        log.debug("Lake Shore 336 emulator: unknown command %r", text)
        return None

    def _check_limits(self) -> None:
        """Any input above its limit switches every heater output off (manual, TLIMIT)."""
        limit = self.limits_K["A"]
        if limit > 0 and self.stage.stage_C(self._now()) + KELVIN_OFFSET > limit:
            self.stage.command_range(self._now(), 0)
            self.out2_range = 0

    # ------------------------------------------------------------------ parameters
    @staticmethod
    def _input(args: list[str]) -> str:
        if len(args) != 1 or args[0].upper() not in INPUTS:
            raise _ParameterError(f"input {args!r} is not one of A..D")
        return args[0].upper()

    @staticmethod
    def _output(args: list[str], count: int) -> int:
        if len(args) != count:
            raise _ParameterError(f"expected {count} parameter(s), got {args!r}")
        try:
            out = int(args[0])
        except ValueError:
            raise _ParameterError(f"output {args[0]!r} is not a number") from None
        if out not in OUTPUTS:
            raise _ParameterError(f"output {out} is not 1 or 2")
        return out

    @staticmethod
    def _number(text: str, low: float, high: float) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _ParameterError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise _ParameterError(f"{value} not in {low}..{high}")
        return value

    @staticmethod
    def _integer(text: str, low: int, high: int) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _ParameterError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise _ParameterError(f"{value} not in {low}..{high}")
        return value
