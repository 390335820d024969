"""Strong lottery tickets of CNNs and MLPs: a pruned random network of twice the depth.

    ticket = prune_sequential(target, "da-cunha", n=24, seed=0)
    ticket.network.accuracy(x_test, y_test)     # the pruned network, evaluated as itself
    ticket.summary(x_test, y_test)              # the JSON of `labrss prune --json`

Every conv or dense layer of the target (`labrss.networks.sequential.SequentialNetwork`)
becomes a random block (`labrss.slth.blocks`): a convolution with the target's kernel,
stride and padding, a ReLU and a 1x1 convolution (dense: two dense layers); every other
op (ReLU, flatten, reshape) is kept. The blocks' weights are drawn from one seeded
generator and only pruned.

**Scale.** ReLU is positively homogeneous: layer ``l`` is built for ``c_l W_l`` and the
bias ``k_l b_l`` (``k_l = c_1 ... c_l``), so the pruned network computes the target times
``k_L``: same argmax; ``output_scale = 1 / k_L`` converts back.

**Report.** For each target layer the block is evaluated as a function (never by
substituting the target): ``block(0)`` against the bias and ``block(+-e_j) - block(0)``
against ``+-`` row ``j`` of ``c W`` (the negative side only for layers whose inputs may
be negative), relative to the layer's largest ``|c W|``: max and RMS. Kept and total
parameters, hidden units, and the over-parameterisation factors (random parameters over
the target layer's parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labrss.networks.layers import Conv, Flatten, ReLU
from labrss.networks.model import Layer
from labrss.networks.sequential import Op, SequentialNetwork
from labrss.slth.blocks import BLOCK_METHODS, Block, build_block, layer_scale

__all__ = [
    "DEFAULT_N",
    "DEFAULT_W_MAX",
    "TICKET_METHODS",
    "LayerJob",
    "LayerTicket",
    "TicketPlan",
    "TicketResult",
    "assemble_ticket",
    "plan_ticket",
    "prune_sequential",
    "ticket_layer",
]

#: The methods of `prune_sequential` (`labrss prune --method`).
TICKET_METHODS = BLOCK_METHODS

#: Default n (`labrss.slth.blocks`): random units per input entry (pensia, malach), per
#: output channel (da-cunha), random filters per input group (structured; sign pairs).
DEFAULT_N: dict[str, int] = {"pensia": 40, "malach": 40, "da-cunha": 40, "structured": 24}
#: ``structured``: largest number of kernel positions a random filter covers (a group);
#: None = a whole input channel (the paper's channel blocks, ``d = prod(kernel)``).
STRUCTURED_BLOCK: int | None = 3
#: Default largest normalised target (subset sums of products of two uniforms cover a few
#: tenths densely; sums of 24 normal NSN vectors a few units: 1.0 gave the best accuracy
#: of 0.5 / 1 / 2 on the MNIST-1D CNN, docs/networks.md).
DEFAULT_W_MAX: dict[str, float] = {
    "pensia": 0.25,
    "malach": 0.25,
    "da-cunha": 0.25,
    "structured": 1.0,
}


@dataclass(frozen=True)
class LayerTicket:
    """One target layer's ticket (errors relative to the layer's largest ``|c W|``)."""

    op_index: int
    kind: str
    construction: str
    d_in: int
    d_out: int
    n: int
    scale: float
    max_error_rel: float
    rms_error_rel: float
    bias_max_error_rel: float  # relative to max(|c W|, |b|): a bias is often tiny
    kept: int
    total: int
    units_kept: int
    units_total: int
    target_parameters: int
    optimal: float

    @property
    def overparam_total(self) -> float:
        """Random parameters drawn / target parameters."""
        return self.total / self.target_parameters

    @property
    def overparam_kept(self) -> float:
        """Parameters kept / target parameters."""
        return self.kept / self.target_parameters

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "op_index": self.op_index,
            "kind": self.kind,
            "construction": self.construction,
            "shape": [self.d_in, self.d_out],
            "n": self.n,
            "scale": self.scale,
            "max_error_rel": self.max_error_rel,
            "rms_error_rel": self.rms_error_rel,
            "bias_max_error_rel": self.bias_max_error_rel,
            "kept_parameters": self.kept,
            "total_parameters": self.total,
            "units_kept": self.units_kept,
            "units_total": self.units_total,
            "target_parameters": self.target_parameters,
            "overparam_total": self.overparam_total,
            "overparam_kept": self.overparam_kept,
            "optimal_fraction": self.optimal,
        }


@dataclass(frozen=True)
class TicketResult:
    """The pruned random network and its report."""

    network: SequentialNetwork
    target: SequentialNetwork
    method: str
    n: int
    seed: int
    w_max: float
    output_scale: float
    layers: tuple[LayerTicket, ...]
    wall_time_s: float = field(default=math.nan)

    @property
    def kept(self) -> int:
        """Parameters kept, all layers."""
        return sum(r.kept for r in self.layers)

    @property
    def total(self) -> int:
        """Random parameters drawn, all layers."""
        return sum(r.total for r in self.layers)

    @property
    def target_parameters(self) -> int:
        """The target's conv and dense parameters."""
        return sum(r.target_parameters for r in self.layers)

    def summary(
        self, x_test: npt.ArrayLike | None = None, y_test: npt.ArrayLike | None = None
    ) -> dict[str, Any]:
        """One JSON-ready object: accuracies (fractions; the pruned network evaluated as
        itself), n, kept and total random parameters, over-parameterisation, per-layer
        errors."""
        out: dict[str, Any] = {
            "network": self.target.name,
            "method": self.method,
            "n": self.n,
            "seed": self.seed,
            "w_max": self.w_max,
        }
        if x_test is not None and y_test is not None:
            out["target_accuracy"] = self.target.accuracy(x_test, y_test)
            out["pruned_accuracy"] = self.network.accuracy(x_test, y_test)
            out["test_vectors"] = int(np.asarray(y_test).shape[0])
        out |= {
            "target_parameters": self.target_parameters,
            "kept_parameters": self.kept,
            "total_parameters": self.total,
            "overparam_total": self.total / self.target_parameters,
            "overparam_kept": self.kept / self.target_parameters,
            "max_error_rel": max(r.max_error_rel for r in self.layers),
            "output_scale": self.output_scale,
            "wall_time_s": self.wall_time_s,
            "layers": [r.as_dict() for r in self.layers],
        }
        return out


