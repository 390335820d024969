"""Heuristic beyond the exact limit: invariants, determinism, quality, n > 64."""

from __future__ import annotations

import numpy as np

from labrss.rss import solve
from labrss.rss.heuristic import heuristic_nearest, heuristic_window_min_cost

EPS = float(np.finfo(np.float64).eps)


def test_floor_and_ceiling_invariants_and_masks_realise_sums() -> None:
    rng = np.random.default_rng(1)
    values = rng.uniform(-1.0, 1.0, (4, 50))
    targets = rng.uniform(-3.0, 3.0, (4, 3))
    lo, lo_mask, hi, hi_mask = heuristic_nearest(values, targets, free_n=20, restarts=3)
    tol = 4 * 52 * EPS * np.abs(values).sum(1, keepdims=True)
    assert np.all(lo <= targets + tol)
    assert np.all(hi >= targets - tol)
    np.testing.assert_allclose((values[:, None, :] * lo_mask).sum(-1), lo, rtol=0, atol=tol.max())
    np.testing.assert_allclose((values[:, None, :] * hi_mask).sum(-1), hi, rtol=0, atol=tol.max())
    # 20 free values in [-1, 1] resolve ~2**-20 of their ~10-wide range: gap well below 1e-4
    assert np.all(hi - lo < 1e-4)


def test_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(2)
    values = rng.uniform(0.0, 1.0, (3, 40))
    targets = rng.uniform(5.0, 15.0, (3, 2))
    a = heuristic_nearest(values, targets, free_n=16, restarts=4, seed=9)
    b = heuristic_nearest(values, targets, free_n=16, restarts=4, seed=9)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_more_elements_than_a_uint64_mask() -> None:
    """n = 100 > 64: masks are bool arrays; error near the free set's resolution."""
    rng = np.random.default_rng(3)
    el = rng.uniform(0.8e-3, 1.2e-3, (5, 100))  # S
    target = rng.uniform(0.3, 0.7, 5) * el.sum(1)
    res = solve(el, target)
    assert res.method == "heuristic"
    assert res.mask.shape == (5, 100)
    assert not res.exact.any()
    assert res.reachable.all()
    np.testing.assert_allclose(res.value, (el * res.mask).sum(1), rtol=1e-13)
    # 32 free elements of ~1 mS: sums spaced ~32 mS * 2**-32 ~ 1e-11 S around the target
    assert np.all(np.abs(res.error) < 1e-9)


def test_auto_uses_heuristic_above_max_exact_n_and_matches_exact_when_free_covers_all() -> None:
    rng = np.random.default_rng(4)
    el = rng.uniform(0.5e-3, 1.5e-3, (3, 20))
    target = rng.uniform(0.3, 0.7, 3) * el.sum(1)
    exact = solve(el, target)
    heur = solve(el, target, max_exact_n=12)
    assert heur.method == "heuristic"
    assert not heur.exact.any()
    # 20 elements <= the 32-element free set: the heuristic's single MITM is exhaustive
    tol = 4 * 22 * EPS * el.sum(1)
    assert np.all(np.abs(np.abs(heur.error) - np.abs(exact.error)) <= tol)


def test_secondary_with_the_heuristic_stays_in_the_window() -> None:
    rng = np.random.default_rng(5)
    el = rng.uniform(0.8e-3, 1.2e-3, (4, 60))
    target = rng.uniform(0.4, 0.6, 4) * el.sum(1)
    opt = solve(el, target)
    tol = 1e-9  # S: a tolerance far above the ~1e-12 S optimum, so fewer switches exist
    few = solve(el, target, secondary="switches", near_optimal_tol=tol)
    assert np.all(np.abs(few.error) <= np.abs(opt.error) + tol * (1 + 1e-9))
    assert np.all(few.n_closed <= opt.n_closed)
    assert np.any(few.n_closed < opt.n_closed)


def test_window_search_finds_the_planted_sum() -> None:
    rng = np.random.default_rng(6)
    values = rng.integers(1, 1000, (2, 45)).astype(float)
    planted = rng.random((2, 45)) < 0.5
    centre = (values * planted).sum(1)[:, None]
    costs = np.ones((2, 45))
    mask, found = heuristic_window_min_cost(values, costs, centre, centre, centre)
    assert found.all()
    np.testing.assert_array_equal((values[:, None, :] * mask).sum(-1), centre)
