"""The SMU measurement model: operating point, compliance, errors, noise vs NPLC, timing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.port_model import OPEN_CIRCUIT, PortModel
from simulator.smu_physics import (
    AUTO_OHMS_TEST_CURRENT_A,
    K2450_MEASURE_CURRENT,
    K2450_MEASURE_VOLTAGE,
    K2450_SOURCE_CURRENT,
    NOISE_EXPONENT,
    OVERFLOW_READING,
    READING_OVERHEAD_S,
    MeterRanges,
    SourceRanges,
    auto_ohms_point,
    measurement_time_s,
    noise_sigma,
    operating_point,
)

R_OHM = 1000.0
RESISTOR = PortModel(g_S=1 / R_OHM)


# ---------------------------------------------------------------- operating point


def test_voltage_source_below_limit_is_ohms_law() -> None:
    op = operating_point(RESISTOR, "VOLT", 1.0, 0.01)
    assert op.i_A == pytest.approx(1e-3)
    assert op.v_force_V == op.v_sense_V == 1.0
    assert not op.tripped


def test_voltage_source_trips_to_current_limit() -> None:
    op = operating_point(RESISTOR, "VOLT", 1.0, 1e-4)
    assert op.tripped
    assert op.i_A == 1e-4
    assert op.v_force_V == pytest.approx(0.1)  # what the 1 kohm allows at 100 uA
    op = operating_point(RESISTOR, "VOLT", -1.0, 1e-4)
    assert op.i_A == -1e-4
    assert op.v_force_V == pytest.approx(-0.1)


def test_current_source_and_its_voltage_limit() -> None:
    op = operating_point(RESISTOR, "CURR", 1e-3, 21.0)
    assert op.v_force_V == pytest.approx(1.0)
    assert not op.tripped
    op = operating_point(RESISTOR, "CURR", 1e-3, 0.5)
    assert op.tripped
    assert op.v_force_V == 0.5
    assert op.i_A == pytest.approx(0.5e-3)


def test_open_circuit() -> None:
    op = operating_point(OPEN_CIRCUIT, "VOLT", 5.0, 1e-3)
    assert (op.i_A, op.tripped) == (0.0, False)
    op = operating_point(OPEN_CIRCUIT, "CURR", 1e-6, 20.0)
    assert op.tripped
    assert op.v_force_V == 20.0
    assert op.i_A == 0.0
    assert operating_point(OPEN_CIRCUIT, "CURR", 0.0, 20.0).tripped is False


def test_port_offset_current_shifts_compliance_point() -> None:
    port = PortModel(g_S=1e-3, i0_A=2e-4)  # another source pushes 200 uA out of HI
    op = operating_point(port, "VOLT", 1.0, 5e-4)
    assert op.tripped
    assert op.i_A == 5e-4
    assert op.v_force_V == pytest.approx(0.3)


def test_remote_sense_regulates_the_sense_voltage() -> None:
    # 10 ohm element between two 0.5 ohm leads: sense pair sees 10/11 of the force voltage.
    port = PortModel(g_S=1 / 11, sense_gain=10 / 11, four_wire=True)
    local = operating_point(port, "VOLT", 1.0, 1.0)
    remote = operating_point(port, "VOLT", 1.0, 1.0, remote_sense=True)
    assert local.v_sense_V == 1.0
    assert local.i_A == pytest.approx(1 / 11)
    assert remote.v_sense_V == pytest.approx(1.0)
    assert remote.v_force_V == pytest.approx(1.1)
    assert remote.v_sense_V / remote.i_A == pytest.approx(10.0)
    # Remote sense asked for but the board did not connect the sense lines: local sensing.
    two_wire = PortModel(g_S=1 / 11)
    assert operating_point(two_wire, "VOLT", 1.0, 1.0, remote_sense=True).v_force_V == 1.0


def test_operating_point_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="limit"):
        operating_point(RESISTOR, "VOLT", 1.0, 0.0)
    with pytest.raises(ValueError, match="source function"):
        operating_point(RESISTOR, "POWER", 1.0, 1.0)


@given(
    st.floats(min_value=1e-9, max_value=1.0),
    st.floats(min_value=-210, max_value=210),
    st.floats(min_value=1e-9, max_value=1.05),
)
def test_compliance_is_never_exceeded(g_S: float, level: float, limit: float) -> None:
    op = operating_point(PortModel(g_S=g_S), "VOLT", level, limit)
    assert abs(op.i_A) <= limit * (1 + 1e-12)
    assert op.i_A == pytest.approx(g_S * op.v_force_V, rel=1e-9, abs=1e-18)
    if op.tripped:
        assert abs(op.v_force_V) <= abs(level) * (1 + 1e-12)


# ---------------------------------------------------------------- instrument errors


@pytest.mark.parametrize("seed", range(20))
def test_drawn_errors_stay_within_datasheet_accuracy(seed: int) -> None:
    meter = MeterRanges(K2450_MEASURE_CURRENT, np.random.default_rng(seed), unit="A")
    gains = np.array([s.gain for s in K2450_MEASURE_CURRENT])
    offsets = np.array([s.offset for s in K2450_MEASURE_CURRENT])
    assert np.all(np.abs(meter.gain_error) <= gains)
    assert np.all(np.abs(meter.offset_error) <= offsets)


def test_instruments_differ_by_seed_and_repeat_with_it() -> None:
    a = MeterRanges(K2450_MEASURE_CURRENT, np.random.default_rng(1), unit="A")
    b = MeterRanges(K2450_MEASURE_CURRENT, np.random.default_rng(1), unit="A")
    c = MeterRanges(K2450_MEASURE_CURRENT, np.random.default_rng(2), unit="A")
    assert np.array_equal(a.gain_error, b.gain_error)
    assert not np.array_equal(a.gain_error, c.gain_error)


def test_range_selection() -> None:
    meter = MeterRanges(K2450_MEASURE_CURRENT, np.random.default_rng(0), unit="A")
    assert meter.full_scales[meter.index_for(1e-3)] == 1e-3
    assert meter.full_scales[meter.index_for(1.1e-3)] == 10e-3
    assert meter.full_scales[meter.index_for(5e-12)] == 10e-9
    with pytest.raises(ValueError, match="largest range"):
        meter.index_for(2.0)
    assert meter.full_scales[meter.autorange(3e-5)] == 100e-6
    assert meter.full_scales[meter.autorange(1.04e-3)] == 1e-3  # within the 105 % overrange
    assert meter.full_scales[meter.autorange(3e-9, lower_limit=2)] == 1e-6
    assert meter.full_scales[meter.autorange(0.5, upper_limit=5)] == 1e-3


def test_readings_are_quantised_and_overflow_beyond_105_percent() -> None:
    meter = MeterRanges(K2450_MEASURE_CURRENT, np.random.default_rng(0), unit="A")
    rng = np.random.default_rng(1)
    index = meter.index_for(1e-3)
    resolution = K2450_MEASURE_CURRENT[index].resolution
    for _ in range(50):
        reading = meter.read(0.5e-3, index, 1.0, rng)
        assert not reading.overflow
        assert reading.value / resolution == pytest.approx(round(reading.value / resolution))
    over = meter.read(1.06e-3, index, 1.0, rng)
    assert over.overflow
    assert over.value == OVERFLOW_READING
    assert meter.read(-1.06e-3, index, 1.0, rng).value == -OVERFLOW_READING
    assert not meter.read(1.04e-3, index, 1.0, rng).overflow


def test_autorange_reports_its_steps() -> None:
    meter = MeterRanges(K2450_MEASURE_CURRENT, np.random.default_rng(0), unit="A")
    reading = meter.read(5e-3, 0, 1.0, np.random.default_rng(0), auto=True, previous=2)
    assert meter.full_scales[reading.range_index] == 10e-3
    assert reading.range_steps == reading.range_index - 2
    assert not reading.overflow


def test_every_reading_is_new_noise() -> None:
    meter = MeterRanges(K2450_MEASURE_VOLTAGE, np.random.default_rng(0), unit="V")
    rng = np.random.default_rng(3)
    values = {meter.read(1.0, 2, 0.01, rng).value for _ in range(20)}
    assert len(values) > 15


def test_mean_reading_carries_the_fixed_error_within_spec() -> None:
    meter = MeterRanges(K2450_MEASURE_CURRENT, np.random.default_rng(7), unit="A")
    rng = np.random.default_rng(8)
    index = meter.index_for(1e-3)
    true = 0.8e-3
    n = 400
    values = np.array([meter.read(true, index, 1.0, rng).value for _ in range(n)])
    spec = K2450_MEASURE_CURRENT[index]
    # Averaging n readings leaves the systematic error plus sigma/sqrt(n) of noise.
    sigma_mean = noise_sigma(spec, 1.0) / math.sqrt(n)
    assert abs(values.mean() - meter.systematic(true, index)) < 5 * sigma_mean + spec.resolution
    assert abs(values.mean() - true) <= spec.gain * true + spec.offset + 5 * sigma_mean


def test_noise_std_scales_as_nplc_power() -> None:
    """Estimate the exponent from samples; the tolerance is the fit's sampling error."""
    meter = MeterRanges(K2450_MEASURE_VOLTAGE, np.random.default_rng(0), unit="V", pickup_ppm=0)
    rng = np.random.default_rng(11)
    index = 2  # 2 V range: resolution 1 uV, sigma_1PLC 10 uV
    nplcs = np.array([0.01, 0.1, 1.0, 10.0])
    n = 3000
    log_std = []
    for nplc in nplcs:
        values = np.array([meter.read(1.0, index, float(nplc), rng).value for _ in range(n)])
        log_std.append(math.log(values.std(ddof=1)))
    x = np.log(nplcs)
    slope = np.polyfit(x, np.array(log_std), 1)[0]
    # SE of log(sample std) is 1/sqrt(2(n-1)); the slope's SE is that over sqrt(Sxx).
    se_slope = 1 / math.sqrt(2 * (n - 1)) / math.sqrt(((x - x.mean()) ** 2).sum())
    # Quantisation (LSD 1 uV, variance LSD^2/12) inflates the 10 PLC std by at most 4 %:
    # a bias of ln(1.04)/ln(1000) on the slope.
    bias = math.log(1.04) / math.log(1000)
    assert abs(slope - NOISE_EXPONENT) < 5 * se_slope + bias


