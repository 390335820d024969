"""The SMU measurement model: operating point, compliance, ranges, accuracy, noise, timing.

Shared by both SMU emulators. The board side is a `PortModel` (the linear equivalent of
whatever is routed to the SMU); this module adds the instrument on top of it:

* **Operating point** (`operating_point`): a voltage source forces ``V`` (at its terminals
  in 2-wire; with remote sense it regulates the *sense* voltage, so lead drops are
  compensated) unless ``|I|`` would exceed the current limit, in which case it becomes a
  current source at ``+-I_limit`` and the voltage is whatever the port allows ("limit
  tripped"). A current source is the dual, with the voltage limit.
* **A reading** (`MeterRanges.read`): ``x_true * (1 + e_gain) + e_offset`` with the fixed
  per-instrument errors ``e_gain``, ``e_offset`` drawn once from the seed within the
  datasheet accuracy of each range, plus Gaussian noise ``sigma_1PLC * NPLC**-0.67``, plus
  line-frequency pickup when the aperture is not a whole number of line cycles, quantised
  to the range resolution; beyond 105 % of a fixed range the reading is an overflow.
* **Time** (`measurement_time_s`): ``n_conv * NPLC / f_line + overhead`` per reading.

Noise choice (see docs/smu-emulators.md): ``sigma_1PLC = 5 ppm of the range`` for every
range. The 2450 datasheet's RMS noise figures (SPEC-2450: 5 pA on 1 uA, 40 pA on 10 uA,
10 uV on 2 V) are 5, 4 and 5 ppm of range; one rule for all ranges keeps the model
explainable. The exponent -0.67 is the log-log fit of the Keithley 2015 aperture/noise
table (crossbar_sim.md 9.4): slower than white noise (-0.5) because of 1/f noise.

Costs: every function is O(1) per reading; nothing is cached (each reading draws new noise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.port_model import PortModel

NOISE_EXPONENT = -0.67
"""sigma(NPLC) = sigma_1PLC * NPLC**NOISE_EXPONENT (fit to the Keithley 2015 table)."""
NOISE_PPM_OF_RANGE_1PLC = 5.0
"""RMS noise at 1 PLC, in ppm of the range full scale (SPEC-2450 noise figures)."""
OVERRANGE = 1.05
"""Readings up to 105 % of a range are valid; beyond: overflow (as on the 2450/B2900)."""
OVERFLOW_READING = 9.9e37
"""Value returned for an overflowed reading (Keithley and Keysight: 9.9E+37)."""
NAN_READING = 9.91e37
"""Keithley/Keysight "not a number" (no data, function off)."""
READING_OVERHEAD_S = 150e-6
"""Fixed time per reading (s): trigger latency, A/D setup, data transfer to the buffer.
With NPLC 0.01 at 60 Hz this gives about 3000 readings/s, the 2450's datasheet figure."""
RANGE_CHANGE_S = 1e-3
"""Settling time per autorange step (s); autorange also re-converts on the new range."""
AUTOZERO_CONVERSIONS = 2
"""Conversions per reading with autozero on (signal + zero/reference), 1 with it off."""


@dataclass(frozen=True)
class RangeSpec:
    """One range of a measure or source function (datasheet, 1 year, 23 +- 5 C, 1 PLC).

    Attributes:
        full_scale: the range (A or V).
        gain: accuracy gain term, as a fraction of the reading (0.0002 for 0.02 %).
        offset: accuracy offset term (A or V).
        resolution: the least significant digit of a reading (A or V).
    """

    full_scale: float
    gain: float
    offset: float
    resolution: float

    @property
    def noise_1plc(self) -> float:
        """RMS noise at 1 PLC (A or V): NOISE_PPM_OF_RANGE_1PLC of the full scale."""
        return NOISE_PPM_OF_RANGE_1PLC * 1e-6 * self.full_scale

    @property
    def max_reading(self) -> float:
        """Largest valid reading magnitude (A or V): 105 % of full scale."""
        return OVERRANGE * self.full_scale


def _spec(full_scale: float, gain_pct: float, offset: float, digits_per_range: float) -> RangeSpec:
    return RangeSpec(full_scale, gain_pct / 100.0, offset, full_scale / digits_per_range)


