"""Range linking: the meter's current ranges expressed on one reference range's scale.

Every current range of an SMU has its own gain error (0.02-0.1 % of reading by datasheet).
Elements read on different ranges then disagree by up to the sum of two ranges' errors,
far above the noise at 1 PLC. Range linking measures the *ratio* of two adjacent ranges'
gains on subsets that fit both: a subset whose current is 0.55-0.92 of the lower range's
full scale is read on the lower range and on the upper one, with +V/-V reversal (offsets
cancel), interleaved (drift cancels). Then ``ln(g_lo / g_hi) = e_lo - e_hi`` (to first
order), whatever the subset's true conductance. Chaining adjacent links gives every range's
gain relative to one reference range, ``d_r = e_r - e_ref``; readings are divided by
``1 + d_r`` and what remains is the reference range's gain, one scale factor common to
every element (it cancels in ratios; a reference standard anchors it, `reference`).

`plan_links` chooses the subsets with the RSS solver (the calibration's own estimates
predict each subset's current); `estimate_links` turns the paired reads into link
estimates with Type A uncertainties; `solve_chain` gives each range its correction and the
links on its path to the reference. Costs: planning one RSS solve per cell and link;
estimation O(readings).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labrss.rss import solve

__all__ = [
    "LINK_TARGET",
    "LINK_WINDOW",
    "ChainSolution",
    "LinkEstimate",
    "LinkPlan",
    "LinkSubset",
    "estimate_links",
    "plan_links",
    "solve_chain",
]

FloatArray = NDArray[np.float64]

LINK_WINDOW = (0.55, 0.92)
"""Predicted current of a link subset, as a fraction of the lower range's full scale: high
for signal on the upper range (its noise is a fixed fraction of its range), below 0.92 so
that a 5 % prediction error and the gain error cannot overflow the lower range."""
LINK_TARGET = 0.85
"""Preferred fraction of the lower range's full scale."""


@dataclass(frozen=True)
class LinkSubset:
    """One subset read on both ranges of link ``link``: cell index ``cell`` (in the
    calibration's cell order), closed-switch ``mask``, predicted current ``current_A``."""

    link: int
    cell: int
    mask: int
    current_A: float


@dataclass(frozen=True)
class LinkPlan:
    """The links (adjacent current ranges, lower first, A) and their subsets."""

    links: tuple[tuple[float, float], ...]
    subsets: tuple[LinkSubset, ...]

    def subsets_of(self, link: int) -> tuple[LinkSubset, ...]:
        """The subsets of link ``link``."""
        return tuple(s for s in self.subsets if s.link == link)


def plan_links(
    ranges_A: Sequence[float],
    used_A: Sequence[float],
    *,
    bank_S: ArrayLike,
    series_ohm: ArrayLike,
    exclude: ArrayLike,
    voltage_V: float,
    per_link: int = 4,
    window: tuple[float, float] = LINK_WINDOW,
    target: float = LINK_TARGET,
) -> LinkPlan:
    """Links between adjacent ranges from the lowest to the highest range used, and up to
    ``per_link`` subsets for each (one per cell, those nearest ``target``).

    Args:
        ranges_A: the meter's current ranges, ascending (A).
        used_A: the ranges the calibration's readings used (A).
        bank_S: (cells, K+1) estimates (c0, a_0..a_{K-1}) in S.
        series_ohm: (cells,) the cells' series paths (ohm; NaN = 0).
        exclude: (cells, K) elements not to close (faulty, unknown).
        voltage_V: the read voltage (V).

    A link without any subset in ``window`` is left out (its ranges stay unlinked).
    """
    ranges = [float(r) for r in ranges_A]
    used = [r for r in ranges if any(math.isclose(r, u, rel_tol=1e-6) for u in used_A)]
    bank = np.asarray(bank_S, dtype=np.float64)
    if len(used) < 2 or bank.size == 0:
        return LinkPlan((), ())
    lo_i, hi_i = ranges.index(used[0]), ranges.index(used[-1])
    c0 = np.nan_to_num(bank[:, 0], nan=0.0)
    a = bank[:, 1:]
    excl = np.asarray(exclude, dtype=bool) | ~np.isfinite(a) | (a <= 0)
    k = a.shape[1]
    leak = np.broadcast_to(np.maximum(c0, 0.0)[:, None] / k, a.shape)
    elements = np.where(excl, leak, np.nan_to_num(a, nan=0.0) + leak)
    rs = np.nan_to_num(np.asarray(series_ohm, dtype=np.float64), nan=0.0).clip(min=0.0)
    links: list[tuple[float, float]] = []
    subsets: list[LinkSubset] = []
    v = abs(float(voltage_V))
    for i in range(lo_i, hi_i):
        lo, hi = ranges[i], ranges[i + 1]
        goal = target * lo / v
        result = solve(
            elements,
            np.full(bank.shape[0], goal),
            leakage_S=leak,
            series_resistance_ohm=rs,
            exclude=excl,
        )
        current = np.asarray(result.value) * v
        masks = np.asarray(result.mask)
        ok = (current >= window[0] * lo) & (current <= window[1] * lo) & masks.any(-1)
        if not ok.any():
            continue
        order = np.argsort(np.abs(current - target * lo))
        picked = [int(c) for c in order if ok[c]][:per_link]
        link = len(links)
        links.append((lo, hi))
        for c in picked:
            mask = int(sum(1 << int(j) for j in np.flatnonzero(masks[c])))
            subsets.append(LinkSubset(link, c, mask, float(current[c])))
    return LinkPlan(tuple(links), tuple(subsets))


