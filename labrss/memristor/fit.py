"""Fit the memristor device model to measurements (pure: arrays in, parameters out).

The model is the one the simulator documents (docs/simulator.md, "Forming, the non-linear
I-V, DC switching and endurance"), implemented here independently from its published
equations, as the drivers implement the board protocol independently of the simulator:

* conduction ``I = G V0 sinh(V / V0)`` per polarity (Stanford/PKU law) -> `fit_conduction`;
* the pulse response: a pulse of amplitude V and width w is worth ``dP = ((|V| - V_th) /
  (V_ref - V_th))**alpha * w / w_ref`` reference pulses, and moves the normalised state
  along ``x' = x_inf - (x_inf - x) exp(-dP / A)`` (NeuroSim), SET towards 1, RESET towards 0
  -> `pulse_trace`, `fit_threshold` (V_th and V_ref of one polarity from the state read
  after every step of a pulsed I-V half, alpha, levels and shape held at given values);
* forming under a compliance: ``G_formed = I_cc / V_clamp`` -> `fit_forming`;
* relaxation ``G(t) = G_0 - a ln(1 + t / 1 s)`` -> `fit_drift`;
* log-normal spreads (virgin conductance, endurance) -> `lognormal`.

Each fit returns plain numbers; `labrss.workflows.memristor_fit` collects them per device
from stored runs and for the population, and writes a board file the simulator loads.
Complexity: the threshold fit is a 2-parameter least squares over one half-sweep,
O(iterations x steps); the others are closed-form or 1-D, O(n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares, minimize_scalar  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Spread:
    """A population's centre and spread: ``centre`` and ``sigma`` (same unit, or decades
    for a log-normal), over ``n`` devices."""

    centre: float
    sigma: float
    n: int


def normal(values: npt.ArrayLike) -> Spread:
    """Robust centre and spread of the finite values: the median and 1.4826 x the median
    absolute deviation (the standard deviation for a normal population; one failed
    per-device fit does not move either)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Spread(math.nan, math.nan, 0)
    centre = float(np.median(v))
    mad = float(np.median(np.abs(v - centre))) * 1.4826 if v.size > 1 else math.nan
    return Spread(centre, mad, v.size)


