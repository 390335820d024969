"""MVM comparison metrics against hand-computed values, and their properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labrss.metrics.mvm import (
    accuracy,
    argmax_agreement,
    compare,
    confusion_matrix,
    error_histogram,
    fit_gain_offset,
    mean_absolute_error,
    relative_l2_error,
    snr_db,
)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def test_hand_computed_values() -> None:
    yd = np.array([[3.0, 4.0], [1.0, 0.0]])
    ya = np.array([[3.0, 4.5], [1.0, 2.0]])
    # ||(0, 0.5)|| / 5 = 0.1 ; ||(0, 2)|| / 1 = 2
    np.testing.assert_allclose(relative_l2_error(ya, yd), [0.1, 2.0])
    assert snr_db(0.1) == pytest.approx(20.0)
    assert snr_db(0.01) == pytest.approx(40.0)
    assert mean_absolute_error(ya, yd) == pytest.approx((0.5 + 2.0) / 4)
    # argmax: analog (1, 1), digital (1, 0)
    assert argmax_agreement(ya, yd) == 0.5
    assert accuracy(yd, np.array([1, 0])) == 1.0
    assert accuracy(ya, np.array([1, 0])) == 0.5
    cm = confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), 3)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 0, 1], [0, 1, 1]])
    counts, edges = error_histogram(ya, yd, bins=4)
    # errors 0, 0.5, 0, 2 over [0, 2] in 4 bins of 0.5 (the last bin is closed)
    np.testing.assert_array_equal(counts, [2, 1, 0, 1])
    np.testing.assert_allclose(edges, [0.0, 0.5, 1.0, 1.5, 2.0])


def test_zero_reference_vectors() -> None:
    np.testing.assert_array_equal(relative_l2_error([[0.0, 0.0]], [[0.0, 0.0]]), [0.0])
    assert relative_l2_error([[1.0, 0.0]], [[0.0, 0.0]])[0] == np.inf
    assert snr_db(0.0) == np.inf


def test_gain_offset_fit_recovers_affine_error() -> None:
    rng = np.random.default_rng(0)
    yd = rng.normal(size=(200, 3))
    gain = np.array([1.02, 0.97, 1.5])
    offset = np.array([0.1, -0.05, 0.0])
    noise = 1e-3 * rng.standard_normal(yd.shape)
    ya = gain * yd + offset + noise
    fit = fit_gain_offset(ya, yd)
    # least squares with N = 200 points of unit spread: parameter std ~ 1e-3 / sqrt(200)
    np.testing.assert_allclose(fit.gain, gain, atol=5 * 1e-3 / np.sqrt(200))
    np.testing.assert_allclose(fit.offset, offset, atol=5 * 1e-3 / np.sqrt(200))
    # what remains is the noise: RMS ~1e-3 per column
    np.testing.assert_allclose(fit.residual_rms, 1e-3, rtol=0.2)
    before = np.median(relative_l2_error(ya, yd))
    after = np.median(fit.rel_l2_after)
    assert after < before / 10
    # a constant reference column: gain 1, offset the mean difference
    const = fit_gain_offset(np.array([[2.0], [3.0]]), np.array([[1.0], [1.0]]))
    assert const.gain[0] == 1.0
    assert const.offset[0] == 1.5
    with pytest.raises(ValueError, match="column 0 has a fitted gain of 0"):
        fit_gain_offset(np.array([[1.0], [1.0], [1.0]]), np.array([[0.0], [1.0], [2.0]]))


@given(
    arrays(np.float64, (4, 5), elements=finite),
    arrays(np.float64, (4, 5), elements=finite),
    st.floats(1e-3, 1e3),
)
def test_relative_error_is_scale_invariant(ya: np.ndarray, yd: np.ndarray, k: float) -> None:
    a = relative_l2_error(ya, yd)
    b = relative_l2_error(k * ya, k * yd)
    fin = np.isfinite(a)
    np.testing.assert_allclose(b[fin], a[fin], rtol=1e-9)
    np.testing.assert_array_equal(np.isfinite(b), fin)


@given(arrays(np.float64, (3, 6), elements=finite))
def test_identical_vectors(y: np.ndarray) -> None:
    eps = relative_l2_error(y, y)
    np.testing.assert_array_equal(eps, 0.0)
    assert np.all(snr_db(eps) == np.inf)
    assert mean_absolute_error(y, y) == 0.0
    assert argmax_agreement(y, y) == 1.0


@given(arrays(np.float64, (5, 4), elements=finite), arrays(np.float64, (5, 4), elements=finite))
def test_properties_of_the_error(ya: np.ndarray, yd: np.ndarray) -> None:
    eps = relative_l2_error(ya, yd)
    assert np.all(eps >= 0)
    # SNR is monotone decreasing in eps, 20 dB per decade
    fin = np.isfinite(eps) & (eps > 0)
    np.testing.assert_allclose(snr_db(eps[fin] * 10), snr_db(eps[fin]) - 20.0, atol=1e-9)
    assert mean_absolute_error(ya, yd) == pytest.approx(mean_absolute_error(yd, ya))
    counts, _ = error_histogram(ya, yd, bins=7)
    assert counts.sum() == ya.size


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=40))
def test_confusion_matrix_counts(pairs: list[tuple[int, int]]) -> None:
    lab = np.array([p[0] for p in pairs])
    pred = np.array([p[1] for p in pairs])
    cm = confusion_matrix(lab, pred, 5)
    assert cm.sum() == len(pairs)
    assert np.trace(cm) == int(np.sum(lab == pred))
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(lab, minlength=5))


def test_compare_collects_everything() -> None:
    rng = np.random.default_rng(1)
    yd = rng.normal(size=(100, 10))
    ya = yd + 0.01 * rng.standard_normal(yd.shape)
    labels = np.argmax(yd, axis=1)
    res = compare(ya, yd, labels)
    eps = relative_l2_error(ya, yd)
    assert res.median_rel_l2 == pytest.approx(np.median(eps))
    assert res.snr_db_median == pytest.approx(-20 * np.log10(np.median(eps)))
    # 10 outputs of unit spread, noise 0.01 each: eps ~ 0.01
    assert 0.005 < res.median_rel_l2 < 0.02
    assert res.accuracy_digital == 1.0
    assert res.accuracy_analog == res.argmax_agreement
    assert res.confusion_digital is not None
    assert res.confusion_analog is not None
    assert int(res.confusion_digital.trace()) == 100
    assert res.histogram_counts.sum() == 1000
    no_labels = compare(ya, yd)
    assert no_labels.accuracy_analog is None


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"y_analog shape \(2, 3\) and y_digital shape \(2, 2\)"):
        relative_l2_error(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"y_analog\[1, 0\] = nan"):
        relative_l2_error([[0.0], [np.nan]], [[1.0], [1.0]])
    with pytest.raises(ValueError, match="labels"):
        accuracy(np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="snr_db"):
        snr_db(-1.0)
    with pytest.raises(ValueError, match="n_classes"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 2)
