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