# Keithley 2450 (SPEC-2450 Rev A): measure current, 6.5 digits -> resolution range/1e6
# (1 pA on 1 uA as the datasheet states). The 1 uA..10 mA rows are the research note's table
# (crossbar_sim.md 9.4); the 10 nA, 100 nA, 100 mA and 1 A rows are the same datasheet's.
K2450_MEASURE_CURRENT = (
    _spec(10e-9, 0.10, 50e-12, 1e6),
    _spec(100e-9, 0.060, 100e-12, 1e6),
    _spec(1e-6, 0.025, 300e-12, 1e6),
    _spec(10e-6, 0.025, 700e-12, 1e6),
    _spec(100e-6, 0.020, 6e-9, 1e6),
    _spec(1e-3, 0.020, 60e-9, 1e6),
    _spec(10e-3, 0.020, 600e-9, 1e6),
    _spec(100e-3, 0.025, 6e-6, 1e6),
    _spec(1.0, 0.030, 500e-6, 1e6),
)
# Measure voltage: 1 uV on the 2 V range (datasheet) -> resolution range/2e6.
K2450_MEASURE_VOLTAGE = (
    _spec(20e-3, 0.100, 150e-6, 2e6),
    _spec(200e-3, 0.012, 200e-6, 2e6),
    _spec(2.0, 0.012, 300e-6, 2e6),
    _spec(20.0, 0.015, 1e-3, 2e6),
    _spec(200.0, 0.015, 10e-3, 2e6),
)
# Source accuracy (programmed level vs actual output); resolution of the source DAC.
K2450_SOURCE_VOLTAGE = (
    _spec(20e-3, 0.100, 200e-6, 4e4),
    _spec(200e-3, 0.015, 200e-6, 4e4),
    _spec(2.0, 0.020, 300e-6, 4e4),
    _spec(20.0, 0.015, 2.4e-3, 4e4),
    _spec(200.0, 0.015, 24e-3, 4e4),
)
K2450_SOURCE_CURRENT = (
    _spec(10e-9, 0.100, 100e-12, 2e4),
    _spec(100e-9, 0.060, 150e-12, 2e4),
    _spec(1e-6, 0.025, 400e-12, 2e4),
    _spec(10e-6, 0.025, 1.5e-9, 2e4),
    _spec(100e-6, 0.020, 15e-9, 2e4),
    _spec(1e-3, 0.020, 150e-9, 2e4),
    _spec(10e-3, 0.020, 1.5e-6, 2e4),
    _spec(100e-3, 0.025, 15e-6, 2e4),
    _spec(1.0, 0.067, 900e-6, 2e4),
)

# Keysight B2901A/B2902A (B2900A series data sheet, 1 year, 23 +- 5 C, 1 PLC), 6.5 digits.
B2900_MEASURE_CURRENT = (
    _spec(100e-9, 0.060, 100e-12, 1e6),  # data sheet p. 16: +-(0.06 % + 100 pA)
    _spec(1e-6, 0.025, 500e-12, 1e6),
    _spec(10e-6, 0.025, 1.5e-9, 1e6),
    _spec(100e-6, 0.020, 25e-9, 1e6),
    _spec(1e-3, 0.020, 200e-9, 1e6),
    _spec(10e-3, 0.020, 2.5e-6, 1e6),
    _spec(100e-3, 0.020, 20e-6, 1e6),
    _spec(1.0, 0.030, 1.5e-3, 1e6),
    _spec(1.5, 0.050, 3.5e-3, 1e6),
)
B2900_MEASURE_VOLTAGE = (
    _spec(200e-3, 0.015, 225e-6, 2e6),
    _spec(2.0, 0.020, 350e-6, 2e6),
    _spec(20.0, 0.015, 5e-3, 2e6),
    _spec(200.0, 0.015, 50e-3, 2e6),
)
B2900_SOURCE_VOLTAGE = (
    _spec(200e-3, 0.015, 225e-6, 4e4),
    _spec(2.0, 0.020, 350e-6, 4e4),
    _spec(20.0, 0.015, 5e-3, 4e4),
    _spec(200.0, 0.015, 50e-3, 4e4),
)
B2900_SOURCE_CURRENT = (
    _spec(100e-9, 0.060, 100e-12, 2e4),
    _spec(1e-6, 0.025, 500e-12, 2e4),
    _spec(10e-6, 0.025, 1.5e-9, 2e4),
    _spec(100e-6, 0.020, 25e-9, 2e4),
    _spec(1e-3, 0.020, 200e-9, 2e4),
    _spec(10e-3, 0.020, 2.5e-6, 2e4),
    _spec(100e-3, 0.020, 20e-6, 2e4),
    _spec(1.0, 0.030, 1.5e-3, 2e4),
    _spec(1.5, 0.050, 3.5e-3, 2e4),
)


