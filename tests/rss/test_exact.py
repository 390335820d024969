"""Exact kernels: floor/ceiling and window searches against brute force; MITM == enumeration."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from labrss.rss.exact import (
    bits_to_bool,
    enumerate_nearest,
    enumerate_window_min_cost,
    mitm_nearest,
    mitm_window_min_cost,
)

EPS = np.finfo(np.float64).eps


def all_masks(n: int) -> np.ndarray:
    """Every subset of n elements as a bool array (2**n, n)."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


def instance(kind: str, n: int, cells: int, seed: int) -> np.ndarray:
    """Seeded values (cells, n) of one adversarial family."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, (cells, n))
    if kind == "equal":
        return np.full((cells, n), 0.3)
    if kind == "spread":  # log-uniform 1e-9 .. 1e3
        return 10.0 ** rng.uniform(-9.0, 3.0, (cells, n))
    if kind == "zeros":
        return np.where(rng.random((cells, n)) < 0.5, 0.0, rng.uniform(0, 1, (cells, n)))
    return rng.integers(0, 5, (cells, n)).astype(float)  # "integers": many exact ties


kinds = st.sampled_from(["uniform", "equal", "spread", "zeros", "integers"])
seeds = st.integers(0, 2**32 - 1)


def ulp_tol(values: np.ndarray) -> float:
    """Rounding of an n-term sum: at most n ulps of the largest partial sum magnitude."""
    return float(4 * (values.shape[-1] + 1) * EPS * np.abs(values).sum())


def left_to_right_sums(values: np.ndarray) -> np.ndarray:
    """Every subset sum (mask order) added in increasing index order, like the kernels."""
    masks = all_masks(values.shape[0])
    out = np.zeros(masks.shape[0])
    for i, v in enumerate(values):
        out = np.where(masks[:, i], out + v, out)
    return out


@given(kinds, st.integers(0, 12), seeds)
def test_floor_and_ceiling_match_brute_force(kind: str, n: int, seed: int) -> None:
    values = instance(kind, n, 3, seed)
    rng = np.random.default_rng(seed + 1)
    span = np.abs(values).sum(1, keepdims=True) + 1.0
    targets = rng.uniform(-1.2, 1.2, (3, 4)) * span
    targets[0, 0] = values[0, : n // 2].sum()  # a sum that exists (up to rounding)
    f_enum, fm_enum, c_enum, cm_enum = enumerate_nearest(values, targets)
    f_mitm, fm_mitm, c_mitm, cm_mitm = mitm_nearest(values, targets)
    for c in range(3):
        sums = left_to_right_sums(values[c])
        tol = ulp_tol(values[c])
        for k in range(4):
            t = targets[c, k]
            below, above = sums[sums <= t], sums[sums > t]
            # enumeration adds in the same order as the brute force: bit-identical
            assert f_enum[c, k] == (below.max() if below.size else -np.inf)
            assert c_enum[c, k] == (above.min() if above.size else np.inf)
            # MITM adds the two halves separately: the nearest sum agrees to rounding
            assert f_mitm[c, k] <= t < c_mitm[c, k]
            nearest = np.abs(sums - t).min()
            assert abs(min(t - f_mitm[c, k], c_mitm[c, k] - t) - nearest) <= tol
            # every reported finite sum is realised by its mask
            for sums_k, bits in (
                (f_enum, fm_enum),
                (c_enum, cm_enum),
                (f_mitm, fm_mitm),
                (c_mitm, cm_mitm),
            ):
                if np.isfinite(sums_k[c, k]):
                    chosen = bits_to_bool(bits[c, k], n)
                    assert abs(values[c][chosen].sum() - sums_k[c, k]) <= tol


@given(kinds, st.integers(10, 18), seeds)
def test_mitm_agrees_with_enumeration(kind: str, n: int, seed: int) -> None:
    values = instance(kind, n, 2, seed)
    rng = np.random.default_rng(seed)
    targets = rng.uniform(0.0, 1.0, (2, 8)) * values.sum(1, keepdims=True)
    enum = enumerate_nearest(values, targets)
    mitm = mitm_nearest(values, targets)
    tol = ulp_tol(values)
    dist_enum = np.minimum(targets - enum[0], enum[2] - targets)
    dist_mitm = np.minimum(targets - mitm[0], mitm[2] - targets)
    assert np.all(np.abs(dist_enum - dist_mitm) <= tol)


def test_mitm_agrees_with_enumeration_at_n24() -> None:
    values = np.random.default_rng(24).uniform(0.5, 1.5, (1, 24))
    targets = np.array([[10.0, 11.1, 12.000001, 13.7]])  # the dense middle of [0, ~24]
    enum = enumerate_nearest(values, targets)
    mitm = mitm_nearest(values, targets)
    tol = ulp_tol(values)
    dist_enum = np.minimum(targets - enum[0], enum[2] - targets)
    dist_mitm = np.minimum(targets - mitm[0], mitm[2] - targets)
    assert np.all(np.abs(dist_enum - dist_mitm) <= tol)
    # uniform values on 24 elements resolve ~2**-24 of the range: both sides are close
    assert np.all(mitm[2] - mitm[0] < 1e-5)


@given(kinds, st.integers(0, 12), seeds, st.sampled_from(["random", "unit"]))
def test_window_min_cost_matches_brute_force(kind: str, n: int, seed: int, cost: str) -> None:
    values = instance(kind, n, 3, seed)
    rng = np.random.default_rng(seed + 2)
    costs = rng.uniform(0, 1, (3, n)) if cost == "random" else np.ones((3, n))
    centre = rng.uniform(0.0, 1.0, (3, 3)) * values.sum(1, keepdims=True)
    half = rng.uniform(0.0, 0.3, (3, 3)) * (np.abs(values).sum(1, keepdims=True) + 1e-12)
    lo, hi = centre - half, centre + half
    masks = all_masks(n)
    for kernel in (enumerate_window_min_cost, mitm_window_min_cost):
        bits, found = kernel(values, costs, lo, hi)
        for c in range(3):
            sums = masks @ values[c]
            total_cost = masks @ costs[c]
            for k in range(3):
                inside = (sums >= lo[c, k]) & (sums <= hi[c, k])
                assert found[c, k] == inside.any()
                if inside.any():
                    chosen = bits_to_bool(bits[c, k], n)
                    s = values[c][chosen].sum()
                    tol = ulp_tol(values[c])
                    assert lo[c, k] - tol <= s <= hi[c, k] + tol
                    assert costs[c][chosen].sum() <= total_cost[inside].min() + 1e-12


@given(kinds, st.integers(18, 20), seeds)
def test_window_min_cost_mitm_agrees_with_enumeration(kind: str, n: int, seed: int) -> None:
    """Large enough for the two-ended merges of the cost-carrying tables (runs >= 256)."""
    values = instance(kind, n, 1, seed)
    rng = np.random.default_rng(seed + 3)
    costs = rng.uniform(0, 1, (1, n))
    centre = rng.uniform(0.2, 0.8, (1, 3)) * values.sum(1, keepdims=True)
    half = rng.uniform(0.0, 1e-3, (1, 3)) * (np.abs(values).sum(1, keepdims=True) + 1e-12)
    lo, hi = centre - half, centre + half
    e_bits, e_found = enumerate_window_min_cost(values, costs, lo, hi)
    m_bits, m_found = mitm_window_min_cost(values, costs, lo, hi)
    np.testing.assert_array_equal(e_found, m_found)
    e_cost = (bits_to_bool(e_bits, n) * costs[:, None, :]).sum(-1)
    m_cost = (bits_to_bool(m_bits, n) * costs[:, None, :]).sum(-1)
    # sums of up to 20 costs in [0, 1]: rounding below 1e-13
    np.testing.assert_allclose(m_cost[m_found], e_cost[e_found], rtol=0, atol=1e-12)
