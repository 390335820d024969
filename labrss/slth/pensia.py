"""Strong lottery tickets by subset sum: the construction of Pensia et al. (2020).

Each target layer ``y = x @ W + b`` (``W``: ``(d_in, d_out)``) is replaced by two random
layers and a pruning mask; no weight is ever trained or changed, only removed.

* First random layer: for every input ``j`` a group of ``n`` hidden units
  ``h_jk = relu(a_jk x_j)``, ``a_jk ~ U[-1, 1]``. The bias is an extra input fixed at 1:
  its ``n`` units are ``relu(a_bk)``, i.e. hidden units with random bias ``a_bk`` and no
  input weight.
* Second random layer: ``y_i = sum_{j,k} m_ijk b_ijk h_jk``, ``b_ijk ~ U[-1, 1]``, with the
  mask ``m``.
* ReLU sign split: ``x = relu(x) - relu(-x)``. A unit with ``a_jk > 0`` carries
  ``a_jk relu(x_j)``, one with ``a_jk < 0`` carries ``|a_jk| relu(-x_j)``. So the subset
  ``S+`` of positive-``a`` units is chosen so that ``sum_{k in S+} a_jk b_ijk ~ W_ij`` and
  the subset ``S-`` of negative-``a`` units so that ``sum_{k in S-} |a_jk| b_ijk ~ -W_ij``.
  Both are Random Subset Sum instances on products of two uniforms (values of both signs),
  solved exactly by `labrss.rss.solve_signed` (positive and negative products as the two
  "columns"). The bias input is constant and positive: only ``S+`` applies.

The result is a random network of twice the depth with most weights masked: it is
evaluated as a network in its own right (`SLTHResult.network`), never by substituting
the target (the public code's ``approx_test_acc`` evaluated the original model).

Scaling. Subset sums of ``n/2`` products of two U[-1, 1] cover a few units around 0
densely, so each target layer is first normalised (ReLU is positively homogeneous):
``W'_l = c_l W_l``, ``b'_l = k_l b_l`` with ``k_l = c_1 ... c_l`` and ``c_l`` chosen so
that ``max(|W'_l|, |b'_l|) = w_max``, lowered if needed so that no target uses more
than 90 % of its own instance's range (the sum of its same-sign products): every
target is then reachable, including on an input that drew few units of one sign. The
pruned network computes ``f(x) k_L``: same argmax, and ``output_scale = 1 / k_L``
converts back.

Complexity: per layer ``2 (d_in + 1) d_out`` subset-sum instances of about ``n/2``
elements each (meet in the middle, ``O(2**(n/4))`` per instance); the dense random
layers take ``O(d_in**2 n + d_in n d_out)`` memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labrss.networks.model import Layer, Network
from labrss.rss import solve_signed

__all__ = [
    "LayerInstances",
    "PruningPlan",
    "SLTHLayerReport",
    "SLTHResult",
    "assemble_pruning",
    "plan_pruning",
    "prune_to_target",
    "solve_instances",
]

#: Largest share of an instance's own subset-sum range its target may use.
_FILL = 0.9


@dataclass(frozen=True)
class SLTHLayerReport:
    """Approximation report for one target layer (errors in the target's units).

    Attributes
    ----------
    index, d_in, d_out : target layer and its shape.
    n : hidden units per input in the random network.
    products_per_weight_min, products_per_weight_mean : positive-``a`` units per input
        (the RSS instance size for non-negative inputs), over the layer's inputs.
    scale : ``c_l``, the layer's normalisation.
    max_error_rel, rms_error_rel : ``max`` and RMS of ``|W_eff - W| / max|W|`` over both
        ReLU sides (``S+`` for ``x_j > 0``, ``S-`` for ``x_j < 0``).
    bias_max_error_rel : ``max |b_eff - b| / max|b|`` (0 for a zero bias).
    eps_rel : the relative tolerance asked for (None: best subsets).
    fraction_within_eps : share of weights (both sides) and biases within
        ``eps_rel max|W'_l, b'_l|`` in the normalised units (None without ``eps_rel``).
    n_unreachable : instances whose target lay outside the subset sums' range.
    kept_weights, total_weights : random weights (``a``, ``b`` and the bias units'
        ``a``) kept by the mask / drawn.
    target_parameters : ``d_in d_out + d_out``.
    overparam_total, overparam_kept : ``total_weights`` and ``kept_weights`` divided by
        ``target_parameters``.
    """

    index: int
    d_in: int
    d_out: int
    n: int
    products_per_weight_min: int
    products_per_weight_mean: float
    scale: float
    max_error_rel: float
    rms_error_rel: float
    bias_max_error_rel: float
    eps_rel: float | None
    fraction_within_eps: float | None
    n_unreachable: int
    kept_weights: int
    total_weights: int
    target_parameters: int
    overparam_total: float
    overparam_kept: float


@dataclass(frozen=True)
class SLTHResult:
    """A pruned random network approximating a target network.

    Attributes
    ----------
    network : the pruned random network (``2 L`` layers, masked random weights).
    random_network : the same random network before pruning.
    weight_masks : per random layer, the kept weights (bool, the layer's weight shape).
    bias_masks : per random layer, the kept biases (bool, ``(d_out,)``).
    effective : the target network as the pruned one realises it for non-negative
        inputs, in the target's units (``W_eff`` from ``S+``, ``b_eff``).
    output_scale : ``target(x) ~ network(x) * output_scale``.
    layers : one `SLTHLayerReport` per target layer.
    n, seed, w_max : the construction's parameters.
    """

    network: Network
    random_network: Network
    weight_masks: tuple[np.ndarray, ...]
    bias_masks: tuple[np.ndarray, ...]
    effective: Network
    output_scale: float
    layers: tuple[SLTHLayerReport, ...]
    n: int
    seed: int
    w_max: float

    @property
    def kept_weights(self) -> int:
        """Random weights kept, all layers."""
        return sum(r.kept_weights for r in self.layers)

    @property
    def total_weights(self) -> int:
        """Random weights drawn, all layers."""
        return sum(r.total_weights for r in self.layers)


@dataclass(frozen=True)
class LayerInstances:
    """The subset-sum instances of one target layer, drawn and normalised, not yet solved.

    Attributes
    ----------
    a : (d_in + 1, n) first random layer (row ``d_in``: the bias units).
    b : (d_in + 1, d_out, n) second random layer.
    pos_el, neg_el : (2, d_in + 1, d_out, n) the instances' positive values and the
        magnitudes of their negative values (0: not available), side 0 the ``S+``
        (``x_j > 0``) instances, side 1 the ``S-`` ones.
    targets : (2, d_in + 1, d_out) normalised targets (``c W``, ``-c W``, ``k b``).
    scale : ``c``, the layer's normalisation.
    eps_abs : the tolerance in normalised units (None: best subsets).
    """

    a: np.ndarray
    b: np.ndarray
    pos_el: np.ndarray
    neg_el: np.ndarray
    targets: np.ndarray
    scale: float
    eps_abs: float | None

    @property
    def instances(self) -> int:
        """Subset-sum instances of the layer: ``2 (d_in + 1) d_out``."""
        return int(self.targets.size)


@dataclass(frozen=True)
class PruningPlan:
    """Every layer's instances, drawn in order from one seeded generator (`plan_pruning`).

    Solving is the costly part: `solve_instances` takes any slice of a layer's instances
    along the input axis (axis 1), so the plan can be solved in chunks anywhere and put
    together by `assemble_pruning`; `prune_to_target` does all three in one call.
    """

    target: Network
    layers: tuple[LayerInstances, ...]
    n: int
    seed: int
    w_max: float
    eps_rel: float | None


@dataclass(frozen=True)
class _Block:
    """The two random layers of one target layer, with masks and realised values."""

    first: Layer
    second: Layer
    first_mask_w: np.ndarray
    first_mask_b: np.ndarray
    second_mask: np.ndarray
    w_pos: np.ndarray  # realised S+ sums (normalised units), (d_in, d_out)
    w_neg: np.ndarray  # realised coefficient for x_j < 0 (= -S- sum), (d_in, d_out)
    b_eff: np.ndarray  # realised bias (normalised units), (d_out,)
    n_unreachable: int
    kept: int
    total: int
    n_pos: np.ndarray  # positive-a units per input, (d_in,)
    scale: float  # c, the layer's normalisation
    eps_abs: float | None  # the tolerance in normalised units


def _sides(a: np.ndarray, d_out: int) -> np.ndarray:
    """Which units serve which ReLU side: (2, rows, d_out, n) bool (bias: ``S+`` only)."""
    rows, n = a.shape
    side_pos = np.broadcast_to((a > 0)[:, None, :], (rows, d_out, n))
    side_neg = np.broadcast_to((a < 0)[:, None, :], (rows, d_out, n)).copy()
    side_neg[rows - 1] = False  # relu(-1) = 0: the bias input has no negative side
    return np.stack([side_pos, side_neg])


def _layer_instances(
    weights: np.ndarray,
    bias: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    w_max: float,
    eps_rel: float | None,
) -> LayerInstances:
    """Draw the random layers for one target layer and normalise it (see the module doc).

    ``bias`` is already multiplied by the previous layers' scale ``k_{l-1}``; the layer's
    own scale ``c`` multiplies both (see `prune_to_target`).
    """
    d_in, d_out = weights.shape
    rows = d_in + 1  # the bias is input d_in, fixed at 1
    a = rng.uniform(-1.0, 1.0, size=(rows, n))
    b = rng.uniform(-1.0, 1.0, size=(rows, d_out, n))
    q = np.abs(a)[:, None, :] * b  # |a_jk| b_ijk, (rows, d_out, n)
    avail = _sides(a, d_out)  # (2, rows, d_out, n)
    qq = np.broadcast_to(q, avail.shape)
    pos_el = np.where(avail & (qq > 0), qq, 0.0)
    neg_el = np.where(avail & (qq < 0), -qq, 0.0)
    u = np.concatenate([weights, bias[None, :]], axis=0)  # (rows, d_out), unscaled
    us = np.stack([u, -u])
    us[1, d_in] = 0.0
    # c: largest |target| = w_max, but never beyond _FILL of an instance's own range
    # (an input with few products of one sign would otherwise leave targets unreachable)
    side_range = np.where(us > 0, pos_el.sum(-1), neg_el.sum(-1))
    live = (us != 0) & (side_range > 0)
    peak = float(np.abs(u).max())
    c = w_max / peak if peak > 0 else 1.0
    if live.any():
        c = min(c, _FILL * float((side_range[live] / np.abs(us[live])).min()))
    eps_abs = None if eps_rel is None else eps_rel * c * peak
    return LayerInstances(a, b, pos_el, neg_el, c * us, c, eps_abs)


def solve_instances(
    pos_el: np.ndarray, neg_el: np.ndarray, targets: np.ndarray, eps_abs: float | None
) -> dict[str, np.ndarray]:
    """Solve a block of instances (any slice of a layer's along the input axis).

    Arrays in, arrays out: ``pos_el``, ``neg_el`` (..., n), ``targets`` (...). Returns
    ``chosen`` (..., n) bool (the products kept), ``value`` (...) (the realised sums)
    and ``reachable`` (...) (target within the subset sums' range). Every instance is
    solved on its own, exactly (`labrss.rss.solve_signed`); with ``eps_abs``, among the
    subsets within ``max(eps, optimum)`` of the target, the fewest products.
    """
    exclude = (pos_el == 0, neg_el == 0)
    res = solve_signed(pos_el, neg_el, targets, exclude=exclude)
    if eps_abs is not None:
        # Among subsets within max(eps, optimum) of the target, keep the fewest products.
        tol = np.maximum(eps_abs - np.abs(res.error), 0.0)
        res = solve_signed(
            pos_el, neg_el, targets, exclude=exclude, secondary="switches", near_optimal_tol=tol
        )
    return {
        "chosen": np.asarray(res.mask_pos | res.mask_neg),
        "value": np.asarray(res.value, dtype=np.float64),
        "reachable": np.asarray(res.reachable, dtype=bool),
    }


def _block(
    weights: np.ndarray,
    bias: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    w_max: float,
    eps_rel: float | None,
) -> _Block:
    """Draw, solve and assemble one target layer in one call (`labrss.slth.blocks` uses it)."""
    inst = _layer_instances(weights, bias, n, rng, w_max=w_max, eps_rel=eps_rel)
    return _block_from(inst, solve_instances(inst.pos_el, inst.neg_el, inst.targets, inst.eps_abs))


def _block_from(inst: LayerInstances, solution: dict[str, np.ndarray]) -> _Block:
    """The two random layers of one target layer, with masks, from its solved instances."""
    a, b = inst.a, inst.b
    rows, n = a.shape
    d_in, d_out = rows - 1, b.shape[1]
    avail = _sides(a, d_out)
    chosen = solution["chosen"] & avail  # (2, rows, d_out, n)
    unit_mask = chosen.any(axis=0)  # (rows, d_out, n): each (j, k) is on one side only
    value = solution["value"]

    hidden = rows * n
    first_w = np.zeros((d_in, hidden))
    first_b = np.zeros(hidden)
    row_of = np.repeat(np.arange(d_in), n)  # unit j*n + k listens to input j
    first_w[row_of, np.arange(d_in * n)] = a[:d_in].ravel()
    first_b[d_in * n :] = a[d_in]
    second_w = b.transpose(0, 2, 1).reshape(hidden, d_out)  # row j*n + k

    used_units = unit_mask.any(axis=1).reshape(hidden)  # (rows*n,)
    first_mask_w = np.zeros_like(first_w, dtype=bool)
    first_mask_b = np.zeros(hidden, dtype=bool)
    first_mask_w[row_of, np.arange(d_in * n)] = used_units[: d_in * n]
    first_mask_b[d_in * n :] = used_units[d_in * n :]
    second_mask = unit_mask.transpose(0, 2, 1).reshape(hidden, d_out)
    reach = solution["reachable"]
    return _Block(
        first=Layer(first_w, first_b),
        second=Layer(second_w, np.zeros(d_out)),
        first_mask_w=first_mask_w,
        first_mask_b=first_mask_b,
        second_mask=second_mask,
        w_pos=value[0, :d_in],
        w_neg=-value[1, :d_in],
        b_eff=value[0, d_in],
        n_unreachable=int((~reach[0]).sum() + (~reach[1, :d_in]).sum()),
        kept=int(used_units.sum() + second_mask.sum()),
        total=int(rows * n + rows * n * d_out),
        n_pos=(a[:d_in] > 0).sum(axis=1),
        scale=inst.scale,
        eps_abs=inst.eps_abs,
    )


def _check_settings(n: int, w_max: float, eps_rel: float | None) -> None:
    if n < 1:
        msg = f"prune_to_target: n = {n}: need at least one hidden unit per input"
        raise ValueError(msg)
    if not (np.isfinite(w_max) and w_max > 0):
        msg = f"prune_to_target: w_max = {w_max!r}: must be finite and > 0"
        raise ValueError(msg)
    if eps_rel is not None and not (np.isfinite(eps_rel) and eps_rel >= 0):
        msg = f"prune_to_target: eps_rel = {eps_rel!r}: must be finite and >= 0"
        raise ValueError(msg)


def plan_pruning(
    target: Network,
    n: int = 40,
    *,
    seed: int = 0,
    w_max: float = 0.25,
    eps_rel: float | None = None,
) -> PruningPlan:
    """Draw the random network for ``target`` and set up every layer's instances.

    Parameters as `prune_to_target`. The random weights come from one generator seeded
    with ``seed``, layer after layer, so a plan is a deterministic function of its
    arguments. ``O(sum_l (d_in + 1) d_out n)`` time and memory; nothing is solved.
    """
    _check_settings(n, w_max, eps_rel)
    rng = np.random.default_rng(seed)
    k_prev = 1.0
    layers = []
    for lay in target.layers:
        inst = _layer_instances(
            lay.weights, k_prev * lay.bias, n, rng, w_max=w_max, eps_rel=eps_rel
        )
        layers.append(inst)
        k_prev *= inst.scale
    return PruningPlan(target, tuple(layers), n, seed, w_max, eps_rel)


def prune_to_target(
    target: Network,
    n: int = 40,
    *,
    seed: int = 0,
    w_max: float = 0.25,
    eps_rel: float | None = None,
) -> SLTHResult:
    """Prune a seeded random network (Pensia et al.) so that it approximates ``target``.

    Parameters
    ----------
    target : the network to approximate (ReLU between layers, none after the last).
    n : hidden units per input (about ``n/2`` products per weight and ReLU side). The
        digits MLP needs ``n = 40`` to stay within 1 point of accuracy for every seed we
        tried (docs/networks.md): with fewer, some input draws too few positive ``a``
        and its whole row of weights is coarse.
    seed : seeds every random weight.
    w_max : largest normalised target magnitude per layer (see the module docstring);
        0.25 sits in the dense middle of the products' subset sums (~20 products per
        sign and ReLU side, ~10 of each sign with sums ~1.2): fewer coarse edge targets
        than 0.5 in our seeds (docs/networks.md).
    eps_rel : optional tolerance relative to the layer's largest normalised target:
        among the subsets within ``max(eps, optimum)`` of each target, the one with the
        fewest products is kept (fewer kept weights, error bounded by ``eps``). None
        keeps the best subsets.

    Returns
    -------
    SLTHResult

    In one process: `plan_pruning`, `solve_instances` on each whole layer, then
    `assemble_pruning`. `labrss.workflows.prune` runs the same steps with the solves
    split into chunks on the batch engine.
    """
    plan = plan_pruning(target, n, seed=seed, w_max=w_max, eps_rel=eps_rel)
    return assemble_pruning(
        plan,
        [solve_instances(li.pos_el, li.neg_el, li.targets, li.eps_abs) for li in plan.layers],
    )


def assemble_pruning(plan: PruningPlan, solutions: Sequence[dict[str, np.ndarray]]) -> SLTHResult:
    """The pruned network and its reports from the plan and each layer's solution.

    ``solutions[l]`` is `solve_instances` of layer ``l``'s whole instance arrays (chunks
    along the input axis concatenated on axis 1).
    """
    if len(solutions) != len(plan.layers):
        msg = f"assemble_pruning: {len(solutions)} solutions for {len(plan.layers)} layers"
        raise ValueError(msg)
    target, n, seed, w_max, eps_rel = plan.target, plan.n, plan.seed, plan.w_max, plan.eps_rel
    k_prev = 1.0
    random_layers: list[Layer] = []
    pruned_layers: list[Layer] = []
    w_masks: list[np.ndarray] = []
    b_masks: list[np.ndarray] = []
    effective: list[Layer] = []
    reports: list[SLTHLayerReport] = []
    for index, (lay, inst, sol) in enumerate(
        zip(target.layers, plan.layers, solutions, strict=True)
    ):
        if sol["value"].shape != inst.targets.shape:
            msg = (
                f"assemble_pruning: layer {index}: solution shape {sol['value'].shape}, "
                f"instances {inst.targets.shape}"
            )
            raise ValueError(msg)
        w, bias = lay.weights, lay.bias
        w_abs = float(np.abs(w).max())
        b_abs = float(np.abs(bias).max())
        blk = _block_from(inst, sol)
        c = blk.scale
        k = k_prev * c
        eps_abs = blk.eps_abs
        random_layers += [blk.first, blk.second]
        pruned_layers += [
            Layer(
                np.where(blk.first_mask_w, blk.first.weights, 0.0),
                np.where(blk.first_mask_b, blk.first.bias, 0.0),
            ),
            Layer(np.where(blk.second_mask, blk.second.weights, 0.0), blk.second.bias),
        ]
        w_masks += [blk.first_mask_w, blk.second_mask]
        b_masks += [blk.first_mask_b, np.zeros(lay.d_out, dtype=bool)]
        w_eff = blk.w_pos / c
        b_eff = blk.b_eff / k
        effective.append(Layer(w_eff, b_eff))
        err = np.concatenate([(w_eff - w).ravel(), (blk.w_neg / c - w).ravel()])
        denom = w_abs if w_abs > 0 else 1.0
        rel = np.abs(err) / denom
        bias_err = float(np.abs(b_eff - bias).max() / b_abs) if b_abs > 0 else 0.0
        within: float | None = None
        if eps_abs is not None:
            scaled_err = np.concatenate([c * np.abs(err), k * np.abs(b_eff - bias)])
            # 8 ulps of w_max: the window's own rounding slack (docs/rss.md section 3)
            within = float(np.mean(scaled_err <= eps_abs + 8 * np.spacing(w_max)))
        params = lay.weights.size + lay.bias.size
        reports.append(
            SLTHLayerReport(
                index=index,
                d_in=lay.d_in,
                d_out=lay.d_out,
                n=n,
                products_per_weight_min=int(blk.n_pos.min()),
                products_per_weight_mean=float(blk.n_pos.mean()),
                scale=c,
                max_error_rel=float(rel.max()),
                rms_error_rel=float(np.sqrt(np.mean(rel**2))),
                bias_max_error_rel=bias_err,
                eps_rel=eps_rel,
                fraction_within_eps=within,
                n_unreachable=blk.n_unreachable,
                kept_weights=blk.kept,
                total_weights=blk.total,
                target_parameters=params,
                overparam_total=blk.total / params,
                overparam_kept=blk.kept / params,
            )
        )
        k_prev = k
    return SLTHResult(
        network=Network(pruned_layers, name=f"SLTH-pruned random network for {target.name}"),
        random_network=Network(random_layers, name=f"random network (n = {n}, seed = {seed})"),
        weight_masks=tuple(w_masks),
        bias_masks=tuple(b_masks),
        effective=Network(effective, name=f"SLTH effective {target.name}"),
        output_scale=1.0 / k_prev,
        layers=tuple(reports),
        n=n,
        seed=seed,
        w_max=w_max,
    )
