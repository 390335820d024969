"""A temperature-controlled sample stage under the board, on the virtual clock.

The stage is an aluminium block on a chilled base (``base_C``, a recirculating chiller)
with a resistive heater driven by a temperature controller's closed loop. The physics,
integrated on a fixed grid of ``step_s`` so that the state depends only on the commands
and their times, never on how often anyone asks:

* the controller's set point ramps towards the commanded one at the ramp rate (K/min; ramp
  off: it jumps);
* the loop asks for the power that brings the stage to the ramping set point with the
  closed-loop time constant ``control_time_constant_s``:
  ``P = C dT/dt + G_base (T - T_base)``, clipped to ``0 .. P_max`` of the heater range
  (the heater cannot cool: below ``base_C`` the stage cannot go);
* the stage integrates ``C dT/dt = P - G_base (T - T_base)``;
* the board sits on the stage through a thermal interface and sees a little of the room's
  air: it relaxes towards ``T_stage + air_coupling (T_ambient - T_stage)`` with the time
  constant ``board_time_constant_s``. The board's own sensor reads the board, not the stage.

The controller's sensor (a platinum RTD in the block) reads the stage with a calibration
offset drawn from the seed and white noise of ``sensor_noise_K``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["HEATER_RANGES", "ThermalStage", "ThermalStageConfig"]

HEATER_RANGES = ("off", "low", "medium", "high")
"""Heater ranges in the order of the controller's RANGE codes 0..3."""


