"""Board temperature as a deterministic function of virtual time.

T(t) = ambient + daily sinusoid + a seeded Ornstein-Uhlenbeck walk (mean-reverting, so it
stays bounded over weeks of simulated time). The walk is sampled on a fixed grid of
``walk_step_s`` and interpolated linearly; the grid is generated lazily and always in order
from one generator, so T(t) depends only on the seed and t, never on when it was asked.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.board_config import EnvironmentConfig

_BLOCK = 4096


class AmbientTemperature:
    """Seeded board temperature T(t) in degC for t >= 0 s (negative t reads as t = 0)."""

    def __init__(self, config: EnvironmentConfig, rng: np.random.Generator) -> None:
        self.config = config
        self._rng = rng
        self.phase_rad = float(rng.uniform(0.0, 2.0 * math.pi))
        self._walk_K = np.zeros(1)  # OU starts at its mean
        self._decay = math.exp(-config.walk_step_s / config.walk_time_constant_s)
        self._kick_K = config.walk_sigma_K * math.sqrt(1.0 - self._decay**2)

    def _extend(self, n_points: int) -> None:
        """Generate the walk up to grid index ``n_points - 1`` (in blocks, in order)."""
        while self._walk_K.size < n_points:
            kicks = self._rng.standard_normal(_BLOCK) * self._kick_K
            walk = np.empty(_BLOCK)
            x = float(self._walk_K[-1])
            for i in range(_BLOCK):  # sequential recursion; 4096 steps = 68 h at 60 s
                x = x * self._decay + kicks[i]
                walk[i] = x
            self._walk_K = np.concatenate([self._walk_K, walk])

    def walk_K(self, t_s: float) -> float:
        """The random-walk part at time ``t_s`` (K)."""
        pos = max(t_s, 0.0) / self.config.walk_step_s
        i = math.floor(pos)
        self._extend(i + 2)
        frac = pos - i
        return float(self._walk_K[i] * (1.0 - frac) + self._walk_K[i + 1] * frac)

    def at(self, t_s: float) -> float:
        """Board temperature (degC) at virtual time ``t_s``."""
        cfg = self.config
        daily = cfg.daily_amplitude_K * math.sin(
            2.0 * math.pi * max(t_s, 0.0) / cfg.daily_period_s + self.phase_rad
        )
        return cfg.ambient_C + daily + self.walk_K(t_s)
