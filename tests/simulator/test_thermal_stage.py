"""The simulated thermal stage: physics on the virtual clock and the 336 emulator's rules."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.clock import VirtualClock
from simulator.lakeshore336_emulator import LakeShore336Emulator
from simulator.thermal_stage import ThermalStage, ThermalStageConfig


def _stage(**kw: float) -> ThermalStage:
    return ThermalStage(ThermalStageConfig(**kw), lambda t: 25.0, np.random.default_rng(1))  # type: ignore[arg-type]


def test_state_depends_on_commands_not_on_how_often_one_asks() -> None:
    a, b = _stage(), _stage()
    a.command_setpoint(0.0, 40.0)
    b.command_setpoint(0.0, 40.0)
    for t in np.arange(1.0, 900.0, 7.3):
        a.stage_C(float(t))
    assert a.board_C(900.0) == pytest.approx(b.board_C(900.0), abs=1e-12)


def test_heater_cannot_cool_below_the_base() -> None:
    s = _stage()
    s.command_setpoint(0.0, 1.0)  # below the 5 degC chiller
    assert s.stage_C(5000.0) == pytest.approx(5.0, abs=0.01)
    assert s.heater_percent(5000.0) == 0.0


def test_heater_off_lets_the_stage_relax_to_the_base() -> None:
    s = _stage()
    s.command_range(0.0, 0)
    # C / G = 200 s: after 200 s the 20 K excess has fallen to 1/e
    assert s.stage_C(200.0) - 5.0 == pytest.approx(20.0 / np.e, rel=0.01)


def test_ramp_rate_is_respected() -> None:
    s = _stage()
    s.command_ramp(0.0, True, 2.0)
    s.command_setpoint(0.0, 35.0)
    assert s.ramping(120.0)
    # 4 K of ramp after 2 min, the loop lags by about rate x tau_control = 0.67 K
    assert s.stage_C(120.0) == pytest.approx(25.0 + 4.0 - 2.0 / 60 * 20.0, abs=0.1)
    assert not s.ramping(301.0)


def test_emulator_limit_switches_the_heater_off() -> None:
    clock = VirtualClock()
    em = LakeShore336Emulator(_stage(), clock)
    em.handle_line("TLIMIT A,300")
    em.handle_line("SETP 1,310")
    clock.advance(600.0)
    em.handle_line("KRDG? A")
    assert em.handle_line("RANGE? 1") == "0"


def test_emulator_flags_unknown_commands_and_bad_parameters() -> None:
    em = LakeShore336Emulator(_stage(), VirtualClock())
    assert em.handle_line("NOPE 1") is None
    assert em.handle_line("*ESR?") == "32"
    em.handle_line("RANGE 1,7")
    assert em.handle_line("*ESR?") == "16"
    assert em.handle_line("*ESR?") == "0"
    assert em.handle_line("RAMP 1,1,0.05") is None
    assert em.handle_line("*ESR?") == "16"
    assert em.handle_line("KRDG? B") == "+0.000"
    assert em.handle_line("RDGST? B") == "001"


#: A session with the emulator, command by command (replies as the Lake Shore 336 manual's
#: formats; None: no reply). Both outputs' settings and queries, the unconnected inputs,
#: every kind of bad parameter (16 = execution error), an unknown command (32), joined
#: commands, lower case, *RST (output 2 keeps its settings) and TLIMIT tripping the heater.
SESSION: list[tuple[str, str | None]] = [
    ("*IDN?", "LSCI,MODEL336,LSA0000/#######,2.9"),
    ("*OPC?", "1"),
    ("*ESR?", "0"),
    ("KRDG? b", "+0.000"),
    ("CRDG? D", "+0.000"),
    ("KRDG? E", None),
    ("*ESR?", "16"),
    ("KRDG?", None),
    ("*ESR?", "16"),
    ("RDGST? A", "000"),
    ("RDGST? C", "001"),
    ("SETP? 1", "+298.150"),
    ("SETP? 2", "+0.000"),
    ("SETP 1,310.5", None),
    ("SETP? 1", "+310.500"),
    ("SETP 2,77", None),
    ("SETP? 2", "+77.000"),
    ("SETP 1,1600", None),
    ("*ESR?", "16"),
    ("SETP 3,300", None),
    ("*ESR?", "16"),
    ("SETP x,300", None),
    ("*ESR?", "16"),
    ("SETP 1", None),
    ("*ESR?", "16"),
    ("SETP 1,abc", None),
    ("*ESR?", "16"),
    ("RAMP? 1", "0,+0.0"),
    ("RAMP? 2", "0,+0.0"),
    ("RAMP 1,1,2.5", None),
    ("RAMP? 1", "1,+2.5"),
    ("RAMP 2,1,0.5", None),
    ("RAMP? 2", "1,+0.5"),
    ("RAMP 1,2,1", None),
    ("*ESR?", "16"),
    ("RAMP 1,1,0.05", None),
    ("*ESR?", "16"),
    ("RAMP 1,1,101", None),
    ("*ESR?", "16"),
    ("RAMP 1,1,0", None),
    ("RAMP? 1", "1,+0.0"),
    ("RAMPST? 1", "1"),
    ("RAMPST? 2", "0"),
    ("RANGE? 1", "3"),
    ("RANGE? 2", "0"),
    ("RANGE 1,2", None),
    ("RANGE? 1", "2"),
    ("RANGE 2,3", None),
    ("RANGE? 2", "3"),
    ("RANGE 1,9", None),
    ("*ESR?", "16"),
    ("RANGE 1,1.5", None),
    ("*ESR?", "16"),
    ("HTR? 1", "+100.000"),
    ("HTR? 2", "+00.000"),
    ("HTRST? 1", "0"),
    ("HTRST? 2", "0"),
    ("HTRST? 3", None),
    ("*ESR?", "16"),
    ("OUTMODE? 1", "1,1,1"),
    ("OUTMODE? 2", "0,0,0"),
    ("TLIMIT? A", "+0.0"),
    ("TLIMIT B,350", None),
    ("TLIMIT? B", "+350.0"),
    ("TLIMIT A", None),
    ("*ESR?", "16"),
    ("TLIMIT A,2000", None),
    ("*ESR?", "16"),
    ("TLIMIT? Z", None),
    ("*ESR?", "16"),
    ("setp? 1", "+310.500"),
    ("*IDN?;*OPC?;SETP? 1", "LSCI,MODEL336,LSA0000/#######,2.9;1;+310.500"),
    ("SETP 1,300; RANGE? 1", "2"),
    (";;", None),
    ("NOPE", None),
    ("*ESR?", "32"),
    ("*CLS", None),
    ("*ESR?", "0"),
    ("RANGE 1,3", None),
    ("*RST", None),
    ("RANGE? 1", "0"),
    ("RAMP? 1", "0,+0.0"),
    ("TLIMIT? B", "+0.0"),
    ("SETP? 1", "+300.000"),
    ("SETP? 2", "+77.000"),
    ("RANGE? 2", "3"),
    ("TLIMIT A,280", None),
    ("RANGE 1,3", None),
    ("RANGE? 1", "0"),
]


def test_emulator_session_command_by_command() -> None:
    em = LakeShore336Emulator(_stage(), VirtualClock())
    assert [(line, em.handle_line(line)) for line, _ in SESSION] == SESSION