# Keithley 2400 (SPEC-2400 Rev. H, 1 year, 23 +- 5 C): 5.5 digits. Measure current resolution
# is range/1e5 (10 pA on 1 uA), measure voltage range/2e5 (1 uV on 200 mV); source
# programming resolution is range/4e4 for voltage (5 uV on 200 mV) and range/2e4 for current
# (50 pA on 1 uA). Noise: the model's 5 ppm-of-range rule; the 2400's source noise is 25 ppm
# of range peak-peak on the voltage ranges (0.1-10 Hz), about 4 ppm RMS (p-p / 6).
K2400_MEASURE_CURRENT = (
    _spec(1e-6, 0.029, 300e-12, 1e5),
    _spec(10e-6, 0.027, 700e-12, 1e5),
    _spec(100e-6, 0.025, 6e-9, 1e5),
    _spec(1e-3, 0.027, 60e-9, 1e5),
    _spec(10e-3, 0.035, 600e-9, 1e5),
    _spec(100e-3, 0.055, 6e-6, 1e5),
    _spec(1.0, 0.22, 570e-6, 1e5),
)
K2400_MEASURE_VOLTAGE = (
    _spec(200e-3, 0.012, 300e-6, 2e5),
    _spec(2.0, 0.012, 300e-6, 2e5),
    _spec(20.0, 0.015, 1.5e-3, 2e5),
    _spec(200.0, 0.015, 10e-3, 2e5),
)
K2400_SOURCE_VOLTAGE = (
    _spec(200e-3, 0.02, 600e-6, 4e4),
    _spec(2.0, 0.02, 600e-6, 4e4),
    _spec(20.0, 0.02, 2.4e-3, 4e4),
    _spec(200.0, 0.02, 24e-3, 4e4),
)
K2400_SOURCE_CURRENT = (
    _spec(1e-6, 0.035, 600e-12, 2e4),
    _spec(10e-6, 0.033, 2e-9, 2e4),
    _spec(100e-6, 0.031, 20e-9, 2e4),
    _spec(1e-3, 0.034, 200e-9, 2e4),
    _spec(10e-3, 0.045, 2e-6, 2e4),
    _spec(100e-3, 0.066, 20e-6, 2e4),
    _spec(1.0, 0.27, 900e-6, 2e4),
)


def noise_sigma(spec: RangeSpec, nplc: float, exponent: float = NOISE_EXPONENT) -> float:
    """RMS reading noise (A or V) on range ``spec`` at aperture ``nplc`` (line cycles)."""
    if nplc <= 0:
        raise ValueError(f"NPLC must be > 0, got {nplc}")
    return float(spec.noise_1plc * nplc**exponent)


def measurement_time_s(
    nplc: float, line_frequency_Hz: float, *, autozero: bool = True, conversions: int = 1
) -> float:
    """Time (s) for ``conversions`` readings at ``nplc``: apertures plus fixed overhead."""
    per_conv = nplc / line_frequency_Hz * (AUTOZERO_CONVERSIONS if autozero else 1)
    return conversions * (per_conv + READING_OVERHEAD_S)


@dataclass(frozen=True)
class OperatingPoint:
    """The SMU output state for a given port (SI units).

    Attributes:
        v_force_V: voltage at the force HI terminal.
        v_sense_V: voltage the meter measures (sense pair with remote sense, else force).
        i_A: HI current (out of HI into the load).
        tripped: the limit (compliance) is in control instead of the programmed source.
    """

    v_force_V: float
    v_sense_V: float
    i_A: float
    tripped: bool


