"""The pure analysis of the characterisation modules: staircases, switching voltages,
checkpoints, the endurance criterion, drift per decade."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.memristor.characterisation import (
    EnduranceCriterion,
    drift_per_decade,
    log_checkpoints,
    log_time_points,
    sweep_voltages,
    switching_voltages,
)


def test_sweep_staircase() -> None:
    v = sweep_voltages(0.3, 0.2, 0.1)
    np.testing.assert_allclose(v, [0.1, 0.2, 0.3, 0.2, 0.1, -0.1, -0.2, -0.1])
    v = sweep_voltages(0.25, 0.25, 0.1)  # each half ends exactly at its maximum
    assert v.max() == 0.25 and v.min() == -0.25
    with pytest.raises(ValueError, match="step"):
        sweep_voltages(1.0, 1.0, 0.0)


@given(st.floats(0.2, 2.0), st.floats(0.2, 2.0), st.floats(0.01, 0.2), st.floats(0.05, 0.9))
def test_switching_voltages_of_an_ideal_loop(
    v_set: float, v_reset: float, step: float, frac: float
) -> None:
    """A device that jumps to on at +th_set and to off at -th_reset: the extracted
    voltages are the first steps at or beyond the thresholds."""
    v = sweep_voltages(v_set, v_reset, step)
    th_set, th_reset = frac * v_set, frac * v_reset
    g = np.empty(v.size)
    state = 10e-6
    for i, x in enumerate(v):
        if x >= th_set:
            state = 80e-6
        elif x <= -th_reset:
            state = 10e-6
        g[i] = state
    s, r = switching_voltages(v, g[None, :], initial_S=[10e-6])
    expect_set = v[v >= th_set][0]
    expect_reset = v[v <= -th_reset][0]
    # the last step of a half cannot be confirmed by a next step of the same half
    if np.sum(v >= th_set) > 1:
        assert s[0] == pytest.approx(expect_set)
    if np.sum(v <= -th_reset) > 1:
        assert r[0] == pytest.approx(expect_reset)


def test_switching_voltages_ignore_one_noisy_read_and_report_none() -> None:
    v = sweep_voltages(0.5, 0.5, 0.1)  # 0.1..0.5..0.1, -0.1..-0.5..-0.1
    g = np.full((2, v.size), 50e-6)
    g[0, 1] = 60e-6  # one read 20 % high, not confirmed
    s, r = switching_voltages(v, g)
    assert np.isnan(s).all() and np.isnan(r).all()
    with pytest.raises(ValueError, match="readings per cycle"):
        switching_voltages(v, g[:, :-1])


def test_checkpoints_and_time_points() -> None:
    c = log_checkpoints(1000, 10)
    assert c[0] == 1 and c[-1] == 1000 and np.all(np.diff(c) > 0)
    assert 25 <= c.size <= 31
    assert log_checkpoints(1).tolist() == [1]
    t = log_time_points(1e4, 10.0, 5)
    assert t[0] == 0 and t[1] == 10 and t[-1] == pytest.approx(1e4) and t.size == 17


def test_endurance_criterion() -> None:
    crit = EnduranceCriterion(min_on_off_ratio=1.5, patience=2)
    on = np.array([80, 79, 81, 80, 80, 80.0]) * 1e-6
    off = np.array([10, 12, 70, 11, 79, 80.0]) * 1e-6  # one bad checkpoint, then stuck
    assert crit.failed_at(on, off) == 4
    assert crit.failed_at(on[:4], off[:4]) is None
    window = EnduranceCriterion(min_on_off_ratio=1.0, min_window_fraction=0.5, patience=1)
    assert window.failed_at([80e-6, 50e-6], [10e-6, 20e-6]) == 1  # window 70 -> 30 uS
    with pytest.raises(ValueError, match="patience"):
        EnduranceCriterion(patience=0)


def test_drift_per_decade() -> None:
    t = np.array([0.0, 1, 10, 100, 1000])
    g = np.stack([50e-6 - 0.2e-6 * np.log10(np.maximum(t, 1)), np.full(5, 30e-6)], axis=1)
    np.testing.assert_allclose(drift_per_decade(t, g), [-0.2e-6, 0.0], atol=1e-15)
