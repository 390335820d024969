"""The simulated crossbar board's configuration: geometry and every physical parameter.

A `BoardConfig` is a frozen tree of small dataclasses, one per part of the board (elements,
switches, wiring, DACs, ADCs, environment, faults). Every field carries its unit in its name
or docstring. Presets live in ``simulator/presets/*.toml`` (``small`` 8x8x8, ``default``
16x16x8, ``large`` 64x64x16, ``memristor`` 8x8x8 of memristors, ``mixed`` 8x8x8 with
memristor columns 4-7); a user TOML file has the same sections, may start from a
preset with a top-level ``base = "<preset>"`` and overrides only the keys it names. Sources
for the default values are in docs/simulator.md.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

PRESETS = (
    "small",
    "small_long_wire",
    "default",
    "large",
    "large_long_wire",
    "memristor",
    "mixed",
    "memristor_unformed",
    "thinfilm",
    "thickfilm",
)
"""Preset names accepted by `load_board_config`."""

NominalScheme = Literal["equal", "ladder", "spread", "log_uniform", "list"]
ElementKind = Literal["resistor", "memristor", "mixed"]
ToleranceDistribution = Literal["gaussian", "uniform", "binned"]


class BoardConfigError(ValueError):
    """A board configuration is invalid; the message names the file (if any) and the key."""


class BoardConfigNotFoundError(BoardConfigError, FileNotFoundError):
    """Neither a preset nor an existing file (both a ValueError and a FileNotFoundError)."""


@dataclass(frozen=True)
class Geometry:
    """Board size: ``rows`` x ``cols`` cells, each a bank of ``branches`` switched elements."""

    rows: int
    cols: int
    branches: int

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "branches"):
            value = getattr(self, name)
            if not 1 <= value <= 1024:
                raise BoardConfigError(f"geometry.{name} = {value} not in 1..1024")
        if self.branches > 64:
            raise BoardConfigError(f"geometry.branches = {self.branches} not in 1..64")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(rows, cols, branches), the shape of per-branch arrays."""
        return (self.rows, self.cols, self.branches)


@dataclass(frozen=True)
class ElementConfig:
    """The elements, one per branch: imprecise resistors, memristors, or both.

    ``kind``: ``resistor`` (every branch a resistor), ``memristor`` (every branch a
    memristor, parameters in `MemristorConfig`) or ``mixed`` (the cells of the columns in
    ``memristor_columns`` are memristor cells, the others resistor cells).

    Nominal value per branch index ``k`` (``nominal_scheme``):
      * ``equal``: every branch ``nominal_ohm``;
      * ``ladder``: ``nominal_ohm * ladder_ratio**k`` (a sub-binary ladder for ratio < 2);
      * ``spread``: log-spaced from ``nominal_ohm`` to ``nominal_max_ohm`` over the K branches;
      * ``log_uniform``: every element drawn log-uniformly in [nominal_ohm, nominal_max_ohm];
      * ``list``: ``nominal_list_ohm`` (exactly K values).
    True value ``R = nominal * (1 + eps)``, eps from ``distribution``: ``gaussian`` (sigma =
    tolerance/3, truncated at +-tolerance), ``uniform`` (+-tolerance), ``binned`` (uniform on
    ``binned_hole <= |eps| <= tolerance``: the tight parts were sold as a better grade).
    """

    kind: ElementKind = "resistor"
    memristor_columns: tuple[int, ...] = ()
    """Columns whose cells are memristor cells on a ``mixed`` board (0-based)."""
    nominal_scheme: NominalScheme = "ladder"
    nominal_ohm: float = 10e3
    ladder_ratio: float = 1.8
    nominal_max_ohm: float = 1e6
    nominal_list_ohm: tuple[float, ...] = ()
    tolerance: float = 0.05
    distribution: ToleranceDistribution = "gaussian"
    binned_hole: float = 0.01
    tcr_ppm_per_K: float = 100.0
    """Mean temperature coefficient of resistance (ppm/K)."""
    tcr_sigma_ppm_per_K: float = 10.0
    """Element-to-element spread of the TCR (ppm/K, gaussian)."""
    aging_ppm_per_decade: float = 20.0
    """Mean drift: R grows by this many ppm per decade of (1 + t/aging_tau_s)."""
    aging_sigma_ppm_per_decade: float = 5.0
    aging_tau_s: float = 3600.0
    shorted_ohm: float = 0.05
    """Resistance of a shorted element (a solder bridge), ohm."""

    def __post_init__(self) -> None:
        _positive("element.nominal_ohm", self.nominal_ohm)
        _positive("element.nominal_max_ohm", self.nominal_max_ohm)
        _positive("element.ladder_ratio", self.ladder_ratio)
        _positive("element.aging_tau_s", self.aging_tau_s)
        _positive("element.shorted_ohm", self.shorted_ohm)
        if not 0.0 <= self.tolerance < 1.0:
            raise BoardConfigError(f"element.tolerance = {self.tolerance} not in [0, 1)")
        if self.distribution == "binned" and not 0.0 <= self.binned_hole < self.tolerance:
            raise BoardConfigError(
                f"element.binned_hole = {self.binned_hole} must be in [0, tolerance = "
                f"{self.tolerance})"
            )
        if self.nominal_scheme in ("spread", "log_uniform") and not (
            self.nominal_max_ohm >= self.nominal_ohm
        ):
            raise BoardConfigError(
                f"element.nominal_max_ohm = {self.nominal_max_ohm} is below element.nominal_ohm"
                f" = {self.nominal_ohm}"
            )
        for value in self.nominal_list_ohm:
            _positive("element.nominal_list_ohm", value)
        for name in ("tcr_sigma_ppm_per_K", "aging_sigma_ppm_per_decade"):
            if getattr(self, name) < 0:
                raise BoardConfigError(f"element.{name} = {getattr(self, name)} is negative")
        if self.kind == "mixed":
            if not self.memristor_columns:
                raise BoardConfigError(
                    "element.memristor_columns is empty: a mixed board names its memristor columns"
                )
            if len(set(self.memristor_columns)) != len(self.memristor_columns):
                raise BoardConfigError(
                    f"element.memristor_columns = {list(self.memristor_columns)} repeats a column"
                )
        elif self.memristor_columns:
            raise BoardConfigError(
                f"element.memristor_columns is only for kind = 'mixed' (kind = {self.kind!r})"
            )


