"""One seeded board instance: every hidden part value drawn once from the config and seed.

`draw_board_instance` fixes the true resistor values at the reference temperature, their
TCR and aging rates, the switches' on and off resistances, the routing switches, the
converters' gain and offset errors and the faults. `element_values` then evaluates the
temperature- and time-dependent values at one instant. Each group of parts draws from its
own child of ``SeedSequence(seed)`` so that adding a part never reshuffles the others.

On boards with memristors (``element.kind`` memristor or mixed) the instance also holds the
kind of every branch and the memristors' drawn parameters (`simulator.memristor`); their
changing state lives in the board model. Memristor branches keep the resistor draws of the
element stream (so the layout never reshuffles the resistors), but their nominal value is
the mid-range resistance 2 / (g_min + g_max), their reference value 1/G as delivered, and
their TCR and aging are 0 (the memristor's own drift replaces them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.board_config import BoardConfig, ElementConfig, FaultConfig
from simulator.memristor import MemristorDevices, draw_memristor_devices

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

FAULT_KINDS = ("open_resistor", "shorted_resistor", "stuck_open", "stuck_closed")
"""Fault kinds, as named in FaultConfig and in the ground truth."""

# Child seed-sequence indices (stable: never renumber).
_STREAM_ELEMENTS, _STREAM_SWITCHES, _STREAM_WIRING, _STREAM_CONVERTERS = 0, 1, 2, 3
_STREAM_FAULTS, _STREAM_ENVIRONMENT, _STREAM_NOISE = 4, 5, 6
_STREAM_MEMRISTORS, _STREAM_MEMRISTOR_FAULTS = 7, 8
_STREAM_PULSE_NOISE, _STREAM_READ_NOISE = 9, 10
_STREAM_REFERENCE = 11

MEMRISTOR_FAULT_KINDS = ("memristor_stuck_on", "memristor_stuck_off")
"""Memristor fault kinds drawn with the board (wear-out happens later, in the model)."""


def child_rng(seed: int, stream: int) -> np.random.Generator:
    """The generator of one stream of the board seeded by ``seed`` (>= 0)."""
    if seed < 0:
        raise ValueError(f"the board seed must be >= 0, got {seed}")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def environment_rng(seed: int) -> np.random.Generator:
    """Generator of the temperature walk."""
    return child_rng(seed, _STREAM_ENVIRONMENT)


def noise_rng(seed: int) -> np.random.Generator:
    """Generator of the ADC read noise (advanced on every conversion)."""
    return child_rng(seed, _STREAM_NOISE)


def pulse_noise_rng(seed: int) -> np.random.Generator:
    """Generator of the memristors' cycle-to-cycle noise and drift draws (every pulse)."""
    return child_rng(seed, _STREAM_PULSE_NOISE)


def read_noise_rng(seed: int) -> np.random.Generator:
    """Generator of the memristors' read noise (every SMU reading and ADC conversion)."""
    return child_rng(seed, _STREAM_READ_NOISE)


