"""Fault classification of branches from calibration estimates and readings (pure numpy).

What each fault looks like through the cell's two terminals (a_i: the change of cell
conductance when switch i closes; c0: the all-open conductance; see
`calibration.estimation`):

========================  ==============================  ===================================
fault                     a_i                             other evidence
========================  ==============================  ===================================
open element              ~0 (within k sigma)             c0 normal
stuck-open switch         ~0 (within k sigma)             c0 normal
stuck-closed switch       ~0 (within k sigma)             c0 raised by one element (g_i):
                                                          visible in every subset, including
                                                          those that exclude branch i
shorted element           far above the nominal band      readings of every subset that
                                                          contains i are huge or trip the
                                                          compliance limit
========================  ==============================  ===================================

What can and cannot be told apart:

* An open element and a stuck-open switch are electrically the same branch (it never
  conducts; the difference, the switch's off-leakage through the element, is far below any
  meter's resolution next to the other branches). Both are reported as ``open`` with
  ``evidence["indistinguishable_from"] = "stuck_open"``; the solver excludes the branch either
  way.
* A stuck-closed switch is told from an open branch by the raised c0: the excess
  leakage ``c0 - leakage_max`` must equal the conductance of the stuck branches. Among the
  z branches with a_i ~ 0, every subset whose nominal band sums contain the excess (within
  k sigma of c0) is a candidate. One candidate: its branches are ``stuck_closed``, the
  others ``open``. With per-branch nominal values that differ by more than the tolerance
  (the default board's ladder) the candidate is unique. With equal nominal values and
  0 < m < z the design cannot say which (every subset sees them the same way): all z are
  reported ``open`` with ``evidence["ambiguous_stuck_closed"] = m``; c0 already carries
  their conductance, so the solver stays right.
* A short makes every reading that contains it saturate, so the other branches' estimates
  in that cell are unreliable: such cells are listed in ``remeasure`` (measure again with the
  short's switch held open, on the n - 1 others).

Thresholds come from the measurement uncertainty (``k_sigma`` standard errors, default 5:
a false-alarm rate of about 6e-7 per test for Gaussian errors) and from the nominal band
of a healthy branch (`NominalBand`, from the element tolerance, switch on-resistance and
off-leakage), so a healthy bank gives no findings. A branch outside the band that is not
a fault (a degraded element, a few tens of percent off) is listed in ``out_of_band``, not
excluded: the solver uses its measured value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FaultFinding",
    "FaultReport",
    "NominalBand",
    "classify_faults",
    "detect_shorts",
]

FaultKindName = Literal["open", "short", "stuck_open", "stuck_closed"]


@dataclass(frozen=True)
class NominalBand:
    """The healthy range of each branch and of a cell's leakage.

    ``low_S``/``high_S``: smallest and largest healthy a_i (S), one value for every branch
    or one per branch (shape (n,), e.g. a ladder of nominal values); ``leakage_max_S``:
    largest healthy c0 of a cell (S).
    """

    low_S: NDArray[np.float64]
    high_S: NDArray[np.float64]
    leakage_max_S: float

    def __init__(self, low_S: ArrayLike, high_S: ArrayLike, leakage_max_S: float) -> None:
        low = np.atleast_1d(np.asarray(low_S, dtype=float))
        high = np.atleast_1d(np.asarray(high_S, dtype=float))
        if (
            low.ndim != 1
            or low.shape != high.shape
            or not (np.all(low > 0) and np.all(low < high))
            or not leakage_max_S >= 0
        ):
            raise ValueError(
                f"nominal band needs 0 < low_S < high_S (same shape) and leakage_max_S >= 0, "
                f"got {low_S!r}, {high_S!r}, {leakage_max_S!r}"
            )
        object.__setattr__(self, "low_S", low)
        object.__setattr__(self, "high_S", high)
        object.__setattr__(self, "leakage_max_S", float(leakage_max_S))

    def per_branch(self, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(low, high) as arrays of n values (`ValueError` if the band has another length)."""
        if self.low_S.shape[0] not in (1, n):
            raise ValueError(f"nominal band has {self.low_S.shape[0]} branches, the bank {n}")
        return np.broadcast_to(self.low_S, (n,)), np.broadcast_to(self.high_S, (n,))

    @classmethod
    def from_elements(
        cls,
        resistance_ohm: ArrayLike,
        tolerance: float,
        branches: int,
        *,
        switch_on_ohm: tuple[float, float] = (0.0, 0.0),
        off_leakage_S: float = 0.0,
        margin: float = 0.0,
    ) -> NominalBand:
        """Band for elements of nominal ``resistance_ohm`` (one value, or one per branch)
        +- ``tolerance`` (relative) in series with a switch of on-resistance in
        ``switch_on_ohm`` (min, max; ohm) and off-leakage up to ``off_leakage_S`` per branch;
        ``margin`` widens both edges (relative; temperature coefficient and drift).

        low = 1/(R (1 + tol) + r_on,max) - leak, high = 1/(R (1 - tol) + r_on,min),
        leakage_max = branches x leak.
        """
        R = np.broadcast_to(np.asarray(resistance_ohm, dtype=float), (branches,))
        if branches < 1 or not np.all(R > 0) or not 0 <= tolerance < 1:
            raise ValueError(
                f"bad nominal element: R={resistance_ohm!r} ohm, tolerance={tolerance}, "
                f"branches={branches}"
            )
        lo_on, hi_on = switch_on_ohm
        low = 1.0 / (R * (1 + tolerance) + hi_on) - off_leakage_S
        high = 1.0 / (R * (1 - tolerance) + lo_on)
        return cls(low * (1 - margin), high * (1 + margin), branches * off_leakage_S * (1 + margin))


