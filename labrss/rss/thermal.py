"""Subsets that hold over a temperature span: minimax error of a linear temperature model.

Each element i has a value ``v_i`` (S) at the reference temperature T0 and a slope
``s_i`` (S/K); a subset's value at T0 + d is ``sum_S v_i + d sum_S s_i``. The target may
move too (``t + d t_s``: a target that follows the board's common TCR, which no subset
can cancel but every ratio does; docs/temperature.md). The error is linear in d, so its
largest magnitude over a span ``[d_lo, d_hi]`` is at an end:

    worst(S) = max(|e(d_lo)|, |e(d_hi)|),   e(d) = sum_S (v_i + d s_i) - (t + d t_s).

Minimising it is a two-dimensional subset sum in the max norm: element i is the vector
``(v_i + d_lo s_i, v_i + d_hi s_i)`` and the target ``(t + d_lo t_s, t + d_hi t_s)``.

**Exact.** Up to ``max_brute_n`` elements every ``2**n`` subset sum is enumerated
(vectorised); beyond, meet in the middle: the two halves' sums, a k-d tree over one half
(exact nearest neighbour in the max norm) queried from the other
(`labrss.rss.multidim.solve_mrss`); both are exact, property-tested against a brute-force
loop in tests/rss/test_thermal.py. Time ``O(2**n)`` per target for the enumeration and
``O(n 2**(n/2))`` for the meet in the middle (memory ``O(2**(n/2))``), up to
``MAX_EXACT_N`` = 32 elements per cell.

`span_errors` evaluates any mask's predicted error at given temperatures (the report's
error-vs-temperature curve for the plain and the compensated mask). Pure: arrays in, a
small result object out, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labrss.rss.multidim import MAX_EXACT_N, brute_force_mrss, solve_mrss

__all__ = ["MAX_EXACT_N", "SpanResult", "solve_over_span", "span_errors"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

MAX_BRUTE_N = 12
"""Up to this many elements, `solve_over_span` enumerates every subset."""


@dataclass(frozen=True)
class SpanResult:
    """Best subsets over a span, per target (arrays over the targets; S unless named).

    Attributes:
        mask: (m, n) the chosen elements.
        value_S: the subset's value at T0; slope_S_per_K: its slope (S/K).
        error_lo_S, error_hi_S: the error ``e(d)`` at the span's ends.
        worst_S: ``max(|error_lo_S|, |error_hi_S|)``: the largest error over the span.
        method: ``"enumeration"`` or ``"meet-in-the-middle"``.
    """

    mask: BoolArray
    value_S: FloatArray
    slope_S_per_K: FloatArray
    error_lo_S: FloatArray
    error_hi_S: FloatArray
    worst_S: FloatArray
    method: str


def _as_2d(x: ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected (n,) or (m, n), got shape {a.shape}")
    return a


def solve_over_span(
    values_S: ArrayLike,
    slopes_S_per_K: ArrayLike,
    targets_S: ArrayLike,
    *,
    span_K: tuple[float, float],
    target_slopes_S_per_K: ArrayLike | None = None,
    exclude: ArrayLike | None = None,
    max_brute_n: int = MAX_BRUTE_N,
) -> SpanResult:
    """The subset of each row's elements with the smallest worst error over the span.

    Args:
        values_S: (n,) or (m, n) element values at T0 (S).
        slopes_S_per_K: same shape: dG/dT of each element (S/K).
        targets_S: (m,) the targets at T0 (S).
        span_K: (d_lo, d_hi): the span's ends relative to T0 (K), e.g. (-10, 10).
        target_slopes_S_per_K: (m,) how each target moves with temperature (S/K; default 0).
        exclude: (m, n) or (n,) elements that must not be used (faulty).
        max_brute_n: enumerate every subset up to this n; meet in the middle beyond.

    Raises:
        ValueError: shapes that do not match, non-finite input, n > MAX_EXACT_N.
    """
    v = _as_2d(values_S, "values_S")
    s = _as_2d(slopes_S_per_K, "slopes_S_per_K")
    t = np.atleast_1d(np.asarray(targets_S, dtype=np.float64))
    if v.shape[0] == 1 and t.size > 1:
        v = np.repeat(v, t.size, axis=0)
        s = np.repeat(s, t.size, axis=0) if s.shape[0] == 1 else s
    if s.shape != v.shape or t.shape != (v.shape[0],):
        raise ValueError(
            f"shapes: values {v.shape}, slopes {s.shape}, targets {t.shape} do not match"
        )
    ts = (
        np.zeros_like(t)
        if target_slopes_S_per_K is None
        else np.broadcast_to(np.asarray(target_slopes_S_per_K, dtype=np.float64), t.shape)
    )
    ex = (
        np.zeros(v.shape, dtype=bool)
        if exclude is None
        else np.broadcast_to(np.asarray(exclude, dtype=bool), v.shape)
    )
    d_lo, d_hi = (float(span_K[0]), float(span_K[1]))
    if not (np.isfinite(v[~ex]).all() and np.isfinite(s[~ex]).all() and np.isfinite(t).all()):
        raise ValueError("values, slopes and targets must be finite (exclude unknown elements)")
    if not (np.isfinite(d_lo) and np.isfinite(d_hi)):
        raise ValueError(f"span_K = {span_K!r} must be finite")
    n = v.shape[1]
    if n > MAX_EXACT_N:
        raise ValueError(f"{n} elements per cell: the exact span solver takes <= {MAX_EXACT_N}")
    v0 = np.where(ex, 0.0, v)
    s0 = np.where(ex, 0.0, s)
    vectors = np.stack([v0 + d_lo * s0, v0 + d_hi * s0], axis=-1)  # (m, n, 2)
    goal = np.stack([t + d_lo * ts, t + d_hi * ts], axis=-1)  # (m, 2)
    if n <= max_brute_n:
        res = brute_force_mrss(vectors, goal, norm="max")
        method = "enumeration"
    else:
        res = solve_mrss(vectors, goal, norm="max", method="exact")
        method = "meet-in-the-middle"
    mask = np.asarray(res.mask, dtype=bool) & ~ex
    value = (mask * v0).sum(axis=1)
    slope = (mask * s0).sum(axis=1)
    e_lo = value + d_lo * slope - (t + d_lo * ts)
    e_hi = value + d_hi * slope - (t + d_hi * ts)
    return SpanResult(
        mask, value, slope, e_lo, e_hi, np.maximum(np.abs(e_lo), np.abs(e_hi)), method
    )


def span_errors(
    values_S: ArrayLike,
    slopes_S_per_K: ArrayLike,
    masks: ArrayLike,
    targets_S: ArrayLike,
    offsets_K: ArrayLike,
    *,
    target_slopes_S_per_K: ArrayLike | None = None,
) -> FloatArray:
    """(m, len(offsets_K)): each mask's predicted error (S) at T0 + each offset (K)."""
    v = _as_2d(values_S, "values_S")
    s = _as_2d(slopes_S_per_K, "slopes_S_per_K")
    m = np.asarray(masks, dtype=bool).reshape(v.shape)
    t = np.atleast_1d(np.asarray(targets_S, dtype=np.float64))
    ts = (
        np.zeros_like(t)
        if target_slopes_S_per_K is None
        else np.broadcast_to(np.asarray(target_slopes_S_per_K, dtype=np.float64), t.shape)
    )
    d = np.asarray(offsets_K, dtype=np.float64)
    value = np.where(m, v, 0.0).sum(axis=1)
    slope = np.where(m, s, 0.0).sum(axis=1)
    return np.asarray((value - t)[:, None] + np.outer(slope - ts, d), dtype=np.float64)
