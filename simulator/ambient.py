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
        missing = n_points - self._walk_K.size
        if missing <= 0:
            return
        n_blocks = -(-missing // _BLOCK)
        # One draw call per block, whatever the batch: the walk depends on the seed only.
        kicks = (
            np.concatenate([self._rng.standard_normal(_BLOCK) for _ in range(n_blocks)])
            * self._kick_K
        )
        # x[i] = decay * x[i-1] + kick[i], continuing from the last point. A plain loop
        # (~0.1 us per step, 68 h of walk per 4096 steps) beats importing scipy.signal.
        walk = kicks.tolist()
        x = float(self._walk_K[-1])
        decay = self._decay
        for i, kick in enumerate(walk):
            x = decay * x + kick
            walk[i] = x
        self._walk_K = np.concatenate([self._walk_K, np.asarray(walk)])

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
