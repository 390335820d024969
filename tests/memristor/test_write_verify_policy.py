"""The write-verify state machine against model devices (pure: no bench)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labrss.memristor import (
    STATUSES,
    Pulse,
    Stop,
    WriteVerifyPolicy,
    WriteVerifySettings,
)

G_MIN, G_MAX = 8e-6, 90e-6


class ModelDevice:
    """The simulator's law in miniature: threshold power law, exponential approach, noise.

    dP = ((|V| - V_th) / (V_ref - V_th))**alpha * w / 1e-4 reference pulses; SET moves the
    state x towards x_inf with exp(-dP / A), RESET the same on 1 - x (docs/simulator.md).
    """

    def __init__(self, x0: float, rng: np.random.Generator, c2c: float = 0.0) -> None:
        self.x = x0
        self.rng = rng
        self.c2c = c2c
        self.stuck = False

    @property
    def g(self) -> float:
        return G_MIN + self.x * (G_MAX - G_MIN)

    def pulse(self, amplitude_V: float, width_s: float) -> None:
        if self.stuck:
            return
        if amplitude_V > 0:
            vth, vref, alpha, levels, shape = 0.8, 1.5, 3, 97.0, 0.5
        else:
            vth, vref, alpha, levels, shape = 0.6, 1.2, 1, 100.0, 0.25
        over = abs(amplitude_V) - vth
        if over <= 0:
            return
        dp = (over / (vref - vth)) ** alpha * width_s / 1e-4
        a = shape * levels
        x_inf = 1 / (1 - math.exp(-1 / shape))
        x = self.x if amplitude_V > 0 else 1 - self.x
        new = x_inf - (x_inf - x) * math.exp(-dp / a)
        dx = new - x
        new += self.c2c * math.sqrt(abs(dx) * levels) * self.rng.standard_normal()
        new = min(max(new, 0.0), 1.0)
        self.x = new if amplitude_V > 0 else 1 - new


def run(
    policy: WriteVerifyPolicy, device: ModelDevice, noise_S: float, rng: np.random.Generator
) -> tuple[Stop, list[Pulse]]:
    pulses: list[Pulse] = []
    step = policy.next(device.g + noise_S * rng.standard_normal())
    while isinstance(step, Pulse):
        pulses.append(step)
        device.pulse(step.amplitude_V, step.width_s)
        step = policy.next(device.g + noise_S * rng.standard_normal())
    return step, pulses


def test_noiseless_device_reaches_a_tight_band() -> None:
    rng = np.random.default_rng(0)
    for target in (12e-6, 30e-6, 55e-6, 80e-6):
        for x0 in (0.0, 0.5, 1.0):
            device = ModelDevice(x0, rng)
            policy = WriteVerifyPolicy(target, WriteVerifySettings(tolerance=0.002))
            stop, pulses = run(policy, device, 0.0, rng)
            assert stop.status == "ok", (target, x0, stop)
            assert abs(device.g - target) <= 0.002 * target
            assert len(pulses) == policy.pulses <= 100


def test_already_in_the_band_needs_no_pulse() -> None:
    policy = WriteVerifyPolicy(50e-6, WriteVerifySettings(tolerance=0.01))
    assert policy.next(50.3e-6) == Stop("ok", "within +-0.01 after 0 pulses")
    assert policy.pulses == 0
    assert policy.next(10e-6) is policy.last_status  # over: stays over


def test_polarity_follows_the_error_and_amplitude_restarts_on_reversal() -> None:
    s = WriteVerifySettings()
    policy = WriteVerifyPolicy(50e-6, s)
    first = policy.next(30e-6)
    assert isinstance(first, Pulse)
    assert first.amplitude_V == s.set_start_V
    assert first.width_s == s.width_s
    # overshoot to 60 uS (a 30 uS change with 10 uS left): RESET from its start amplitude,
    # width shrunk by error / change = 1/3
    second = policy.next(60e-6)
    assert isinstance(second, Pulse)
    assert second.amplitude_V == -s.reset_start_V
    assert second.width_s == pytest.approx(s.width_s / 3)
    assert policy.reversals == 1


def test_no_progress_grows_width_then_amplitude_then_stops_stuck() -> None:
    s = WriteVerifySettings(width_s=2.5e-4, max_width_s=1e-3, step_V=0.25, set_max_V=1.8)
    policy = WriteVerifyPolicy(50e-6, s)
    seen = []
    step = policy.next(20e-6)
    while isinstance(step, Pulse):
        seen.append((step.amplitude_V, step.width_s))
        step = policy.next(20e-6)  # never moves
    assert step.status == "stuck"
    widths = [w for _, w in seen]
    amps = [a for a, _ in seen]
    assert widths[:3] == pytest.approx([2.5e-4, 5e-4, 1e-3])
    assert amps[2:5] == pytest.approx([1.3, 1.55, 1.8])
    # the first pulse, 2 width doublings, 2 amplitude steps (the last reaches the largest
    # pulse), then stuck_pulses - 1 more: stuck_pulses pulses at the largest without progress
    assert len(seen) == 1 + 2 + 2 + s.stuck_pulses - 1
    assert max(amps) <= s.set_max_V
    assert max(widths) <= s.max_width_s


def test_timeout_and_oscillation() -> None:
    s = WriteVerifySettings(max_pulses=3, progress_S=1e-9)
    policy = WriteVerifyPolicy(50e-6, s)
    for g in (10e-6, 11e-6, 12e-6):
        assert isinstance(policy.next(g), Pulse)
    stop = policy.next(13e-6)
    assert isinstance(stop, Stop)
    assert stop.status == "timeout"

    s = WriteVerifySettings(max_reversals=2)
    policy = WriteVerifyPolicy(50e-6, s)
    readings = [40e-6, 60e-6, 40e-6, 60e-6]
    steps = [policy.next(g) for g in readings]
    assert isinstance(steps[-1], Stop)
    assert steps[-1].status == "oscillating"


def test_within_clips_to_the_bench() -> None:
    s = WriteVerifySettings(set_max_V=2.0, reset_max_V=2.0).within(1.5, 1e-6, 5e-4)
    assert (s.set_max_V, s.reset_max_V, s.min_width_s, s.max_width_s) == (1.5, 1.5, 1e-6, 5e-4)
    with pytest.raises(ValueError, match="exceed the pulse limit"):
        WriteVerifySettings().within(1.2, 1e-7, 1e-2)
    with pytest.raises(ValueError, match="do not overlap"):
        WriteVerifySettings().within(2.0, 2e-3, 1e-2)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("tolerance", 0.0, "tolerance"),
        ("tolerance", 1.5, "tolerance"),
        ("set_start_V", 3.0, "start amplitudes"),
        ("width_s", 5e-3, "width_s"),
        ("width_factor", 1.0, "width_factor"),
        ("max_pulses", 2.5, "max_pulses"),
        ("progress_S", math.nan, "progress_S"),
    ],
)
def test_bad_settings_are_named(field: str, value: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WriteVerifySettings(**{field: value})  # type: ignore[arg-type]


def test_bad_target_and_reading() -> None:
    with pytest.raises(ValueError, match="target"):
        WriteVerifyPolicy(0.0)
    with pytest.raises(ValueError, match="reading"):
        WriteVerifyPolicy(1e-5).next(math.nan)


@settings(max_examples=60, deadline=None)
@given(
    target=st.floats(9e-6, 89e-6),
    x0=st.floats(0.0, 1.0),
    tolerance=st.sampled_from([0.05, 0.01, 0.003]),
    seed=st.integers(0, 2**32 - 1),
    stuck=st.booleans(),
)
def test_always_stops_within_budget_and_limits(
    target: float, x0: float, tolerance: float, seed: int, stuck: bool
) -> None:
    # C2C noise (3.5 % of the range for one level) and 0.2 uS read noise, as simulated
    rng = np.random.default_rng(seed)
    device = ModelDevice(x0, rng, c2c=0.035)
    device.stuck = stuck
    s = WriteVerifySettings(tolerance=tolerance)
    policy = WriteVerifyPolicy(target, s)
    # a stuck device read without noise, so that "no progress" is exact and the bound below
    # is deterministic (with noise, a chance "progress" restarts the stuck count)
    stop, pulses = run(policy, device, 0.0 if stuck else 0.2e-6, rng)
    assert stop.status in STATUSES
    assert len(pulses) <= s.max_pulses
    for p in pulses:
        assert s.reset_start_V <= abs(p.amplitude_V) <= max(s.set_max_V, s.reset_max_V)
        assert s.min_width_s <= p.width_s <= s.max_width_s
    if stuck and abs(device.g - target) > tolerance * target + 1e-6:
        assert stop.status == "stuck"
        # bounded: the first pulse, 3 width doublings (0.2 -> 1 ms), the amplitude steps
        # (SET 1.3 -> 2.0 V: 7, RESET 1.0 -> 2.0 V: 10, by 0.1 V), then stuck_pulses - 1
        assert len(pulses) <= 1 + 3 + 10 + s.stuck_pulses - 1
