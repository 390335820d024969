"""Lottery-ticket constructions for one target layer: two pruned random layers (pure).

Every target layer, dense or convolutional, is a matrix ``W`` ``(P, O)`` applied to
vectors (its inputs, or for a convolution its im2col patches of ``P = c_in * prod(kernel)``
entries) plus a bias ``(O,)``. Each construction draws a seeded random block
``x -> relu(x @ U + u) @ V`` (``U`` ``(P, H)``, ``V`` ``(H, O)``; for a convolution
``U`` is a convolution with the target's kernel, stride and padding and ``V`` a 1x1
convolution) and a pruning of it that approximates ``c (x @ W + b')`` (``c`` the
layer's normalisation, ``b'`` the bias in the previous layers' scale, see
`labrss.slth.tickets`). Nothing is trained: weights are only kept or removed.

``pensia`` (Pensia et al. 2020): per input entry ``j``, ``n`` hidden units
  ``relu(a_jk x_j)`` shared by all outputs; each weight is two subset sums of the
  products ``a_jk b_ijk`` (the ReLU split ``x = relu(x) - relu(-x)``), solved exactly
  (`labrss.slth.pensia`). For a convolution the units are one-entry filters.
``malach`` (Malach et al. 2020): the same random units, but each weight keeps the one
  product nearest it (or none): no subset sum. Its error falls like ``1/n``, not
  ``2**-n``: polynomial instead of logarithmic over-parameterisation.
``da-cunha`` (da Cunha, Natale, Viennot, ICLR 2022): per output channel ``l``, ``n``
  random units with a *full* random filter over the ``P`` entries and a random bias;
  for non-negative inputs (after a ReLU), keeping only positive filter entries makes
  ``relu`` the identity, and each kernel entry ``W_jl`` is a subset sum of
  ``V_lt U_jt`` over the units of channel ``l`` whose entry ``j`` is kept (the mask on
  ``U`` is chosen entry by entry). A layer whose inputs may be negative (the network's
  input) uses the ``pensia`` split instead: the paper assumes inputs in [0, 1].
``structured`` (da Cunha, d'Amore, Natale, NeurIPS 2023, our construction after it):
  the input entries are grouped (a convolution: per input channel, its ``d =
  prod(kernel)`` kernel positions; a dense layer is a 1x1 kernel: one input per
  group, ``d = 1``); per (input group ``k``, output ``l``) ``n d`` random units, each a normal
  filter ``U_t`` on group ``k`` and a normal output weight ``V_lt``, in sign pairs
  (``relu(z) - relu(-z) = z``, so a pair is linear). Whole units are kept or removed
  (filter pruning), so the kernel slice ``W[group k, l]`` is a *multidimensional*
  subset sum of the NSN vectors ``V_lt U_t`` in ``R^d``, solved by
  `labrss.rss.multidim.solve_mrss` (max-norm). The kept units form dense blocks (every
  kept filter entry is used): the pruned network collapses into smaller dense tiles.

Parameter counts are those of the random block as drawn (``total``) and of the pruned
block (``kept``, non-zero weights and biases).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from labrss.rss import solve_signed
from labrss.rss.multidim import solve_mrss
from labrss.slth.pensia import _block as _pensia_block
from labrss.slth.pensia import _layer_instances

__all__ = ["BLOCK_METHODS", "Block", "build_block", "layer_scale"]

FloatArray = npt.NDArray[np.float64]

#: Largest share of an instance's own subset-sum range its target may use (as pensia).
_FILL = 0.9

#: The constructions by name.
BLOCK_METHODS = ("pensia", "malach", "da-cunha", "structured")


@dataclass(frozen=True)
class Block:
    """One target layer as a pruned random block, in matrix form (module docstring).

    Attributes
    ----------
    u_weights, u_bias : ``(P, H)``, ``(H,)`` the first layer, pruned, units that no
        output uses removed (``H`` kept units).
    v_weights, v_bias : ``(H, O)``, ``(O,)`` the second layer, pruned.
    scale : ``c``, the layer's normalisation.
    kept, total : non-zero parameters of the pruned block / parameters drawn.
    units_kept, units_total : hidden units (channels for a convolution).
    construction : what was built (``"da-cunha"``, or ``"pensia (signed inputs)"``...).
    optimal : share of the subset-sum instances solved to proven optimality.
    """

    u_weights: FloatArray
    u_bias: FloatArray
    v_weights: FloatArray
    v_bias: FloatArray
    scale: float
    kept: int
    total: int
    units_kept: int
    units_total: int
    construction: str
    optimal: float

    def __call__(self, x: npt.ArrayLike) -> FloatArray:
        """``relu(x @ U + u) @ V + v`` for vectors ``(B, P)``."""
        h = np.maximum(np.asarray(x, dtype=np.float64) @ self.u_weights + self.u_bias, 0.0)
        return np.asarray(h @ self.v_weights + self.v_bias)


def _compact(
    u_w: FloatArray, u_b: FloatArray, v_w: FloatArray, v_b: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Drop hidden units that no output uses or that are constantly zero."""
    used = (v_w != 0).any(axis=1) & ((u_w != 0).any(axis=0) | (u_b > 0))
    return u_w[:, used], u_b[used], v_w[used], v_b


