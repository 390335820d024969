"""The temperature-span solver against a brute-force loop, and what compensation buys."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labrss.rss import solve
from labrss.rss.thermal import solve_over_span, span_errors


def _brute(v: np.ndarray, s: np.ndarray, t: float, ts: float, *, lo: float, hi: float) -> float:
    """min over every subset of max(|e(lo)|, |e(hi)|), by a plain loop."""
    best = np.inf
    for bits in itertools.product((0, 1), repeat=v.size):
        m = np.array(bits, dtype=bool)
        a, b = v[m].sum() - t, s[m].sum() - ts
        best = min(best, max(abs(a + lo * b), abs(a + hi * b)))
    return float(best)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 9),
    seed=st.integers(0, 2**31),
    lo=st.floats(-20, 0),
    hi=st.floats(0, 20),
    target_slope=st.booleans(),
    brute_n=st.sampled_from([0, 12]),
)
def test_minimax_equals_brute_force(  # noqa: PLR0917 (hypothesis draws)
    n: int, seed: int, lo: float, hi: float, target_slope: bool, brute_n: int
) -> None:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.5, 1.5, n) * 1e-4
    s = v * rng.normal(0.0, 50e-6, n)
    t = float(rng.uniform(0, v.sum()))
    ts = float(t * 20e-6) if target_slope else 0.0
    res = solve_over_span(
        v, s, [t], span_K=(lo, hi), target_slopes_S_per_K=[ts], max_brute_n=brute_n
    )
    assert res.method == ("enumeration" if brute_n else "meet-in-the-middle")
    expected = _brute(v, s, t, ts, lo=lo, hi=hi)
    assert res.worst_S[0] == pytest.approx(expected, rel=1e-9, abs=1e-18)
    # the reported errors are those of the returned mask
    errs = span_errors(v, s, res.mask, [t], [lo, hi], target_slopes_S_per_K=[ts])
    np.testing.assert_allclose(errs[0], [res.error_lo_S[0], res.error_hi_S[0]], atol=1e-18)


def test_excluded_elements_are_never_used() -> None:
    rng = np.random.default_rng(0)
    v = rng.uniform(0.5, 1.5, (4, 10)) * 1e-4
    s = v * rng.normal(0, 30e-6, v.shape)
    ex = np.zeros(v.shape, dtype=bool)
    ex[:, ::3] = True
    v_bad = np.where(ex, np.nan, v)
    res = solve_over_span(v_bad, s, v.sum(axis=1) / 2, span_K=(-10, 10), exclude=ex)
    assert not (res.mask & ex).any()


def test_compensation_beats_the_plain_mask_over_the_span() -> None:
    # 24 thick-film parts of 10..40 kohm (TCR spread 30 ppm/K): the worst error over
    # +-10 K. (At 16 parts there are too few subsets near a target to trade precision
    # for slope: docs/temperature.md.)
    rng = np.random.default_rng(4)
    m, n = 20, 24
    v = 1e-4 / np.exp(rng.uniform(0, np.log(4), (m, n)))
    alpha = 30e-6 * rng.standard_normal((m, n))
    s = -alpha * v
    t = v.sum(axis=1) * rng.uniform(0.3, 0.7, m)
    plain = solve(v, t)
    plain_err = span_errors(v, s, plain.mask, t, [-10.0, 10.0])
    comp = solve_over_span(v, s, t, span_K=(-10.0, 10.0))
    worst_plain = np.abs(plain_err).max(axis=1)
    assert (comp.worst_S <= worst_plain + 1e-18).all()  # never worse: minimax is exact
    assert np.median(worst_plain / comp.worst_S) > 3.0
    assert comp.method == "meet-in-the-middle"


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="do not match"):
        solve_over_span(np.ones((2, 3)), np.ones((2, 4)), [1.0, 1.0], span_K=(-1, 1))
    with pytest.raises(ValueError, match="finite"):
        solve_over_span([np.nan, 1.0], [0.0, 0.0], [1.0], span_K=(-1, 1))
    with pytest.raises(ValueError, match="<= 32"):
        solve_over_span(np.ones(33), np.zeros(33), [1.0], span_K=(-1, 1))
