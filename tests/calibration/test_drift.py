"""`calibration.drift.fit_drift`: slopes, their errors and repeatability, on seeded data."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.drift import fit_drift


def test_slopes_and_their_errors_on_seeded_lines() -> None:
    rng = np.random.default_rng(3)
    elements, rounds = 400, 6
    t = np.linspace(0.0, 3600.0, rounds)
    g0 = rng.uniform(1e-6, 1e-4, elements)
    rel_slope = rng.normal(0, 1e-4, elements)  # per hour
    noise_rel = 2e-5
    g = g0[:, None] * (1 + rel_slope[:, None] * t / 3600.0)
    g = g * (1 + noise_rel * rng.standard_normal(g.shape))
    rep = fit_drift(t, g)
    z = (rep.relative_per_hour - rel_slope) / rep.relative_per_hour_std
    # 4 residual dof per element: z is t(4)-distributed, variance 4/(4-2) = 2.
    assert np.var(z) == pytest.approx(2.0, rel=0.25)
    assert np.median(rep.repeatability_rel) == pytest.approx(noise_rel, rel=0.2)
    assert not rep.pooled
    assert rep.summary()["elements"] == elements


def test_two_rounds_pool_the_repeatability() -> None:
    g = np.array([[1.0, 1.1], [2.0, 2.0], [1.0, 1.0]])
    t = np.array([0.0, 3600.0])
    rep = fit_drift(t, g)
    assert rep.pooled
    np.testing.assert_allclose(rep.relative_per_hour[:2], [0.1 / 1.05, 0.0])
    np.testing.assert_allclose(rep.total_change_rel[0], 0.1 / 1.05)


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="rounds >= 2"):
        fit_drift([0.0], [[1.0]])