def _nnz(*arrays: np.ndarray) -> int:
    return int(sum(int(np.count_nonzero(a)) for a in arrays))


def _scale(peak: float, w_max: float, targets: np.ndarray, ranges: np.ndarray) -> float:
    """``c``: the largest target at ``w_max``, lowered so that no target uses more than
    ``_FILL`` of its own instance's range (targets and ranges of the same shape)."""
    c = w_max / peak if peak > 0 else 1.0
    live = (targets != 0) & (ranges > 0)
    if live.any():
        c = min(c, _FILL * float((ranges[live] / np.abs(targets[live])).min()))
    return c


# ---------------------------------------------------------------------------- pensia
def _pensia(
    w: FloatArray, b: FloatArray, n: int, rng: np.random.Generator, *, w_max: float, note: str
) -> Block:
    blk = _pensia_block(w, b, n, rng, w_max=w_max, eps_rel=None)
    u_w = np.where(blk.first_mask_w, blk.first.weights, 0.0)
    u_b = np.where(blk.first_mask_b, blk.first.bias, 0.0)
    v_w = np.where(blk.second_mask, blk.second.weights, 0.0)
    v_b = np.zeros(w.shape[1])
    units = blk.first.weights.shape[1]
    u_w, u_b, v_w, v_b = _compact(u_w, u_b, v_w, v_b)
    return Block(u_w, u_b, v_w, v_b, blk.scale, blk.kept, blk.total, u_w.shape[1], units, note, 1.0)


# ---------------------------------------------------------------------------- malach
def _malach(w: FloatArray, b: FloatArray, n: int, rng: np.random.Generator, w_max: float) -> Block:
    """Pensia's random units; each weight the single nearest product (or none)."""
    d_in, d_out = w.shape
    rows = d_in + 1
    a = rng.uniform(-1.0, 1.0, size=(rows, n))
    bb = rng.uniform(-1.0, 1.0, size=(rows, d_out, n))
    q = np.abs(a)[:, None, :] * bb  # |a_jk| b_ijk
    avail = np.stack(
        [
            np.broadcast_to((a > 0)[:, None, :], q.shape),
            np.broadcast_to((a < 0)[:, None, :], q.shape),
        ]
    ).copy()
    avail[1, d_in] = False  # the bias input has no negative side
    u = np.concatenate([w, b[None, :]], axis=0)
    us = np.stack([u, -u])
    us[1, d_in] = 0.0
    peak = float(np.abs(u).max())
    c = w_max / peak if peak > 0 else 1.0
    targets = c * us  # (2, rows, d_out)
    qq = np.broadcast_to(q, avail.shape)
    dist = np.where(avail, np.abs(qq - targets[..., None]), np.inf)
    k = np.argmin(dist, axis=-1)
    best = np.take_along_axis(dist, k[..., None], axis=-1)[..., 0]
    take = best < np.abs(targets)  # the empty set is nearer otherwise
    chosen = np.zeros(avail.shape, dtype=bool)
    idx = np.nonzero(take)
    chosen[(*idx, k[idx])] = True
    unit_mask = np.asarray(chosen.any(axis=0))  # (rows, d_out, n)
    hidden = rows * n
    u_w = np.zeros((d_in, hidden))
    u_b = np.zeros(hidden)
    row_of = np.repeat(np.arange(d_in), n)
    used = unit_mask.any(axis=1).reshape(hidden)
    u_w[row_of, np.arange(d_in * n)] = np.where(used[: d_in * n], a[:d_in].ravel(), 0.0)
    u_b[d_in * n :] = np.where(used[d_in * n :], a[d_in], 0.0)
    v_w = np.where(unit_mask, bb, 0.0).transpose(0, 2, 1).reshape(hidden, d_out)
    total = rows * n + rows * n * d_out
    kept = _nnz(u_w, u_b, v_w)
    u_w, u_b, v_w, v_b = _compact(u_w, u_b, v_w, np.zeros(d_out))
    return Block(u_w, u_b, v_w, v_b, c, kept, total, u_w.shape[1], hidden, "malach", 1.0)


