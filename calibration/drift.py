"""Repeatability and drift of re-measured elements (pure numpy).

A drift sample is a set of elements, each measured alone in ``rounds`` rounds at times
``t_s`` (s, the instrument's time stamps). Per element, a straight line
``g(t) = g0 + slope * (t - t_mean)`` is fitted by least squares; the slope (S/s) and its
standard error come from the residual scatter about the line (the repeatability), pooled
over the sample when an element has too few rounds to estimate its own (rounds = 2).

Reported per element: ``slope_S_per_s`` and ``slope_std_S_per_s``, the relative drift per
hour ``relative_per_hour = slope * 3600 / mean(g)``, the total change between the first and
the last round (relative), and the repeatability (the residual standard deviation,
relative). Cost O(elements x rounds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["DriftReport", "fit_drift"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class DriftReport:
    """Drift of each sampled element (arrays of shape (elements,) unless noted).

    ``t_s`` and ``g_S`` (elements, rounds) are the inputs; ``residual_std_S`` the pooled
    repeatability (S, one reading's scatter about its element's line, relative values in
    ``repeatability_rel``); ``pooled`` says whether the slope errors used the pooled scatter.
    """

    t_s: FloatArray
    g_S: FloatArray
    mean_S: FloatArray
    slope_S_per_s: FloatArray
    slope_std_S_per_s: FloatArray
    relative_per_hour: FloatArray
    relative_per_hour_std: FloatArray
    total_change_rel: FloatArray
    repeatability_rel: FloatArray
    residual_std_S: float
    pooled: bool

    @property
    def n_elements(self) -> int:
        """How many elements were sampled."""
        return int(self.g_S.shape[0])

    def summary(self) -> dict[str, float | int]:
        """Median figures over the sample (JSON-ready)."""

        def med(x: FloatArray) -> float:
            finite = x[np.isfinite(x)]
            return float(np.median(finite)) if finite.size else float("nan")

        return {
            "elements": self.n_elements,
            "rounds": int(self.g_S.shape[1]),
            "median_abs_relative_per_hour": med(np.abs(self.relative_per_hour)),
            "median_relative_per_hour_std": med(self.relative_per_hour_std),
            "median_abs_total_change_rel": med(np.abs(self.total_change_rel)),
            "median_repeatability_rel": med(self.repeatability_rel),
        }


def fit_drift(t_s: ArrayLike, g_S: ArrayLike) -> DriftReport:
    """Fit a line per element to conductances ``g_S`` (elements, rounds) at ``t_s``.

    ``t_s`` is (rounds,) or (elements, rounds). NaN readings are left out of that element's
    fit. Raises `ValueError` for fewer than two rounds or mismatched shapes.
    """
    g = np.atleast_2d(np.asarray(g_S, dtype=float))
    t = np.asarray(t_s, dtype=float)
    if t.ndim == 1:
        t = np.broadcast_to(t, g.shape)
    if t.shape != g.shape or g.shape[1] < 2:
        raise ValueError(
            f"drift needs times and readings of the same shape (elements, rounds >= 2), "
            f"got {t.shape} and {g.shape}"
        )
    valid = np.isfinite(g) & np.isfinite(t)
    n = valid.sum(axis=1)
    tw = np.where(valid, t, 0.0)
    gw = np.where(valid, g, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_mean = tw.sum(axis=1) / n
        g_mean = gw.sum(axis=1) / n
        dt = np.where(valid, t - t_mean[:, None], 0.0)
        sxx = (dt**2).sum(axis=1)
        slope = np.where(
            sxx > 0, (dt * np.where(valid, g - g_mean[:, None], 0.0)).sum(1) / sxx, np.nan
        )
        resid = np.where(valid, g - g_mean[:, None] - slope[:, None] * dt, 0.0)
        rss = (resid**2).sum(axis=1)
        dof = n - 2
        own = np.where(dof > 0, rss / np.maximum(dof, 1), np.nan)
        total_dof = int(np.clip(dof, 0, None)[np.isfinite(slope)].sum())
        pooled = bool((dof < 1).any())
        s2_pool = (
            float(rss[np.isfinite(slope) & (dof > 0)].sum() / total_dof) if total_dof else np.nan
        )
        # Relative scatter pooled: elements differ by orders of magnitude in S, so the
        # repeatability is pooled as a fraction of each element's mean.
        rel_rss = rss / np.where(g_mean != 0, g_mean, np.nan) ** 2
        rel_pool = float(np.nansum(rel_rss[dof > 0]) / total_dof) if total_dof else float("nan")
        s2 = np.where(dof > 0, own, rel_pool * g_mean**2)
        slope_std = np.sqrt(s2 / sxx)
        first = np.array([g[i, valid[i]][0] if n[i] else np.nan for i in range(g.shape[0])])
        last = np.array([g[i, valid[i]][-1] if n[i] else np.nan for i in range(g.shape[0])])
        rel_hour = slope * 3600.0 / g_mean
        rel_hour_std = slope_std * 3600.0 / np.abs(g_mean)
        repeat_rel = np.sqrt(np.where(dof > 0, own, rel_pool * g_mean**2)) / np.abs(g_mean)
        total = (last - first) / g_mean
    return DriftReport(
        t_s=t.astype(float),
        g_S=g,
        mean_S=g_mean,
        slope_S_per_s=slope,
        slope_std_S_per_s=slope_std,
        relative_per_hour=rel_hour,
        relative_per_hour_std=rel_hour_std,
        total_change_rel=total,
        repeatability_rel=repeat_rel,
        residual_std_S=float(np.sqrt(s2_pool)) if np.isfinite(s2_pool) else float("nan"),
        pooled=pooled,
    )
