"""One cell's bank for the RSS explorer: from the calibration or synthetic, solved with
`labrss.rss.solve`, and its precision curve (bits against the number of elements).

`bits_vs_n` uses the precision-study kernels (`labrss.rss.study`): for the first n usable
elements (n = 1..K), with ``W_n = sum_{i<n} a_i`` the width of the interval they can
reach, the exact worst-case error ``E_n`` over a target interval of width ``L_n``, from
the sorted list of all 2**n subset sums. The interval is either the middle half
``[W_n / 4, 3 W_n / 4]`` (the study's target interval for parallel banks: near 0 and W_n
a bank of similar elements has unavoidable gaps of one element) or the whole reachable
interval ``[0, W_n]``. Precision in bits is ``log2(L_n / (2 E_n))``: m sums evenly spread
over the interval leave a worst-case error of ``L_n / (2 m)``, so the bits are log2 of the
number of evenly spaced levels the bank is worth. With 2**n sums (0 and W_n among them)
that is below n: the counting limit, one bit per element. With measured uncertainties
the noise floor ``log2(L_n / (2 sqrt(sum_{i<n} sigma_i^2)))`` says where the precision
stops being real.
Cost: O(2**n) per n, O(2**K) in all (K <= 24 in practice; the board has 8 or 16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from labrss.rss import RSSResult, solve, sorted_subset_sums
from labrss.rss.study import worst_case_errors
from labrss.store import Calibration

TargetKind = Literal["conductance", "resistance"]
Interval = Literal["middle", "full"]

#: Largest number of elements the precision curve enumerates (2**n sums of 8 bytes each).
MAX_CURVE_N = 22


@dataclass(frozen=True)
class Bank:
    """A cell's branches as the solver sees them.

    Attributes:
        elements_S: (K,) closed-branch conductance g_k = a_k + h_k (S); 0 where unknown.
        leakage_S: (K,) open-branch leakage h_k (S): the cell's all-open conductance c0
            shared equally (the calibration measures only the sum).
        sigma_S: (K,) standard uncertainty of each a_k (S), or None.
        series_ohm: the common series path r_s (ohm), 0 when unknown.
        exclude: (K,) faulty or unknown branches (never closed).
        source: where the bank comes from, for the display.
    """

    elements_S: NDArray[np.float64]
    leakage_S: NDArray[np.float64]
    sigma_S: NDArray[np.float64] | None
    series_ohm: float
    exclude: NDArray[np.bool_]
    source: str

    @property
    def size(self) -> int:
        """K, the number of branches."""
        return int(self.elements_S.shape[0])

    @property
    def usable(self) -> NDArray[np.bool_]:
        """(K,) branches the solver may close."""
        return ~self.exclude

    @property
    def increments_S(self) -> NDArray[np.float64]:
        """(K,) a_k = g_k - h_k: what closing branch k adds (S); 0 for excluded ones."""
        out: NDArray[np.float64] = np.where(self.exclude, 0.0, self.elements_S - self.leakage_S)
        return out


def bank_from_calibration(calibration: Calibration, r: int, c: int) -> Bank:
    """Cell (r, c)'s bank from a stored calibration (`Calibration` arrays, S and ohm)."""
    if not calibration.measured[r, c]:
        raise ValueError(f"cell ({r}, {c}) has no calibration (run {calibration.run_id})")
    a = calibration.conductance_S[r, c].astype(np.float64)
    s = calibration.std_S[r, c].astype(np.float64)
    exclude = calibration.excluded[r, c] | ~np.isfinite(a) | (a <= 0)
    k = a.shape[0]
    c0 = float(calibration.leakage_S[r, c])
    h = np.full(k, c0 / k if math.isfinite(c0) and c0 > 0 else 0.0)
    g = np.where(exclude, h, a + h)
    sigma = np.where(exclude | ~np.isfinite(s), 0.0, s)
    rs = float(calibration.series_ohm[r, c])
    run = int(calibration.cell_run_id[r, c])
    return Bank(
        elements_S=g,
        leakage_S=h,
        sigma_S=sigma,
        series_ohm=rs if math.isfinite(rs) and rs > 0 else 0.0,
        exclude=exclude,
        source=f"calibration run {run}, cell ({r}, {c})",
    )