@dataclass(frozen=True)
class SwitchConfig:
    """The branch switches (ADG1414-like analog switches by default)."""

    r_on_ohm: float = 9.5
    """Typical on-resistance at reference temperature (ohm)."""
    r_on_sigma_ohm: float = 0.4
    """Switch-to-switch spread of the on-resistance (ohm, gaussian, clipped at 10 % of typ)."""
    r_on_tempco_ppm_per_K: float = 4000.0
    """Temperature coefficient of the on-resistance (ppm/K)."""
    r_off_min_ohm: float = 1e10
    r_off_max_ohm: float = 1e11
    """Off-state leakage as a resistance, log-uniform in [r_off_min_ohm, r_off_max_ohm]."""
    leakage_doubling_K: float = 10.0
    """Off leakage doubles every this many kelvin (junction leakage rule of thumb)."""

    def __post_init__(self) -> None:
        _positive("switch.r_on_ohm", self.r_on_ohm)
        _positive("switch.r_off_min_ohm", self.r_off_min_ohm)
        _positive("switch.leakage_doubling_K", self.leakage_doubling_K)
        if self.r_on_sigma_ohm < 0:
            raise BoardConfigError(f"switch.r_on_sigma_ohm = {self.r_on_sigma_ohm} is negative")
        if not self.r_off_max_ohm >= self.r_off_min_ohm:
            raise BoardConfigError(
                f"switch.r_off_max_ohm = {self.r_off_max_ohm} is below switch.r_off_min_ohm"
                f" = {self.r_off_min_ohm}"
            )


