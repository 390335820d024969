"""The precision study's core: exact worst-case errors, models, seeds, statistics, slopes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.rss.study import (
    MODELS,
    STATISTICS,
    PointErrors,
    StatisticRow,
    counting_limit_bits,
    draw_instances,
    fit_slopes,
    nearest_sum_errors,
    run_point,
    summarize_point,
    worst_case_errors,
)


def _all_sums(values: np.ndarray) -> np.ndarray:
    """Brute force: every subset sum, sorted (independent of sorted_subset_sums)."""
    n = values.size
    return np.sort([sum(c) for k in range(n + 1) for c in itertools.combinations(values, k)])


def test_worst_case_on_a_hand_example() -> None:
    sums = np.array([[0.0, 1.0, 2.0, 3.0]] * 3)  # values {1, 2}
    err, pos = worst_case_errors(sums, np.array([0.0, 0.2, 4.0]), np.array([3.0, 0.4, 5.0]))
    # [0, 3]: half of a unit gap; [0.2, 0.4]: the far end 0.4 (nearest sum 0);
    # [4, 5] beyond every sum: the end 5 is 2 away from 3.
    np.testing.assert_array_equal(err, [0.5, 0.4, 2.0])
    np.testing.assert_array_equal(pos[1:], [0.4, 5.0])
    assert pos[0] in (0.5, 1.5, 2.5)


@given(
    values=st.lists(
        st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False), min_size=1, max_size=7
    ),
    a=st.floats(-3.0, 3.0),
    b=st.floats(-3.0, 3.0),
)
def test_worst_case_matches_a_dense_scan(values: list[float], a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    s = _all_sums(np.array(values))
    err, pos = worst_case_errors(s[None, :], np.array([lo]), np.array([hi]))
    # The nearest-sum distance d(z) is 1-Lipschitz, so the maximum over a grid of step h
    # is below the exact maximum by at most h/2; the exact value is reached at `pos`.
    grid = np.linspace(lo, hi, 4001)
    d = np.abs(grid[:, None] - s[None, :]).min(axis=1)
    h = (hi - lo) / 4000
    tol = 1e-12 * (1 + np.abs(s).max())  # rounding of the mid-points
    assert d.max() - tol <= err[0] <= d.max() + h / 2 + tol
    assert lo <= pos[0] <= hi
    assert abs(np.abs(pos[0] - s).min() - err[0]) <= tol


@given(
    values=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=8),
    targets=st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=5),
)
def test_nearest_sum_errors_match_brute_force(values: list[float], targets: list[float]) -> None:
    s = _all_sums(np.array(values))
    z = np.array(targets)
    got = nearest_sum_errors(s[None, :], z[None, :])[0]
    want = np.abs(z[:, None] - s[None, :]).min(axis=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * (1 + np.abs(s).max()))


def test_bad_intervals_and_shapes_are_explained() -> None:
    s = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"row 1: interval \[1.0, 0.0\]"):
        worst_case_errors(s, np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(3,\)"):
        worst_case_errors(s, np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="n = 7 must be even"):
        MODELS["differential20"].check_n(7)


def test_models_draw_their_documented_values() -> None:
    rng = np.random.default_rng(1)
    g = MODELS["parallel20"].draw_values(rng, 200, 10)
    assert g.min() >= 1 / 1.2 and g.max() <= 1 / 0.8
    lo, hi = MODELS["parallel20"].target_interval(g)
    np.testing.assert_allclose(hi - lo, 0.5 * g.sum(axis=1))
    d = MODELS["differential20"].draw_values(rng, 200, 10)
    assert (d[:, :5] > 0).all() and (d[:, 5:] < 0).all()
    r = 1 / MODELS["loguniform4"].draw_values(rng, 200, 10)  # R / R0
    assert r.min() >= 0.5 and r.max() <= 2.0 and r.min() < 0.55 and r.max() > 1.8
    u = MODELS["uniform"].draw_values(rng, 200, 10)
    assert u.min() >= -1 and u.max() <= 1


def test_run_point_agrees_with_brute_force_per_instance() -> None:
    model = MODELS["parallel20"]
    # a chunk of 3 rows: the result must not depend on the chunking
    p = run_point(model, 6, 20, seed=5, targets_per_instance=3, chunk_bytes=3 * 8 * 64)
    values, lo, hi, targets = draw_instances(model, 6, 20, seed=5, targets_per_instance=3)
    assert p.instances == 20 and p.random_error.shape == (20, 3)
    for i in range(20):
        s = _all_sums(values[i])
        grid = np.linspace(lo[i], hi[i], 20001)
        d = np.abs(grid[:, None] - s[None, :]).min(axis=1)
        h = (hi[i] - lo[i]) / 20000  # d is 1-Lipschitz: grid max within h/2 of the exact max
        assert d.max() - 1e-12 <= p.worst_error[i] <= d.max() + h / 2 + 1e-12
        want = np.abs(targets[i][:, None] - s[None, :]).min(axis=1)
        np.testing.assert_allclose(p.random_error[i], want, rtol=0, atol=1e-12)
    assert ((p.worst_position >= 0) & (p.worst_position <= 1)).all()
    np.testing.assert_allclose(p.interval_width, hi - lo)
    assert (p.random_error <= p.worst_error[:, None] * (1 + 1e-12)).all()


def test_same_seed_same_numbers_and_instances_are_prefix_stable() -> None:
    m = MODELS["uniform"]
    a = run_point(m, 8, 50, seed=7)
    b = run_point(m, 8, 50, seed=7)
    c = run_point(m, 8, 20, seed=7)
    d = run_point(m, 8, 50, seed=8)
    np.testing.assert_array_equal(a.worst_error, b.worst_error)
    np.testing.assert_array_equal(a.worst_error[:20], c.worst_error)
    np.testing.assert_array_equal(a.random_error[:20], c.random_error)
    assert not np.array_equal(a.worst_error, d.worst_error)
    e = run_point(MODELS["parallel5"], 8, 50, seed=7)
    assert not np.array_equal(a.worst_error, e.worst_error)


def test_summary_picks_actual_instances_and_reports_bits() -> None:
    worst = np.array([0.5, 0.25, 0.125, 2.0**-10] + [2.0**-6] * 96)
    point = PointErrors(
        "uniform", 8, 0, worst, np.zeros(100), np.full((100, 2), 2.0**-9), np.full(100, 2.0)
    )
    rows = {r.statistic: r for r in summarize_point(point)}
    assert tuple(rows) == STATISTICS
    assert rows["worst_max"].error == 0.5 and rows["worst_max"].bits == 1.0
    assert rows["worst_p99"].error == 0.25  # the 2nd-worst of 100: 99 % of them do as well
    assert rows["worst_median"].bits == 6.0
    assert rows["random_median"].bits == 9.0
    assert rows["worst_median"].counting_limit_bits == 8.0  # n + 1 - log2(W = 2)


def test_counting_limit_is_the_pigeonhole_bound() -> None:
    # 2**n evenly spaced sums over [0, W]: best worst case W / 2**(n+1).
    assert counting_limit_bits(10, 2.0) == 10.0
    n, w = 6, 3.0
    sums = (np.arange(2**n) + 0.5) * w / 2**n
    err, _ = worst_case_errors(sums[None, :], np.array([0.0]), np.array([w]))
    assert math.isclose(-math.log2(err[0]), counting_limit_bits(n, w), rel_tol=1e-12)


def test_fit_slopes_recovers_a_line_and_skips_small_n() -> None:
    rows = [
        StatisticRow("m", n, 10, "worst_median", 0.0, 0.9 * n - 3.0, float(n))
        for n in range(4, 24, 2)
    ]
    rows.append(StatisticRow("m", 4, 10, "worst_max", 0.0, 100.0, 4.0))  # below min_n
    rows.append(StatisticRow("m", 20, 10, "worst_max", 0.0, 1.0, 4.0))  # one point: no fit
    (fit,) = fit_slopes(rows, min_n=12)
    assert fit.statistic == "worst_median" and (fit.n_min, fit.n_max, fit.points) == (12, 22, 6)
    assert math.isclose(fit.slope, 0.9) and math.isclose(fit.intercept, -3.0)


@pytest.mark.slow
def test_uniform_median_matches_the_reference_simulation() -> None:
    # rss_slth.md section 6 acceptance: U[-1,1] median worst-z at n = 16 is 10.9 bits
    # (+-0.3). The median instance of 400 is within +-0.2 bits of the population median
    # here (the per-instance bits spread by ~1.5 bits, so the median's standard error is
    # ~1.25 * 1.5 / sqrt(400) ~ 0.1 bit): the 0.3 acceptance band holds.
    p = run_point(MODELS["uniform"], 16, 400, seed=20230323)
    rows = {r.statistic: r for r in summarize_point(p)}
    assert abs(rows["worst_median"].bits - 10.9) <= 0.3
    assert abs(rows["random_median"].bits - 15.35) <= 0.3