def lognormal(values: npt.ArrayLike) -> Spread:
    """Median and spread in decades (robust, as `normal`, of log10) of the finite positive
    values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return Spread(math.nan, math.nan, 0)
    logs = normal(np.log10(v))
    return Spread(float(10.0**logs.centre), logs.sigma, v.size)


# ---------------------------------------------------------------------------- conduction
def sinh_factor(voltage_V: npt.ArrayLike, v0_V: float) -> FloatArray:
    """``sinh(V / V0) / (V / V0)`` (1 at V = 0)."""
    u = np.asarray(voltage_V, dtype=np.float64) / v0_V
    small = np.abs(u) < 1e-6
    safe = np.where(small, 1.0, u)
    return np.asarray(np.where(small, 1.0 + u * u / 6.0, np.sinh(safe) / safe), np.float64)


def fit_conduction(
    voltage_V: npt.ArrayLike,
    current_A: npt.ArrayLike,
    read_S: npt.ArrayLike,
    read_voltage_V: float,
    *,
    bounds_V: tuple[float, float] = (0.05, 20.0),
) -> tuple[float, float]:
    """V0 (V) of ``I = G V0 sinh(V / V0)`` for one polarity, and the fit's relative RMS.

    ``current_A`` at ``voltage_V`` (all one sign, no switching in between); ``read_S`` is
    each point's state read at ``read_voltage_V`` (the chord conductance there, so
    ``G = read_S / sinh_factor(read_voltage_V)``). Minimises the relative residuals over
    V0 (bounded 1-D search). Returns (nan, nan) with fewer than three points.
    """
    v = np.asarray(voltage_V, dtype=np.float64)
    i = np.asarray(current_A, dtype=np.float64)
    g_read = np.asarray(read_S, dtype=np.float64)
    ok = np.isfinite(v) & np.isfinite(i) & np.isfinite(g_read) & (v != 0) & (g_read > 0)
    v, i, g_read = v[ok], i[ok], g_read[ok]
    if v.size < 3:
        return math.nan, math.nan

    def residuals(v0: float) -> FloatArray:
        g = g_read / sinh_factor(read_voltage_V, v0)
        model = g * v * sinh_factor(v, v0)
        return np.asarray(model / i - 1.0, dtype=np.float64)

    def cost(log_v0: float) -> float:
        r = residuals(float(np.exp(log_v0)))
        return float(r @ r)

    lo, hi = math.log(bounds_V[0]), math.log(bounds_V[1])
    best = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    v0 = float(np.exp(best.x))
    return v0, float(np.sqrt(np.mean(residuals(v0) ** 2)))


# ---------------------------------------------------------------------------- pulse law
def pulse_trace(
    x0: float,
    voltages_V: npt.ArrayLike,
    width_s: float,
    *,
    threshold_V: float,
    reference_V: float,
    exponent: float,
    levels: float,
    shape: float,
    reference_width_s: float,
) -> FloatArray:
    """The normalised state after each pulse of one polarity (the model above, no noise).

    ``voltages_V`` are that half's amplitudes (positive: SET towards 1; negative: RESET
    towards 0; magnitudes enter the law). O(steps).
    """
    v = np.asarray(voltages_V, dtype=np.float64)
    over = np.maximum(np.abs(v) - threshold_V, 0.0) / max(reference_V - threshold_V, 1e-9)
    dp = over**exponent * (width_s / reference_width_s)
    a = shape * levels
    x_inf = 1.0 / -math.expm1(-1.0 / shape)
    setting = bool(np.all(v >= 0))
    toward = x0 if setting else 1.0 - x0
    out = np.empty(v.size)
    for j, step in enumerate(dp):
        toward = min(x_inf - (x_inf - toward) * math.exp(-step / a), 1.0)
        out[j] = toward if setting else 1.0 - toward
    return out


def fit_threshold(
    voltages_V: npt.ArrayLike,
    state: npt.ArrayLike,
    x0: float,
    width_s: float,
    *,
    exponent: float,
    levels: float,
    shape: float,
    reference_width_s: float,
    guess_V: tuple[float, float] = (0.8, 1.5),
) -> tuple[float, float, float]:
    """Threshold and reference voltage (V) of one polarity from a pulsed half-sweep.

    ``state`` is the normalised state read after each pulse of ``voltages_V`` (one half of
    a pulsed I-V, all one polarity, starting from ``x0``); the exponent, levels and shape
    are held. Least squares on the state residuals; returns (V_th, V_ref, RMS residual).
    """
    v = np.asarray(voltages_V, dtype=np.float64)
    x = np.asarray(state, dtype=np.float64)
    ok = np.isfinite(x)
    vmax = float(np.max(np.abs(v)))

    def residuals(p: FloatArray) -> FloatArray:
        th, gap = float(p[0]), float(p[1])
        model = pulse_trace(
            x0,
            v,
            width_s,
            threshold_V=th,
            reference_V=th + gap,
            exponent=exponent,
            levels=levels,
            shape=shape,
            reference_width_s=reference_width_s,
        )
        return np.asarray((model - x)[ok], dtype=np.float64)

    th0, ref0 = guess_V
    start = np.array([min(th0, 0.9 * vmax), max(ref0 - th0, 0.1)])
    fit = least_squares(
        residuals, start, bounds=([0.0, 0.02], [vmax, 5.0]), x_scale=[0.1, 0.3], diff_step=1e-3
    )
    th, gap = float(fit.x[0]), float(fit.x[1])
    return th, th + gap, float(np.sqrt(np.mean(fit.fun**2)))


# ---------------------------------------------------------------------------- the rest
def fit_forming(compliance_A: float, formed_S: npt.ArrayLike) -> Spread:
    """The clamp voltage ``I_cc / G_formed`` (V) over the formed devices."""
    g = np.asarray(formed_S, dtype=np.float64)
    return normal(compliance_A / g[np.isfinite(g) & (g > 0)])


def fit_drift(time_s: npt.ArrayLike, conductance_S: npt.ArrayLike) -> tuple[float, float]:
    """Relaxation ``G(t) = G0 - a ln(1 + t / 1 s)``: (a in S per unit of ln, G0 in S), by
    linear least squares over the finite points."""
    t = np.asarray(time_s, dtype=np.float64)
    g = np.asarray(conductance_S, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(g) & (t >= 0)
    if ok.sum() < 2:
        return math.nan, math.nan
    x = np.log1p(t[ok])
    design = np.stack([-x, np.ones_like(x)], axis=1)
    (a, g0), *_ = np.linalg.lstsq(design, g[ok], rcond=None)
    return float(a), float(g0)
