"""The TCR fit and the common/spread split on synthetic data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labrss.metrology.tcr import fit_tcr, split_common


def test_exact_resistors_give_their_tcr_and_conductance() -> None:
    rng = np.random.default_rng(0)
    alpha = rng.normal(20.0, 30.0, size=(3, 5))  # ppm/K
    r0 = rng.uniform(9e3, 11e3, size=(3, 5))
    temps = np.array([20.0, 30.0, 40.0])[:, None] + np.zeros((3, 3))  # (P, cells)
    g = 1.0 / (r0 * (1 + alpha * 1e-6 * (temps[..., None] - 25.0)))
    fit = fit_tcr(temps, g, np.full(g.shape, 1e-10))
    # the fit states alpha relative to R at its own reference temperature
    shift = fit.reference_C - 25.0
    assert fit.tcr_ppm_per_K * (1 + alpha * 1e-6 * shift) == pytest.approx(alpha, rel=1e-9)
    assert fit.reference_C == pytest.approx(30.0, abs=0.05)  # weights 1/u_R^2 differ by R^2
    assert fit.conductance_at(25.0) == pytest.approx(1 / r0, rel=1e-12)
    assert fit.birge == 1.0


def test_uncertainty_matches_the_scatter_of_repeated_fits() -> None:
    rng = np.random.default_rng(1)
    temps = np.array([20.0, 30.0, 40.0])[:, None]
    g_true = 1e-4 * (1 - 50e-6 * (temps[..., None] - 30.0)) * np.ones((3, 1, 4000))
    u = 1e-9
    fit = fit_tcr(temps, g_true + rng.normal(0, u, g_true.shape), np.full(g_true.shape, u))
    # the fit on R of a g linear in T carries a second-order bias of alpha^2 dT ~ 5e-4 ppm/K
    z = (fit.tcr_ppm_per_K - 50.0) / fit.u_tcr_ppm_per_K
    assert np.std(z) == pytest.approx(1.0, abs=0.05)
    assert abs(np.mean(z)) < 0.1
    assert fit.birge == pytest.approx(1.0, abs=0.05)


def test_too_few_points_are_nan() -> None:
    g = np.array([[1e-4], [np.nan]])
    fit = fit_tcr(np.array([[20.0], [30.0]])[..., 0], g, np.full(g.shape, 1e-9))
    assert np.isnan(fit.tcr_ppm_per_K).all()


def test_common_and_spread_are_separated() -> None:
    rng = np.random.default_rng(2)
    a = 40.0 + rng.normal(0, 30.0, 5000) + rng.normal(0, 5.0, 5000)
    c = split_common(a, np.full(a.shape, 5.0))
    assert c.common_ppm_per_K == pytest.approx(40.0, abs=1.5)
    assert c.spread_ppm_per_K == pytest.approx(30.0, abs=1.0)
    assert c.raw_sd_ppm_per_K == pytest.approx(np.hypot(30.0, 5.0), abs=1.0)
    noise_only = split_common(rng.normal(10.0, 2.0, 400), np.full(400, 2.0))
    assert noise_only.spread_ppm_per_K < 0.7


def test_leakage_rate_recovers_a_doubling_and_covers_it() -> None:
    """ln c0 = level_cell + b T with 2 % noise on each c0: the pooled rate within its
    stated uncertainty (k = 3) over seeds, and about as often as a normal claim says."""
    from labrss.metrology.tcr import fit_leakage_rate

    temps = np.array([15.0, 25.0, 35.0])[:, None] + np.zeros((3, 16))
    rate = np.log(2.0) / 10.0
    z = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        level = rng.uniform(5e-10, 3e-9, 16)
        c0 = level * np.exp(rate * (temps - 25.0)) * (1 + 0.02 * rng.standard_normal((3, 16)))
        fit = fit_leakage_rate(temps, c0, 0.02 * c0)
        assert fit.cells == 16 and fit.points == 48
        z.append((fit.rate_per_K - rate) / fit.u_rate_per_K)
    z_a = np.abs(np.array(z))
    assert z_a.max() < 3.5 and 0.5 < np.sqrt(np.mean(np.square(z))) < 1.5
    assert fit.doubling_K == pytest.approx(10.0, rel=0.05)


def test_leakage_rate_without_points_is_nan() -> None:
    from labrss.metrology.tcr import fit_leakage_rate

    fit = fit_leakage_rate([[25.0], [35.0]], [[np.nan], [1e-9]], [[1e-11], [1e-11]])
    assert math.isnan(fit.rate_per_K) and fit.cells == 0
