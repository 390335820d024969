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
``structured`` (da Cunha, d'Amore, Natale, NeurIPS 2023; our reading of it, the full
  paper was not available): the first random layer is *channel-blocked*: its input
  entries are grouped (a convolution: per input channel its ``prod(kernel)`` kernel
  positions, split into runs of at most ``block`` consecutive positions,
  `labrss.slth.tickets`; a dense layer after a flatten is a convolution whose kernel
  covers its input: the same per flattened channel; a dense layer on a flat vector: one
  input per group, ``d = 1``) and each group ``k`` owns ``n`` random filters ``U_kt``
  (normal, ``d`` entries) that see that group only; the second layer is a 1x1
  convolution with normal weights ``V_lkt`` from every filter to every output ``l``. On
  inputs that may be negative (the network's input) the filters are normal and come in
  sign pairs ``(U, V)``, ``(-U, -V)`` (a "looks-linear" random network: ``relu(z) -
  relu(-z) = z``, so a kept pair is linear); on non-negative inputs (after a ReLU) the
  filters and unit biases are half-normal, so ``relu`` is the identity on them and no
  pairs are needed (half the hidden channels, the same MRSS quality). A filter is kept
  or removed whole (filter pruning; the filters no output uses are removed, with their
  channels in the 1x1 layer), and each 1x1 weight is kept or removed (kernel pruning of
  a 1x1 convolution): the kernel slice ``W[group k, l]`` is a *multidimensional* subset
  sum of the NSN vectors ``V_lkt U_kt`` in ``R^d``, solved by
  `labrss.rss.multidim.solve_mrss` (max-norm). The filters of a group are shared by
  every output, so the instances of one group are dependent (the stochastic dependency
  the paper's MRSS variant admits). Bias: ``n`` units with a normal bias and no filter,
  the same way (``d = 1``). The pruned first layer is block-diagonal (group x its kept
  filters): the network collapses into smaller dense blocks. Error: the optimum of ``n``
  NSN vectors in ``R^d`` falls like ``2**(-n/d)`` times their spread, so ``d`` is kept
  small (``block``, default 3) and ``n`` ~ 24: docs/networks.md gives the measured
  trade-off, and the whole-channel blocks (``block=None``, ``d = 9`` for a 3x3 kernel).

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
    inputs_nonnegative: bool,
) -> Block:
    """Per input group ``n`` channel-blocked random filters shared by every output,
    normal 1x1 weights; per (group, output) an MRSS of the NSN vectors ``V_lt U_t``
    (module docstring). ``groups`` ``(K, d)``, ``-1`` pads shorter groups. Signed
    inputs: normal filters in sign pairs; non-negative inputs: half-normal filters and
    biases, no pairs."""
    p, o = w.shape
    k_groups, d = groups.shape
    live = groups >= 0
    uf = rng.normal(size=(k_groups, n, d)) * live[:, None, :]  # filters on each group
    vw = rng.normal(size=(k_groups, n, o))  # their 1x1 weights to every output
    beta = rng.normal(size=n)  # bias units: no filter, a normal bias
    vb = rng.normal(size=(n, o))
    if inputs_nonnegative:  # relu(U x + beta) = U x + beta for U, beta, x >= 0
        uf, beta = np.abs(uf), np.abs(beta)
    signs = (1.0,) if inputs_nonnegative else (1.0, -1.0)
    peak = float(max(np.abs(w).max(), np.abs(b).max()))
    c = w_max / peak if peak > 0 else 1.0
    # instance (k, l): vectors V[k, t, l] U[k, t] (n, d), target c W[group k, l]
    vectors = (vw.transpose(0, 2, 1)[..., None] * uf[:, None, :, :]).reshape(k_groups * o, n, d)
    slices = np.where(live[:, :, None], w[np.maximum(groups, 0)], 0.0)  # (K, d, o)
    targets_w = c * slices.transpose(0, 2, 1).reshape(k_groups * o, d)
    res_w = solve_mrss(vectors, targets_w, norm="max", max_exact_n=max_exact_n)
    res_b = solve_mrss(
        (vb.T * beta)[..., None], (c * b)[:, None], norm="max", max_exact_n=max_exact_n
    )
    keep_w = res_w.mask.reshape(k_groups, o, n).transpose(0, 2, 1)  # (K, n, o)
    keep_b = res_b.mask.T  # (n, o)
    used = keep_w.any(axis=2)  # hidden channels some output uses: the others are pruned
    used_b = keep_b.any(axis=1)
    kk, tt = np.nonzero(used)
    (tb,) = np.nonzero(used_b)
    m, mb = kk.size, tb.size
    copies = len(signs)
    h = copies * (m + mb)
    u_w = np.zeros((p, h))
    u_b = np.zeros(h)
    v_w = np.zeros((h, o))
    rows = groups[kk]  # (m, d)
    for i, sign in enumerate(signs):
        off = i * m
        cols = np.broadcast_to((off + np.arange(m))[:, None], rows.shape)
        ok = rows >= 0
        u_w[rows[ok], cols[ok]] = sign * uf[kk, tt][ok]
        v_w[off : off + m] = sign * np.where(keep_w[kk, tt], vw[kk, tt], 0.0)
    for i, sign in enumerate(signs):
        off = copies * m + i * mb
        u_b[off : off + mb] = sign * beta[tb]
        v_w[off : off + mb] = sign * np.where(keep_b[tb], vb[tb], 0.0)
    sizes = live.sum(axis=1)
    total = copies * (n * int(sizes.sum()) + k_groups * n * o + n + n * o)
    kept = copies * (int(sizes[kk].sum()) + int(keep_w.sum()) + mb + int(keep_b.sum()))
    optimal = float(np.concatenate([res_w.optimal, res_b.optimal]).mean())
    units = copies * (k_groups * n + n)
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
        if g.ndim != 2 or np.sort(g[g >= 0]).tolist() != list(range(w.shape[0])):
            msg = f"structured: groups of shape {g.shape} must partition the {w.shape[0]} rows"
            raise ValueError(msg)
        return _structured(
            w, bb, n, rng, w_max=w_max, groups=g, max_exact_n=max_exact_n,
            inputs_nonnegative=inputs_nonnegative,
        )  # fmt: skip
    msg = f"unknown construction {method!r}; choose from {', '.join(BLOCK_METHODS)}"
    raise ValueError(msg)
