"""Calibration designs: Hadamard/S-matrix constructions and the standard-error factors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.designs import (
    Design,
    hadamard,
    hadamard_order_available,
    holdout_subsets,
    one_by_one,
    random_balanced_design,
    rows_to_masks,
    s_matrix,
    s_matrix_design,
    standard_error_factor,
)
from calibration.estimation import simulate_standard_errors

S_ORDERS = (3, 7, 11, 15, 19, 23, 27, 31)


def test_hadamard_matrices_are_hadamard() -> None:
    available = [h for h in range(1, 130) if hadamard_order_available(h)]
    assert available[:12] == [1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    for h in available:
        H = hadamard(h)
        assert set(np.unique(H)) <= {-1, 1}
        np.testing.assert_array_equal(H @ H.T, h * np.eye(h, dtype=np.int64))
    for h in (3, 6, 52, 92):
        with pytest.raises(ValueError, match=f"order {h}"):
            hadamard(h)


@pytest.mark.parametrize("m", S_ORDERS)
def test_s_matrix_structure(m: int) -> None:
    S = s_matrix(m).astype(np.int64)
    assert S.shape == (m, m)
    assert (S.sum(axis=1) == (m + 1) // 2).all() and (S.sum(axis=0) == (m + 1) // 2).all()
    # S^T S = (m+1)/4 (I + J): each pair of branches shares (m+1)/4 rows.
    np.testing.assert_array_equal(S.T @ S, (m + 1) // 4 * (np.eye(m, dtype=np.int64) + 1))


@pytest.mark.parametrize("n", S_ORDERS)
def test_variance_factor_without_offset_is_4n_over_n_plus_1_squared(n: int) -> None:
    # c0 known: S-matrix (n readings) vs n single readings; derivation in calibration.designs.
    s_var = standard_error_factor(s_matrix_design(n, with_empty=False).X, intercept=False) ** 2
    single_var = standard_error_factor(np.eye(n, dtype=np.uint8), intercept=False) ** 2
    np.testing.assert_allclose(single_var, 1.0)
    np.testing.assert_allclose(s_var, 4 * n / (n + 1) ** 2, rtol=1e-12)


@pytest.mark.parametrize("n", S_ORDERS)
def test_variance_factor_with_offset_is_2_over_n_plus_1(n: int) -> None:
    # c0 estimated, the empty row in both designs, M = n + 1 readings each.
    weighing = s_matrix_design(n)
    single = one_by_one(n)
    assert weighing.n_readings == single.n_readings == n + 1
    w_var = standard_error_factor(weighing.X) ** 2
    o_var = standard_error_factor(single.X) ** 2
    np.testing.assert_allclose(w_var, 4 / (n + 1), rtol=1e-12)
    np.testing.assert_allclose(o_var, 2.0, rtol=1e-12)
    np.testing.assert_allclose(w_var / o_var, 2 / (n + 1), rtol=1e-12)


def test_default_board_bank_of_8_weighing_beats_one_by_one_at_equal_readings() -> None:
    # n = 8 is padded from the S-matrix of order m = 11: 12 readings (empty + 11 rows).
    weighing = s_matrix_design(8)
    assert weighing.name == "s_matrix_11" and weighing.n_readings == 12
    # Dropping columns keeps the remaining columns' variance 4/(m+1) (they stay orthogonal
    # to the dropped ones in the centred design): standard error 2/sqrt(12) sigma.
    np.testing.assert_allclose(standard_error_factor(weighing.X), 2 / np.sqrt(12), rtol=1e-12)
    single = one_by_one(8, weighing.n_readings)  # empty + 8 singles, cycled to 12 rows
    o = standard_error_factor(single.X)
    # Cycling (9-row pass) gives two empty readings (c0: variance 1/2); branches 0 and 1
    # are read twice (variance 1/2 + 1/2 = 1), the others once (1 + 1/2 = 1.5).
    np.testing.assert_allclose(o, np.sqrt([1, 1, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]), rtol=1e-12)
    ratio = float(np.sqrt(np.mean(standard_error_factor(weighing.X) ** 2) / np.mean(o**2)))
    assert ratio == pytest.approx(np.sqrt((4 / 12) / (11 / 8)), rel=1e-12)  # 0.492
    # With the full row added to both (it makes the series path identifiable), at 13
    # readings each: weighing 0.563 sigma, one-by-one 0.713 to 0.936 sigma.
    w_full = standard_error_factor(s_matrix_design(8, with_full=True).X)
    o_full = standard_error_factor(one_by_one(8, 13, with_full=True).X)
    assert (w_full < o_full).all()
    assert w_full.mean() / o_full.mean() == pytest.approx(0.640, abs=1e-3)


def test_simulation_agrees_with_the_analytic_factor() -> None:
    rng = np.random.default_rng(11)
    a = 1e-3 * (1 + 0.05 * rng.standard_normal(7))
    sigma = 1e-7
    trials = 4000
    for design in (s_matrix_design(7), one_by_one(7)):
        empirical, reported = simulate_standard_errors(
            design.X, a, leakage_S=1e-8, sigma_S=sigma, n_trials=trials, rng=rng
        )
        analytic = sigma * standard_error_factor(design.X)
        np.testing.assert_allclose(reported, analytic, rtol=1e-9)
        # Sample std of 4000 Gaussian draws: relative error 1/sqrt(2*3999) = 1.1 %; 5 sigma.
        np.testing.assert_allclose(empirical, analytic, rtol=0.056)


def test_one_by_one_cycles_and_validates() -> None:
    d = one_by_one(3, 9)
    masks = d.masks.tolist()
    assert masks == [0, 1, 2, 4, 0, 1, 2, 4, 0]
    assert one_by_one(3, with_empty=False, with_full=True).masks.tolist() == [1, 2, 4, 7]
    with pytest.raises(ValueError, match="needs >= 4 readings"):
        one_by_one(3, 3)
    with pytest.raises(ValueError, match=r"integer 1\.\.64"):
        one_by_one(65)


@pytest.mark.parametrize("n", [1, 2, 4, 5, 8, 12, 16, 24, 33, 64])
def test_padded_s_matrix_designs_are_full_rank(n: int) -> None:
    d = s_matrix_design(n, with_full=True)
    A = np.hstack([np.ones((d.n_readings, 1)), d.X])
    assert np.linalg.matrix_rank(A) == n + 1
    assert d.masks[0] == 0 and int(d.masks[-1]) == (1 << n) - 1


def test_random_balanced_design() -> None:
    d1 = random_balanced_design(8, 20, np.random.default_rng(3), with_full=True)
    d2 = random_balanced_design(8, 20, np.random.default_rng(3), with_full=True)
    np.testing.assert_array_equal(d1.X, d2.X)
    sizes = d1.X.sum(axis=1)
    assert sizes[0] == 0 and sizes[-1] == 8 and set(sizes[1:-1].tolist()) == {4}
    assert np.isfinite(standard_error_factor(d1.X)).all()
    with pytest.raises(ValueError, match="needs >= 9 readings"):
        random_balanced_design(8, 8, np.random.default_rng(0))


def test_holdout_subsets_are_new_distinct_and_bounded() -> None:
    design = s_matrix_design(7)
    hold = holdout_subsets(7, 30, np.random.default_rng(5), exclude=design.X)
    masks = rows_to_masks(hold).tolist()
    assert len(set(masks)) == 30 and 0 not in masks
    assert not set(masks) & set(design.masks.tolist())
    d = design.with_holdout(hold)
    assert d.holdout.shape == (30, 7) and d.holdout_masks.tolist() == masks
    assert len(holdout_subsets(3, 4, np.random.default_rng(0), exclude=one_by_one(3).X)) == 4
    with pytest.raises(ValueError, match="only 4 subsets"):
        holdout_subsets(3, 5, np.random.default_rng(0), exclude=one_by_one(3).X)


def test_design_validation() -> None:
    with pytest.raises(ValueError, match="entries must be 0 or 1"):
        Design("bad", np.array([[0, 2]]))
    with pytest.raises(ValueError, match="holdout rows have 3 branches"):
        Design("bad", np.eye(2, dtype=np.uint8), np.ones((1, 3), np.uint8))
    with pytest.raises(ValueError, match="cannot identify 3 branches"):
        standard_error_factor(np.array([[1, 1, 0], [0, 1, 1], [1, 1, 0]]))


@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=20))
def test_rows_to_masks_round_trip(masks: list[int]) -> None:
    bits = np.array([[(m >> i) & 1 for i in range(64)] for m in masks], dtype=np.uint8)
    assert [int(m) for m in rows_to_masks(bits)] == masks