def test_line_pickup_cancels_on_whole_cycles() -> None:
    quiet = MeterRanges(K2450_MEASURE_VOLTAGE, np.random.default_rng(0), unit="V", pickup_ppm=0)
    noisy = MeterRanges(K2450_MEASURE_VOLTAGE, np.random.default_rng(0), unit="V", pickup_ppm=200)
    for nplc in (1.0, 2.0):
        a = quiet.read(1.0, 2, nplc, np.random.default_rng(5)).value
        b = noisy.read(1.0, 2, nplc, np.random.default_rng(5)).value
        assert a == b
    a = quiet.read(1.0, 2, 0.5, np.random.default_rng(5)).value
    b = noisy.read(1.0, 2, 0.5, np.random.default_rng(5)).value
    # Residue of half a cycle: 200 ppm * 2 V * sin(pi/2) / (pi/2), times cos(phase).
    assert abs(b - a) <= 200e-6 * 2.0 * (2 / math.pi) + 2e-6


def test_source_programming_error_within_spec() -> None:
    source = SourceRanges(K2450_SOURCE_CURRENT, np.random.default_rng(4), unit="A")
    index = source.index_for(1e-3)
    spec = K2450_SOURCE_CURRENT[index]
    actual = source.actual(1e-3, index)
    assert abs(actual - 1e-3) <= spec.gain * 1e-3 + spec.offset + spec.resolution
    with pytest.raises(ValueError, match="largest source range"):
        source.index_for(2.0)


