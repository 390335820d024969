"""The RSS explorer's bank: calibration arrays to solver inputs, and the precision curve
against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.gui.bank import bits_vs_n, solve_bank, synthetic_bank
from labrss.rss import solve


def _brute_worst(values: np.ndarray, interval: str) -> float:
    """Worst-case nearest-sum distance over the middle half [W/4, 3W/4] or the whole
    [0, W], by enumerating every subset."""
    sums = np.sort(
        [sum(c) for n in range(len(values) + 1) for c in itertools.combinations(values, n)]
    )
    w = float(values.sum())
    lo, hi = (0.25 * w, 0.75 * w) if interval == "middle" else (0.0, w)
    candidates = [lo, hi] + [
        0.5 * (a + b) for a, b in itertools.pairwise(sums) if lo <= 0.5 * (a + b) <= hi
    ]
    return max(float(np.min(np.abs(sums - z))) for z in candidates)


@given(
    st.lists(st.floats(1e-6, 1e-3), min_size=1, max_size=9),
    st.sampled_from(["middle", "full"]),
)
def test_bits_vs_n_equals_brute_force(values: list[float], interval: str) -> None:
    a = np.array(values)
    k = a.size
    bank = synthetic_bank(k, 0)
    bank = type(bank)(a, np.zeros(k), None, 0.0, np.zeros(k, dtype=bool), "test")
    curve = bits_vs_n(bank, interval)  # type: ignore[arg-type]
    for i, n in enumerate(curve.n):
        worst = _brute_worst(a[:n], interval)
        # same sums, summed in a different order: agreement to a few ulps of the width
        assert curve.worst_error_S[i] == pytest.approx(worst, abs=1e-12 * a.sum())
        assert curve.width_S[i] == pytest.approx(a[:n].sum(), rel=1e-12)
        length = a[:n].sum() / 2 if interval == "middle" else a[:n].sum()
        assert curve.bits[i] == pytest.approx(np.log2(length / (2 * worst)), rel=1e-9)
    # 2**n sums, 0 and W among them: fewer than 2**n evenly spaced levels, below n bits
    assert np.all(curve.bits < curve.n + 1e-9)


def test_a_binary_bank_reaches_the_counting_limit_over_the_whole_interval() -> None:
    # a_i = 2**-i: the 2**n sums are evenly spaced by a_{n-1} over [0, W_n], so the
    # worst case is half a step: bits = log2(W_n / a_{n-1}) = log2(2**n - 1)
    a = 2.0 ** -np.arange(8) * 1e-4
    bank = type(synthetic_bank(1, 0))(a, np.zeros(8), None, 0.0, np.zeros(8, dtype=bool), "b")
    curve = bits_vs_n(bank, "full")
    np.testing.assert_allclose(curve.bits, np.log2(2.0**curve.n - 1), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="interval must be 'middle' or 'full'"):
        bits_vs_n(bank, "half")  # type: ignore[arg-type]


def test_bits_vs_n_skips_excluded_elements_and_reports_the_noise_floor() -> None:
    a = 1.0 / (10e3 * 1.8 ** np.arange(6))
    exclude = np.array([False, True, False, False, False, False])
    sigma = 1e-3 * a
    bank = type(synthetic_bank(1, 0))(a, np.zeros(6), sigma, 0.0, exclude, "test")
    curve = bits_vs_n(bank)
    assert curve.n.tolist() == [1, 2, 3, 4, 5]
    assert curve.width_S[1] == pytest.approx(a[0] + a[2])
    assert curve.noise_floor_bits is not None
    # the middle half is half the reachable width
    expected = np.log2((a[0] + a[2]) / 2 / (2 * np.hypot(sigma[0], sigma[2])))
    assert curve.noise_floor_bits[1] == pytest.approx(expected)


def test_solve_bank_is_solve() -> None:
    bank = synthetic_bank(12, 3, r0_ohm=1e3, tolerance=0.1)
    res = solve_bank(bank, 2e-3)
    ref = solve(bank.elements_S, 2e-3)
    np.testing.assert_array_equal(res.mask, ref.mask)
    assert float(res.value) == float(ref.value)


def test_synthetic_bank_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="K=0"):
        synthetic_bank(0, 1)
    with pytest.raises(ValueError, match=r"tolerance=1\.5"):
        synthetic_bank(4, 1, tolerance=1.5)