def _sense_map(port: PortModel, remote_sense: bool) -> tuple[float, float]:
    """(a, b) with V_measured = a * V_force + b.

    With remote sense on and the board's sense lines connected, the meter reads the sense
    pair; with the sense lines absent the 2450/B2900 sense terminals fall back to the force
    terminals through internal protection resistors, i.e. local sensing.
    """
    if remote_sense and port.four_wire and port.sense_gain > 0:
        return port.sense_gain, port.sense_offset_V
    return 1.0, 0.0


def operating_point(
    port: PortModel,
    source: str,
    level: float,
    limit: float,
    *,
    remote_sense: bool = False,
) -> OperatingPoint:
    """Solve the output state: ``source`` "VOLT" (level V, limit A) or "CURR" (level A, limit V).

    The regulated quantity is the sensed voltage (remote sense) or the force voltage.
    Raises ValueError for a non-positive limit. O(1).
    """
    if limit <= 0 or not math.isfinite(limit):
        raise ValueError(f"SMU limit must be > 0 and finite, got {limit}")
    a, b = _sense_map(port, remote_sense)
    g, i0 = port.g_S, port.i0_A
    if source == "VOLT":
        v_force = (level - b) / a
        current = port.current_A(v_force)
        if abs(current) > limit:
            current = math.copysign(limit, current)
            if g > 0:
                v_force = port.force_for_current_V(current)
            tripped = True
        else:
            tripped = False
        return OperatingPoint(v_force, a * v_force + b, current, tripped)
    if source == "CURR":
        if g > 0:
            v_force = port.force_for_current_V(level)
            v_meas = a * v_force + b
            if abs(v_meas) <= limit:
                return OperatingPoint(v_force, v_meas, level, False)
            v_meas = math.copysign(limit, v_meas)
        else:
            # Nothing conducts: the source drives to its voltage limit, no current change.
            if level == i0:
                return OperatingPoint(0.0, b, i0, False)
            v_meas = math.copysign(limit, level - i0)
        v_force = (v_meas - b) / a
        return OperatingPoint(v_force, v_meas, port.current_A(v_force), True)
    raise ValueError(f"source function must be 'VOLT' or 'CURR', got {source!r}")


AUTO_OHMS_TEST_CURRENT_A: dict[float, float] = {
    2.0: 100e-3,
    20.0: 100e-3,
    200.0: 10e-3,
    2e3: 1e-3,
    20e3: 100e-6,
    200e3: 10e-6,
    2e6: 1e-6,
    20e6: 1e-6,
    200e6: 100e-9,
}
"""Auto-ohms test current (A) per ohms range (ohm): the Keithley 2400-family table, which
the B2900 reference's resistance range table matches (20 kohm -> 100 uA, 2 Mohm -> 1 uA)."""
AUTO_OHMS_VOLTAGE_LIMIT_V = 21.0
"""Voltage limit during auto ohms (V): full scale of the 20 Mohm range at 1 uA, 1.05x."""


def auto_ohms_point(
    port: PortModel,
    ranges_ohm: Sequence[float],
    source_i: SourceRanges,
    *,
    fixed_index: int | None = None,
    remote_sense: bool = False,
    limits: tuple[int, int] | None = None,
) -> tuple[OperatingPoint, int, float]:
    """Auto ohms: force the range's test current; autorange picks the smallest range that fits.

    A range fits when the source is not in compliance and V/I is within 105 % of it;
    ``limits`` (lowest, highest index) restricts autorange. Returns (operating point, ohms
    range index, programmed test current in A). O(number of ranges).
    """
    if fixed_index is not None:
        candidates = [fixed_index]
    else:
        low, high = limits if limits is not None else (0, len(ranges_ohm) - 1)
        candidates = list(range(low, high + 1))
    op: OperatingPoint | None = None
    current = 0.0
    index = candidates[0]
    for index in candidates:
        current = AUTO_OHMS_TEST_CURRENT_A[ranges_ohm[index]]
        actual = source_i.actual(current, source_i.index_for(current))
        op = operating_point(
            port, "CURR", actual, AUTO_OHMS_VOLTAGE_LIMIT_V, remote_sense=remote_sense
        )
        if not op.tripped and abs(op.v_sense_V) <= OVERRANGE * ranges_ohm[index] * current:
            break
    assert op is not None
    return op, index, current


