"""Temperature coefficients of the elements, from calibrations at several temperatures.

Each element's conductance g, calibrated at board temperatures T_p (p = 1..P, the board's
own sensor as each cell was read), is fitted as a resistance R = 1/g that is linear in T
(a resistor's TCR is defined so) by weighted least squares:

    R(T) = R_ref (1 + alpha (T - T_ref)),       T_ref = the weighted mean of the cell's T_p,

so that R_ref and the slope are uncorrelated; ``alpha`` is the element's temperature
coefficient of resistance, reported in ppm/K (a positive TCR conducts less when warmer;
the conductance is ``1 / R(T)``, not a straight line). The weights are
``1 / (u_R^2 + (b u_T)^2)`` with ``u_R = u_g / g^2`` and ``b = alpha R_ref``: each point's
statistical standard uncertainty and its temperature uncertainty carried through the
slope (one refinement of b). Components common to every temperature (the meter's range
gain when the same range is used, the sensor's calibration offset) shift every point alike
and leave the slope alone; they are deliberately not in the weights.

``u(alpha) = u(b) / R_ref`` with ``u(b)^2 = 1 / sum w (T - T_ref)^2``: the slope's
standard uncertainty from the stated point uncertainties, scaled by the pooled Birge
ratio ``sqrt(sum chi2 / sum dof)`` over every element when that exceeds 1 (with three or
more temperatures; one element's residual has too few degrees of freedom, the board's
pool does not). The calibration's statistical uncertainty misses part of what differs
between two calibrations of one element (measured: the scatter against the simulator's
truth is about 1.3x the statistical prediction); with only two temperatures nothing can
see it, so three are the default and two are a warned shortcut.

**Common and spread.** A coefficient common to every element scales every subset alike:
no subset choice cancels it, but it cancels in ratios (network weights) and in reference
reads. `split_common` separates it (the uncertainty-weighted mean over the elements) from
the element-to-element spread, whose standard deviation is corrected for the estimates'
own uncertainty. Subset choice (`labrss.rss.thermal`) works on the spread.

**Off-leakage.** A cell's all-open conductance c0 (its switches' off-leakage) is not a
resistor: it grows roughly exponentially with temperature (junction leakage; analog-switch
datasheets: about doubling every 10 K). `fit_leakage_rate` fits ``ln c0 = a_cell + b T``
over the calibrations with one rate ``b`` (1/K) for the board (each cell its own level),
so that the span solver can carry c0 to any temperature instead of leaving its drift out.

Complexity: O(P x elements), vectorised. Pure (no I/O).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["CommonTCR", "LeakageRate", "TCRFit", "fit_leakage_rate", "fit_tcr", "split_common"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TCRFit:
    """Per element (shape ``(..., K)`` as given; NaN where fewer than two points):

    Attributes:
        tcr_ppm_per_K: the resistance temperature coefficient alpha (ppm/K).
        u_tcr_ppm_per_K: its standard uncertainty (ppm/K).
        conductance_S: g_ref, the conductance at ``reference_C`` (S).
        u_conductance_S: its standard uncertainty from the fit (S).
        (the fit is on R = 1/g; g_ref = 1 / R_ref)
        reference_C: T_ref (degC), per element.
        chi2: weighted residual sum of squares; dof: points - 2.
        birge: the pooled Birge ratio applied to the uncertainties (1: none applied).
    """

    tcr_ppm_per_K: FloatArray
    u_tcr_ppm_per_K: FloatArray
    conductance_S: FloatArray
    u_conductance_S: FloatArray
    reference_C: FloatArray
    chi2: FloatArray
    dof: NDArray[np.int64]
    birge: float = 1.0

    def slope_S_per_K(self) -> FloatArray:
        """dg/dT (S/K) at ``reference_C``: ``-alpha g_ref``."""
        return np.asarray(-self.tcr_ppm_per_K * 1e-6 * self.conductance_S, dtype=np.float64)

    def conductance_at(self, temperature_C: float | ArrayLike) -> FloatArray:
        """g(T) = 1 / R(T) (S), broadcasting T against the elements."""
        t = np.asarray(temperature_C, dtype=np.float64)
        return np.asarray(
            self.conductance_S / (1.0 + self.tcr_ppm_per_K * 1e-6 * (t - self.reference_C)),
            dtype=np.float64,
        )


def _wls(t: FloatArray, g: FloatArray, w: FloatArray) -> tuple[FloatArray, ...]:
    sw = w.sum(axis=0)
    t_ref = (w * t).sum(axis=0) / sw
    dt = t - t_ref
    sxx = (w * dt**2).sum(axis=0)
    g_ref = (w * g).sum(axis=0) / sw
    b = (w * dt * (g - g_ref)).sum(axis=0) / sxx
    return t_ref, g_ref, b, sw, sxx


def fit_tcr(
    temperature_C: ArrayLike,
    conductance_S: ArrayLike,
    u_conductance_S: ArrayLike,
    u_temperature_K: ArrayLike | float = 0.0,
) -> TCRFit:
    """Fit each element's TCR over P calibrations (module docstring).

    Args:
        temperature_C: (P, ...) the board temperature each point holds at (degC),
            broadcast against the elements (a cell's temperature for all its elements).
        conductance_S: (P, ..., K) the element estimates (S); NaN: not estimated.
        u_conductance_S: (P, ..., K) their standard uncertainties used as weights (S).
        u_temperature_K: (P, ...) or scalar: each point's temperature uncertainty (K).

    Returns:
        `TCRFit` over (..., K). Elements with fewer than two finite points, or no spread
        in temperature, are NaN.
    """
    g_in = np.asarray(conductance_S, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = 1.0 / g_in  # resistance (ohm), linear in T
        u = np.asarray(u_conductance_S, dtype=np.float64) * g**2
    t = np.broadcast_to(np.asarray(temperature_C, dtype=np.float64)[..., None], g.shape)
    u_t = np.broadcast_to(np.asarray(u_temperature_K, dtype=np.float64), t.shape[:-1])
    u_t = np.broadcast_to(u_t[..., None], g.shape)
    ok = np.isfinite(g) & np.isfinite(u) & (u > 0) & np.isfinite(t)
    g0 = np.where(ok, g, 0.0)
    t0 = np.where(ok, t, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(ok, 1.0 / np.where(ok, u, 1.0) ** 2, 0.0)
        _, _, b, _, _ = _wls(t0, g0, w)
        var = u**2 + (np.nan_to_num(b) * np.nan_to_num(u_t)) ** 2
        w = np.where(ok, 1.0 / np.where(ok, var, 1.0), 0.0)
        t_ref, g_ref, b, sw, sxx = _wls(t0, g0, w)
        resid = g0 - (g_ref + b * (t0 - t_ref))
        chi2 = (w * resid**2).sum(axis=0)
        n = ok.sum(axis=0)
        bad = (n < 2) | ~(sxx > 0)
        u_b = np.sqrt(1.0 / sxx)
        alpha = b / g_ref * 1e6  # g_ref, b: the resistance fit's R_ref and dR/dT
        u_alpha = u_b / np.abs(g_ref) * 1e6
        u_g = np.sqrt(1.0 / sw) / g_ref**2
        g_ref = 1.0 / g_ref

    def nan_where_bad(x: FloatArray) -> FloatArray:
        return np.where(bad, np.nan, x)

    dof = n - 2
    pooled = (~bad) & (dof > 0)
    birge = 1.0
    if pooled.any():
        birge = max(1.0, math.sqrt(float(chi2[pooled].sum()) / float(dof[pooled].sum())))
    u_alpha = u_alpha * birge
    u_g = u_g * birge

    return TCRFit(
        tcr_ppm_per_K=nan_where_bad(alpha),
        u_tcr_ppm_per_K=nan_where_bad(u_alpha),
        conductance_S=nan_where_bad(g_ref),
        u_conductance_S=nan_where_bad(u_g),
        reference_C=nan_where_bad(t_ref),
        chi2=nan_where_bad(chi2),
        dof=dof.astype(np.int64),
        birge=birge,
    )


@dataclass(frozen=True)
class CommonTCR:
    """The common part of a board's TCRs and their spread (ppm/K).

    Attributes:
        common_ppm_per_K: the uncertainty-weighted mean over the elements.
        u_common_ppm_per_K: its standard uncertainty (the spread over sqrt(n): the
            common part of *these* elements, not of the part's population).
        spread_ppm_per_K: the standard deviation of the element-to-element part, with the
            estimates' own uncertainty removed in quadrature (0 when it is all noise).
        raw_sd_ppm_per_K: the plain standard deviation of the estimates.
        n: how many elements.
    """

    common_ppm_per_K: float
    u_common_ppm_per_K: float
    spread_ppm_per_K: float
    raw_sd_ppm_per_K: float
    n: int

    def to_json(self) -> dict[str, float | int]:
        """JSON-ready."""
        return dict(self.__dict__)


def split_common(tcr_ppm_per_K: ArrayLike, u_tcr_ppm_per_K: ArrayLike) -> CommonTCR:
    """The common TCR and the spread of ``tcr_ppm_per_K`` (finite entries; module docstring)."""
    a = np.asarray(tcr_ppm_per_K, dtype=np.float64).ravel()
    u = np.asarray(u_tcr_ppm_per_K, dtype=np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(u) & (u > 0)
    a, u = a[ok], u[ok]
    n = int(a.size)
    if n == 0:
        return CommonTCR(math.nan, math.nan, math.nan, math.nan, 0)
    raw_sd = float(a.std(ddof=1)) if n > 1 else 0.0
    spread = math.sqrt(max(raw_sd**2 - float(np.mean(u**2)), 0.0))
    # weights: the element's own uncertainty and the spread (a random-effects mean)
    w = 1.0 / (u**2 + spread**2)
    common = float((w * a).sum() / w.sum())
    return CommonTCR(common, float(math.sqrt(1.0 / w.sum())), spread, raw_sd, n)


@dataclass(frozen=True)
class LeakageRate:
    """The board's off-leakage growth: ``c0(T) = c0(T_ref) exp(rate (T - T_ref))``.

    Attributes:
        rate_per_K: ``d ln c0 / dT`` (1/K); ``ln 2 / rate`` is the doubling interval.
        u_rate_per_K: its standard uncertainty (1/K), scaled by the Birge ratio when > 1.
        cells: how many cells the pooled fit used; points: how many (cell, T) points.
    """

    rate_per_K: float
    u_rate_per_K: float
    cells: int
    points: int

    @property
    def doubling_K(self) -> float:
        """The doubling interval (K; inf when the leakage does not grow)."""
        return math.log(2.0) / self.rate_per_K if self.rate_per_K > 0 else math.inf

    def to_json(self) -> dict[str, float | int]:
        """JSON-ready (with the doubling interval; None for an infinite one)."""
        d = self.doubling_K
        return {**self.__dict__, "doubling_K": d if math.isfinite(d) else None}


def fit_leakage_rate(
    temperature_C: ArrayLike, leakage_S: ArrayLike, u_leakage_S: ArrayLike
) -> LeakageRate:
    """One growth rate of the cells' all-open conductance c0 over P calibrations.

    ``temperature_C``, ``leakage_S``, ``u_leakage_S``: (P, cells). Weighted least squares of
    ``ln c0`` (weights ``(c0 / u)^2``) with a level per cell and one common slope; cells
    with fewer than two positive, finite points are left out. NaN when nothing is left.
    """
    t = np.asarray(temperature_C, dtype=np.float64)
    c0 = np.asarray(leakage_S, dtype=np.float64)
    u = np.asarray(u_leakage_S, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(t) & np.isfinite(c0) & (c0 > 0) & np.isfinite(u) & (u > 0)
        ok &= ok.sum(axis=0, keepdims=True) >= 2
        y = np.where(ok, np.log(np.where(ok, c0, 1.0)), 0.0)
        w = np.where(ok, (np.where(ok, c0, 1.0) / np.where(ok, u, 1.0)) ** 2, 0.0)
        sw = w.sum(axis=0)
        used = sw > 0
        t_mean = np.where(used, (w * np.where(ok, t, 0.0)).sum(axis=0) / np.where(used, sw, 1), 0)
        y_mean = np.where(used, (w * y).sum(axis=0) / np.where(used, sw, 1), 0)
        dt = np.where(ok, t - t_mean, 0.0)
    sxx = float((w * dt**2).sum())
    n_cells, n_points = int(used.sum()), int(ok.sum())
    if not sxx > 0:
        return LeakageRate(math.nan, math.nan, n_cells, n_points)
    b = float((w * dt * (y - y_mean)).sum()) / sxx
    resid = np.where(ok, y - y_mean - b * dt, 0.0)
    dof = n_points - n_cells - 1
    birge = math.sqrt(float((w * resid**2).sum()) / dof) if dof > 0 else 1.0
    return LeakageRate(b, math.sqrt(1.0 / sxx) * max(1.0, birge), n_cells, n_points)