def test_measurement_time() -> None:
    assert measurement_time_s(1.0, 50.0, autozero=False) == pytest.approx(0.02 + READING_OVERHEAD_S)
    assert measurement_time_s(1.0, 60.0, autozero=True) == pytest.approx(
        2 / 60 + READING_OVERHEAD_S
    )
    assert measurement_time_s(0.01, 50.0, autozero=False, conversions=10) == pytest.approx(
        10 * (0.0002 + READING_OVERHEAD_S)
    )
    with pytest.raises(ValueError, match="NPLC"):
        noise_sigma(K2450_MEASURE_VOLTAGE[0], 0.0)


def test_auto_ohms_picks_the_range_and_its_test_current() -> None:
    source = SourceRanges(K2450_SOURCE_CURRENT, np.random.default_rng(0), unit="A")
    ranges = (20.0, 200.0, 2e3, 20e3, 200e3, 2e6, 20e6, 200e6)
    op, index, current = auto_ohms_point(PortModel(g_S=1 / 4700), ranges, source)
    assert ranges[index] == 20e3
    assert current == AUTO_OHMS_TEST_CURRENT_A[20e3] == 100e-6
    assert op.v_sense_V / op.i_A == pytest.approx(4700)
    _, index, _ = auto_ohms_point(PortModel(g_S=1 / 4700), ranges, source, fixed_index=1)
    assert index == 1


@given(seed=st.integers(0, 10_000), fraction=st.floats(0.98, 1.05))
def test_autorange_never_overflows_below_the_top_range(seed: int, fraction: float) -> None:
    # A value just under 105 % of a range can convert above it (gain error + noise); the
    # autorange must then step up and convert again, as the instrument does, never report
    # an overflow while a higher range is available.
    meter = MeterRanges(K2450_MEASURE_CURRENT, np.random.default_rng(seed), unit="A")
    rng = np.random.default_rng(seed + 1)
    for spec in meter.specs[:-1]:
        true = fraction * spec.max_reading
        reading = meter.read(true, 0, 0.01, rng, auto=True)
        assert not reading.overflow
        chosen = meter.specs[reading.range_index]
        assert abs(reading.value - true) <= meter.accuracy_bound(true, reading.range_index, 0.01)
        assert abs(true) <= chosen.max_reading * 1.001 or reading.range_steps >= 1
