"""The series path by additivity (`labrss.metrology.series_path`): exact on the model,
the readings' uncertainty carried to r_s."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.metrology.series_path import series_from_additivity


def _y(g: float, rs: float) -> float:
    return g / (1.0 + rs * g)


@given(
    g_a=st.floats(1e-5, 2e-3),
    g_b=st.floats(1e-5, 2e-3),
    c0=st.floats(0.0, 1e-8),
    rs=st.floats(0.0, 5.0),
)
def test_recovers_the_series_path_exactly(g_a: float, g_b: float, c0: float, rs: float) -> None:
    # G(A) = c0 + a, G(B) = c0 + b, G(A u B) = c0 + a + b, G(0) = c0
    ys = (_y(c0 + g_a, rs), _y(c0 + g_b, rs), _y(c0 + g_a + g_b, rs), _y(c0, rs))
    path = series_from_additivity(ys)
    # the equation's conditioning: r_s is fixed by ~2 r_s G_A G_B out of sums of ~G
    scale = (g_a + g_b) / (g_a * g_b) * 1e-15
    assert path.series_ohm == pytest.approx(rs, abs=max(scale, 1e-9))
    assert path.conductance_S[2] == pytest.approx(c0 + g_a + g_b, rel=1e-9)


def test_uncertainty_is_the_first_order_propagation() -> None:
    rs, g_a, g_b, c0 = 0.38, 6e-4, 6.5e-4, 2e-9
    ys = (_y(c0 + g_a, rs), _y(c0 + g_b, rs), _y(c0 + g_a + g_b, rs), _y(c0, rs))
    u = (1e-9, 2e-9, 3e-9, 4e-10)
    path = series_from_additivity(ys, u)
    # each reading's effect by finite differences, added in quadrature
    parts = []
    for j, uj in enumerate(u):
        bumped = list(ys)
        bumped[j] += uj
        parts.append(series_from_additivity(tuple(bumped)).series_ohm - path.series_ohm)  # type: ignore[arg-type]
    assert path.u_series_ohm == pytest.approx(math.sqrt(sum(p**2 for p in parts)), rel=1e-3)
    # the non-additivity 2 r_s G_A G_B against noise of ~2e-9 S: a few mohm
    assert 0.002 < path.u_series_ohm < 0.01


def test_bad_readings_are_refused() -> None:
    with pytest.raises(ValueError, match="must exceed"):
        series_from_additivity((1e-3, 1e-3, 5e-4, 0.0))
    with pytest.raises(ValueError, match="not finite"):
        series_from_additivity((1e-3, math.nan, 2e-3, 0.0))
