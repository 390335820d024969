"""Board temperature: the walk's statistics and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.ambient import AmbientTemperature
from simulator.board_config import EnvironmentConfig


def test_walk_has_the_configured_stationary_spread() -> None:
    cfg = EnvironmentConfig()
    amb = AmbientTemperature(cfg, np.random.default_rng(5))
    year_s = 365 * 86400.0
    samples = np.array([amb.walk_K(t) for t in np.arange(0.0, year_s, cfg.walk_step_s * 60)])
    # A year holds T / tau = 2190 correlation times: the sample std has a relative standard
    # error of about 1 / sqrt(2 * 2190) = 1.5 %; 5 standard errors allowed.
    assert np.std(samples) == pytest.approx(cfg.walk_sigma_K, rel=0.075)
    assert abs(np.mean(samples)) < 5 * cfg.walk_sigma_K / math.sqrt(2190)


def test_temperature_interpolates_between_grid_points_and_is_continuous() -> None:
    cfg = EnvironmentConfig(daily_amplitude_K=0.0)
    amb = AmbientTemperature(cfg, np.random.default_rng(1))
    a, b = amb.at(600.0), amb.at(660.0)
    assert amb.at(630.0) == pytest.approx((a + b) / 2, abs=1e-12)
    assert amb.at(-5.0) == amb.at(0.0) == cfg.ambient_C  # the walk starts at its mean