@dataclass(frozen=True)
class BoardInstance:
    """The hidden true values of one board (arrays are (R, C, K), (R,) or (C,))."""

    nominal_ohm: FloatArray
    resistance_ref_ohm: FloatArray
    """True element resistance at the reference temperature and t = 0 (ohm)."""
    tcr_ppm_per_K: FloatArray
    aging_ppm_per_decade: FloatArray
    r_on_ref_ohm: FloatArray
    r_off_ref_ohm: FloatArray
    route_row_ohm: FloatArray
    route_col_ohm: FloatArray
    dac_gain: FloatArray
    dac_offset_V: FloatArray
    adc_gain: FloatArray
    adc_offset_A: FloatArray
    tia_offset_V: FloatArray
    sensor_offset_K: float
    open_resistor: BoolArray
    shorted_resistor: BoolArray
    stuck_open: BoolArray
    stuck_closed: BoolArray
    memristor: BoolArray
    """(R, C, K): True where the branch's element is a memristor."""
    memristor_devices: MemristorDevices | None
    """The memristors' drawn parameters (board shape), None on a resistor-only board."""

    @property
    def has_memristors(self) -> bool:
        """Whether any branch is a memristor."""
        return self.memristor_devices is not None

    def fault_list(self) -> list[dict[str, int | str]]:
        """Every fault as ``{"kind", "row", "col", "branch"}``, by kind then position."""
        faults: list[dict[str, int | str]] = []
        masks: list[tuple[str, BoolArray]] = [(kind, getattr(self, kind)) for kind in FAULT_KINDS]
        if self.memristor_devices is not None:
            masks.append(("memristor_stuck_on", self.memristor_devices.stuck_on))
            masks.append(("memristor_stuck_off", self.memristor_devices.stuck_off))
        for kind, mask in masks:
            for r, c, k in np.argwhere(mask):
                faults.append({"kind": kind, "row": int(r), "col": int(c), "branch": int(k)})
        return faults


def nominal_values_ohm(
    element: ElementConfig, shape: tuple[int, int, int], rng: np.random.Generator
) -> FloatArray:
    """Nominal resistance of every element (ohm), per ``element.nominal_scheme``."""
    k = shape[2]
    idx = np.arange(k, dtype=np.float64)
    scheme = element.nominal_scheme
    if scheme == "equal":
        per_branch = np.full(k, element.nominal_ohm)
    elif scheme == "ladder":
        per_branch = element.nominal_ohm * element.ladder_ratio**idx
    elif scheme == "spread":
        per_branch = np.geomspace(element.nominal_ohm, element.nominal_max_ohm, k)
    elif scheme == "list":
        per_branch = np.asarray(element.nominal_list_ohm, dtype=np.float64)
    else:  # log_uniform: every element its own nominal
        lo, hi = math.log(element.nominal_ohm), math.log(element.nominal_max_ohm)
        return np.exp(rng.uniform(lo, hi, size=shape))
    return np.broadcast_to(per_branch, shape).copy()


def tolerance_draws(
    element: ElementConfig, shape: tuple[int, ...], rng: np.random.Generator
) -> FloatArray:
    """Relative deviations eps from nominal, per ``element.distribution``."""
    tol = element.tolerance
    n = int(np.prod(shape))
    if tol == 0:
        return np.zeros(shape)
    if element.distribution == "uniform":
        return rng.uniform(-tol, tol, size=shape)
    if element.distribution == "binned":
        magnitude = rng.uniform(element.binned_hole, tol, size=n)
        sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        return (magnitude * sign).reshape(shape)
    # Truncated gaussian, sigma = tol/3, by rejection (99.7 % accepted per draw).
    out = rng.normal(0.0, tol / 3.0, size=n)
    bad = np.abs(out) > tol
    while np.any(bad):
        out[bad] = rng.normal(0.0, tol / 3.0, size=int(bad.sum()))
        bad = np.abs(out) > tol
    return out.reshape(shape)


def _fault_mask(
    count: int, rate: float, shape: tuple[int, int, int], rng: np.random.Generator
) -> BoolArray:
    n = int(np.prod(shape))
    mask = np.zeros(n, dtype=bool)
    if count:
        mask[rng.choice(n, size=count, replace=False)] = True
    if rate > 0:
        mask |= rng.random(n) < rate
    return mask.reshape(shape)


def _draw_faults(
    faults: FaultConfig, shape: tuple[int, int, int], rng: np.random.Generator
) -> dict[str, BoolArray]:
    return {
        kind: _fault_mask(
            getattr(faults, f"{kind}_count"), getattr(faults, f"{kind}_rate"), shape, rng
        )
        for kind in FAULT_KINDS
    }