@dataclass(frozen=True)
class FaultFinding:
    """A faulty branch ``k`` of cell number ``cell`` (index into the batch)."""

    cell: int
    k: int
    kind: FaultKindName
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FaultReport:
    """Findings and masks for a batch of cells (cells, n).

    ``excluded``: branches the solver must not use (every finding). ``out_of_band``:
    healthy-but-off branches (kept). ``unknown``: no finite estimate (not classified).
    ``remeasure``: cells with a short whose other estimates are unreliable.
    ``leaky``: cells whose c0 exceeds the band without a branch to explain it.
    """

    findings: tuple[FaultFinding, ...]
    excluded: NDArray[np.bool_]
    out_of_band: NDArray[np.bool_]
    unknown: NDArray[np.bool_]
    remeasure: NDArray[np.bool_]
    leaky: NDArray[np.bool_]

    def kinds(self) -> NDArray[np.str_]:
        """(cells, n) array of kinds, "" where healthy."""
        out = np.full(self.excluded.shape, "", dtype="U12")
        for f in self.findings:
            out[f.cell, f.k] = f.kind
        return out


def _rows(X: ArrayLike) -> NDArray[np.uint8]:
    Xa = np.asarray(X)
    if Xa.ndim != 2 or not np.isin(Xa, (0, 1)).all():
        raise ValueError(f"design must be a 2-D 0/1 matrix, got shape {Xa.shape}")
    return Xa.astype(np.uint8)


