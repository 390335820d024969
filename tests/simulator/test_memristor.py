"""The memristor device model (simulator/memristor.py), vectorised over many devices.

Statistical checks use N identical devices (device-to-device spreads set to 0 unless the test
is about them) and bounds of a few standard errors: a mean of N draws of sigma has standard
error sigma/sqrt(N); a sample standard deviation has relative standard error 1/sqrt(2(N-1)).
Every generator is seeded, so each check is deterministic; the bounds say why it passes.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from simulator.board_config import MemristorConfig
from simulator.memristor import (
    MemristorArray,
    MemristorDevices,
    draw_memristor_devices,
    effective_pulses,
    saturating_step,
)

N = 4000
IDENTICAL = MemristorConfig(
    range_sigma=0.0, levels_sigma=0.0, shape_sigma=0.0, threshold_sigma_V=0.0
)
Z = 5.0  # standard errors allowed (two-sided p ~ 6e-7 per check)


def make(
    config: MemristorConfig = IDENTICAL,
    n: int = N,
    x0: float | None = 0.5,
    seed: int = 0,
    **masks: np.ndarray,
) -> MemristorArray:
    devices = draw_memristor_devices(config, (n,), np.random.default_rng(seed), **masks)
    if x0 is not None:
        devices = dataclasses.replace(devices, initial_state=np.full(n, x0))
    return MemristorArray(devices, config, np.random.default_rng(seed + 1000))


def state(arr: MemristorArray, t_s: float) -> np.ndarray:
    d = arr.devices
    return (arr.conductance_S(t_s) - d.g_min_S) / (d.g_max_S - d.g_min_S)


def pulse(arr: MemristorArray, v: float, w: float = 1e-4, count: int = 1, t: float = 0.0) -> None:
    arr.apply_pulses(
        np.ones(arr.devices.shape, bool), v, width_s=w, count=count, start_s=t, end_s=t
    )


def test_no_change_at_or_below_threshold() -> None:
    # Default spreads: thresholds clipped at 3 sigma, so SET >= 0.65 V and RESET >= 0.45 V.
    arr = make(MemristorConfig(), x0=None)
    before = arr.conductance_S(5.0)
    for v in (0.2, -0.2, 0.1, -0.44, 0.64):
        pulse(arr, v, w=1e-2, count=1000, t=5.0)
    np.testing.assert_array_equal(arr.conductance_S(5.0), before)
    np.testing.assert_array_equal(arr.cycles, 0)
    np.testing.assert_array_equal(arr.programmed_time_s, 0.0)
    # Exactly at a device's threshold the overdrive is 0: still no change.
    th = arr.devices.set_threshold_V
    assert np.all(
        effective_pulses(th, 1e-2, th, reference_V=1.5, exponent=3.0, reference_width_s=1e-4) == 0
    )


def test_mean_step_grows_with_amplitude_and_width_and_follows_the_law() -> None:
    cfg = IDENTICAL
    means = []
    for v, w in [(0.9, 1e-4), (1.0, 1e-4), (1.2, 1e-4), (1.5, 1e-4), (1.5, 2e-4), (1.5, 4e-4)]:
        arr = make()
        pulse(arr, v, w)
        dx = state(arr, 0.0) - 0.5
        dp = effective_pulses(
            v,
            w,
            cfg.set_threshold_V,
            reference_V=cfg.set_reference_V,
            exponent=cfg.set_exponent,
            reference_width_s=cfg.reference_width_s,
        )
        expected = float(saturating_step(0.5, dp, cfg.set_levels, cfg.set_shape)) - 0.5
        se = cfg.c2c_sigma * math.sqrt(expected * cfg.set_levels) / math.sqrt(N)
        # Far from the bounds (5 sigma of the noise < 0.5 for these steps) nothing is clipped.
        assert abs(dx.mean() - expected) < Z * se, (v, w)
        means.append(dx.mean())
    assert all(b > a for a, b in itertools.pairwise(means))
    # RESET: negative mean steps, larger with |V|.
    resets = []
    for v in (-0.8, -1.0, -1.2):
        arr = make()
        pulse(arr, v)
        resets.append((state(arr, 0.0) - 0.5).mean())
    assert resets[0] < 0 and resets[2] < resets[1] < resets[0]


def test_reference_pulses_saturate_exactly_at_the_bounds() -> None:
    cfg = dataclasses.replace(IDENTICAL, c2c_sigma=0.0)
    arr = make(cfg, n=1, x0=0.0)
    xs = [0.0]
    for _ in range(int(cfg.set_levels)):
        pulse(arr, cfg.set_reference_V)  # one reference pulse: dP = 1
        xs.append(float(state(arr, 0.0)[0]))
    steps = np.diff(xs)
    assert xs[-2] < 1.0 and xs[-1] == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(steps[:-1]) < 0)  # steps shrink towards g_max: saturating
    # step ratio first/last-but-one = exp((levels - 2)/A), A = shape * levels
    a = cfg.set_shape * cfg.set_levels
    assert steps[0] / steps[-2] == pytest.approx(math.exp((cfg.set_levels - 2) / a), rel=1e-9)
    pulse(arr, 3.0, 1e-2, count=5)  # far beyond: stays at the bound
    assert float(state(arr, 0.0)[0]) == 1.0
    for _ in range(int(cfg.reset_levels)):
        pulse(arr, -cfg.reset_reference_V)
    assert float(state(arr, 0.0)[0]) == pytest.approx(0.0, abs=1e-12)


def test_set_reset_asymmetry_as_configured() -> None:
    cfg = dataclasses.replace(IDENTICAL, c2c_sigma=0.0)
    up, down = make(cfg, n=1, x0=0.0), make(cfg, n=1, x0=1.0)
    pulse(up, cfg.set_reference_V)
    pulse(down, -cfg.reset_reference_V)
    first_set = float(state(up, 0.0)[0])
    first_reset = 1.0 - float(state(down, 0.0)[0])

    def first_step(shape: float, levels: float) -> float:
        return (1.0 / -math.expm1(-1.0 / shape)) * -math.expm1(-1.0 / (shape * levels))

    assert first_set == pytest.approx(first_step(cfg.set_shape, cfg.set_levels), rel=1e-12)
    assert first_reset == pytest.approx(first_step(cfg.reset_shape, cfg.reset_levels), rel=1e-12)
    assert first_reset / first_set == pytest.approx(1.70, abs=0.01)  # 0.0403 / 0.0236
    # Amplitude law: SET cubic in overdrive, RESET linear (VTEAM-like exponents 3 and 1).
    dp_set = effective_pulses(
        1.15, 1e-4, 0.8, reference_V=1.5, exponent=3.0, reference_width_s=1e-4
    )
    dp_reset = effective_pulses(
        -0.9, 1e-4, 0.6, reference_V=1.2, exponent=1.0, reference_width_s=1e-4
    )
    assert float(dp_set) == pytest.approx(0.125) and float(dp_reset) == pytest.approx(0.5)


@pytest.mark.parametrize("v", [1.5, 1.8, 1.2, -1.2, -2.0])
def test_cycle_to_cycle_spread_matches_the_configured_sigma(v: float) -> None:
    cfg = IDENTICAL
    arr = make()
    pulse(arr, v)
    dx = state(arr, 0.0) - 0.5
    pol = "set" if v > 0 else "reset"
    levels, shape = getattr(cfg, f"{pol}_levels"), getattr(cfg, f"{pol}_shape")
    dp = float(
        effective_pulses(
            v,
            1e-4,
            getattr(cfg, f"{pol}_threshold_V"),
            reference_V=getattr(cfg, f"{pol}_reference_V"),
            exponent=getattr(cfg, f"{pol}_exponent"),
            reference_width_s=1e-4,
        )
    )
    step = float(saturating_step(0.5, dp, levels, shape)) - 0.5  # |dx| of either polarity
    sigma = cfg.c2c_sigma * math.sqrt(step * levels)
    # 5 sigma of the spread plus the step stays inside [0, 1] from 0.5: no clipping.
    assert 5 * sigma + step < 0.5
    assert abs(dx.std(ddof=1) / sigma - 1.0) < Z / math.sqrt(2 * (N - 1))
    # One reference pulse from mid-range: sigma is about c2c_sigma (a step of ~one level).
    if v == 1.5:
        assert sigma == pytest.approx(cfg.c2c_sigma, rel=0.3)


def test_noise_vanishes_where_the_law_saturates() -> None:
    arr = make(x0=1.0)
    pulse(arr, 2.5, 1e-3, count=5)  # SET at g_max: no step, no noise
    np.testing.assert_array_equal(state(arr, 0.0), 1.0)


def test_retention_drift_follows_the_ln_t_law() -> None:
    cfg = IDENTICAL
    arr = make(dataclasses.replace(cfg, c2c_sigma=0.0))
    t_p = 10.0
    # Every device starts undrifted at t = 0 and ends programmed at t_p, all to one value.
    arr.apply_pulses(np.ones(N, bool), 1.5, width_s=1e-4, count=1, start_s=0.0, end_s=t_p)
    g_p = arr.conductance_S(t_p)
    assert np.ptp(g_p) == 0.0
    np.testing.assert_array_equal(arr.programmed_time_s, t_p)
    for age in (1.0, 100.0, 1e4, 1e6):
        ln_t = math.log1p(age / cfg.drift_t0_s)
        dg = arr.conductance_S(t_p + age) - g_p
        sigma = cfg.drift_sigma_S_per_ln * ln_t
        assert abs(dg.mean() + cfg.drift_S_per_ln * ln_t) < Z * sigma / math.sqrt(N), age
        assert abs(dg.std(ddof=1) / sigma - 1.0) < Z / math.sqrt(2 * (N - 1)), age
    # A device's drift is a smooth function of time: re-reading changes nothing.
    np.testing.assert_array_equal(arr.conductance_S(5e3), arr.conductance_S(5e3))
    # Clipped at the bounds after very long times.
    d = arr.devices
    assert np.all(arr.conductance_S(1e30) >= d.g_min_S)


def test_stuck_devices_ignore_pulses_and_do_not_drift() -> None:
    n = 100
    on = np.zeros(n, bool)
    off = np.zeros(n, bool)
    on[:10], off[10:20] = True, True
    arr = make(MemristorConfig(), n=n, x0=None, stuck_on=on, stuck_off=off)
    d = arr.devices
    pulse(arr, -2.5, 1e-3, count=50)
    pulse(arr, 2.5, 1e-3, count=50, t=1.0)
    g = arr.conductance_S(1e5)
    np.testing.assert_array_equal(g[on], d.g_max_S[on])
    np.testing.assert_array_equal(g[off], d.g_min_S[off])
    np.testing.assert_array_equal(arr.cycles[on | off], 0)
    assert np.all(arr.cycles[~(on | off)] == 100)


def test_endurance_failure_after_the_budget() -> None:
    cfg = dataclasses.replace(
        IDENTICAL, endurance_cycles=20.0, endurance_sigma_decades=0.0, c2c_sigma=0.0
    )
    arr = make(cfg, n=200, x0=0.0)
    d = arr.devices
    np.testing.assert_array_equal(d.endurance_cycles, 20)
    assert 0 < d.wears_out_on.sum() < 200  # half of them stick on, half off
    xs = []
    for _ in range(20):  # alternate SET/RESET so no device is at a bound
        pulse(arr, 1.5)
        xs.append(state(arr, 0.0).copy())
    assert not arr.worn_out.any() and np.all(xs[-1] > xs[-2])  # pulse 20 still works
    pulse(arr, -1.2)  # pulse 21: worn out
    assert arr.worn_out.all()
    g = arr.conductance_S(0.0)
    np.testing.assert_array_equal(g, np.where(d.wears_out_on, d.g_max_S, d.g_min_S))
    pulse(arr, 2.0, count=10)
    pulse(arr, -2.0, count=10)
    np.testing.assert_array_equal(arr.conductance_S(1e4), g)  # stuck, no drift
    np.testing.assert_array_equal(arr.cycles, 21)


def test_same_seed_same_devices_and_pulse_outcomes() -> None:
    def run(seed: int) -> tuple[MemristorDevices, np.ndarray]:
        arr = make(MemristorConfig(), n=64, x0=None, seed=seed)
        for i, v in enumerate([1.3, -1.0, 2.0, -0.7, 1.1]):
            arr.apply_pulses(
                (np.arange(0, 64, 3),), v, width_s=1e-4 * (i + 1), count=3, start_s=i, end_s=i
            )
        return arr.devices, arr.conductance_S(100.0)

    d1, g1 = run(7)
    d2, g2 = run(7)
    _, g3 = run(8)
    for f in dataclasses.fields(MemristorDevices):
        np.testing.assert_array_equal(getattr(d1, f.name), getattr(d2, f.name))
    np.testing.assert_array_equal(g1, g2)
    assert not np.array_equal(g1, g3)


def test_device_to_device_spread_of_the_drawn_parameters() -> None:
    cfg = MemristorConfig()
    d = draw_memristor_devices(cfg, (N,), np.random.default_rng(3))
    # Clipped gaussians at 3 sigma: the std is 0.973 sigma (truncated normal).
    assert d.g_min_S.std() / (cfg.range_sigma * cfg.g_min_S) == pytest.approx(0.973, abs=0.05)
    assert d.set_threshold_V.std() / cfg.threshold_sigma_V == pytest.approx(0.973, abs=0.05)
    assert np.all(d.g_max_S > d.g_min_S)
    med = np.median(d.endurance_cycles)
    assert med == pytest.approx(cfg.endurance_cycles, rel=0.1)
    assert np.std(np.log10(d.endurance_cycles)) == pytest.approx(0.3, rel=0.05)
    assert d.wears_out_on.mean() == pytest.approx(0.5, abs=Z * 0.5 / math.sqrt(N))


def test_read_noise_sigma_follows_the_cmo_law() -> None:
    arr = make(MemristorConfig(), n=3)
    sigma = arr.read_noise_sigma_S(np.array([8e-6, 50e-6, 90e-6, 0.5e-6]))
    expected = 1e-7 * np.log10([8.0, 50.0, 90.0, 1.0])
    np.testing.assert_allclose(sigma, expected, rtol=1e-12)


def test_bad_pulse_arguments_are_refused_with_the_value() -> None:
    arr = make(n=4)
    sel = np.ones(4, bool)
    with pytest.raises(ValueError, match="count -1"):
        arr.apply_pulses(sel, 1.0, width_s=1e-4, count=-1, start_s=0, end_s=0)
    with pytest.raises(ValueError, match="width nan"):
        arr.apply_pulses(sel, 1.0, width_s=math.nan, count=1, start_s=0, end_s=0)
    with pytest.raises(ValueError, match="3 amplitudes for 4 devices"):
        arr.apply_pulses(sel, [1.0, 1.0, 1.0], width_s=1e-4, count=1, start_s=0, end_s=0)
    with pytest.raises(ValueError, match="before it starts"):
        arr.apply_pulses(sel, 1.0, width_s=1e-4, count=1, start_s=2, end_s=1)