def draw_board_instance(config: BoardConfig, seed: int) -> BoardInstance:
    """Draw every hidden value of the board ``(config, seed)``; deterministic."""
    geo = config.geometry
    shape = geo.shape
    el, sw, wi = config.element, config.switch, config.wiring

    rng = child_rng(seed, _STREAM_ELEMENTS)
    nominal = nominal_values_ohm(el, shape, rng)
    eps = tolerance_draws(el, shape, rng)
    tcr = el.tcr_ppm_per_K + el.tcr_sigma_ppm_per_K * rng.standard_normal(shape)
    aging = el.aging_ppm_per_decade + el.aging_sigma_ppm_per_decade * rng.standard_normal(shape)

    rng = child_rng(seed, _STREAM_SWITCHES)
    r_on = np.maximum(
        sw.r_on_ohm + sw.r_on_sigma_ohm * rng.standard_normal(shape), 0.1 * sw.r_on_ohm
    )
    r_off = np.exp(rng.uniform(math.log(sw.r_off_min_ohm), math.log(sw.r_off_max_ohm), shape))

    rng = child_rng(seed, _STREAM_WIRING)
    sigma = wi.routing_switch_sigma_ohm
    route_row = np.maximum(wi.routing_switch_ohm + sigma * rng.standard_normal(geo.rows), 0.0)
    route_col = np.maximum(wi.routing_switch_ohm + sigma * rng.standard_normal(geo.cols), 0.0)

    rng = child_rng(seed, _STREAM_CONVERTERS)
    dac, adc, env = config.dac, config.adc, config.environment
    dac_gain = 1.0 + dac.gain_error_sigma * rng.standard_normal(geo.rows)
    dac_offset = dac.offset_sigma_V * rng.standard_normal(geo.rows)
    adc_gain = 1.0 + adc.gain_error_sigma * rng.standard_normal(geo.cols)
    adc_offset = adc.offset_sigma_A * rng.standard_normal(geo.cols)
    tia_offset = adc.tia_offset_sigma_V * rng.standard_normal(geo.cols)
    sensor_offset = float(env.sensor_offset_sigma_K * rng.standard_normal())

    faults = _draw_faults(config.faults, shape, child_rng(seed, _STREAM_FAULTS))
    resistance_ref = nominal * (1.0 + eps)
    ref = config.reference
    if ref.present:
        # its own stream: every other drawn value stays what the seed gave without it
        at = (ref.row, ref.col, ref.branch)
        rel_u = ref.expanded_uncertainty_ohm / ref.coverage_factor / ref.certified_ohm
        # normal within the expanded uncertainty (a standard that conforms to its
        # certificate): redrawn until inside +-k sigma, deterministic from the seed
        ref_rng = child_rng(seed, _STREAM_REFERENCE)
        z = float(ref_rng.standard_normal())
        while abs(z) > ref.coverage_factor:
            z = float(ref_rng.standard_normal())
        d = rel_u * z
        resistance_ref = resistance_ref.copy()
        resistance_ref[at] = ref.certified_ohm * (1.0 + d) - r_on[at]
        tcr = tcr.copy()
        tcr[at] = ref.tcr_ppm_per_K
        aging = aging.copy()
        aging[at] = 0.0
    kind_cells = np.asarray(config.memristor_cell_mask(), dtype=bool)
    is_mem = np.repeat(kind_cells[:, :, None], geo.branches, axis=2)
    devices: MemristorDevices | None = None
    if is_mem.any():
        devices = _draw_memristors(config, is_mem, seed)
        mc = config.memristor
        g0 = devices.g_min_S + devices.initial_state * (devices.g_max_S - devices.g_min_S)
        nominal = np.where(is_mem, 2.0 / (mc.g_min_S + mc.g_max_S), nominal)
        resistance_ref = np.where(is_mem, 1.0 / g0, resistance_ref)
        tcr = np.where(is_mem, 0.0, tcr)
        aging = np.where(is_mem, 0.0, aging)
    return BoardInstance(
        nominal_ohm=nominal,
        resistance_ref_ohm=resistance_ref,
        tcr_ppm_per_K=tcr,
        aging_ppm_per_decade=aging,
        r_on_ref_ohm=r_on,
        r_off_ref_ohm=r_off,
        route_row_ohm=route_row,
        route_col_ohm=route_col,
        dac_gain=dac_gain,
        dac_offset_V=dac_offset,
        adc_gain=adc_gain,
        adc_offset_A=adc_offset,
        tia_offset_V=tia_offset,
        sensor_offset_K=sensor_offset,
        **faults,
        memristor=is_mem,
        memristor_devices=devices,
    )


