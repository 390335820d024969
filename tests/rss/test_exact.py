"""Exact kernels: floor/ceiling and window searches against brute force; MITM == enumeration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.rss import exact
from labrss.rss.exact import (
    bits_to_bool,
    enumerate_nearest,
    enumerate_window_min_cost,
    mitm_nearest,
    mitm_nearest_within,
    mitm_window_min_cost,
)
from labrss.rss.subset_sums import (
    _corank,
    build_sum_levels,
    level_offsets_nb,
    merge_range,
    recover_mask,
    sorted_subset_sums,
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


# ------------------------------------------------------------ mask-free level tables
@given(kinds, st.integers(0, 12), seeds)
def test_levels_are_the_sorted_sums_of_each_prefix(kind: str, n: int, seed: int) -> None:
    """Every level j of the arena is bit-identical to sorted_subset_sums(values[:j])."""
    values = instance(kind, n, 1, seed)[0]
    off = level_offsets_nb(n)
    arena = np.full(int(off[-1]), np.nan)
    build_sum_levels(values, arena, off)
    for j in range(n + 1):
        level = arena[off[j] + 1 : off[j] + 1 + 2**j]
        np.testing.assert_array_equal(level, sorted_subset_sums(values[:j])[0])
        assert arena[off[j]] == -np.inf
        assert arena[off[j] + 2**j + 1] == np.inf


@given(kinds, st.integers(0, 11), seeds)
def test_recovered_masks_add_up_exactly(kind: str, n: int, seed: int) -> None:
    """The mask recovered for every entry of the top level sums, left to right, to it."""
    values = instance(kind, n, 1, seed)[0]
    off = level_offsets_nb(n)
    arena = np.empty(int(off[-1]))
    build_sum_levels(values, arena, off)
    bits = np.left_shift(np.uint64(1), np.arange(n, dtype=np.uint64))
    top = arena[off[n] + 1 : off[n] + 1 + 2**n]
    masks = np.array([recover_mask(values, bits, arena, off, i) for i in range(2**n)])
    chosen = bits_to_bool(masks.astype(np.uint64), n)
    sums = np.zeros(2**n)
    for i in range(n):  # left to right, like the kernels
        sums = np.where(chosen[:, i], sums + values[i], sums)
    np.testing.assert_array_equal(sums, top)


def test_four_chain_merge_at_every_size() -> None:
    """Levels long enough for the eight-chain merge, with many exact ties (integers)."""
    rng = np.random.default_rng(7)
    for values in (rng.integers(0, 4, 14).astype(float), rng.uniform(-1, 1, 14)):
        off = level_offsets_nb(14)
        arena = np.empty(int(off[-1]))
        build_sum_levels(values, arena, off)
        top = arena[off[14] + 1 : off[14] + 1 + 2**14]
        np.testing.assert_array_equal(top, sorted_subset_sums(values)[0])


# ------------------------------------------------------------ tolerance window
@pytest.mark.parametrize("kernel", ["dispatch", "windows"])
@given(kinds, st.integers(0, 14), seeds)
def test_window_stop_returns_a_sum_inside(kernel: str, kind: str, n: int, seed: int) -> None:
    """Stopped: one side is in the window, both sides are real subsets on their side of
    the target. Not stopped: the exact floor and ceiling (as without a window). Both
    the stored tables (what `mitm_nearest_within` uses at these sizes) and the windowed
    top levels (short windows: the stop falls in any of them)."""
    values = instance(kind, n, 2, seed)
    rng = np.random.default_rng(seed + 5)
    span = np.abs(values).sum(1, keepdims=True) + 1.0
    targets = rng.uniform(-0.2, 1.2, (2, 3)) * span
    width = 10.0 ** rng.uniform(-6, 0, (2, 3)) * span
    lo, hi = targets - width, targets + width
    lo[:, 0], hi[:, 0] = np.inf, -np.inf  # empty window: exact
    if kernel == "windows" and n >= 4:
        f, fm, c, cm, stopped = exact._mitm_within_windows(values, targets, lo, hi, 7)
    else:
        f, fm, c, cm, stopped = mitm_nearest_within(values, targets, lo, hi)
    f0, _, c0, _ = mitm_nearest(values, targets)
    assert not stopped[:, 0].any()
    for cell in range(2):
        tol = ulp_tol(values[cell])
        for k in range(3):
            t = targets[cell, k]
            assert f[cell, k] <= t < c[cell, k]
            for s, bits in ((f[cell, k], fm[cell, k]), (c[cell, k], cm[cell, k])):
                if np.isfinite(s):
                    assert abs(values[cell][bits_to_bool(bits, n)].sum() - s) <= tol
            if stopped[cell, k]:
                inside = (lo[cell, k] <= f[cell, k] <= hi[cell, k]) or (
                    lo[cell, k] <= c[cell, k] <= hi[cell, k]
                )
                assert inside
            else:
                assert f[cell, k] == f0[cell, k]
                assert c[cell, k] == c0[cell, k]


# ------------------------------------------------------------ independent reference
def half_sums(values: np.ndarray) -> np.ndarray:
    """All subset sums of ``values``, unsorted (numpy doubling: s, s + v)."""
    sums = np.zeros(1)
    for v in values:
        sums = np.concatenate([sums, sums + v])
    return sums


def numpy_mitm_distance(values: np.ndarray, target: float) -> float:
    """Nearest subset sum's distance by an independent numpy meet-in-the-middle:
    each half's sums by doubling, np.sort, np.searchsorted."""
    n = values.size
    h = n // 2
    a = np.sort(half_sums(values[:h]))
    b = np.sort(half_sums(values[h:]))
    idx = np.searchsorted(b, target - a)
    best = np.inf
    for shift in (-1, 0):
        j = idx + shift
        ok = (j >= 0) & (j < b.size)
        best = min(best, float(np.abs(a[ok] + b[j[ok]] - target).min()))
    return best