@dataclass(frozen=True)
class LinkEstimate:
    """One link's estimate: ``delta = e_lo - e_hi`` (relative gain difference of the
    lower and upper range) and its standard uncertainty (Type A, from the scatter of the
    paired reads), from ``n`` pairs."""

    lo_A: float
    hi_A: float
    delta: float
    u: float
    n: int


def estimate_links(
    links: Sequence[tuple[float, float]], log_ratios: Sequence[ArrayLike]
) -> tuple[LinkEstimate, ...]:
    """Link estimates from ``ln(g_lo / g_hi)`` of each pair of reads (one array per link).

    ``delta`` is the mean, ``u`` the standard error of the mean (ddof 1). A link with fewer
    than 3 finite pairs gets NaN (it will not be used).
    """
    out = []
    for (lo, hi), values in zip(links, log_ratios, strict=True):
        x = np.asarray(values, dtype=np.float64)
        x = x[np.isfinite(x)]
        if x.size < 3:
            out.append(LinkEstimate(lo, hi, math.nan, math.nan, int(x.size)))
            continue
        out.append(
            LinkEstimate(lo, hi, float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)), x.size)
        )
    return tuple(out)


@dataclass(frozen=True)
class ChainSolution:
    """Every used range's place in the link chain.

    Attributes:
        reference_A: per range (A) the reference range of its linked group (itself when
            unlinked).
        correction: per range, the estimated ``d_r = e_r - e_ref`` (0 for a reference).
        path: per range, ``{link index: sign}`` with ``e_r - e_ref = sum sign * delta``.
        links: the usable link estimates (by index).
        main_reference_A: the reference range of the group holding the most readings (its
            gain is the common scale of the calibration), or None without links.
    """

    reference_A: dict[float, float]
    correction: dict[float, float]
    path: dict[float, dict[int, int]]
    links: tuple[LinkEstimate, ...] = field(default=())
    main_reference_A: float | None = None


def solve_chain(
    ranges_A: Sequence[float],
    estimates: Sequence[LinkEstimate],
    weights: Mapping[float, float],
    *,
    u_gain: Mapping[float, float] | None = None,
    reference_A: float | None = None,
) -> ChainSolution:
    """Corrections of every range relative to its group's reference range.

    Ranges joined by usable links (finite ``delta``) form groups along the ascending range
    list. Each group's reference is ``reference_A`` if it is in the group, else its range
    of smallest ``u_gain`` (the datasheet's gain uncertainty: the common scale is then as
    small as the meter allows), ties broken by the largest ``weights`` (e.g. the number of
    readings taken on it). The main reference is the reference of the heaviest group (or
    of ``reference_A``'s group).
    """
    gains = dict(u_gain or {})
    ranges = sorted(float(r) for r in ranges_A)
    usable = {(e.lo_A, e.hi_A): (i, e) for i, e in enumerate(estimates) if math.isfinite(e.delta)}
    # groups: consecutive ranges joined by usable links
    groups: list[list[float]] = []
    for r in ranges:
        if groups and (groups[-1][-1], r) in usable:
            groups[-1].append(r)
        else:
            groups.append([r])
    reference: dict[float, float] = {}
    correction: dict[float, float] = {}
    path: dict[float, dict[int, int]] = {}
    best_group: tuple[float, float] | None = None  # (weight, reference)
    for grp in groups:
        if reference_A is not None and any(math.isclose(reference_A, r) for r in grp):
            ref = next(r for r in grp if math.isclose(reference_A, r))
        else:
            ref = min(grp, key=lambda r: (gains.get(r, 0.0), -weights.get(r, 0.0), r))
        ref_pos = grp.index(ref)
        weight = sum(weights.get(r, 0.0) for r in grp)
        if reference_A is not None and ref == reference_A:
            weight = math.inf
        if best_group is None or weight > best_group[0]:
            best_group = (weight, ref)
        for pos, r in enumerate(grp):
            reference[r] = ref
            signs: dict[int, int] = {}
            d = 0.0
            # e_r - e_ref: walk from r towards ref; link (lo, hi) estimates e_lo - e_hi
            if pos < ref_pos:
                for j in range(pos, ref_pos):
                    idx, est = usable[(grp[j], grp[j + 1])]
                    signs[idx] = 1
                    d += est.delta
            elif pos > ref_pos:
                for j in range(ref_pos, pos):
                    idx, est = usable[(grp[j], grp[j + 1])]
                    signs[idx] = -1
                    d -= est.delta
            correction[r] = d
            path[r] = signs
    main = None
    if best_group is not None and len(usable) > 0:
        main = best_group[1]
    return ChainSolution(reference, correction, path, tuple(estimates), main)