def _draw_memristors(config: BoardConfig, is_mem: BoolArray, seed: int) -> MemristorDevices:
    """The memristors' parameters (every branch of the board drawn, so the layout never
    reshuffles them) and their stuck faults, drawn among the memristor branches only."""
    shape = config.geometry.shape
    positions = np.flatnonzero(is_mem)
    rng = child_rng(seed, _STREAM_MEMRISTOR_FAULTS)
    masks = []
    for kind in MEMRISTOR_FAULT_KINDS:
        count = getattr(config.faults, f"{kind}_count")
        rate = getattr(config.faults, f"{kind}_rate")
        sub = _fault_mask(count, rate, (positions.size, 1, 1), rng).ravel()
        mask = np.zeros(int(np.prod(shape)), dtype=bool)
        mask[positions[sub]] = True
        masks.append(mask.reshape(shape))
    return draw_memristor_devices(
        config.memristor,
        shape,
        child_rng(seed, _STREAM_MEMRISTORS),
        stuck_on=masks[0],
        stuck_off=masks[1],
    )


@dataclass(frozen=True)
class ElementValues:
    """Element and switch values at one instant (ohm); open resistors are +inf."""

    time_s: float
    temperature_C: float
    resistance_ohm: FloatArray
    r_on_ohm: FloatArray
    r_off_ohm: FloatArray

    def branch_conductance_S(self, closed: BoolArray) -> FloatArray:
        """Conductance of every branch (S) for the effective switch states ``closed``."""
        series = self.resistance_ohm + np.where(closed, self.r_on_ohm, self.r_off_ohm)
        return 1.0 / series  # 1/inf = 0 for open resistors


def element_values(
    inst: BoardInstance,
    config: BoardConfig,
    time_s: float,
    temperature_C: float,
    memristor_conductance_S: FloatArray | None = None,
) -> ElementValues:
    """Evaluate temperature (TCR) and aging (log time) at ``time_s``, ``temperature_C``.

    R = R_ref * (1 + tcr*1e-6*dT) * (1 + aging*1e-6*log10(1 + t/tau)); memristor branches
    are 1 / ``memristor_conductance_S`` (their state now, required on a board with
    memristors); shorted elements are ``element.shorted_ohm`` and open ones +inf; r_on
    follows its tempco; the off leakage doubles every ``leakage_doubling_K``.
    """
    dT = temperature_C - config.environment.reference_C
    el, sw = config.element, config.switch
    age = math.log10(1.0 + max(time_s, 0.0) / el.aging_tau_s)
    r = (
        inst.resistance_ref_ohm
        * (1.0 + inst.tcr_ppm_per_K * 1e-6 * dT)
        * (1.0 + inst.aging_ppm_per_decade * 1e-6 * age)
    )
    if inst.has_memristors:
        if memristor_conductance_S is None:
            raise ValueError("a board with memristors needs their conductances (S)")
        r = np.where(inst.memristor, 1.0 / memristor_conductance_S, r)
    r = np.where(inst.shorted_resistor, el.shorted_ohm, r)
    r = np.where(inst.open_resistor, np.inf, r)
    r_on = inst.r_on_ref_ohm * (1.0 + sw.r_on_tempco_ppm_per_K * 1e-6 * dT)
    r_off = inst.r_off_ref_ohm * 2.0 ** (-dT / sw.leakage_doubling_K)
    return ElementValues(time_s, temperature_C, r, r_on, r_off)