def _groups(
    op: Conv | Layer, block: int | None = None, channels: tuple[int, int] | None = None
) -> np.ndarray:
    """Input groups of a layer's rows for ``structured`` ``(K, d)`` (``-1`` pads a shorter
    group): a convolution's patch rows per input channel (its ``d = prod(kernel)`` kernel
    positions), cut into ``ceil(d / block)`` runs of consecutive positions (a 3x3 kernel
    in rows of 3) when ``block`` is smaller than ``d``. A dense layer is a convolution
    whose kernel covers its whole input: after a flatten of ``channels = (C, L)`` (C
    channels of L positions) the same per channel; on a flat vector, one input per group
    (a 1x1 kernel over ``d_in`` channels)."""
    if isinstance(op, Conv):
        c_in, d = op.c_in, math.prod(op.kernel)
    elif channels is not None:
        c_in, d = channels
    else:
        return np.arange(op.d_in)[:, None]
    rows = np.arange(c_in * d).reshape(c_in, d)
    if block is None or block >= d:
        return rows
    if block < 1:
        raise ValueError(f"structured: block = {block}: need at least one kernel position")
    parts = -(-d // block)
    size = -(-d // parts)
    out = np.full((c_in * parts, size), -1, dtype=np.int64)
    for i, chunk in enumerate(np.array_split(np.arange(d), parts)):
        out[i::parts, : chunk.size] = rows[:, chunk]
    return out


def _flattened_channels(target: SequentialNetwork, index: int) -> tuple[int, int] | None:
    """``(C, L)`` when op ``index`` (dense) follows a flatten of ``(C, *positions)``."""
    if index > 0 and isinstance(target.ops[index - 1], Flatten):
        shape = target.shapes[index - 1]
        if len(shape) >= 2:
            return int(shape[0]), int(math.prod(shape[1:]))
    return None


def _errors(blk: Block, w: np.ndarray, b: np.ndarray, signed: bool) -> tuple[float, float, float]:
    """Max / RMS relative weight error and relative bias error of a block (docstring)."""
    p = w.shape[0]
    eye = np.eye(p)
    zero = blk(np.zeros((1, p)))[0]
    target = blk.scale * w
    errs = [blk(eye) - zero - target]
    if signed:
        errs.append(-(blk(-eye) - zero) - target)
    err = np.abs(np.concatenate(errs))
    peak = float(np.abs(target).max()) or 1.0
    bias_err = float(np.abs(zero - b).max() / max(peak, float(np.abs(b).max())))
    return float(err.max() / peak), float(np.sqrt(np.mean((err / peak) ** 2))), bias_err


@dataclass(frozen=True)
class LayerJob:
    """One target layer's construction, planned: everything `ticket_layer` needs.

    ``bias`` is already in the previous layers' scale (``k_{l-1} b``); the layer's own
    generator is ``default_rng([seed, op_index])``, so any process rebuilds the same
    random block; ``scale`` is the ``c`` it will find (checked on assembly).
    """

    op_index: int
    method: str
    weights: np.ndarray
    bias: np.ndarray
    n: int
    seed: int
    w_max: float
    inputs_nonnegative: bool
    groups: np.ndarray
    max_exact_n: int
    scale: float

    def args(self) -> tuple[Any, ...]:
        """The positional arguments of `ticket_layer`."""
        return (
            self.method,
            self.weights,
            self.bias,
            self.n,
            self.seed,
            self.op_index,
            self.w_max,
            self.inputs_nonnegative,
            self.groups,
            self.max_exact_n,
        )


#: Constructions `ticket_layer` can report, by code.
_CONSTRUCTIONS = ("pensia", "pensia (signed inputs)", "malach", "da-cunha", "structured")


def ticket_layer(  # noqa: PLR0917 - the batch engine calls chunks with positional args
    method: str,
    weights: np.ndarray,
    bias: np.ndarray,
    n: int,
    seed: int,
    op_index: int,
    w_max: float,
    inputs_nonnegative: bool,
    groups: np.ndarray,
    max_exact_n: int,
) -> dict[str, np.ndarray]:
    """Build and solve one layer's block (pure, arrays in and out: a batch-engine chunk).

    Returns the block's matrices, ``scale``, ``counts`` (kept, total, units kept, units
    total), ``optimal`` and the construction's code.
    """
    blk = build_block(
        method,
        weights,
        bias,
        n,
        np.random.default_rng([seed, op_index]),
        w_max=w_max,
        inputs_nonnegative=inputs_nonnegative,
        groups=groups,
        max_exact_n=max_exact_n,
    )
    return {
        "u_weights": blk.u_weights,
        "u_bias": blk.u_bias,
        "v_weights": blk.v_weights,
        "v_bias": blk.v_bias,
        "scale": np.array(blk.scale),
        "counts": np.array([blk.kept, blk.total, blk.units_kept, blk.units_total]),
        "optimal": np.array(blk.optimal),
        "construction": np.array(_CONSTRUCTIONS.index(blk.construction)),
    }


@dataclass(frozen=True)
class TicketPlan:
    """A ticket planned layer by layer (`plan_ticket`), solved by `ticket_layer` calls
    anywhere, put together by `assemble_ticket`."""

    target: SequentialNetwork
    method: str
    n: int
    seed: int
    w_max: float
    layers: tuple[LayerJob, ...]


def plan_ticket(
    target: SequentialNetwork,
    method: str,
    n: int | None = None,
    *,
    seed: int = 0,
    w_max: float | None = None,
    inputs_nonnegative: bool = False,
    max_exact_n: int = 32,
    block: int | None = STRUCTURED_BLOCK,
) -> TicketPlan:
    """The layers' jobs, their scales chained (cheap: draws, no subset sums solved)."""
    if method not in TICKET_METHODS:
        msg = f"unknown method {method!r}; choose from {', '.join(TICKET_METHODS)}"
        raise ValueError(msg)
    nn = DEFAULT_N[method] if n is None else int(n)
    wm = DEFAULT_W_MAX[method] if w_max is None else float(w_max)
    if nn < 1:
        raise ValueError(f"{method}: n = {nn}: need at least one random unit")
    if not (math.isfinite(wm) and wm > 0):
        raise ValueError(f"{method}: w_max = {w_max!r}: must be finite and > 0")
    nonneg = inputs_nonnegative
    k_prev = 1.0
    jobs: list[LayerJob] = []
    for index, op in enumerate(target.ops):
        if isinstance(op, ReLU):
            nonneg = True
            continue
        if not isinstance(op, Conv | Layer):
            continue
        w = op.kernel_matrix() if isinstance(op, Conv) else op.weights
        bias = k_prev * op.bias
        c = layer_scale(
            method, w, bias, nn, np.random.default_rng([seed, index]), w_max=wm,
            inputs_nonnegative=nonneg,
        )  # fmt: skip
        jobs.append(
            LayerJob(
                op_index=index,
                method=method,
                weights=w,
                bias=bias,
                n=nn,
                seed=seed,
                w_max=wm,
                inputs_nonnegative=nonneg,
                groups=_groups(op, block, _flattened_channels(target, index)),
                max_exact_n=max_exact_n,
                scale=c,
            )
        )
        k_prev *= c
        nonneg = False
    return TicketPlan(target, method, nn, seed, wm, tuple(jobs))


def assemble_ticket(
    plan: TicketPlan, solutions: dict[int, dict[str, np.ndarray]], wall_time_s: float = math.nan
) -> TicketResult:
    """The pruned network and its report from every layer's `ticket_layer` result
    (keyed by op index)."""
    target = plan.target
    jobs = {j.op_index: j for j in plan.layers}
    ops: list[Op] = []
    reports: list[LayerTicket] = []
    k_prev = 1.0
    for index, op in enumerate(target.ops):
        if index not in jobs:
            ops.append(op)
            continue
        assert isinstance(op, Conv | Layer)
        job, sol = jobs[index], solutions[index]
        kept, total, units_kept, units_total = (int(v) for v in sol["counts"])
        blk = Block(
            sol["u_weights"],
            sol["u_bias"],
            sol["v_weights"],
            sol["v_bias"],
            float(sol["scale"]),
            kept,
            total,
            units_kept,
            units_total,
            _CONSTRUCTIONS[int(sol["construction"])],
            float(sol["optimal"]),
        )
        if not math.isclose(blk.scale, job.scale, rel_tol=1e-12):
            msg = f"op {index}: the solved block's scale {blk.scale} differs from the plan's"
            raise ValueError(msg)
        c = blk.scale
        max_rel, rms_rel, bias_rel = _errors(
            blk, job.weights, c * job.bias, not job.inputs_nonnegative
        )
        h = blk.u_weights.shape[1]
        if isinstance(op, Conv):
            ones = (1,) * op.dims
            u_kernel = blk.u_weights.T.reshape(h, op.c_in, *op.kernel)
            v_kernel = blk.v_weights.T.reshape(op.c_out, h, *ones)
            ops += [
                Conv(u_kernel, blk.u_bias, op.stride, op.padding),
                ReLU(),
                Conv(v_kernel, blk.v_bias, ones, ((0, 0),) * op.dims),
            ]
        else:
            ops += [Layer(blk.u_weights, blk.u_bias), ReLU(), Layer(blk.v_weights, blk.v_bias)]
        reports.append(
            LayerTicket(
                op_index=index,
                kind="dense" if isinstance(op, Layer) else f"conv{op.dims}d",
                construction=blk.construction,
                d_in=int(job.weights.shape[0]),
                d_out=int(job.weights.shape[1]),
                n=job.n,
                scale=c,
                max_error_rel=max_rel,
                rms_error_rel=rms_rel,
                bias_max_error_rel=bias_rel,
                kept=blk.kept,
                total=blk.total,
                units_kept=blk.units_kept,
                units_total=blk.units_total,
                target_parameters=int(op.weights.size + op.bias.size),
                optimal=blk.optimal,
            )
        )
        k_prev *= c
    network = SequentialNetwork(
        ops, target.input_shape, name=f"{plan.method} ticket (n = {plan.n}) of {target.name}"
    )
    return TicketResult(
        network=network,
        target=target,
        method=plan.method,
        n=plan.n,
        seed=plan.seed,
        w_max=plan.w_max,
        output_scale=1.0 / k_prev,
        layers=tuple(reports),
        wall_time_s=wall_time_s,
    )


def prune_sequential(
    target: SequentialNetwork,
    method: str,
    n: int | None = None,
    *,
    seed: int = 0,
    w_max: float | None = None,
    inputs_nonnegative: bool = False,
    max_exact_n: int = 32,
    block: int | None = STRUCTURED_BLOCK,
) -> TicketResult:
    """Prune a seeded random network of twice the depth to approximate ``target``.

    Parameters
    ----------
    target : the network (conv and dense layers, ReLU, flatten, reshape).
    method : ``pensia``, ``malach``, ``da-cunha`` or ``structured`` (`labrss.slth.blocks`).
    n : random units per input entry / output channel / kernel entry (`DEFAULT_N`).
    seed : seeds every random weight (layer ``l``'s generator: ``[seed, op index]``).
    w_max : largest normalised target per layer (`DEFAULT_W_MAX`).
    inputs_nonnegative : the network's inputs are >= 0 (``da-cunha`` then builds its own
        construction for the first layer too).
    max_exact_n : ``structured``: exact MRSS up to this many filters per group.
    block : ``structured``: kernel positions per group (`STRUCTURED_BLOCK`; None = whole
        input channels).

    `plan_ticket`, one `ticket_layer` per layer (in this process; `labrss prune` runs them
    as chunks on the batch engine, same result), `assemble_ticket`. Cost: per layer the
    method's subset-sum instances (``pensia``/``da-cunha``: two per weight of about
    ``n/2`` elements, exact; ``structured``: one ``d``-dimensional instance of ``n``
    vectors per (input group, output), exact meet in the middle up to ``max_exact_n``:
    ``O(2**(n/2))`` each).
    """
    import time

    started = time.perf_counter()
    plan = plan_ticket(
        target, method, n, seed=seed, w_max=w_max, inputs_nonnegative=inputs_nonnegative,
        max_exact_n=max_exact_n, block=block,
    )  # fmt: skip
    solutions = {job.op_index: ticket_layer(*job.args()) for job in plan.layers}
    return assemble_ticket(plan, solutions, time.perf_counter() - started)
