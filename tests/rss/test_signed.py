"""solve_signed: joint differential-pair subsets against brute force; options; errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.rss import solve_signed
from labrss.rss.solver import Method
from tests.rss.test_solver import FAMILIES, all_masks, elements_of

EPS = float(np.finfo(np.float64).eps)


def brute_signed(
    pos: np.ndarray, neg: np.ndarray, hp: np.ndarray, hn: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All (S+, S-) pairs: masks (K, n+ + n-) and G+ - G- with leakage (S)."""
    masks = all_masks(pos.size + neg.size)
    gp = hp.sum() + masks[:, : pos.size].astype(float) @ (pos - hp)
    gn = hn.sum() + masks[:, pos.size :].astype(float) @ (neg - hn)
    return masks, gp - gn


@given(
    st.sampled_from(FAMILIES),
    st.tuples(st.integers(0, 6), st.integers(0, 6)),
    st.integers(0, 2**32 - 1),
    st.booleans(),
    st.sampled_from(["enumerate", "mitm"]),
)
def test_error_equals_brute_force_optimum(
    family: str, sizes: tuple[int, int], seed: int, leaky: bool, method: Method
) -> None:
    n_pos, n_neg = sizes
    rng = np.random.default_rng(seed)
    pos = elements_of(family, n_pos, seed, 1e-3)
    neg = elements_of(family, n_neg, seed + 1, 1e-3)
    hp = pos * 0.02 if leaky else np.zeros(n_pos)
    hn = neg * 0.02 if leaky else np.zeros(n_neg)
    masks, values = brute_signed(pos, neg, hp, hn)
    span = pos.sum() + neg.sum() + 1e-3
    targets = rng.uniform(-1.2, 1.2, 3) * span
    targets[0] = values[rng.integers(values.size)]  # a reachable value
    res = solve_signed(pos, neg, targets, leakage_S=(hp, hn), method=method)
    tol = 4 * (n_pos + n_neg + 2) * EPS * (span + hp.sum() + hn.sum())
    assert res.mask_pos.shape == (3, n_pos)
    assert res.mask_neg.shape == (3, n_neg)
    for k, t in enumerate(targets):
        assert abs(abs(res.error[k]) - np.abs(values - t).min()) <= tol
        both = np.concatenate([res.mask_pos[k], res.mask_neg[k]])
        assert abs(res.value[k] - values[(masks == both).all(1)][0]) <= tol
    assert res.reachable_lo[0] == pytest.approx(values.min(), abs=tol)
    assert res.reachable_hi[0] == pytest.approx(values.max(), abs=tol)
    inside = (targets >= values.min() + tol) & (targets <= values.max() - tol)
    assert np.all(res.reachable[inside])
    assert res.exact.all()


def test_zero_weight_is_all_switches_open() -> None:
    res = solve_signed([1e-3, 2e-3], [1.5e-3, 0.7e-3], 0.0)
    assert float(res.value) == 0.0
    assert not res.mask_pos.any()
    assert not res.mask_neg.any()


def test_exclusions_per_column_and_fewest_switches() -> None:
    pos = np.array([1e-3, 1e-3, 2e-3])
    neg = np.array([1e-3, 0.5e-3])
    res = solve_signed(pos, neg, 1.5e-3, exclude=(np.array([False, False, True]), None))
    assert not res.mask_pos[2]
    assert float(res.value) == pytest.approx(1.5e-3, abs=1e-18)
    # 1.5 mS: {1, 1} - {0.5} uses 3 switches, {2} - {0.5} would use 2 but 2 is excluded
    assert int(res.n_closed) == 3
    few = solve_signed(pos, neg, 1.5e-3, secondary="switches")
    assert int(few.n_closed) == 2
    assert few.mask_pos.tolist() == [False, False, True]


def test_sigma_of_a_difference_adds_both_columns() -> None:
    res = solve_signed([1e-3], [0.4e-3], 0.6e-3, sigma_S=(np.array([3e-6]), np.array([4e-6])))
    assert res.sigma is not None
    assert float(res.sigma) == pytest.approx(5e-6, rel=1e-12)  # sqrt(3**2 + 4**2) uS


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"series_resistance_ohm": 10.0}, "not a subset sum"),
        ({"target_kind": "resistance"}, "only target_kind='conductance'"),
        ({"topology": "series"}, "only target_kind='conductance'"),
        ({"secondary": "variance"}, "needs the element uncertainties"),
        ({"secondary": "cost"}, "secondary = 'cost'"),
        ({"leakage_S": (np.zeros(2), np.full(3, 1.0))}, r"leakage_S \(neg\).*exceeds"),
        ({"sigma_S": (np.zeros(2), None)}, "both columns"),
    ],
)
def test_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solve_signed(np.full(2, 1e-3), np.full(3, 1e-3), 0.5e-3, **kwargs)


def test_bad_elements_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"neg_elements\[cell \(1,\), element 0\] = nan"):
        solve_signed(np.ones((2, 2)), [[1.0], [np.nan]], [0.0, 0.0])
    with pytest.raises(ValueError, match="same number of dimensions"):
        solve_signed(np.ones((2, 2)), np.ones(3), [0.0, 0.0])
    with pytest.raises(ValueError, match=r"targets shape \(3,\) does not broadcast"):
        solve_signed(np.ones((2, 2)), np.ones((2, 3)), [0.0, 0.0, 1.0])
