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

from labrss.networks.layers import Conv, Flatten, ReLU, Reshape
from labrss.networks.model import Layer
from labrss.networks.sequential import Op, SequentialNetwork
from labrss.slth.blocks import BLOCK_METHODS, Block, build_block

__all__ = [
    "DEFAULT_N",
    "DEFAULT_W_MAX",
    "TICKET_METHODS",
    "LayerTicket",
    "TicketResult",
    "prune_sequential",
]

#: The methods of `prune_sequential` (`labrss prune --method`).
TICKET_METHODS = BLOCK_METHODS

#: Default n (`labrss.slth.blocks`): random units per input entry (pensia, malach), per
#: output channel (da-cunha), per kernel entry of each (input channel, output) block
#: (structured: ``n d`` units per block of ``d`` entries).
DEFAULT_N: dict[str, int] = {"pensia": 40, "malach": 40, "da-cunha": 40, "structured": 6}
#: Default largest normalised target (subset sums of products of two uniforms cover a few
#: tenths densely; sums of normal NSN vectors about one unit).
DEFAULT_W_MAX: dict[str, float] = {
    "pensia": 0.25,
    "malach": 0.25,
    "da-cunha": 0.25,
    "structured": 0.5,
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


def _groups(op: Conv | Layer) -> np.ndarray:
    """Input groups of a layer's rows for ``structured``: a convolution's patch rows per
    input channel (its kernel positions); a dense layer is a 1x1 kernel over its inputs:
    one row per group."""
    if isinstance(op, Conv):
        d = math.prod(op.kernel)
        return np.arange(op.c_in * d).reshape(op.c_in, d)
    return np.arange(op.d_in)[:, None]


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


def prune_sequential(
    target: SequentialNetwork,
    method: str,
    n: int | None = None,
    *,
    seed: int = 0,
    w_max: float | None = None,
    inputs_nonnegative: bool = False,
    max_exact_n: int = 32,
) -> TicketResult:
    """Prune a seeded random network of twice the depth to approximate ``target``.

    Parameters
    ----------
    target : the network (conv and dense layers, ReLU, flatten, reshape).
    method : ``pensia``, ``malach``, ``da-cunha`` or ``structured`` (`labrss.slth.blocks`).
    n : random units per input entry / output channel / block (`DEFAULT_N`).
    seed : seeds every random weight.
    w_max : largest normalised target per layer (`DEFAULT_W_MAX`).
    inputs_nonnegative : the network's inputs are >= 0 (``da-cunha`` then builds its own
        construction for the first layer too).
    max_exact_n : ``structured``: exact MRSS up to this many units per block.

    Cost: per layer the method's subset-sum instances (``pensia``/``da-cunha``: two per
    weight, about ``n/2`` elements, exact; ``structured``: one ``d``-dimensional instance
    per (input channel, output) of ``n`` vectors, exact meet in the middle).
    """
    import time

    if method not in TICKET_METHODS:
        msg = f"unknown method {method!r}; choose from {', '.join(TICKET_METHODS)}"
        raise ValueError(msg)
    nn = DEFAULT_N[method] if n is None else int(n)
    wm = DEFAULT_W_MAX[method] if w_max is None else float(w_max)
    if nn < 1:
        raise ValueError(f"{method}: n = {nn}: need at least one random unit")
    if not (math.isfinite(wm) and wm > 0):
        raise ValueError(f"{method}: w_max = {w_max!r}: must be finite and > 0")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    nonneg = inputs_nonnegative
    k_prev = 1.0
    ops: list[Op] = []
    reports: list[LayerTicket] = []
    for index, op in enumerate(target.ops):
        if isinstance(op, ReLU):
            ops.append(op)
            nonneg = True
            continue
        if isinstance(op, Flatten | Reshape):
            ops.append(op)
            continue
        assert isinstance(op, Conv | Layer)
        w = op.kernel_matrix() if isinstance(op, Conv) else op.weights
        bias = k_prev * op.bias
        blk = build_block(
            method,
            w,
            bias,
            nn,
            rng,
            w_max=wm,
            inputs_nonnegative=nonneg,
            groups=_groups(op),
            max_exact_n=max_exact_n,
        )
        c = blk.scale
        max_rel, rms_rel, bias_rel = _errors(blk, w, c * bias, not nonneg)
        h = blk.u_weights.shape[1]
        if isinstance(op, Conv):
            ones = (1,) * op.dims
            ops += [
                Conv(
                    blk.u_weights.T.reshape(h, op.c_in, *op.kernel),
                    blk.u_bias,
                    op.stride,
                    op.padding,
                ),
                ReLU(),
                Conv(
                    blk.v_weights.T.reshape(op.c_out, h, *ones),
                    blk.v_bias,
                    ones,
                    ((0, 0),) * op.dims,
                ),
            ]
        else:
            ops += [Layer(blk.u_weights, blk.u_bias), ReLU(), Layer(blk.v_weights, blk.v_bias)]
        params = int(op.weights.size + op.bias.size)
        reports.append(
            LayerTicket(
                op_index=index,
                kind="dense" if isinstance(op, Layer) else f"conv{op.dims}d",
                construction=blk.construction,
                d_in=int(w.shape[0]),
                d_out=int(w.shape[1]),
                n=nn,
                scale=c,
                max_error_rel=max_rel,
                rms_error_rel=rms_rel,
                bias_max_error_rel=bias_rel,
                kept=blk.kept,
                total=blk.total,
                units_kept=blk.units_kept,
                units_total=blk.units_total,
                target_parameters=params,
                optimal=blk.optimal,
            )
        )
        k_prev *= c
        nonneg = False
    network = SequentialNetwork(
        ops, target.input_shape, name=f"{method} ticket (n = {nn}) of {target.name}"
    )
    return TicketResult(
        network=network,
        target=target,
        method=method,
        n=nn,
        seed=seed,
        w_max=wm,
        output_scale=1.0 / k_prev,
        layers=tuple(reports),
        wall_time_s=time.perf_counter() - started,
    )