def test_mitm_matches_the_numpy_reference_at_n32_and_n40() -> None:
    rng = np.random.default_rng(40)
    for n, cells in ((32, 3), (40, 1)):
        values = 1.0 / (1e3 * rng.uniform(0.8, 1.2, (cells, n)))  # S: 1 kohm +-20 %
        targets = rng.uniform(0.25, 0.75, (cells, 2)) * values.sum(1, keepdims=True)
        f, fm, c, cm = mitm_nearest(values, targets)
        for cell in range(cells):
            tol = ulp_tol(values[cell])
            for k in range(2):
                t = targets[cell, k]
                ref = numpy_mitm_distance(values[cell], t)
                assert abs(min(t - f[cell, k], c[cell, k] - t) - ref) <= tol
                for s, bits in ((f[cell, k], fm[cell, k]), (c[cell, k], cm[cell, k])):
                    assert abs(values[cell][bits_to_bool(bits, n)].sum() - s) <= tol


# ------------------------------------------------------------ windowed top levels
@given(kinds, st.integers(4, 16), seeds, st.integers(1, 40))
def test_windowed_top_levels_give_the_stored_answers(
    kind: str, n: int, seed: int, window: int
) -> None:
    """The sweep that produces both halves' top levels window by window (any window
    length: shifts, sentinels, windows of one step) returns bit for bit what the sweep
    over the stored tables returns: floor, ceiling and masks (integers: many exact
    ties, broken the same way: first along the path)."""
    values = instance(kind, n, 2, seed)
    rng = np.random.default_rng(seed + 9)
    span = np.abs(values).sum(1, keepdims=True) + 1.0
    targets = rng.uniform(-0.2, 1.2, (2, 2)) * span
    lo, hi = np.full_like(targets, np.inf), np.full_like(targets, -np.inf)
    stored = exact._mitm_within_stored(values, targets, lo, hi)
    windowed = exact._mitm_within_windows(values, targets, lo, hi, window)
    for got, want in zip(windowed, stored, strict=True):
        np.testing.assert_array_equal(got, want)


def test_windowed_top_levels_at_the_four_chain_sizes() -> None:
    """Halves long enough for four-chain windows and sweeps (n = 22, 23), windows that
    end anywhere in the tables, against the stored tables and the enumeration."""
    rng = np.random.default_rng(11)
    for n in (22, 23):
        for values in (
            rng.integers(0, 4, (2, n)).astype(float),
            rng.uniform(0.8, 1.2, (2, n)),
        ):
            targets = rng.uniform(0.25, 0.75, (2, 2)) * values.sum(1, keepdims=True)
            lo, hi = np.full_like(targets, np.inf), np.full_like(targets, -np.inf)
            stored = exact._mitm_within_stored(values, targets, lo, hi)
            enum = enumerate_nearest(values, targets)
            tol = ulp_tol(values)
            assert np.all(np.abs(stored[0] - enum[0]) <= tol)
            assert np.all(np.abs(stored[2] - enum[2]) <= tol)
            for window in (257, 1000, 4096):
                windowed = exact._mitm_within_windows(values, targets, lo, hi, window)
                for got, want in zip(windowed, stored, strict=True):
                    np.testing.assert_array_equal(got, want)


@given(kinds, st.integers(0, 10), seeds, st.data())
def test_merge_range_is_a_slice_of_the_merge(
    kind: str, k: int, seed: int, data: st.DataObject
) -> None:
    """`merge_range` writes exactly ``merge(L, L + a)[lo:hi]`` for any range."""
    values = instance(kind, k + 1, 1, seed)[0]
    level = sorted_subset_sums(values[:k])[0]
    a = float(values[k])
    size = level.size
    src = np.concatenate([[-np.inf], level, [np.inf]])
    full = np.sort(np.concatenate([level, level + a]))
    lo = data.draw(st.integers(0, 2 * size))
    hi = data.draw(st.integers(lo, 2 * size))
    dst = np.full(hi - lo + 2, np.nan)
    p_lo = _corank(src, 1, size, a, lo)
    p_hi = _corank(src, 1, size, a, hi)
    merge_range(src, 1, size, a, lo, hi, p_lo, p_hi, dst, 1)
    np.testing.assert_array_equal(dst[1 : hi - lo + 1], full[lo:hi])
    assert np.isnan(dst[0]) and np.isnan(dst[-1])  # nothing written outside
