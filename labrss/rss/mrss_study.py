"""How the multidimensional subset-sum error falls with n, for each dimension d (pure).

For each dimension ``d`` and size ``n``, ``instances`` seeded draws of ``n`` random
vectors in ``R^d`` and one target each, uniform in the cube ``[-1, 1]^d``; the best
subset is found by `labrss.rss.multidim.solve_mrss` (exact, meet in the middle, up to
``max_exact_n``; the heuristic beyond, marked) and its max-norm error recorded. Models:

* ``nsn``: normally-scaled normal vectors ``z g`` (``z ~ N(0, 1)``, ``g ~ N(0, I_d)``):
  the vectors of structured pruning (da Cunha, d'Amore, Natale 2023: a random output
  weight times a random filter);
* ``normal``: ``g ~ N(0, I_d)``;
* ``board``: every entry drawn from the board's own measured element conductances
  (a calibration), centred and scaled to unit standard deviation.

**Bounds.** Counting: ``2**n`` subset sums cannot put every point of the cube within
``eps`` (max-norm) unless ``2**n >= eps**-d``: ``n >= d log2(1/eps)``. The published
sufficient size for NSN vectors is ``n = O(d**3 log(1/eps) (log(1/eps) + log d))``
(arXiv 2207.13944, used by arXiv 2311.09858) with an unspecified constant: its *shape*
is compared with the measured ``n(d)``.

Cost: ``sum_d sum_n instances * 2**(n/2)`` k-d tree queries.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from labrss.rss.multidim import solve_mrss

__all__ = [
    "MRSS_MODELS",
    "MRSSPoint",
    "counting_bound_n",
    "draw_vectors",
    "n_needed",
    "published_bound_shape",
    "run_mrss_study",
]

#: Vector models (module docstring).
MRSS_MODELS = ("nsn", "normal", "board")


@dataclass(frozen=True)
class MRSSPoint:
    """One (model, d, n): error statistics over the instances (max-norm)."""

    model: str
    d: int
    n: int
    instances: int
    median_error: float
    p90_error: float
    max_error: float
    exact: bool


def draw_vectors(
    model: str,
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    board_values: npt.ArrayLike | None = None,
) -> np.ndarray:
    """Random vectors ``(instances, n, d)`` of a model (module docstring)."""
    b, n, d = shape
    if model == "nsn":
        return np.asarray(rng.normal(size=(b, n, 1)) * rng.normal(size=(b, n, d)))
    if model == "normal":
        return np.asarray(rng.normal(size=(b, n, d)))
    if model == "board":
        if board_values is None:
            raise ValueError("model 'board' needs the board's measured element values")
        vals = np.asarray(board_values, dtype=np.float64).ravel()
        vals = vals[np.isfinite(vals)]
        if vals.size < 2 or float(vals.std()) == 0.0:
            raise ValueError("model 'board': need at least two distinct measured values")
        z = (vals - vals.mean()) / vals.std()
        return np.asarray(rng.choice(z, size=(b, n, d)))
    raise ValueError(f"unknown model {model!r}; choose from {', '.join(MRSS_MODELS)}")


def run_mrss_study(
    dims: Sequence[int],
    n_values: Sequence[int],
    *,
    model: str = "nsn",
    instances: int = 100,
    seed: int = 0,
    max_exact_n: int = 24,
    board_values: npt.ArrayLike | None = None,
    progress: object = None,
) -> list[MRSSPoint]:
    """The study's points, one per (d, n) (module docstring). Seeds are per (d, n)."""
    points: list[MRSSPoint] = []
    for d in dims:
        if d < 1:
            raise ValueError(f"--dims: dimension {d} must be >= 1")
        for n in n_values:
            rng = np.random.default_rng([seed, d, n])
            v = draw_vectors(model, rng, (instances, n, d), board_values)
            t = rng.uniform(-1.0, 1.0, size=(instances, d))
            res = solve_mrss(v, t, norm="max", max_exact_n=max_exact_n, seed=seed)
            e = res.error
            points.append(
                MRSSPoint(
                    model=model,
                    d=int(d),
                    n=int(n),
                    instances=instances,
                    median_error=float(np.median(e)),
                    p90_error=float(np.quantile(e, 0.9)),
                    max_error=float(e.max()),
                    exact=bool(res.optimal.all()),
                )
            )
            if callable(progress):
                progress(len(points), len(dims) * len(n_values), f"d = {d}, n = {n}")
    return points


def n_needed(points: Sequence[MRSSPoint], d: int, eps: float) -> float:
    """Smallest n (log-interpolated between grid points) at which the median error of
    dimension ``d`` falls to ``eps``; NaN when the grid does not reach it."""
    pts = sorted((p for p in points if p.d == d), key=lambda p: p.n)
    for a, b in itertools.pairwise(pts):
        if a.median_error <= eps:
            return float(a.n)
        if b.median_error <= eps:
            la, lb = math.log(a.median_error), math.log(b.median_error)
            return float(a.n + (b.n - a.n) * (la - math.log(eps)) / (la - lb))
    if pts and pts[0].median_error <= eps:
        return float(pts[0].n)
    return math.nan


def counting_bound_n(d: int, eps: float) -> float:
    """``d log2(1/eps)``: below it the ``2**n`` sums cannot cover the cube at ``eps``."""
    return d * math.log2(1.0 / eps)


def published_bound_shape(d: int, eps: float) -> float:
    """``d**3 log(1/eps) (log(1/eps) + log d)`` (constant 1; only the shape is meaningful)."""
    le = math.log(1.0 / eps)
    return d**3 * le * (le + math.log(d) if d > 1 else le)