@dataclass(frozen=True)
class MeterReading:
    """One reading of one quantity.

    Attributes:
        value: the reported value (A or V), quantised; OVERFLOW_READING (signed) on overflow.
        overflow: the true value exceeded 105 % of the range.
        range_index: the range used (after autoranging).
        range_steps: autorange steps taken (each costs RANGE_CHANGE_S and a re-conversion).
    """

    value: float
    overflow: bool
    range_index: int
    range_steps: int


class MeterRanges:
    """One measured quantity (current or voltage) of one SMU channel, with its ranges.

    The fixed gain and offset errors of each range are drawn once, at construction, from
    ``rng``: normal with sigma = spec / 3, clipped to +-spec, so every instrument is inside
    its datasheet accuracy and instruments differ by seed.
    """

    def __init__(
        self,
        specs: Sequence[RangeSpec],
        rng: np.random.Generator,
        *,
        unit: str,
        pickup_ppm: float = 2.0,
    ) -> None:
        if not specs:
            raise ValueError("a meter needs at least one range")
        self.specs = tuple(specs)
        self.unit = unit
        self.pickup_ppm = pickup_ppm
        n = len(self.specs)
        gains = np.array([s.gain for s in self.specs])
        offsets = np.array([s.offset for s in self.specs])
        self.gain_error = np.clip(rng.normal(0.0, gains / 3.0, n), -gains, gains)
        self.offset_error = np.clip(rng.normal(0.0, offsets / 3.0, n), -offsets, offsets)

    @property
    def full_scales(self) -> tuple[float, ...]:
        """Range full scales, ascending (A or V)."""
        return tuple(s.full_scale for s in self.specs)

    def index_for(self, value: float) -> int:
        """Smallest range whose full scale is >= ``|value|`` (how SMUs round a range request).

        Raises ValueError when ``|value|`` exceeds the largest range by more than the
        overrange allowance.
        """
        magnitude = abs(value)
        for i, spec in enumerate(self.specs):
            if magnitude <= spec.full_scale * (1 + 1e-9):
                return i
        if magnitude <= self.specs[-1].max_reading:
            return len(self.specs) - 1
        raise ValueError(
            f"{magnitude:g} {self.unit} exceeds the largest range "
            f"{self.specs[-1].full_scale:g} {self.unit}"
        )

    def autorange(
        self, true_value: float, lower_limit: int = 0, upper_limit: int | None = None
    ) -> int:
        """The range autorange settles on: the smallest range whose 105 % holds the value.

        Restricted to ``lower_limit..upper_limit`` (the instrument's autorange limits);
        beyond the upper limit the reading overflows on that range.
        """
        top = len(self.specs) - 1 if upper_limit is None else upper_limit
        magnitude = abs(true_value)
        for i in range(lower_limit, top + 1):
            # Up-ranging happens beyond the 105 % overrange, as on the 2450 and B2900.
            if magnitude <= self.specs[i].max_reading:
                return i
        return top

    def sigma(self, index: int, nplc: float) -> float:
        """RMS noise (A or V) on range ``index`` at ``nplc``."""
        return noise_sigma(self.specs[index], nplc)

    def systematic(self, true_value: float, index: int) -> float:
        """The reading without noise: the instrument's fixed gain and offset errors applied."""
        return float(true_value * (1.0 + self.gain_error[index]) + self.offset_error[index])

    def accuracy_bound(
        self, true_value: float, index: int, nplc: float, k_sigma: float = 5.0
    ) -> float:
        """|reading - true| bound: datasheet accuracy + k_sigma noise + pickup + 1 LSD."""
        spec = self.specs[index]
        return (
            spec.gain * abs(true_value)
            + spec.offset
            + k_sigma * self.sigma(index, nplc)
            + self.pickup_ppm * 1e-6 * spec.full_scale
            + spec.resolution
        )

    def read(
        self,
        true_value: float,
        index: int,
        nplc: float,
        rng: np.random.Generator,
        *,
        auto: bool = False,
        previous: int | None = None,
        lower_limit: int = 0,
        upper_limit: int | None = None,
    ) -> MeterReading:
        """Take one reading of ``true_value`` (A or V) at ``nplc`` on range ``index``.

        With ``auto``, the range is chosen by `autorange` first (``index`` is ignored) and
        the number of steps from ``previous`` is reported for timing.
        """
        steps = 0
        if auto:
            chosen = self.autorange(true_value, lower_limit, upper_limit)
            steps = abs(chosen - (index if previous is None else previous))
            index = chosen
            top = len(self.specs) - 1 if upper_limit is None else upper_limit
            # The range was picked from the true value; the converted value carries gain
            # error and noise, and near 105 % it can overflow. A real autorange then
            # up-ranges and converts again (one more step of settling time).
            while index < top:
                reading = self._convert(true_value, index, nplc, rng, steps)
                if not reading.overflow:
                    return reading
                index += 1
                steps += 1
        return self._convert(true_value, index, nplc, rng, steps)

    def _convert(
        self, true_value: float, index: int, nplc: float, rng: np.random.Generator, steps: int
    ) -> MeterReading:
        """One conversion of ``true_value`` on range ``index``: errors, noise, quantisation."""
        spec = self.specs[index]
        value = self.systematic(true_value, index) + self.sigma(index, nplc) * rng.normal()
        frac = nplc - math.floor(nplc)
        if self.pickup_ppm and frac > 1e-9:
            # An aperture of a whole number of line cycles integrates pickup to zero; the
            # residue of the fractional cycle falls as 1/NPLC.
            residue = abs(math.sin(math.pi * frac)) / (math.pi * nplc)
            phase = rng.uniform(0.0, 2.0 * math.pi)
            value += self.pickup_ppm * 1e-6 * spec.full_scale * residue * math.cos(phase)
        if abs(value) > spec.max_reading:
            return MeterReading(math.copysign(OVERFLOW_READING, value), True, index, steps)
        value = round(value / spec.resolution) * spec.resolution
        return MeterReading(value, False, index, steps)