# ---------------------------------------------------------------------------- da Cunha
def _da_cunha_draw(
    w: FloatArray, b: FloatArray, n: int, rng: np.random.Generator, w_max: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, float]:
    """The random units of `_da_cunha`, its instances and the layer's scale (no solve)."""
    p, o = w.shape
    rows = p + 1  # the unit bias as entry p (its input is 1)
    e = rng.uniform(-1.0, 1.0, size=(rows, o, n))  # filter entries and bias per unit
    v = rng.uniform(-1.0, 1.0, size=(o, n))  # the block-diagonal part of the 1x1 layer
    q = v[None, :, :] * e  # (rows, o, n)
    avail = e > 0
    pos_el = np.where(avail & (q > 0), q, 0.0)
    neg_el = np.where(avail & (q < 0), -q, 0.0)
    u = np.concatenate([w, b[None, :]], axis=0)  # (rows, o)
    ranges = np.where(u > 0, pos_el.sum(-1), neg_el.sum(-1))
    c = _scale(float(np.abs(u).max()), w_max, u, ranges)
    return e, v, pos_el, neg_el, u, c


def layer_scale(
    method: str,
    weights: npt.ArrayLike,
    bias: npt.ArrayLike,
    n: int,
    rng: np.random.Generator,
    *,
    w_max: float,
    inputs_nonnegative: bool,
) -> float:
    """The scale ``c`` `build_block` will use with the same generator state, without
    solving anything (cheap): what a chunked run needs to chain the layers' biases."""
    w = np.asarray(weights, dtype=np.float64)
    bb = np.asarray(bias, dtype=np.float64)
    if method == "pensia" or (method == "da-cunha" and not inputs_nonnegative):
        return _layer_instances(w, bb, n, rng, w_max=w_max, eps_rel=None).scale
    if method == "da-cunha":
        return _da_cunha_draw(w, bb, n, rng, w_max)[5]
    if method == "malach":
        peak = float(np.abs(np.concatenate([w, bb[None, :]])).max())
    else:
        peak = float(max(np.abs(w).max(), np.abs(bb).max()))
    return w_max / peak if peak > 0 else 1.0


def _da_cunha(
    w: FloatArray, b: FloatArray, n: int, rng: np.random.Generator, w_max: float
) -> Block:
    """Per output channel, n units with full random filters; inputs >= 0 (docstring)."""
    p, o = w.shape
    rows = p + 1
    e, v, pos_el, neg_el, u, c = _da_cunha_draw(w, b, n, rng, w_max)
    avail = e > 0
    res = solve_signed(pos_el, neg_el, c * u, exclude=(pos_el == 0, neg_el == 0))
    chosen = (np.asarray(res.mask_pos) | np.asarray(res.mask_neg)) & avail  # (rows, o, n)
    unit_used = chosen.any(axis=0)  # (o, n)
    # unit (l, t) is hidden unit l * n + t
    u_w = np.where(chosen[:p], e[:p], 0.0).reshape(p, o * n)
    u_b = np.where(chosen[p], e[p], 0.0).reshape(o * n)
    v_w = np.zeros((o * n, o))
    v_w[np.arange(o * n), np.repeat(np.arange(o), n)] = np.where(unit_used, v, 0.0).ravel()
    total = rows * o * n + o * n * o  # U and unit biases, and the whole 1x1 layer
    kept = _nnz(u_w, u_b, v_w)
    u_w, u_b, v_w, v_b = _compact(u_w, u_b, v_w, np.zeros(o))
    return Block(u_w, u_b, v_w, v_b, c, kept, total, u_w.shape[1], o * n, "da-cunha", 1.0)


