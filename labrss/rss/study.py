"""The RSS precision study: bits of precision against the number of imprecise elements.

Reproduces the claim "bits of precision are linear in the number of resistances, worst
case among 2.5k instances" (issue 4; research note rss_slth.md sections 3 and 6). Pure:
arrays in, arrays out, no file I/O (the CSV and the PNG are written by
`labrss.workflows.rss_study`).

For one *instance* (one draw of ``n`` element values ``x_i``) and a target interval
``[L, U]``, the exact worst-case error over the interval is

    E_worst = max_{z in [L, U]} min_S |z - sum_{i in S} x_i|

computed from the sorted list of all ``2**n`` subset sums
(`labrss.rss.subset_sums.sorted_subset_sums`): the distance to the nearest sum is
piecewise linear in ``z`` with its maxima at the mid-points of consecutive sums, so
``E_worst`` is the largest of the distances at ``L`` and ``U`` and of the half-gaps whose
mid-point lies in ``[L, U]``. No target is sampled for it. Random targets (uniform in
``[L, U]``) give the typical error next to the worst one.

Errors are in the model's unit: the value scale for ``uniform`` (values in [-1, 1]), the
nominal conductance ``G0 = 1/R0`` for the conductance models. ``bits = -log2(error)``.

Seed scheme: the values and the random targets of model ``m``, size ``n`` come from
``numpy.random.SeedSequence([seed, crc32(m), n]).spawn(2)`` (child 0: values, child 1:
targets), drawn for all instances at once, one row per instance. So every (model, n) is an
independent stream, instance ``i`` is the same whatever the number of instances asked for
(rows fill in order), and the result does not depend on how instances are chunked: a
chunk of instances ``start .. stop - 1`` (`run_point` with ``start``) is seeded by its
position, so a study split over any number of workers is bit-identical to one call.

Complexity per instance: ``O(2**n)`` time for the sorted sums, ``O(log 2**n)`` per target;
memory ``O(chunk * 2**n)``, the chunk sized to a byte budget.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numba import njit, prange

from labrss.rss.subset_sums import MAX_SUBSET_SUMS_N, sorted_subset_sums

__all__ = [
    "DEFAULT_FIT_MIN_N",
    "MODELS",
    "STATISTICS",
    "ElementModel",
    "PointErrors",
    "SlopeFit",
    "StatisticRow",
    "concatenate_points",
    "counting_limit_bits",
    "draw_instances",
    "fit_slopes",
    "nearest_sum_errors",
    "run_point",
    "summarize_point",
    "worst_case_errors",
]

ModelKind = Literal["uniform", "parallel", "differential", "loguniform"]

#: Smallest n used by default for the fitted slopes: below it the worst-case curves have
#: not left their small-n onset (rss_slth.md section 3 fits on n >= 12 too).
DEFAULT_FIT_MIN_N = 12

#: The statistics reported per (model, n): over instances of the worst-case error over the
#: target interval (median instance, 99th-percentile-bad instance, worst instance), and
#: over all (instance, random target) pairs of the error for a random target.
STATISTICS: tuple[str, ...] = (
    "worst_median",
    "worst_p99",
    "worst_max",
    "random_median",
    "random_p99",
    "random_max",
)


@dataclass(frozen=True)
class ElementModel:
    """How the ``n`` element values of one instance and its target interval are drawn.

    kinds:

    * ``uniform``: values ``U[-1, 1]``; targets ``[target_lo, target_hi]`` (unit: 1).
    * ``parallel``: parallel bank, ``R_i = R0 (1 + U[-tolerance, tolerance])``, values are
      the branch conductances ``g_i = 1/R_i`` in units of ``G0 = 1/R0``; targets
      ``[target_lo, target_hi] * sum_i g_i`` (a fraction of the bank's full range
      ``[0, sum g]``: the default 0.25..0.75 is its middle half).
    * ``differential``: ``n/2`` conductances on the positive column and ``n/2`` on the
      negative one (each as ``parallel``); the values are ``+g`` and ``-g'``, so a subset
      sum is ``G+ - G-``; targets ``[target_lo, target_hi]`` in G0. ``n`` must be even.
    * ``loguniform``: ``R_i = R0 * ratio**U[-1/2, 1/2]`` (spread over a factor ``ratio``,
      e.g. R0/2..2 R0 for 4), values ``g_i`` in G0; targets as ``parallel``.
    """

    name: str
    kind: ModelKind
    description: str
    target_lo: float
    target_hi: float
    tolerance: float = 0.0
    ratio: float = 1.0

    @property
    def unit(self) -> str:
        """The unit of the values and of the errors: ``"1"`` or ``"G0"`` (= 1/R0)."""
        return "1" if self.kind == "uniform" else "G0"

    def check_n(self, n: int) -> None:
        """Raise ValueError if ``n`` elements cannot be studied with this model."""
        if n < 1 or n > MAX_SUBSET_SUMS_N:
            msg = f"model {self.name!r}: n = {n} outside 1..{MAX_SUBSET_SUMS_N}"
            raise ValueError(msg)
        if self.kind == "differential" and n % 2:
            msg = f"model {self.name!r}: n = {n} must be even (n/2 elements per column)"
            raise ValueError(msg)

    def draw_values(self, rng: np.random.Generator, instances: int, n: int) -> np.ndarray:
        """Element values, shape ``(instances, n)``, in the model's unit."""
        self.check_n(n)
        if self.kind == "uniform":
            return rng.uniform(-1.0, 1.0, size=(instances, n))
        if self.kind in ("parallel", "differential"):
            g = 1.0 / (1.0 + rng.uniform(-self.tolerance, self.tolerance, size=(instances, n)))
            if self.kind == "differential":
                g[:, n // 2 :] *= -1.0
            return g
        # loguniform: log R uniform over a factor `ratio` centred on R0
        return self.ratio ** -rng.uniform(-0.5, 0.5, size=(instances, n))

    def target_interval(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-instance target interval ``(L, U)``, each shape ``(instances,)``."""
        rows = values.shape[0]
        if self.kind in ("uniform", "differential"):
            return np.full(rows, self.target_lo), np.full(rows, self.target_hi)
        total = values.sum(axis=1)
        return self.target_lo * total, self.target_hi * total


#: The models of the study, by name (the `--models` choices).
MODELS: dict[str, ElementModel] = {
    m.name: m
    for m in (
        ElementModel("uniform", "uniform", "values U[-1,1], targets [-1,1]", -1.0, 1.0),
        ElementModel(
            "parallel5",
            "parallel",
            "parallel bank R0(1+U[-5%,5%]), targets [0.25,0.75] x sum g (G0 units)",
            0.25,
            0.75,
            tolerance=0.05,
        ),
        ElementModel(
            "parallel20",
            "parallel",
            "parallel bank R0(1+U[-20%,20%]), targets [0.25,0.75] x sum g (G0 units)",
            0.25,
            0.75,
            tolerance=0.20,
        ),
        ElementModel(
            "differential20",
            "differential",
            "differential pair n/2 + n/2, R0(1+U[-20%,20%]), targets [-G0,G0]",
            -1.0,
            1.0,
            tolerance=0.20,
        ),
        ElementModel(
            "loguniform4",
            "loguniform",
            "parallel bank, R log-uniform over R0/2..2R0, targets [0.25,0.75] x sum g",
            0.25,
            0.75,
            ratio=4.0,
        ),
    )
}


# ------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def _nearest_distance(s: np.ndarray, z: float) -> float:
    """Distance from ``z`` to the nearest entry of the sorted array ``s`` (non-empty)."""
    j = np.searchsorted(s, z)
    best = np.inf
    if j < s.shape[0]:
        best = s[j] - z
    if j > 0:
        best = min(best, z - s[j - 1])
    return abs(best)


@njit(cache=True, nogil=True, parallel=True)
def _worst_case_rows(
    sums: np.ndarray, lo: np.ndarray, hi: np.ndarray, err: np.ndarray, pos: np.ndarray
) -> None:
    """Per row of sorted ``sums``: the max over [lo, hi] of the nearest-sum distance.

    ``pos`` receives the target where the maximum is reached. Candidates: both ends and
    the mid-points of consecutive sums lying in the interval; only the pairs straddling
    the interval are visited (two binary searches, then a linear scan of those pairs).
    """
    rows, size = sums.shape
    for r in prange(rows):
        s = sums[r]
        lo_r = lo[r]
        hi_r = hi[r]
        best = _nearest_distance(s, lo_r)
        where = lo_r
        d_hi = _nearest_distance(s, hi_r)
        if d_hi > best:
            best = d_hi
            where = hi_r
        j0 = np.searchsorted(s, lo_r, side="left")
        j1 = np.searchsorted(s, hi_r, side="right")
        k_first = max(j0 - 1, 0)
        k_last = min(j1 - 1, size - 2)
        for k in range(k_first, k_last + 1):
            mid = 0.5 * (s[k] + s[k + 1])
            if lo_r <= mid <= hi_r:
                half_gap = 0.5 * (s[k + 1] - s[k])
                if half_gap > best:
                    best = half_gap
                    where = mid
        err[r] = best
        pos[r] = where


@njit(cache=True, nogil=True, parallel=True)
def _nearest_rows(sums: np.ndarray, targets: np.ndarray, out: np.ndarray) -> None:
    """``out[r, t]`` = distance from ``targets[r, t]`` to the nearest of ``sums[r]``."""
    rows, m = targets.shape
    for r in prange(rows):
        for t in range(m):
            out[r, t] = _nearest_distance(sums[r], targets[r, t])


def worst_case_errors(
    sorted_sums: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact worst-case error over ``[lo, hi]`` for each row of sorted subset sums.

    Parameters
    ----------
    sorted_sums : ndarray, shape (rows, 2**n)
        Each row ascending (as from `sorted_subset_sums`).
    lo, hi : ndarray, shape (rows,)
        Target interval per row, ``lo <= hi``.

    Returns
    -------
    error : ndarray, shape (rows,)
        ``max_{z in [lo, hi]} min_k |z - sorted_sums[r, k]|``.
    position : ndarray, shape (rows,)
        A target ``z`` reaching that maximum.

    Complexity: ``O(log 2**n + g)`` per row, ``g`` the number of sums inside the interval.
    """
    s = np.ascontiguousarray(sorted_sums, dtype=np.float64)
    lo_a = np.ascontiguousarray(lo, dtype=np.float64)
    hi_a = np.ascontiguousarray(hi, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] < 1 or lo_a.shape != (s.shape[0],) or hi_a.shape != lo_a.shape:
        msg = (
            f"worst_case_errors: sums must be (rows, k>=1) and lo, hi (rows,); got sums "
            f"{s.shape}, lo {lo_a.shape}, hi {hi_a.shape}"
        )
        raise ValueError(msg)
    if np.any(~(lo_a <= hi_a)):
        r = int(np.flatnonzero(~(lo_a <= hi_a))[0])
        msg = f"worst_case_errors: row {r}: interval [{lo_a[r]}, {hi_a[r]}] is empty or NaN"
        raise ValueError(msg)
    err = np.empty(s.shape[0])
    pos = np.empty(s.shape[0])
    _worst_case_rows(s, lo_a, hi_a, err, pos)
    return err, pos


def nearest_sum_errors(sorted_sums: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Error of the best subset for each target: ``min_k |targets[r, t] - sums[r, k]|``.

    ``sorted_sums`` (rows, 2**n) ascending per row, ``targets`` (rows, m); returns
    (rows, m). ``O(m log 2**n)`` per row.
    """
    s = np.ascontiguousarray(sorted_sums, dtype=np.float64)
    z = np.ascontiguousarray(targets, dtype=np.float64)
    if s.ndim != 2 or z.ndim != 2 or s.shape[0] != z.shape[0] or s.shape[1] < 1:
        msg = (
            f"nearest_sum_errors: need sums (rows, k>=1) and targets (rows, m); "
            f"got {s.shape} and {z.shape}"
        )
        raise ValueError(msg)
    out = np.empty(z.shape)
    _nearest_rows(s, z, out)
    return out


# ------------------------------------------------------------------------- one (model, n)


@dataclass(frozen=True)
class PointErrors:
    """Per-instance errors of one (model, n) point of the study (errors in model units)."""

    model: str
    n: int
    seed: int
    worst_error: np.ndarray  # (instances,) exact worst case over the target interval
    worst_position: np.ndarray  # (instances,) where it is reached, as a fraction of [L, U]
    random_error: np.ndarray  # (instances, targets_per_instance) for uniform random targets
    interval_width: np.ndarray  # (instances,) U - L

    @property
    def instances(self) -> int:
        """Number of instances."""
        return int(self.worst_error.shape[0])


def _streams(model: ElementModel, n: int, seed: int) -> tuple[np.random.Generator, ...]:
    """The two independent generators (values, targets) of one (model, n) point."""
    key = zlib.crc32(model.name.encode("utf-8"))
    children = np.random.SeedSequence([seed, key, n]).spawn(2)
    return tuple(np.random.default_rng(c) for c in children)


def draw_instances(
    model: ElementModel,
    n: int,
    instances: int,
    *,
    seed: int,
    targets_per_instance: int = 16,
    start: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The seeded instances ``start .. start + instances - 1`` of one (model, n) point.

    Returns ``values`` (instances, n), the interval ends ``lo``, ``hi`` (instances,) and
    the random ``targets`` (instances, targets_per_instance), uniform in ``[lo, hi]``.
    Instance ``i`` is the same whatever ``start`` and ``instances`` (rows fill the
    stream in order: the first ``start + instances`` rows are drawn and the first
    ``start`` dropped, ``O((start + instances) n)``), so chunks seeded by their position
    reproduce one whole draw bit for bit.
    """
    if start < 0:
        msg = f"draw_instances: start = {start} must be >= 0"
        raise ValueError(msg)
    rng_values, rng_targets = _streams(model, n, seed)
    values = model.draw_values(rng_values, start + instances, n)[start:]
    lo, hi = model.target_interval(values)
    unit_targets = rng_targets.uniform(0.0, 1.0, size=(start + instances, targets_per_instance))
    targets = lo[:, None] + unit_targets[start:] * (hi - lo)[:, None]
    return values, lo, hi, targets


def run_point(
    model: ElementModel,
    n: int,
    instances: int,
    *,
    seed: int,
    targets_per_instance: int = 16,
    chunk_bytes: int = 64 << 20,
    progress: Callable[[int], None] | None = None,
    start: int = 0,
) -> PointErrors:
    """Draw ``instances`` instances of ``model`` with ``n`` elements and measure their errors.

    ``start``: the first instance's position in the point's stream (a chunk of a larger
    point, see `draw_instances`); the errors of instance ``i`` do not depend on it.

    Instances are processed in chunks of rows holding at most ``chunk_bytes`` of sorted
    sums (at least one row); the statistics kernels run over each chunk as a whole (numba,
    rows in parallel). ``progress(k)`` is called after each chunk with the number of
    instances just finished. Same ``seed`` -> same result (see the module docstring).
    """
    model.check_n(n)
    if instances < 1 or targets_per_instance < 1:
        msg = (
            f"run_point: instances ({instances}) and targets ({targets_per_instance}) must be >= 1"
        )
        raise ValueError(msg)
    values, lo, hi, targets = draw_instances(
        model, n, instances, seed=seed, targets_per_instance=targets_per_instance, start=start
    )

    size = 1 << n
    chunk = max(1, min(instances, chunk_bytes // (8 * size)))
    worst = np.empty(instances)
    where = np.empty(instances)
    rand = np.empty((instances, targets_per_instance))
    buf = np.empty((chunk, size))
    for first in range(0, instances, chunk):
        last = min(first + chunk, instances)
        rows = last - first
        for r in range(rows):
            buf[r] = sorted_subset_sums(values[first + r])[0]
        block = buf[:rows]
        worst[first:last], where[first:last] = worst_case_errors(
            block, lo[first:last], hi[first:last]
        )
        rand[first:last] = nearest_sum_errors(block, targets[first:last])
        if progress is not None:
            progress(rows)
    width = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(width > 0, (where - lo) / width, 0.0)
    return PointErrors(model.name, n, seed, worst, fraction, rand, width)


def concatenate_points(parts: Sequence[PointErrors]) -> PointErrors:
    """One point from its chunks (consecutive instance ranges, in order)."""
    if not parts:
        msg = "concatenate_points: no chunks"
        raise ValueError(msg)
    first = parts[0]
    if any((p.model, p.n, p.seed) != (first.model, first.n, first.seed) for p in parts):
        msg = "concatenate_points: chunks of different (model, n, seed) points"
        raise ValueError(msg)
    return PointErrors(
        first.model,
        first.n,
        first.seed,
        np.concatenate([p.worst_error for p in parts]),
        np.concatenate([p.worst_position for p in parts]),
        np.concatenate([p.random_error for p in parts]),
        np.concatenate([p.interval_width for p in parts]),
    )


# ------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class StatisticRow:
    """One (model, n, statistic) row of the study: an error in model units and its bits."""

    model: str
    n: int
    instances: int
    statistic: str
    error: float
    bits: float  # -log2(error) (inf for an exact hit)
    counting_limit_bits: float  # n + 1 - log2(median interval width)


def _bits(error: float) -> float:
    return math.inf if error <= 0.0 else -math.log2(error)


def counting_limit_bits(n: int, interval_width: float) -> float:
    """The counting (pigeonhole) limit on bits over an interval of width ``W``.

    ``2**n`` sums can at best be spread evenly over the interval, each covering
    ``W / 2**n``, so the worst-case error is at least ``W / 2**(n+1)``:
    ``bits <= n + 1 - log2(W)``. For ``uniform`` (W = 2) that is exactly ``n``; its
    slope is 1 bit per element for every model.
    """
    return n + 1.0 - math.log2(interval_width)


def summarize_point(point: PointErrors) -> list[StatisticRow]:
    """The rows of `STATISTICS` for one point.

    Percentiles pick an actual instance (``method="inverted_cdf"`` on the error: the
    smallest error that at least the fraction q of the instances do not exceed), so
    ``worst_p99`` is the error of the instance that 99 % of the instances beat or equal.
    """

    def quantile(a: np.ndarray, q: float) -> float:
        return float(np.quantile(a, q, method="inverted_cdf"))

    flat = point.random_error.ravel()
    errors = {
        "worst_median": quantile(point.worst_error, 0.5),
        "worst_p99": quantile(point.worst_error, 0.99),
        "worst_max": float(point.worst_error.max()),
        "random_median": quantile(flat, 0.5),
        "random_p99": quantile(flat, 0.99),
        "random_max": float(flat.max()),
    }
    limit = counting_limit_bits(point.n, float(np.median(point.interval_width)))
    return [
        StatisticRow(point.model, point.n, point.instances, name, e, _bits(e), limit)
        for name, e in errors.items()
    ]


@dataclass(frozen=True)
class SlopeFit:
    """Least-squares line ``bits = slope * n + intercept`` over ``n_min..n_max``."""

    model: str
    statistic: str
    slope: float  # bits per element
    intercept: float
    n_min: int
    n_max: int
    points: int


def fit_slopes(rows: Sequence[StatisticRow], *, min_n: int = DEFAULT_FIT_MIN_N) -> list[SlopeFit]:
    """Fit bits against n for every (model, statistic) with at least two finite points.

    Points with ``n < min_n`` or infinite bits (an exact hit) are left out; a pair with
    fewer than two remaining points gets no fit.
    """
    groups: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for row in rows:
        if row.n >= min_n and math.isfinite(row.bits):
            groups.setdefault((row.model, row.statistic), []).append((row.n, row.bits))
    fits = []
    for (model, stat), pts in groups.items():
        ns = np.array([p[0] for p in pts], dtype=float)
        if np.unique(ns).size < 2:
            continue
        bits = np.array([p[1] for p in pts])
        slope, intercept = np.polyfit(ns, bits, 1)
        fits.append(
            SlopeFit(
                model, stat, float(slope), float(intercept), int(ns.min()), int(ns.max()), len(pts)
            )
        )
    return fits
