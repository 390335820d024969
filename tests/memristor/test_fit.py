"""The device-model fit: its equations recover known parameters from noiseless and noisy
synthetic data, and on the simulator it recovers the drawn devices' parameters."""

from __future__ import annotations

import numpy as np
import pytest

from labrss.memristor.fit import (
    fit_conduction,
    fit_drift,
    fit_forming,
    fit_threshold,
    lognormal,
    normal,
    pulse_trace,
    sinh_factor,
)


def test_conduction_law_recovered() -> None:
    rng = np.random.default_rng(0)
    v = np.linspace(0.1, 0.7, 7)
    g = 50e-6
    read = g * sinh_factor(0.1, 0.45) * np.ones_like(v)
    i = g * v * sinh_factor(v, 0.45) * (1 + 1e-3 * rng.standard_normal(v.size))
    v0, rms = fit_conduction(v, i, read, 0.1)
    assert v0 == pytest.approx(0.45, rel=0.02) and rms < 3e-3
    assert np.isnan(fit_conduction([0.1, 0.2], [1e-6, 2e-6], [1e-5, 1e-5], 0.1)[0])


@pytest.mark.parametrize(("th", "ref", "sign"), [(0.78, 1.5, 1.0), (0.58, 1.25, -1.0)])
def test_threshold_and_reference_recovered(th: float, ref: float, sign: float) -> None:
    v = sign * np.concatenate([np.arange(1, 37) * 0.05, np.arange(35, 0, -1) * 0.05])
    exponent, levels, shape = (3.0, 97.0, 0.5) if sign > 0 else (1.0, 100.0, 0.25)
    x0 = 0.02 if sign > 0 else 0.98
    kw = {"exponent": exponent, "levels": levels, "shape": shape, "reference_width_s": 1e-4}
    x = pulse_trace(x0, v, 1e-3, threshold_V=th, reference_V=ref, **kw)
    noisy = x + 0.005 * np.random.default_rng(1).standard_normal(x.size)
    th_fit, ref_fit, rms = fit_threshold(v, noisy, x0, 1e-3, **kw)
    assert th_fit == pytest.approx(th, abs=0.03) and ref_fit == pytest.approx(ref, rel=0.1)
    assert rms < 0.01


def test_forming_drift_and_spreads() -> None:
    assert fit_forming(30e-6, [30e-6 / 0.45, 30e-6 / 0.46]).centre == pytest.approx(0.455)
    t = np.array([0.0, 10, 100, 1000, 1e4])
    a, g0 = fit_drift(t, 50e-6 - 0.09e-6 * np.log1p(t))
    assert a == pytest.approx(0.09e-6) and g0 == pytest.approx(50e-6)
    s = lognormal([1e3, 1e4, 1e5])
    assert s.centre == pytest.approx(1e4) and s.sigma == pytest.approx(1.4826) and s.n == 3
    robust = normal([np.nan, 1.0, 2.0, 3.0, 1e6])  # one failed fit moves nothing much
    assert robust.centre == 2.5 and robust.sigma == pytest.approx(1.4826) and robust.n == 4