class SourceRanges:
    """The source of one channel: ranges and fixed programming errors drawn from the seed."""

    def __init__(self, specs: Sequence[RangeSpec], rng: np.random.Generator, *, unit: str) -> None:
        self.specs = tuple(specs)
        self.unit = unit
        n = len(self.specs)
        gains = np.array([s.gain for s in self.specs])
        offsets = np.array([s.offset for s in self.specs])
        self.gain_error = np.clip(rng.normal(0.0, gains / 3.0, n), -gains, gains)
        self.offset_error = np.clip(rng.normal(0.0, offsets / 3.0, n), -offsets, offsets)

    @property
    def full_scales(self) -> tuple[float, ...]:
        """Range full scales, ascending (A or V)."""
        return tuple(s.full_scale for s in self.specs)

    def index_for(self, value: float) -> int:
        """Smallest source range holding ``|value|`` (last range up to its 105 %)."""
        magnitude = abs(value)
        for i, spec in enumerate(self.specs):
            if magnitude <= spec.full_scale * (1 + 1e-9):
                return i
        if magnitude <= self.specs[-1].max_reading * (1 + 1e-9):
            return len(self.specs) - 1
        raise ValueError(
            f"{magnitude:g} {self.unit} exceeds the largest source range "
            f"{self.specs[-1].full_scale:g} {self.unit}"
        )

    def actual(self, level: float, index: int) -> float:
        """The level actually output for programmed ``level`` on range ``index``.

        Quantised to the source DAC step, then the fixed gain and offset errors; 0 stays an
        exact 0 plus the offset error (as a real source's zero does).
        """
        spec = self.specs[index]
        programmed = round(level / spec.resolution) * spec.resolution
        return float(programmed * (1.0 + self.gain_error[index]) + self.offset_error[index])
