"""A cell's series path measured in situ, by additivity (no calibration needed).

The SMU reads a cell through its series path r_s (routing, traces, leads): ``y = G / (1 +
r_s G)``. Conductances of the bank add: for two disjoint subsets A and B of a cell's
branches, with every branch open conductance ``G_0`` (the off-leakage c0),

    G(A) + G(B) = G(A u B) + G(0),      G(y) = y / (1 - r_s y),

whatever the elements' values, so four readings fix r_s. This is the build-up idea of
resistance metrology: it needs no element value, no reference and no temperature model,
so it can be repeated at each board temperature (the wiring has its own temperature
coefficient on a real bench). Read A, B and A u B on one current range, the gain error of
the range scales r_s by ``1 / (1 + e)`` (a few 1e-4 of r_s: negligible) instead of
entering the non-additivity, which the calibration's one-by-one design must link across
ranges. The non-additivity is ``2 r_s G_A G_B`` (to first order): a high read voltage on
a fixed range, and A and B of similar conductance, make it stand out of the noise.

`series_from_additivity` solves the equation exactly (Newton from r_s = 0, quadratic
convergence; the function is monotonic where ``r_s y < 1``) and propagates the readings'
standard uncertainties. Pure: floats in, a small result out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SeriesPath", "series_from_additivity"]

_SIGNS = (1.0, 1.0, -1.0, -1.0)


@dataclass(frozen=True)
class SeriesPath:
    """r_s (ohm) with its standard uncertainty (ohm, from the readings' uncertainties),
    and the bank conductances of the four subsets it implies (S)."""

    series_ohm: float
    u_series_ohm: float
    conductance_S: tuple[float, float, float, float]


def series_from_additivity(
    y_S: tuple[float, float, float, float],
    u_S: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
    *,
    iterations: int = 30,
) -> SeriesPath:
    """r_s from the readings ``(y_A, y_B, y_AuB, y_0)`` (S, through the series path) and
    their standard uncertainties (module docstring).

    Raises:
        ValueError: non-finite readings, or readings with no solution (A and B not
            disjoint, or their non-additivity of the wrong sign beyond the noise does not
            raise it: r_s is then returned negative, as measured).
    """
    if not all(math.isfinite(y) for y in y_S) or not all(math.isfinite(u) for u in u_S):
        raise ValueError(f"series path: readings {y_S} or uncertainties {u_S} not finite")
    if not y_S[2] > max(y_S[0], y_S[1]) > 0:
        raise ValueError(
            f"series path: y(A u B) = {y_S[2]:.6g} S must exceed y(A) = {y_S[0]:.6g} S and "
            f"y(B) = {y_S[1]:.6g} S (disjoint subsets, both conducting)"
        )
    rs = 0.0
    for _ in range(iterations):
        f = sum(s * y / (1.0 - rs * y) for s, y in zip(_SIGNS, y_S, strict=True))
        df = sum(s * y * y / (1.0 - rs * y) ** 2 for s, y in zip(_SIGNS, y_S, strict=True))
        if df == 0:
            break
        step = f / df
        rs -= step
        if abs(step) < 1e-15:
            break
    df = sum(s * y * y / (1.0 - rs * y) ** 2 for s, y in zip(_SIGNS, y_S, strict=True))
    grads = [s / (1.0 - rs * y) ** 2 for s, y in zip(_SIGNS, y_S, strict=True)]
    u = math.sqrt(sum((g * uy) ** 2 for g, uy in zip(grads, u_S, strict=True))) / abs(df)
    g = tuple(y / (1.0 - rs * y) for y in y_S)
    return SeriesPath(rs, u, (g[0], g[1], g[2], g[3]))