def synthetic_bank(k: int, seed: int, r0_ohm: float = 10e3, tolerance: float = 0.2) -> Bank:
    """K resistors R0 (1 + U[-tol, tol]) drawn with ``numpy.random.default_rng(seed)``."""
    if k < 1 or r0_ohm <= 0 or not 0 <= tolerance < 1:
        raise ValueError(
            f"synthetic bank needs K >= 1, R0 > 0, 0 <= tolerance < 1; got K={k}, "
            f"R0={r0_ohm} ohm, tolerance={tolerance}"
        )
    rng = np.random.default_rng(seed)
    r = r0_ohm * (1.0 + rng.uniform(-tolerance, tolerance, size=k))
    return Bank(
        elements_S=1.0 / r,
        leakage_S=np.zeros(k),
        sigma_S=None,
        series_ohm=0.0,
        exclude=np.zeros(k, dtype=bool),
        source=f"synthetic bank: {k} x R0 = {r0_ohm:g} Ω ± {100 * tolerance:g} %, seed {seed}",
    )


def solve_bank(bank: Bank, target: float, kind: TargetKind = "conductance") -> RSSResult:
    """`labrss.rss.solve` for one target (S or ohm) on ``bank``, with its leakage, series
    path, exclusions and uncertainties."""
    return solve(
        bank.elements_S,
        float(target),
        leakage_S=bank.leakage_S,
        series_resistance_ohm=bank.series_ohm,
        exclude=bank.exclude,
        sigma_S=bank.sigma_S,
        target_kind=kind,
    )


def reachable_conductance_S(bank: Bank) -> tuple[float, float]:
    """The cell conductance interval (S) the bank can realise: all open .. all usable closed."""
    res = solve_bank(bank, 0.0)
    return float(res.reachable_lo), float(res.reachable_hi)


@dataclass(frozen=True)
class PrecisionCurve:
    """Bits of precision against the number of elements (see the module docstring)."""

    n: NDArray[np.int64]
    bits: NDArray[np.float64]
    worst_error_S: NDArray[np.float64]
    width_S: NDArray[np.float64]
    interval_lo_S: NDArray[np.float64]
    interval_hi_S: NDArray[np.float64]
    noise_floor_bits: NDArray[np.float64] | None
    interval: Interval


def bits_vs_n(bank: Bank, interval: Interval = "middle") -> PrecisionCurve:
    """The precision curve of the bank's usable elements, in branch order, over the
    middle half or the whole of the reachable interval (module docstring)."""
    if interval not in ("middle", "full"):
        raise ValueError(f"interval must be 'middle' or 'full', got {interval!r}")
    a = bank.increments_S[bank.usable]
    n_max = min(a.shape[0], MAX_CURVE_N)
    if n_max == 0:
        raise ValueError(f"{bank.source}: no usable element")
    ns = np.arange(1, n_max + 1)
    err = np.empty(n_max)
    width = np.cumsum(a[:n_max])
    lo = 0.25 * width if interval == "middle" else np.zeros_like(width)
    hi = 0.75 * width if interval == "middle" else width.copy()
    for i, n in enumerate(ns):
        sums, _ = sorted_subset_sums(a[:n])
        e, _ = worst_case_errors(sums[None, :], lo[i : i + 1], hi[i : i + 1])
        err[i] = e[0]
    length = hi - lo
    with np.errstate(divide="ignore"):
        bits = np.log2(length / (2.0 * err))
        floor = None
        if bank.sigma_S is not None:
            sig = np.sqrt(np.cumsum(bank.sigma_S[bank.usable][:n_max] ** 2))
            floor = np.where(sig > 0, np.log2(length / (2.0 * sig)), np.inf)
    return PrecisionCurve(ns, bits, err, width, lo, hi, floor, interval)
