"""Multidimensional subset sum: the subset of n vectors in R^d whose sum is nearest a target.

    res = solve_mrss(vectors, targets, norm="max")      # exact up to MAX_EXACT_N vectors
    res.mask, res.value, res.error, res.optimal

The problem behind structured lottery tickets (da Cunha, d'Amore, Natale, NeurIPS 2023):
a whole random filter is kept or removed, so a kernel of ``d`` entries is approximated by
a sum of whole random vectors, not entry by entry (`labrss.slth.structured`).

**Exact** (`method="exact"`): meet in the middle with a spatial index. The vectors are
split in halves A and B; the ``2**|A|`` and ``2**|B|`` subset sums are enumerated; the
sums of B go into a k-d tree (``scipy.spatial.cKDTree``, exact nearest-neighbour search
in the max-norm or 2-norm); for each sum ``a`` of A the tree returns the sum of B nearest
``t - a``, and the best pair over all ``a`` is the optimum: every subset is ``a + b`` for
exactly one pair, and for each ``a`` the tree's answer is the best ``b`` (proof of
optimality; property-tested against brute force in tests/rss/test_multidim.py). Time
``O(2**(n/2) (d + log 2**(n/2)))`` per target on average (k-d trees degrade towards a
scan as ``d`` grows), memory ``O(2**(n/2) d)``. ``MAX_EXACT_N`` = 32.

**Heuristic** (`method="heuristic"`, for larger n): a 1-flip descent (add or remove the
element that most reduces the error, until none does; vectorised over instances)
followed by ``rounds`` of large neighbourhood search: ``block`` random elements are
freed, the others fixed, and the best assignment of the freed ones is found exactly by
the meet in the middle above; a round never makes the solution worse. Time
``O(B (n**2 d + rounds 2**(block/2) log 2**(block/2)))``. Its gap to the optimum is
measured in benchmarks/bench_mrss.py (exact and CP-SAT references): it finds the optimum
or close to it while ``n`` is not much above ``block``, and falls behind beyond.

Errors: max-norm ``max_j |sum_S v_j - t_j|`` or Euclidean norm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_BRUTE_N",
    "MAX_EXACT_N",
    "MRSSResult",
    "brute_force_mrss",
    "solve_mrss",
    "subset_vector_sums",
]

Norm = Literal["max", "l2"]
Method = Literal["auto", "exact", "heuristic"]

#: Largest n solved exactly (2**16 sums per half).
MAX_EXACT_N = 32
#: Largest n `brute_force_mrss` accepts (2**20 sums).
MAX_BRUTE_N = 20

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class MRSSResult:
    """Best subsets for a batch of instances.

    Attributes
    ----------
    mask : ``(B, n)`` bool, the chosen vectors.
    value : ``(B, d)`` their sum.
    error : ``(B,)`` ``||value - target||`` in ``norm``.
    optimal : ``(B,)`` True where the subset is proven optimal (exact method).
    norm : ``"max"`` or ``"l2"``; method : ``"exact"`` or ``"heuristic"``.
    """

    mask: BoolArray
    value: FloatArray
    error: FloatArray
    optimal: BoolArray
    norm: str
    method: str


def _norm(diff: np.ndarray, norm: Norm) -> np.ndarray:
    if norm == "max":
        return np.asarray(np.abs(diff).max(axis=-1))
    return np.asarray(np.sqrt((diff * diff).sum(axis=-1)))


def subset_vector_sums(vectors: npt.ArrayLike) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """All ``2**n`` subset sums ``(2**n, d)`` of ``vectors`` ``(n, d)`` and their masks as
    integers (bit ``i`` = vector ``i``), in order of the mask code. ``O(2**n d)``."""
    v = np.asarray(vectors, dtype=np.float64)
    n, d = v.shape
    sums = np.zeros((1, d))
    for i in range(n):
        sums = np.concatenate([sums, sums + v[i]], axis=0)
    return sums, np.arange(1 << n, dtype=np.int64)


def _codes_to_mask(codes: np.ndarray, n: int) -> BoolArray:
    return np.asarray((codes[..., None] >> np.arange(n)) & 1, dtype=bool)


def _check(vectors: npt.ArrayLike, targets: npt.ArrayLike) -> tuple[FloatArray, FloatArray, bool]:
    v = np.asarray(vectors, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if v.ndim not in (2, 3):
        msg = f"vectors of shape {v.shape}: expected (n, d) or (B, n, d)"
        raise ValueError(msg)
    d = v.shape[-1]
    single = t.ndim == 1
    if single:
        t = t[None, :]
    if t.ndim != 2 or t.shape[1] != d:
        msg = f"targets of shape {np.shape(targets)}: expected ({d},) or (B, {d})"
        raise ValueError(msg)
    if v.ndim == 3 and v.shape[0] != t.shape[0]:
        msg = f"{v.shape[0]} instances of vectors but {t.shape[0]} targets"
        raise ValueError(msg)
    for name, arr in (("vectors", v), ("targets", t)):
        if not np.isfinite(arr).all():
            msg = f"{name} hold NaN or inf"
            raise ValueError(msg)
    return v, t, single


def brute_force_mrss(
    vectors: npt.ArrayLike, targets: npt.ArrayLike, *, norm: Norm = "max"
) -> MRSSResult:
    """Reference: every one of the ``2**n`` subsets (``n <= MAX_BRUTE_N``), for tests."""
    v, t, _ = _check(vectors, targets)
    n = v.shape[-2]
    if n > MAX_BRUTE_N:
        msg = f"brute force over 2**{n} subsets: n must be <= {MAX_BRUTE_N}"
        raise ValueError(msg)
    masks = np.zeros((t.shape[0], n), dtype=bool)
    for b in range(t.shape[0]):
        vb = v if v.ndim == 2 else v[b]
        sums, codes = subset_vector_sums(vb)
        err = _norm(sums - t[b], norm)
        masks[b] = _codes_to_mask(codes[int(np.argmin(err))], n)
    return _result(v, t, masks, np.ones(t.shape[0], dtype=bool), norm=norm, method="exact")


def _result(
    v: FloatArray, t: FloatArray, masks: BoolArray, optimal: BoolArray, *, norm: Norm, method: str
) -> MRSSResult:
    if v.ndim == 2:
        value = masks.astype(np.float64) @ v
    else:
        value = np.einsum("bn,bnd->bd", masks.astype(np.float64), v)
    return MRSSResult(
        mask=masks,
        value=value,
        error=_norm(value - t, norm),
        optimal=optimal,
        norm=norm,
        method=method,
    )


def _exact_one(
    v: FloatArray, t: FloatArray, norm: Norm, chunk: int = 1 << 18
) -> npt.NDArray[np.int64]:
    """Mask codes ``(T,)`` of the optimal subsets of ``v`` ``(n, d)`` for targets ``(T, d)``."""
    from scipy.spatial import cKDTree  # type: ignore[import-untyped]

    n = v.shape[0]
    h = n // 2
    sums_a, codes_a = subset_vector_sums(v[:h])
    sums_b, codes_b = subset_vector_sums(v[h:])
    tree = cKDTree(sums_b)
    p = np.inf if norm == "max" else 2.0
    out = np.empty(t.shape[0], dtype=np.int64)
    per = max(1, chunk // sums_a.shape[0])
    for s in range(0, t.shape[0], per):
        tt = t[s : s + per]
        q = tt[:, None, :] - sums_a[None, :, :]  # (T', 2**h, d)
        dist, idx = tree.query(q.reshape(-1, v.shape[1]), k=1, p=p)
        dist = dist.reshape(tt.shape[0], -1)
        best_a = np.argmin(dist, axis=1)
        best_b = idx.reshape(tt.shape[0], -1)[np.arange(tt.shape[0]), best_a]
        out[s : s + per] = codes_a[best_a] | (codes_b[best_b] << h)
    return out


def _local_search(
    v: FloatArray, t: FloatArray, masks: BoolArray, norm: Norm, max_iter: int
) -> BoolArray:
    """1-flip descent, vectorised over instances: flip the best element while it helps."""
    vv = v if v.ndim == 3 else np.broadcast_to(v, (t.shape[0], *v.shape))
    masks = masks.copy()
    value = np.einsum("bn,bnd->bd", masks.astype(np.float64), vv)
    err = _norm(value - t, norm)
    rows = np.arange(t.shape[0])
    for _ in range(max_iter):
        sign = np.where(masks, -1.0, 1.0)[..., None]  # flipping adds or removes
        cand = value[:, None, :] + sign * vv  # (B, n, d)
        cerr = _norm(cand - t[:, None, :], norm)
        j = np.argmin(cerr, axis=1)
        better = cerr[rows, j] < err
        if not better.any():
            break
        b = rows[better]
        masks[b, j[better]] = ~masks[b, j[better]]
        value[b] = cand[b, j[better]]
        err[b] = cerr[b, j[better]]
    return masks


def _lns(
    v: FloatArray,
    t: FloatArray,
    masks: BoolArray,
    norm: Norm,
    *,
    rounds: int,
    block: int,
    rng: np.random.Generator,
) -> BoolArray:
    """Large neighbourhood search: re-optimise ``block`` random elements of each instance
    exactly (meet in the middle on them, the others fixed); never worse than its start."""
    n = v.shape[-2]
    m = min(block, n)
    if m == 0 or rounds < 1:
        return masks
    masks = masks.copy()
    for b in range(t.shape[0]):
        vb = v if v.ndim == 2 else v[b]
        cur = masks[b]
        for _ in range(rounds):
            free = np.sort(rng.choice(n, size=m, replace=False))
            fixed = cur.copy()
            fixed[free] = False
            rest = t[b] - fixed.astype(np.float64) @ vb
            code = _exact_one(vb[free], rest[None, :], norm)[0]
            cur[free] = _codes_to_mask(np.asarray(code), m)
        masks[b] = cur
    return masks


def solve_mrss(
    vectors: npt.ArrayLike,
    targets: npt.ArrayLike,
    *,
    norm: Norm = "max",
    method: Method = "auto",
    max_exact_n: int = 24,
    rounds: int = 20,
    block: int = 20,
    seed: int = 0,
) -> MRSSResult:
    """Best subset of ``vectors`` for each target (module docstring).

    Parameters
    ----------
    vectors : ``(n, d)`` shared by every target, or ``(B, n, d)`` one set per target.
    targets : ``(d,)`` or ``(B, d)``.
    norm : ``"max"`` (Chebyshev) or ``"l2"`` (Euclidean).
    method : ``"exact"`` (meet in the middle, ``n <= MAX_EXACT_N``), ``"heuristic"`` or
        ``"auto"`` (exact up to ``max_exact_n`` vectors, the heuristic beyond).
    rounds, block, seed : the heuristic's neighbourhood search: ``rounds`` times, ``block``
        random elements re-optimised exactly (``block <= MAX_EXACT_N``).

    Returns
    -------
    MRSSResult (a single target gives a batch of one).
    """
    if norm not in ("max", "l2"):
        msg = f"norm = {norm!r}: 'max' or 'l2'"
        raise ValueError(msg)
    v, t, _ = _check(vectors, targets)
    n = v.shape[-2]
    if method == "auto":
        method = "exact" if n <= max_exact_n else "heuristic"
    if method == "exact":
        if n > MAX_EXACT_N:
            msg = f"exact multidimensional subset sum of n = {n} vectors: need n <= {MAX_EXACT_N}"
            raise ValueError(msg)
        if v.ndim == 2:
            codes = _exact_one(v, t, norm)
        else:
            codes = np.concatenate(
                [_exact_one(v[b], t[b : b + 1], norm) for b in range(t.shape[0])]
            )
        masks = _codes_to_mask(codes, n)
        return _result(v, t, masks, np.ones(t.shape[0], dtype=bool), norm=norm, method="exact")
    if method != "heuristic":
        msg = f"method = {method!r}: 'auto', 'exact' or 'heuristic'"
        raise ValueError(msg)
    if not 0 <= block <= MAX_EXACT_N:
        msg = f"block = {block}: must be in 0..{MAX_EXACT_N} (solved exactly each round)"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    masks = np.zeros((t.shape[0], n), dtype=bool)
    masks = _local_search(v, t, masks, norm, max_iter=2 * n)
    masks = _lns(v, t, masks, norm, rounds=rounds, block=block, rng=rng)
    masks = _local_search(v, t, masks, norm, max_iter=2 * n)
    return _result(v, t, masks, np.zeros(t.shape[0], dtype=bool), norm=norm, method="heuristic")
