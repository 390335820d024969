"""sorted_subset_sums: every subset sum, sorted, each mask once, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.rss import sorted_subset_sums


def _left_to_right_sums(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Sum of each mask's values added in increasing index order (the documented order)."""
    out = np.zeros(masks.shape[0])
    for i, v in enumerate(values):
        out = np.where((masks >> np.uint64(i)) & np.uint64(1), out + v, out)
    return out


values_1d = st.lists(
    st.one_of(
        st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
        st.sampled_from([0.0, 1.0, 1e-9, -1e-9]),  # exact ties and tiny spreads
    ),
    min_size=0,
    max_size=12,
).map(np.array)


@given(values_1d)
def test_sums_are_sorted_complete_and_exact(values: np.ndarray) -> None:
    sums, masks = sorted_subset_sums(values)
    n = values.size
    assert sums.shape == masks.shape == (2**n,)
    assert masks.dtype == np.uint64
    assert np.all(np.diff(sums) >= 0)
    # every subset exactly once
    assert np.array_equal(np.sort(masks), np.arange(2**n, dtype=np.uint64))
    # bit-identical to the left-to-right float sum of each subset
    assert np.array_equal(sums, _left_to_right_sums(values, masks))


def test_small_example() -> None:
    sums, masks = sorted_subset_sums(np.array([0.5, -1.0, 2.0]))
    assert sums.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert masks.tolist() == [2, 3, 0, 1, 6, 7, 4, 5]


def test_empty_set_has_the_empty_sum() -> None:
    sums, masks = sorted_subset_sums(np.array([]))
    assert sums.tolist() == [0.0]
    assert masks.tolist() == [0]


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (np.zeros((2, 3)), r"1-D, got shape \(2, 3\)"),
        (np.ones(31), "n = 31"),
        (np.array([1.0, np.nan]), r"values\[1\] = nan"),
        (np.array([np.inf]), r"values\[0\] = inf"),
    ],
)
def test_bad_input(values: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sorted_subset_sums(values)
