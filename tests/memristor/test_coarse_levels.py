"""Coarse levels for RSS over memristor banks (pure)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.memristor import coarse_levels
from labrss.rss import solve


def test_simulated_device_plan() -> None:
    plan = coarse_levels(8e-6, 90e-6, 8)
    # 5 % and 75 % into the 82 uS range: 12.1 and 69.5 uS, geometric in between
    assert plan.levels_S[0] == pytest.approx(69.5e-6)
    assert plan.levels_S[-1] == pytest.approx(12.1e-6)
    ratios = plan.levels_S[:-1] / plan.levels_S[1:]
    assert np.allclose(ratios, ratios[0])
    assert ratios[0] < 2  # sub-binary: overlapping subset sums
    total = plan.levels_S.sum()
    assert (plan.target_lo_S, plan.target_hi_S) == pytest.approx((0.25 * total, 0.75 * total))
    assert plan.covers(150e-6)
    assert not plan.covers(20e-6)


def test_working_range_is_dense_for_rss() -> None:
    # Levels off by up to the coarse tolerance (10 %), measured exactly: every target of the
    # working range is realised within the largest gap between consecutive subset sums.
    # With 256 sums over ~270 uS the mean gap is ~1 uS: the median error must be a fraction
    # of it and the worst below the smallest level (12 uS), the ladder's coverage bound.
    rng = np.random.default_rng(4)
    plan = coarse_levels(8e-6, 90e-6, 8)
    targets = np.linspace(plan.target_lo_S, plan.target_hi_S, 200)
    errors = []
    for _ in range(20):
        g = plan.levels_S * (1 + rng.uniform(-plan.tolerance, plan.tolerance, 8))
        errors.append(np.abs(solve(g[None, :], targets[None, :]).error[0]))
    e = np.concatenate(errors)
    assert np.median(e) < 0.5e-6
    assert e.max() < plan.levels_S[-1]


@given(
    g_min=st.floats(1e-7, 1e-3),
    ratio=st.floats(1.5, 100.0),
    branches=st.integers(1, 16),
)
def test_levels_inside_the_range_largest_first(g_min: float, ratio: float, branches: int) -> None:
    plan = coarse_levels(g_min, g_min * ratio, branches)
    levels = plan.levels_S
    assert levels.shape == (branches,)
    assert np.all(levels > g_min)
    assert np.all(levels < g_min * ratio)
    assert np.all(np.diff(levels) <= 0)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((9e-5, 8e-6, 8), {}, "g_min_S"),
        ((0.0, 8e-6, 8), {}, "g_min_S"),
        ((8e-6, 9e-5, 0), {}, "branches"),
        ((8e-6, 9e-5, 8), {"low_fraction": 0.8}, "low_fraction"),
        ((8e-6, 9e-5, 8), {"tolerance": 1.0}, "tolerance"),
    ],
)
def test_bad_input_named(
    args: tuple[float, float, int], kwargs: dict[str, float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        coarse_levels(*args, **kwargs)  # type: ignore[arg-type]