@dataclass(frozen=True)
class MemristorConfig:
    """The memristors (analog filamentary ReRAM, CMO/HfOx-like); model in simulator/memristor.py.

    Conductance bounded to [g_min_S, g_max_S] per device; state x = (G - g_min)/(g_max -
    g_min). A pulse of device voltage V and width w advances the NeuroSim exponential
    law by dP = ((|V| - V_th) / (V_ref - V_th))**exponent * w / reference_width_s
    reference pulses (none for |V| <= V_th): SET (V > 0) raises x, RESET (V < 0) lowers
    it, each with its own levels, shape, threshold and exponent. Any voltage held across a
    device (a read, an MVM input) is a stress: above threshold it switches the device like
    a pulse of the same duration, below it the device creeps (read disturb, the
    ``read_disturb_*`` keys). Sources and reasons for each default are in
    docs/simulator.md, "Memristors".
    """

    g_min_S: float = 8e-6
    g_max_S: float = 90e-6
    range_sigma: float = 0.05
    """Device-to-device relative spread of g_min and g_max (gaussian, clipped at 3 sigma)."""
    set_levels: float = 97.0
    """Reference SET pulses that take a device from g_min to g_max."""
    reset_levels: float = 100.0
    """Reference RESET pulses that take a device from g_max to g_min."""
    levels_sigma: float = 0.1
    """Device-to-device relative spread of the levels (gaussian, clipped at 3 sigma)."""
    set_shape: float = 0.5
    """A / P_max of the SET exponential (small: strongly saturating; large: nearly linear)."""
    reset_shape: float = 0.25
    shape_sigma: float = 0.1
    """Device-to-device relative spread of the shapes (gaussian, clipped at 3 sigma)."""
    set_threshold_V: float = 0.8
    reset_threshold_V: float = 0.6
    """RESET threshold magnitude (V): a negative pulse with |V| <= this changes nothing."""
    threshold_sigma_V: float = 0.05
    """Device-to-device spread of both thresholds (V, gaussian, clipped at 3 sigma)."""
    set_reference_V: float = 1.5
    """SET amplitude (V) at which a reference-width pulse is one reference pulse."""
    reset_reference_V: float = 1.2
    set_exponent: float = 3.0
    reset_exponent: float = 1.0
    reference_width_s: float = 1e-4
    read_disturb_rate: float = 1e-4
    """Read disturb: reference pulses that a stress AT the switching threshold is worth per
    ``reference_width_s`` (the sub-threshold creep law; simulator/memristor.py)."""
    read_disturb_scale_V: float = 0.04
    """Read disturb: voltage scale of the creep's sinh law (V; one decade per ~92 mV)."""
    c2c_sigma: float = 0.035
    """Cycle-to-cycle noise, as a fraction of the device's range, of a pulse whose step is one
    average level (range / levels); a step dx (normalised) gets sigma = c2c_sigma * sqrt(|dx|
    * levels) of the range."""
    read_noise_S_per_decade: float = 1.0e-7
    """Read noise sigma = this * log10(G / 1 uS) (S), fresh on every read (white)."""
    drift_S_per_ln: float = 0.089e-6
    """Mean relaxation after programming: G drops by this * ln(1 + t / drift_t0_s) (S)."""
    drift_sigma_S_per_ln: float = 0.042e-6
    """Spread of the relaxation: sigma = this * ln(1 + t / drift_t0_s) (S)."""
    drift_t0_s: float = 1.0
    endurance_cycles: float = 1e6
    """Median number of pulses a device survives (log-normal over devices)."""
    endurance_sigma_decades: float = 0.3
    endurance_stuck_on_fraction: float = 0.5
    """Fraction of worn-out devices that stick at g_max (the others stick at g_min)."""
    initial_state_min: float = 0.0
    initial_state_max: float = 1.0
    """The as-delivered state x is uniform in [initial_state_min, initial_state_max]."""
    formed_fraction: float = 1.0
    """Fraction of devices delivered formed; the others are virgin and need forming (a
    voltage above their forming voltage, under a current compliance: simulator/memristor.py,
    "Forming"). 1.0: every device is formed (the other parameters below do nothing)."""
    virgin_S: float = 0.1e-6
    """Median conductance of a virgin (unformed) device (S): the intact oxide."""
    virgin_sigma_decades: float = 0.2
    """Device-to-device spread of the virgin conductance (log-normal, decades)."""
    forming_V: float = 2.5
    """Median forming voltage (V, device voltage, either polarity)."""
    forming_sigma_V: float = 0.15
    """Device-to-device spread of the forming voltage (V, gaussian, clipped at 3 sigma)."""
    compliance_clamp_V: float = 0.45
    """A filament formed or SET under a current compliance I_cc ends at G = I_cc / this
    (Ielmini's R_on = V_C / I_C, the compliance-controlled on state), clipped to the
    device's range."""
    breakdown_factor: float = 2.0
    """Forming with I_cc / compliance_clamp_V above this many times g_max (or with no
    compliance: a pulse) is a hard breakdown: the device sticks at g_max for good."""
    iv_v0_set_V: float = math.inf
    """I-V non-linearity at positive device voltage: I = G V0 sinh(V / V0) (the
    Stanford/PKU RRAM model's conduction law; G is the small-signal conductance). inf:
    linear."""
    iv_v0_reset_V: float = math.inf
    """The same at negative device voltage (asymmetric I-V)."""
    window_closure: float = 0.0
    """Endurance: fraction of the switching window lost by the end of a device's endurance
    budget (both bounds move in, quadratically in cycles / budget); then it sticks."""

    def __post_init__(self) -> None:
        for name in (
            "g_min_S",
            "set_levels",
            "reset_levels",
            "set_shape",
            "reset_shape",
            "set_threshold_V",
            "reset_threshold_V",
            "set_exponent",
            "reset_exponent",
            "reference_width_s",
            "drift_t0_s",
            "read_disturb_scale_V",
        ):
            _positive(f"memristor.{name}", getattr(self, name))
        if not (math.isfinite(self.g_max_S) and self.g_max_S > self.g_min_S):
            raise BoardConfigError(
                f"memristor.g_max_S = {self.g_max_S} must exceed memristor.g_min_S = {self.g_min_S}"
            )
        if not 1.0 <= self.endurance_cycles <= 1e15:
            raise BoardConfigError(
                f"memristor.endurance_cycles = {self.endurance_cycles} not in [1, 1e15]"
            )
        for name in (
            "range_sigma",
            "levels_sigma",
            "shape_sigma",
            "threshold_sigma_V",
            "c2c_sigma",
            "read_noise_S_per_decade",
            "drift_S_per_ln",
            "drift_sigma_S_per_ln",
            "endurance_sigma_decades",
            "read_disturb_rate",
        ):
            _non_negative(f"memristor.{name}", getattr(self, name))
        for name in ("range_sigma", "levels_sigma", "shape_sigma"):
            if getattr(self, name) >= 1.0 / 3.0:
                raise BoardConfigError(
                    f"memristor.{name} = {getattr(self, name)} must be below 1/3 (values are "
                    "clipped at 3 sigma and must stay positive)"
                )
        if 3.0 * self.range_sigma * (self.g_min_S + self.g_max_S) >= self.g_max_S - self.g_min_S:
            raise BoardConfigError(
                f"memristor.range_sigma = {self.range_sigma} lets a device's g_min reach its g_max"
            )
        for pol in ("set", "reset"):
            th = getattr(self, f"{pol}_threshold_V")
            ref = getattr(self, f"{pol}_reference_V")
            if not (math.isfinite(ref) and ref > th + 3.0 * self.threshold_sigma_V):
                raise BoardConfigError(
                    f"memristor.{pol}_reference_V = {ref} must exceed {pol}_threshold_V + 3 "
                    f"threshold_sigma_V = {th + 3.0 * self.threshold_sigma_V:g}"
                )
            if th <= 3.0 * self.threshold_sigma_V:
                raise BoardConfigError(
                    f"memristor.{pol}_threshold_V = {th} must exceed 3 threshold_sigma_V"
                )
        for name in ("virgin_S", "forming_V", "compliance_clamp_V", "breakdown_factor"):
            _positive(f"memristor.{name}", getattr(self, name))
        for name in ("virgin_sigma_decades", "forming_sigma_V"):
            _non_negative(f"memristor.{name}", getattr(self, name))
        for name in ("iv_v0_set_V", "iv_v0_reset_V"):
            if not getattr(self, name) > 0:
                raise BoardConfigError(f"memristor.{name} = {getattr(self, name)} must be > 0")
        if self.forming_V <= 3.0 * self.forming_sigma_V:
            raise BoardConfigError(
                f"memristor.forming_V = {self.forming_V} must exceed 3 forming_sigma_V"
            )
        for name in (
            "endurance_stuck_on_fraction",
            "initial_state_min",
            "initial_state_max",
            "formed_fraction",
            "window_closure",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BoardConfigError(f"memristor.{name} = {value} not in [0, 1]")
        if self.initial_state_max < self.initial_state_min:
            raise BoardConfigError(
                f"memristor.initial_state_max = {self.initial_state_max} is below "
                f"initial_state_min = {self.initial_state_min}"
            )


@dataclass(frozen=True)
class PulseConfig:
    """The board's pulse circuit (the hardware limits reported by PULSe:LIMits?)."""

    max_amplitude_V: float = 3.0
    """Largest pulse amplitude magnitude (V), either polarity."""
    min_width_s: float = 1e-7
    max_width_s: float = 1e-2
    max_count: int = 1000
    """Most pulses in one PULSe command."""
    gap_s: float = 1e-3
    """Pause after every pulse (s): a burst of n pulses of width w takes n * (w + gap_s)."""

    def __post_init__(self) -> None:
        _positive("pulse.max_amplitude_V", self.max_amplitude_V)
        _positive("pulse.min_width_s", self.min_width_s)
        _non_negative("pulse.gap_s", self.gap_s)
        if not (math.isfinite(self.max_width_s) and self.max_width_s >= self.min_width_s):
            raise BoardConfigError(
                f"pulse.max_width_s = {self.max_width_s} is below pulse.min_width_s = "
                f"{self.min_width_s}"
            )
        if not 1 <= self.max_count <= 10**6:
            raise BoardConfigError(f"pulse.max_count = {self.max_count} not in 1..1000000")


@dataclass(frozen=True)
class WiringConfig:
    """Line and lead resistances. Zero is allowed (ideal wire) and is solved exactly."""

    wire_segment_ohm: float = 0.005
    """Copper between adjacent cells on a row or column line, and from the line's edge
    connector to its first cell (ohm)."""
    routing_switch_ohm: float = 0.1
    """Routing-matrix switch between a line's edge and its destination (ohm; reed relay)."""
    routing_switch_sigma_ohm: float = 0.02
    """Spread of the routing switch resistance (ohm, gaussian, clipped at 0)."""
    lead_ohm: float = 0.05
    """Each SMU lead (force HI, force LO, GUARD) with its connector (ohm)."""
    float_conductance_S: float = 1e-12
    """Conductance to ground added to nodes of parts with no path to any source (S)."""

    def __post_init__(self) -> None:
        for name in ("wire_segment_ohm", "routing_switch_ohm", "routing_switch_sigma_ohm"):
            _non_negative(f"wiring.{name}", getattr(self, name))
        _non_negative("wiring.lead_ohm", self.lead_ohm)
        _positive("wiring.float_conductance_S", self.float_conductance_S)


@dataclass(frozen=True)
class DacConfig:
    """One bipolar DAC per row: code ``n`` in [-2**(bits-1), 2**(bits-1) - 1] gives
    ``n * range_V / 2**(bits-1)`` volts (0 V is exact; +range_V is clamped to the top code);
    the true output is ``gain * that + offset``."""

    bits: int = 16
    range_V: float = 1.0
    gain_error_sigma: float = 1e-3
    """Relative gain error, drawn per DAC (gaussian)."""
    offset_sigma_V: float = 0.5e-3
    settle_time_s: float = 1e-4
    """Virtual time a DAC write takes (s)."""

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 32:
            raise BoardConfigError(f"dac.bits = {self.bits} not in 2..32")
        _positive("dac.range_V", self.range_V)
        _non_negative("dac.gain_error_sigma", self.gain_error_sigma)
        _non_negative("dac.offset_sigma_V", self.offset_sigma_V)
        _non_negative("dac.settle_time_s", self.settle_time_s)

    @property
    def lsb_V(self) -> float:
        """Voltage step of one DAC code (V)."""
        return float(self.range_V / 2 ** (self.bits - 1))


@dataclass(frozen=True)
class AdcConfig:
    """One transimpedance amplifier + ADC per column, holding its column at virtual ground.

    Full scale current ``range_A = full_scale_V / tia_gain_V_per_A``; ``bits`` signed codes
    over +-range_A. The reported current is ``gain * I + offset_A + noise``, quantised.
    """

    bits: int = 16
    tia_gain_V_per_A: float = 500.0
    full_scale_V: float = 2.5
    gain_error_sigma: float = 1e-3
    offset_sigma_A: float = 20e-9
    noise_A: float = 50e-9
    """Input-referred rms noise per conversion (A)."""
    tia_offset_sigma_V: float = 50e-6
    """Spread of the TIA input offset voltage: the virtual ground sits at V_os, not 0 (V)."""
    conversion_time_s: float = 1e-4

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 32:
            raise BoardConfigError(f"adc.bits = {self.bits} not in 2..32")
        _positive("adc.tia_gain_V_per_A", self.tia_gain_V_per_A)
        _positive("adc.full_scale_V", self.full_scale_V)
        for name in (
            "gain_error_sigma",
            "offset_sigma_A",
            "noise_A",
            "tia_offset_sigma_V",
            "conversion_time_s",
        ):
            _non_negative(f"adc.{name}", getattr(self, name))

    @property
    def range_A(self) -> float:
        """Full-scale current (A), +-."""
        return self.full_scale_V / self.tia_gain_V_per_A

    @property
    def lsb_A(self) -> float:
        """Current step of one ADC code (A)."""
        return float(self.range_A / 2 ** (self.bits - 1))


@dataclass(frozen=True)
class EnvironmentConfig:
    """Board temperature over the virtual clock and how often element values follow it.

    T(t) = ambient_C + daily_amplitude_K * sin(2 pi t / daily_period_s + phase) + w(t), with
    w a seeded Ornstein-Uhlenbeck walk (stationary std ``walk_sigma_K``, correlation time
    ``walk_time_constant_s``) sampled every ``walk_step_s`` and linearly interpolated.
    """

    ambient_C: float = 25.0
    reference_C: float = 25.0
    """Temperature at which the nominal/tolerance values hold (T0, degC)."""
    daily_amplitude_K: float = 0.5
    daily_period_s: float = 86400.0
    walk_sigma_K: float = 0.3
    walk_time_constant_s: float = 4 * 3600.0
    walk_step_s: float = 60.0
    sensor_offset_sigma_K: float = 0.2
    """Calibration error of the board's temperature sensor (K, gaussian, drawn per board)."""
    update_step_s: float = 1.0
    """Element values are re-evaluated when the virtual clock has moved by at least this
    much since the last evaluation (s); between updates the factorisation is reused."""

    def __post_init__(self) -> None:
        for name in ("daily_amplitude_K", "walk_sigma_K", "sensor_offset_sigma_K"):
            _non_negative(f"environment.{name}", getattr(self, name))
        for name in ("daily_period_s", "walk_time_constant_s", "walk_step_s"):
            _positive(f"environment.{name}", getattr(self, name))
        _non_negative("environment.update_step_s", self.update_step_s)


@dataclass(frozen=True)
class FaultConfig:
    """Faulty parts. For each kind, ``*_count`` branches are drawn without replacement from
    the seed, plus each branch independently with probability ``*_rate``."""

    open_resistor_count: int = 0
    open_resistor_rate: float = 0.0
    shorted_resistor_count: int = 0
    shorted_resistor_rate: float = 0.0
    stuck_open_count: int = 0
    stuck_open_rate: float = 0.0
    stuck_closed_count: int = 0
    stuck_closed_rate: float = 0.0
    memristor_stuck_on_count: int = 0
    """Memristors stuck at their g_max (drawn among the memristor branches only)."""
    memristor_stuck_on_rate: float = 0.0
    memristor_stuck_off_count: int = 0
    """Memristors stuck at their g_min (drawn among the memristor branches only)."""
    memristor_stuck_off_rate: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_count") and value < 0:
                raise BoardConfigError(f"faults.{f.name} = {value} is negative")
            if f.name.endswith("_rate") and not 0.0 <= value <= 1.0:
                raise BoardConfigError(f"faults.{f.name} = {value} not in [0, 1]")


@dataclass(frozen=True)
class ReferenceConfig:
    """An on-board reference standard: one branch populated with a precision resistor and
    calibrated in place (the certificate states the branch's resistance with its switch
    closed, at ``environment.reference_C``, as seen at the board's connector).

    The hidden true value is drawn from the seed: ``certified_ohm`` times ``1 + d`` with
    ``d`` normal of standard deviation ``expanded_uncertainty_ohm / coverage_factor /
    certified_ohm``, truncated at the expanded uncertainty (redrawn outside it): the
    standard conforms to its certificate. The element's own TCR is ``tcr_ppm_per_K`` (no aging); its
    switch keeps the board's on-resistance and temperature coefficient. ``row = -1``: no
    reference (the default).
    """

    row: int = -1
    col: int = -1
    branch: int = -1
    certified_ohm: float = 10e3
    expanded_uncertainty_ohm: float = 0.5
    coverage_factor: float = 2.0
    tcr_ppm_per_K: float = 0.5
    certificate_date: str = "2025-01-15"

    def __post_init__(self) -> None:
        _positive("reference.certified_ohm", self.certified_ohm)
        _positive("reference.expanded_uncertainty_ohm", self.expanded_uncertainty_ohm)
        _positive("reference.coverage_factor", self.coverage_factor)

    @property
    def present(self) -> bool:
        """Whether the board carries a reference."""
        return self.row >= 0


@dataclass(frozen=True)
class BoardConfig:
    """Everything that defines a simulated board (apart from its seed)."""

    geometry: Geometry
    element: ElementConfig = field(default_factory=ElementConfig)
    switch: SwitchConfig = field(default_factory=SwitchConfig)
    wiring: WiringConfig = field(default_factory=WiringConfig)
    dac: DacConfig = field(default_factory=DacConfig)
    adc: AdcConfig = field(default_factory=AdcConfig)
    environment: EnvironmentConfig = field(default_factory=EnvironmentConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    memristor: MemristorConfig = field(default_factory=MemristorConfig)
    pulse: PulseConfig = field(default_factory=PulseConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    name: str = "custom"
    """Preset name or file stem, for logs and BOARD:INFO?."""
    bbm_delay_s: float = 1e-3
    """Break-before-make pause between opening and closing switches or routes (s)."""

    def __post_init__(self) -> None:
        _non_negative("bbm_delay_s", self.bbm_delay_s)
        k = self.geometry.branches
        if self.element.nominal_scheme == "list" and len(self.element.nominal_list_ohm) != k:
            raise BoardConfigError(
                f"element.nominal_list_ohm has {len(self.element.nominal_list_ohm)} values; "
                f"the board has {k} branches per cell"
            )
        n = self.geometry.rows * self.geometry.cols * k
        for f in dataclasses.fields(self.faults):
            if f.name.endswith("_count") and getattr(self.faults, f.name) > n:
                raise BoardConfigError(
                    f"faults.{f.name} = {getattr(self.faults, f.name)} exceeds the {n} branches"
                )
        for c in self.element.memristor_columns:
            if not 0 <= c < self.geometry.cols:
                raise BoardConfigError(
                    f"element.memristor_columns holds column {c}, not in "
                    f"0..{self.geometry.cols - 1}"
                )
        ref = self.reference
        if ref.present:
            g = self.geometry
            if not (0 <= ref.row < g.rows and 0 <= ref.col < g.cols and 0 <= ref.branch < k):
                raise BoardConfigError(
                    f"reference at ({ref.row}, {ref.col}, {ref.branch}) is not on the board "
                    f"({g.rows}x{g.cols}x{k})"
                )
            if self.memristor_cell_mask()[ref.row][ref.col]:
                raise BoardConfigError(
                    f"reference at ({ref.row}, {ref.col}) is a memristor cell: a reference "
                    "standard is a resistor"
                )
        n_mem = sum(map(sum, self.memristor_cell_mask())) * k
        for name in ("memristor_stuck_on_count", "memristor_stuck_off_count"):
            if getattr(self.faults, name) > n_mem:
                raise BoardConfigError(
                    f"faults.{name} = {getattr(self.faults, name)} exceeds the {n_mem} "
                    f"memristor branches (element.kind = {self.element.kind!r})"
                )

    def memristor_cell_mask(self) -> list[list[bool]]:
        """(R, C) nested lists: True where the cell's branches are memristors."""
        kind = self.element.kind
        cols = set(self.element.memristor_columns)
        return [
            [
                kind == "memristor" or (kind == "mixed" and c in cols)
                for c in range(self.geometry.cols)
            ]
            for _ in range(self.geometry.rows)
        ]

    def replace(self, **sections: Any) -> BoardConfig:
        """A copy with whole sections or section keys replaced.

        ``cfg.replace(wiring={"wire_segment_ohm": 0.0}, name="ideal")``: a dict updates only
        the named keys of that section; a dataclass replaces the section.
        """
        updates: dict[str, Any] = {}
        for key, value in sections.items():
            current = getattr(self, key)
            if isinstance(value, dict) and dataclasses.is_dataclass(current):
                updates[key] = dataclasses.replace(current, **value)  # type: ignore[type-var]
            else:
                updates[key] = value
        return dataclasses.replace(self, **updates)


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise BoardConfigError(f"{name} = {value} must be a finite number > 0")


def _non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise BoardConfigError(f"{name} = {value} must be a finite number >= 0")


# ---------------------------------------------------------------------- TOML loading
_SECTIONS: dict[str, type] = {
    "geometry": Geometry,
    "element": ElementConfig,
    "switch": SwitchConfig,
    "wiring": WiringConfig,
    "dac": DacConfig,
    "adc": AdcConfig,
    "environment": EnvironmentConfig,
    "faults": FaultConfig,
    "memristor": MemristorConfig,
    "pulse": PulseConfig,
    "reference": ReferenceConfig,
}
_TOP_KEYS = ("name", "bbm_delay_s", "base")


def load_board_config(preset_or_path: str | Path) -> BoardConfig:
    """Load a preset (``"small"``, ``"default"``, ``"large"``) or a TOML file.

    Raises `BoardConfigError` (a ValueError) naming the file and the key for unknown keys,
    wrong types and out-of-range values, and `BoardConfigNotFoundError` (a BoardConfigError
    and a FileNotFoundError) naming the argument when it is neither a preset nor a file.
    """
    text = str(preset_or_path)
    if text in PRESETS:
        data = _preset_data(text)
        return _config_from_data(data, source=f"preset {text!r}", default_name=text)
    path = Path(text)
    if not path.is_file():
        raise BoardConfigNotFoundError(
            f"board config {text!r} is neither a preset {PRESETS} nor an existing file"
        )
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise BoardConfigError(f"{path}: invalid TOML: {exc}") from exc
    base = data.pop("base", None)
    if base is not None:
        if base not in PRESETS:
            raise BoardConfigError(f"{path}: base = {base!r} is not a preset {PRESETS}")
        base_data = _preset_data(base)
        base_data.pop("name", None)  # the file's own name (its stem) unless it sets one
        data = _merge(base_data, data)
    return _config_from_data(data, source=str(path), default_name=path.stem)


def _preset_data(name: str) -> dict[str, Any]:
    """A preset's keys; a preset may start from another (``base``), like a board file."""
    ref = resources.files("simulator").joinpath("presets", f"{name}.toml")
    data = tomllib.loads(ref.read_text(encoding="utf-8"))
    base = data.pop("base", None)
    if base is not None:
        base_data = _preset_data(base)
        base_data.pop("name", None)
        data = _merge(base_data, data)
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _config_from_data(data: dict[str, Any], *, source: str, default_name: str) -> BoardConfig:
    for key in data:
        if key not in _SECTIONS and key not in _TOP_KEYS:
            raise BoardConfigError(
                f"{source}: unknown key {key!r} (sections: {', '.join(_SECTIONS)}; "
                f"top-level keys: {', '.join(_TOP_KEYS)})"
            )
    if "geometry" not in data:
        raise BoardConfigError(f"{source}: missing section [geometry] (rows, cols, branches)")
    kwargs: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        if section not in data:
            continue
        table = data[section]
        if not isinstance(table, dict):
            raise BoardConfigError(f"{source}: {section!r} must be a table [{section}]")
        kwargs[section] = _build(cls, table, section, source)
    kwargs["name"] = _check_type(data.get("name", default_name), str, "name", source)
    if "bbm_delay_s" in data:
        kwargs["bbm_delay_s"] = _check_type(data["bbm_delay_s"], float, "bbm_delay_s", source)
    try:
        return BoardConfig(**kwargs)
    except BoardConfigError as exc:
        raise BoardConfigError(f"{source}: {exc}") from None


def _build(cls: type, table: dict[str, Any], section: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            raise BoardConfigError(
                f"{source}: unknown key {section}.{key} (known: {', '.join(sorted(names))})"
            )
        values[key] = _check_type(value, hints[key], f"{section}.{key}", source)
    try:
        return cls(**values)
    except BoardConfigError as exc:
        raise BoardConfigError(f"{source}: {exc}") from None
    except TypeError as exc:  # a required key is missing
        raise BoardConfigError(f"{source}: section [{section}]: {exc}") from None


def _check_type(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check one TOML value against a field's type hint; ints are accepted for floats."""
    origin = get_origin(hint)
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            raise BoardConfigError(f"{source}: {key} = {value!r} is not one of {allowed}")
        return value
    if origin is tuple:
        item = get_args(hint)[0]
        if not isinstance(value, list):
            what = "integers" if item is int else "numbers"
            raise BoardConfigError(f"{source}: {key} = {value!r} must be an array of {what}")
        return tuple(_check_type(v, item, key, source) for v in value)
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported config type {hint}")  # pragma: no cover
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BoardConfigError(f"{source}: {key} = {value!r} must be a number")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BoardConfigError(f"{source}: {key} = {value!r} must be an integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise BoardConfigError(f"{source}: {key} = {value!r} must be a string")
        return value
    raise TypeError(f"unsupported config type {hint}")  # pragma: no cover