def detect_shorts(
    X: ArrayLike,
    y_S: ArrayLike,
    band: NominalBand,
    *,
    limit_tripped: ArrayLike | None = None,
    sigma_S: ArrayLike | None = None,
    k_sigma: float = 5.0,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Shorted branches from raw readings: (shorts (cells, n), unexplained (cells,)).

    A reading is *huge* when it tripped the compliance limit, is NaN (overflow), or exceeds
    by more than k sigma the largest conductance a healthy bank can show whatever its
    switches do, ``leakage_max + sum_i high_i`` (so any number of stuck-closed switches is
    allowed; a series path only lowers readings). A short reads about 1/(r_s + r_on), so it
    is seen while the series path r_s < 1/(leakage_max + sum_i high_i) - r_on (about 110 ohm
    for 8 x 1 kohm branches with 10 ohm switches). Branch i
    is shorted when every reading that contains it is huge and it has at least one such
    reading. ``unexplained`` marks cells with huge readings that the shorted branches do not
    cover (e.g. a short across the whole cell, which saturates the empty subset too); no
    branch of such a cell is reported as shorted, and the cell needs a look by hand.
    """
    X8 = _rows(X)
    y = np.asarray(y_S, dtype=float)
    if y.ndim == 1:
        y = y[None, :]
    cells, M = y.shape
    if X8.shape[0] != M:
        raise ValueError(f"{M} readings per cell for a design of {X8.shape[0]} rows")
    tripped = (
        np.zeros((cells, M), bool)
        if limit_tripped is None
        else np.broadcast_to(np.asarray(limit_tripped, bool), (cells, M))
    )
    sig = (
        np.zeros((cells, M))
        if sigma_S is None
        else np.broadcast_to(np.asarray(sigma_S, float), (cells, M))
    )
    _, high = band.per_branch(X8.shape[1])
    ceiling = band.leakage_max_S + float(high.sum())
    # NaN (an overflow the driver turned into NaN) counts as huge.
    huge = tripped | (np.nan_to_num(y, nan=np.inf) > ceiling + k_sigma * sig)
    has = X8.astype(bool)  # (M, n)
    used: NDArray[np.bool_] = X8.sum(axis=0) > 0
    # every row containing i is huge: no row with has[:, i] & ~huge
    not_huge_with_i = np.einsum("cm,mi->ci", (~huge).astype(np.int64), has.astype(np.int64))
    shorts = (not_huge_with_i == 0) & used[None, :]
    covered = np.einsum("ci,mi->cm", shorts.astype(np.int64), has.astype(np.int64)) > 0
    unexplained = (huge & ~covered).any(axis=1)
    # Where the candidates do not explain every huge reading, none of them is specific.
    shorts &= ~unexplained[:, None]
    return shorts, unexplained


def classify_faults(
    conductance_S: ArrayLike,
    std_S: ArrayLike,
    leakage_S: ArrayLike,
    leakage_std_S: ArrayLike,
    band: NominalBand,
    *,
    k_sigma: float = 5.0,
    X: ArrayLike | None = None,
    y_S: ArrayLike | None = None,
    limit_tripped: ArrayLike | None = None,
    sigma_S: ArrayLike | None = None,
) -> FaultReport:
    """Classify every branch of a batch of cells (see the module docstring).

    ``conductance_S``/``std_S``: (cells, n) estimates of a_i and their standard errors;
    ``leakage_S``/``leakage_std_S``: (cells,) c0 and its standard error. With the design
    ``X`` (M, n) and the raw readings ``y_S`` (cells, M) (plus ``limit_tripped``), shorts
    are found from the readings (`detect_shorts`) and their cells marked for re-measurement;
    without them, a short is an a_i above the band by more than k sigma.
    """
    a = np.atleast_2d(np.asarray(conductance_S, dtype=float))
    s = np.atleast_2d(np.asarray(std_S, dtype=float))
    c0 = np.atleast_1d(np.asarray(leakage_S, dtype=float))
    s0 = np.atleast_1d(np.asarray(leakage_std_S, dtype=float))
    cells, n = a.shape
    if s.shape != a.shape or c0.shape != (cells,) or s0.shape != (cells,):
        raise ValueError(
            f"estimate shapes disagree: conductance {a.shape}, std {s.shape}, "
            f"leakage {c0.shape}, leakage std {s0.shape}"
        )
    if k_sigma <= 0:
        raise ValueError(f"k_sigma must be > 0, got {k_sigma}")
    unknown = ~(np.isfinite(a) & np.isfinite(s))
    s = np.where(np.isfinite(s), s, 0.0)
    s0 = np.where(np.isfinite(s0), s0, 0.0)
    findings: list[FaultFinding] = []
    excluded = np.zeros((cells, n), bool)

    remeasure = np.zeros(cells, bool)
    leaky = np.zeros(cells, bool)
    shorts = np.zeros((cells, n), bool)
    if y_S is not None:
        if X is None:
            raise ValueError("readings y_S need the design X")
        shorts, unexplained = detect_shorts(
            X, y_S, band, limit_tripped=limit_tripped, sigma_S=sigma_S, k_sigma=k_sigma
        )
        if shorts.shape != (cells, n):
            raise ValueError(f"readings describe {shorts.shape} branches, estimates {(cells, n)}")
        leaky |= unexplained
        remeasure |= shorts.any(axis=1) | unexplained
        for cell, k in zip(*np.nonzero(shorts), strict=True):
            findings.append(
                FaultFinding(
                    int(cell),
                    int(k),
                    "short",
                    {
                        "source": "readings",
                        "rows_with_branch_all_huge": True,
                        "a_S": float(a[cell, k]) if np.isfinite(a[cell, k]) else None,
                        "band_high_S": float(band.per_branch(n)[1][k]),
                    },
                )
            )
    lo_b, hi_b = band.per_branch(n)
    high_short = ~unknown & (a > hi_b + k_sigma * s) & ~shorts
    # Estimates of cells with a short from the readings are unreliable: classify those no further.
    trusted = ~remeasure[:, None] & ~unknown
    for cell, k in zip(*np.nonzero(high_short & trusted), strict=True):
        findings.append(
            FaultFinding(
                int(cell),
                int(k),
                "short",
                {
                    "source": "estimate",
                    "a_S": float(a[cell, k]),
                    "std_S": float(s[cell, k]),
                    "band_high_S": float(hi_b[k]),
                    "ratio_to_high": float(a[cell, k] / hi_b[k]),
                },
            )
        )
        remeasure[cell] = True
    excluded |= shorts | (high_short & trusted)

    below = a < lo_b - k_sigma * s
    absent = trusted & ~excluded & below & (a <= k_sigma * s)
    out_of_band = trusted & ~excluded & ~absent & (below | (a > hi_b + k_sigma * s))
    excess = c0 - band.leakage_max_S
    raised = np.isfinite(c0) & (excess > k_sigma * s0)
    for cell in range(cells):
        zeros = [int(k) for k in np.nonzero(absent[cell])[0]]
        candidates: list[tuple[int, ...]] = []
        if raised[cell] and not remeasure[cell]:
            candidates = _stuck_closed_candidates(
                zeros,
                float(excess[cell]),
                low_S=lo_b,
                high_S=hi_b,
                leakage_max_S=band.leakage_max_S,
                slack_S=float(k_sigma * s0[cell]),
            )
            if not candidates:
                leaky[cell] = True
        stuck = set(candidates[0]) if len(candidates) == 1 else set()
        for k in zeros:
            evidence: dict[str, Any] = {
                "a_S": float(a[cell, k]),
                "std_S": float(s[cell, k]),
                "band_low_S": float(lo_b[k]),
                "leakage_S": float(c0[cell]),
                "leakage_excess_S": float(excess[cell]),
            }
            kind: FaultKindName
            if k in stuck:
                kind = "stuck_closed"
                evidence["stuck_closed_branches"] = sorted(stuck)
            else:
                kind = "open"
                evidence["indistinguishable_from"] = "stuck_open"
                if len(candidates) > 1:
                    sizes = sorted({len(c) for c in candidates})
                    evidence["ambiguous_stuck_closed"] = sizes[0] if len(sizes) == 1 else sizes
                    evidence["stuck_closed_candidates"] = [list(c) for c in candidates[:10]]
            findings.append(FaultFinding(cell, k, kind, evidence))
            excluded[cell, k] = True
    findings.sort(key=lambda f: (f.cell, f.k))
    return FaultReport(
        findings=tuple(findings),
        excluded=excluded,
        out_of_band=out_of_band,
        unknown=unknown,
        remeasure=remeasure,
        leaky=leaky,
    )


_MAX_ENUMERATED = 16  # zero branches beyond which stuck-closed subsets are not enumerated


def _stuck_closed_candidates(
    zeros: list[int],
    excess_S: float,
    *,
    low_S: NDArray[np.float64],
    high_S: NDArray[np.float64],
    leakage_max_S: float,
    slack_S: float,
) -> list[tuple[int, ...]]:
    """Non-empty subsets T of the zero branches whose conductance can make the excess:
    ``sum_T low - leakage_max - slack <= excess <= sum_T high + slack``. O(2^z)."""
    z = len(zeros)
    if z == 0 or z > _MAX_ENUMERATED:
        return []
    bits = (np.arange(1, 1 << z)[:, None] >> np.arange(z)[None, :]) & 1
    lo = bits @ low_S[zeros] - leakage_max_S - slack_S
    hi = bits @ high_S[zeros] + slack_S
    hits = np.nonzero((lo <= excess_S) & (excess_S <= hi))[0]
    return [tuple(zeros[i] for i in np.nonzero(bits[h])[0]) for h in hits]