@dataclass(frozen=True)
class ThermalStageConfig:
    """The simulated stage's physics (SI units in the names).

    Defaults: a 200 J/K block on a 1 W/K link to a 5 degC chiller, a 50 W heater (a Lake
    Shore 335/336 output 1 into 25 ohm: 1 A max, ranges a decade apart), a board that
    follows with a 5 minute time constant and sees 2 % of the room.
    """

    base_C: float = 5.0
    heat_capacity_J_per_K: float = 200.0
    base_conductance_W_per_K: float = 1.0
    heater_max_W: tuple[float, float, float] = (0.5, 5.0, 50.0)
    """Largest power of the low, medium and high ranges (W)."""
    control_time_constant_s: float = 20.0
    board_time_constant_s: float = 300.0
    air_coupling: float = 0.02
    sensor_noise_K: float = 0.003
    sensor_offset_sigma_K: float = 0.02
    initial_setpoint_C: float = 25.0
    initial_range: int = 3
    """Heater range at power-up (the output's power-up enable is set: control resumes)."""
    step_s: float = 0.5

    def __post_init__(self) -> None:
        for name in (
            "heat_capacity_J_per_K",
            "base_conductance_W_per_K",
            "control_time_constant_s",
            "board_time_constant_s",
            "step_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"thermal stage {name} = {getattr(self, name)} must be > 0")
        if not 0 <= self.air_coupling < 1:
            raise ValueError(f"thermal stage air_coupling = {self.air_coupling} not in [0, 1)")
        if self.initial_range not in range(len(HEATER_RANGES)):
            raise ValueError(f"thermal stage initial_range = {self.initial_range} not in 0..3")


class ThermalStage:
    """The stage and the board on it (module docstring); every time in virtual seconds.

    Args:
        config: the physics.
        ambient_C: the room's temperature as a function of time (degC), the board's air.
        rng: seeded generator for the sensor's offset and noise.
        now_s: the clock at power-up (s).
    """

    def __init__(
        self,
        config: ThermalStageConfig,
        ambient_C: Callable[[float], float],
        rng: np.random.Generator,
        now_s: float = 0.0,
    ) -> None:
        self.config = config
        self._ambient_C = ambient_C
        self._rng = rng
        self.sensor_offset_K = float(rng.normal(0.0, config.sensor_offset_sigma_K))
        self.setpoint_C = config.initial_setpoint_C
        self.ramp_enabled = False
        self.ramp_K_per_min = 0.0
        self.range = config.initial_range
        self._t_s = now_s
        self._ramp_sp_C = config.initial_setpoint_C
        self._stage_C = config.initial_setpoint_C
        self._board_C = config.initial_setpoint_C + config.air_coupling * (
            ambient_C(now_s) - config.initial_setpoint_C
        )
        self._power_W = config.base_conductance_W_per_K * (self._stage_C - config.base_C)

    # ------------------------------------------------------------------ integration
    def _step(self, dt: float) -> None:
        cfg = self.config
        if self.ramp_enabled and self.ramp_K_per_min > 0:
            max_move = self.ramp_K_per_min / 60.0 * dt
            delta = self.setpoint_C - self._ramp_sp_C
            self._ramp_sp_C += math.copysign(min(abs(delta), max_move), delta)
        else:
            self._ramp_sp_C = self.setpoint_C
        g, c = cfg.base_conductance_W_per_K, cfg.heat_capacity_J_per_K
        leak_W = g * (self._stage_C - cfg.base_C)
        wanted_W = c * (self._ramp_sp_C - self._stage_C) / cfg.control_time_constant_s + leak_W
        p_max = cfg.heater_max_W[self.range - 1] if self.range > 0 else 0.0
        self._power_W = min(max(wanted_W, 0.0), p_max)
        self._stage_C += dt * (self._power_W - leak_W) / c
        target = self._stage_C + cfg.air_coupling * (self._ambient_C(self._t_s) - self._stage_C)
        self._board_C += (target - self._board_C) * (
            1.0 - math.exp(-dt / cfg.board_time_constant_s)
        )
        self._t_s += dt

    def advance_to(self, t_s: float) -> None:
        """Integrate up to ``t_s`` (s) on the fixed grid; earlier times change nothing."""
        step = self.config.step_s
        while self._t_s + step <= t_s + 1e-12:
            self._step(step)

    # ------------------------------------------------------------------ commands
    def command_setpoint(self, t_s: float, setpoint_C: float) -> None:
        """A new set point at time ``t_s``; with the ramp on, the loop ramps from where it is."""
        self.advance_to(t_s)
        if not self.ramp_enabled:
            self._ramp_sp_C = setpoint_C
        self.setpoint_C = setpoint_C

    def command_ramp(self, t_s: float, enabled: bool, rate_K_per_min: float) -> None:
        """Ramp on/off and its rate (K/min; 0: the set point jumps)."""
        self.advance_to(t_s)
        if enabled and not self.ramp_enabled:
            self._ramp_sp_C = self._stage_C  # a ramp starts from the present temperature
        self.ramp_enabled = enabled
        self.ramp_K_per_min = rate_K_per_min

    def command_range(self, t_s: float, heater_range: int) -> None:
        """Heater range 0 (off) .. 3 (high)."""
        self.advance_to(t_s)
        self.range = heater_range

    # ------------------------------------------------------------------ state
    def stage_C(self, t_s: float) -> float:
        """The stage's true temperature at ``t_s`` (degC)."""
        self.advance_to(t_s)
        return self._stage_C

    def board_C(self, t_s: float) -> float:
        """The board's true temperature at ``t_s`` (degC): what its elements feel."""
        self.advance_to(t_s)
        return self._board_C

    def sensor_C(self, t_s: float) -> float:
        """What the controller's sensor reads at ``t_s`` (degC): offset and noise."""
        return (
            self.stage_C(t_s)
            + self.sensor_offset_K
            + float(self._rng.normal(0.0, self.config.sensor_noise_K))
        )

    def ramping(self, t_s: float) -> bool:
        """Whether the loop's set point is still ramping."""
        self.advance_to(t_s)
        return self.ramp_enabled and abs(self._ramp_sp_C - self.setpoint_C) > 1e-9

    def heater_percent(self, t_s: float) -> float:
        """Heater output (% of the range's full power)."""
        self.advance_to(t_s)
        if self.range == 0:
            return 0.0
        return 100.0 * self._power_W / self.config.heater_max_W[self.range - 1]