# ---------------------------------------------------------------------------- structured
def _structured(
    w: FloatArray,
    b: FloatArray,
    n: int,
    rng: np.random.Generator,
    *,
    w_max: float,
    groups: np.ndarray,
    max_exact_n: int,
) -> Block:
    """Per (input group, output) ``n d`` sign-paired normal units; MRSS per kernel slice
    (``n`` units per dimension: the subsets of ``n d`` vectors resolve about ``n`` bits
    per coordinate)."""
    p, o = w.shape
    k_groups, d = groups.shape
    n = n * d
    uf = rng.normal(size=(k_groups, o, n, d))  # filters on each group
    vw = rng.normal(size=(k_groups, o, n))  # their output weights
    beta = rng.normal(size=(o, n))  # bias units
    vb = rng.normal(size=(o, n))
    vectors = (vw[..., None] * uf).reshape(k_groups * o, n, d)  # NSN vectors
    slices = w[groups]  # (K, d, o)
    targets_w = slices.transpose(0, 2, 1).reshape(k_groups * o, d)
    peak = float(max(np.abs(w).max(), np.abs(b).max()))
    c = w_max / peak if peak > 0 else 1.0
    res_w = solve_mrss(vectors, c * targets_w, norm="max", max_exact_n=max_exact_n)
    res_b = solve_mrss(
        (vb * beta)[..., None], (c * b)[:, None], norm="max", max_exact_n=max_exact_n
    )
    keep_w = res_w.mask.reshape(k_groups, o, n)
    keep_b = res_b.mask  # (o, n)
    kk, ll, tt = np.nonzero(keep_w)
    m = kk.size
    mb = int(keep_b.sum())
    h = 2 * (m + mb)
    u_w = np.zeros((p, h))
    u_b = np.zeros(h)
    v_w = np.zeros((h, o))
    for sign, off in ((1.0, 0), (-1.0, m)):
        cols = off + np.arange(m)
        u_w[groups[kk].T, cols[None, :]] = sign * uf[kk, ll, tt].T
        v_w[cols, ll] = sign * vw[kk, ll, tt]
    lb, tb = np.nonzero(keep_b)
    for sign, off in ((1.0, 2 * m), (-1.0, 2 * m + mb)):
        cols = off + np.arange(mb)
        u_b[cols] = sign * beta[lb, tb]
        v_w[cols, lb] = sign * vb[lb, tb]
    total = 2 * (k_groups * o * n * (d + 1) + o * n * 2)
    kept = 2 * (m * (d + 1) + mb * 2)
    optimal = float(np.concatenate([res_w.optimal, res_b.optimal]).mean())
    units = 2 * (k_groups * o * n + o * n)
    return Block(u_w, u_b, v_w, np.zeros(o), c, kept, total, h, units, "structured", optimal)


# ---------------------------------------------------------------------------- entry point
def build_block(
    method: str,
    weights: npt.ArrayLike,
    bias: npt.ArrayLike,
    n: int,
    rng: np.random.Generator,
    *,
    w_max: float,
    inputs_nonnegative: bool,
    groups: npt.ArrayLike | None = None,
    max_exact_n: int = 24,
) -> Block:
    """One target layer's pruned random block with ``method`` (module docstring).

    ``bias`` is already in the previous layers' scale; ``groups`` ``(K, d)`` (rows of
    ``weights`` per input group, ``structured`` only; default one row per group);
    ``inputs_nonnegative``: the layer's inputs are >= 0 (after a ReLU), which
    ``da-cunha`` needs. ``max_exact_n``: ``structured`` solves its MRSS instances exactly
    up to this many units, heuristically beyond.
    """
    w = np.asarray(weights, dtype=np.float64)
    bb = np.asarray(bias, dtype=np.float64)
    if n < 1:
        msg = f"{method}: n = {n}: need at least one random unit"
        raise ValueError(msg)
    if method == "pensia":
        return _pensia(w, bb, n, rng, w_max=w_max, note="pensia")
    if method == "malach":
        return _malach(w, bb, n, rng, w_max)
    if method == "da-cunha":
        if not inputs_nonnegative:
            return _pensia(w, bb, n, rng, w_max=w_max, note="pensia (signed inputs)")
        return _da_cunha(w, bb, n, rng, w_max)
    if method == "structured":
        g = np.arange(w.shape[0])[:, None] if groups is None else np.asarray(groups, dtype=np.int64)
        if g.ndim != 2 or np.sort(g.ravel()).tolist() != list(range(w.shape[0])):
            msg = f"structured: groups of shape {g.shape} must partition the {w.shape[0]} rows"
            raise ValueError(msg)
        return _structured(w, bb, n, rng, w_max=w_max, groups=g, max_exact_n=max_exact_n)
    msg = f"unknown construction {method!r}; choose from {', '.join(BLOCK_METHODS)}"
    raise ValueError(msg)
