"""`SequentialNetwork`: convolutional and dense layers, ReLU, flatten and reshape in a chain.

The general target network of labrss (MNIST-1D and digits CNNs from ONNX files, SLTH
tickets of CNNs); `labrss.networks.model.Network` stays the dense MLP that the resistor
programming and the memristor workflows take (`SequentialNetwork.to_network` converts an
MLP-shaped chain, `SequentialNetwork.from_network` the other way).

Operations (`labrss.networks.layers`): `Conv` (1-D/2-D, stride, zero padding), dense
`Layer` (``x @ W + b``), `ReLU`, `Flatten`, `Reshape`. Activations are explicit ops (an
ONNX graph says where they are). Inputs are batches ``(B, *input_shape)``; a batch of
flat vectors ``(B, prod(input_shape))`` is reshaped (a signal of 40 into ``(1, 40)``).

**Matrix layers.** Every conv and dense layer is one matrix ``(d_in, d_out)`` applied to
vectors: for a dense layer the layer's inputs, for a convolution its im2col patches
(``positions`` vectors per sample). `SequentialNetwork.matrix_layers` lists them with
their shapes; that is what a crossbar tiles and what ``labrss network info`` counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labrss.networks.layers import Conv, Flatten, ReLU, Reshape
from labrss.networks.model import Layer, Network

__all__ = ["MatrixLayer", "Op", "SequentialNetwork"]

Op = Conv | Layer | ReLU | Flatten | Reshape


def op_kind(op: Op) -> str:
    """Short name of an operation: ``conv1d``, ``conv2d``, ``dense``, ``relu``, ..."""
    if isinstance(op, Conv):
        return f"conv{op.dims}d"
    if isinstance(op, Layer):
        return "dense"
    return type(op).__name__.lower()


@dataclass(frozen=True)
class MatrixLayer:
    """One conv or dense layer seen as a matrix applied to vectors.

    Attributes
    ----------
    op_index : position of the op in `SequentialNetwork.ops`.
    kind : ``"dense"``, ``"conv1d"`` or ``"conv2d"``.
    weights : ``(d_in, d_out)`` (the kernel matrix for a convolution).
    bias : ``(d_out,)``.
    positions : vectors per sample (1 for dense; output positions for a convolution).
    input_shape, output_shape : per-sample shapes around the op.
    """

    op_index: int
    kind: str
    weights: np.ndarray
    bias: np.ndarray
    positions: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    @property
    def d_in(self) -> int:
        """Matrix rows (inputs per vector)."""
        return int(self.weights.shape[0])

    @property
    def d_out(self) -> int:
        """Matrix columns (outputs per vector)."""
        return int(self.weights.shape[1])


def _out_shape(op: Op, shape: tuple[int, ...], index: int, name: str) -> tuple[int, ...]:
    where = f"{name}: op {index} ({op_kind(op)})"
    if isinstance(op, Conv):
        try:
            return op.output_shape(shape)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if isinstance(op, Layer):
        if len(shape) != 1 or shape[0] != op.d_in:
            msg = (
                f"{where}: a dense layer of {op.d_in} inputs cannot take inputs of shape "
                f"{shape} (flatten first?)"
            )
            raise ValueError(msg)
        return (op.d_out,)
    if isinstance(op, Flatten):
        return (math.prod(shape),)
    if isinstance(op, Reshape):
        if math.prod(op.shape) != math.prod(shape):
            msg = f"{where}: cannot reshape {shape} ({math.prod(shape)} values) to {op.shape}"
            raise ValueError(msg)
        return op.shape
    return shape


class SequentialNetwork:
    """A chain of operations (module docstring); evaluated in NumPy, float64.

    Parameters
    ----------
    ops : the operations in order.
    input_shape : per-sample input shape, e.g. ``(1, 40)`` or ``(64,)``.
    name : used in errors and reports.

    Raises ValueError naming the op whose shapes do not chain.
    """

    def __init__(self, ops: Sequence[Op], input_shape: Sequence[int], name: str = "network"):
        self.ops: tuple[Op, ...] = tuple(ops)
        self.input_shape: tuple[int, ...] = tuple(int(s) for s in input_shape)
        self.name = name
        if not self.input_shape or any(s < 1 for s in self.input_shape):
            raise ValueError(f"{name}: input shape {self.input_shape} must be non-empty, >= 1")
        if not any(isinstance(op, Conv | Layer) for op in self.ops):
            raise ValueError(f"{name}: a network needs at least one conv or dense layer")
        shapes = [self.input_shape]
        for index, op in enumerate(self.ops):
            shapes.append(_out_shape(op, shapes[-1], index, name))
        self.shapes: tuple[tuple[int, ...], ...] = tuple(shapes)

    # ------------------------------------------------------------------ shapes
    @property
    def output_shape(self) -> tuple[int, ...]:
        """Per-sample output shape."""
        return self.shapes[-1]

    @property
    def d_in(self) -> int:
        """Inputs per sample (flattened)."""
        return math.prod(self.input_shape)

    @property
    def d_out(self) -> int:
        """Outputs per sample (flattened): the classes of a classifier."""
        return math.prod(self.output_shape)

    @property
    def n_parameters(self) -> int:
        """Weights plus biases of every conv and dense layer."""
        return sum(
            int(op.weights.size + op.bias.size) for op in self.ops if isinstance(op, Conv | Layer)
        )

    def matrix_layers(self) -> list[MatrixLayer]:
        """Every conv and dense layer as a matrix (module docstring), in order."""
        out = []
        for index, op in enumerate(self.ops):
            if isinstance(op, Conv):
                w = op.kernel_matrix()
            elif isinstance(op, Layer):
                w = op.weights
            else:
                continue
            oshape = self.shapes[index + 1]
            positions = math.prod(oshape[1:]) if isinstance(op, Conv) else 1
            out.append(
                MatrixLayer(
                    op_index=index,
                    kind=op_kind(op),
                    weights=w,
                    bias=op.bias,
                    positions=positions,
                    input_shape=self.shapes[index],
                    output_shape=oshape,
                )
            )
        return out

    # ------------------------------------------------------------------ evaluation
    def check_input(self, x: object) -> np.ndarray:
        """``x`` as a float64 batch ``(B, *input_shape)``; flat vectors are reshaped.

        Raises ValueError naming the expected shapes.
        """
        arr = np.asarray(x, dtype=np.float64)
        given = arr.shape
        if arr.shape == self.input_shape or (arr.ndim == 1 and arr.size == self.d_in):
            arr = arr.reshape(1, *self.input_shape)
        elif arr.ndim == 2 and arr.shape[1] == self.d_in:
            arr = arr.reshape(arr.shape[0], *self.input_shape)
        if arr.shape[1:] != self.input_shape:
            dims = ", ".join(map(str, self.input_shape))
            msg = f"{self.name}: input shape {given}, expected (B, {dims}) or (B, {self.d_in})"
            raise ValueError(msg)
        return arr

    def activations(self, x: object) -> list[np.ndarray]:
        """The input and the output of every op: ``[x, op0(x), op1(op0(x)), ...]``."""
        h = self.check_input(x)
        out = [h]
        for op in self.ops:
            h = op(h)
            out.append(h)
        return out

    def forward(self, x: object) -> np.ndarray:
        """Outputs ``(B, *output_shape)`` for a batch (a single sample is a batch of one)."""
        h = self.check_input(x)
        for op in self.ops:
            h = op(h)
        return h

    def scores(self, x: object) -> np.ndarray:
        """Outputs flattened to ``(B, d_out)``."""
        y = self.forward(x)
        return y.reshape(y.shape[0], -1)

    def predict(self, x: object) -> np.ndarray:
        """Predicted class (argmax of the flattened outputs), ``(B,)`` int."""
        return np.asarray(np.argmax(self.scores(x), axis=1))

    def accuracy(self, x: object, labels: object) -> float:
        """Fraction of ``labels`` predicted correctly."""
        y = np.asarray(labels)
        pred = self.predict(x)
        if y.shape != pred.shape:
            msg = f"{self.name}: labels shape {y.shape} does not match {pred.shape[0]} inputs"
            raise ValueError(msg)
        return float(np.mean(pred == y))

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_network(cls, network: Network) -> SequentialNetwork:
        """The dense MLP ``network`` as a chain (ReLU between layers, none after the last)."""
        ops: list[Op] = []
        for index, lay in enumerate(network.layers):
            ops.append(lay)
            if index < len(network.layers) - 1:
                ops.append(ReLU())
        return cls(ops, (network.d_in,), name=network.name)

    def to_network(self) -> Network | None:
        """The equivalent dense `Network`, or None when the chain is not an MLP
        (a convolution, or activations other than one ReLU between dense layers).
        Leading flatten/reshape ops of a flat input are dropped."""
        ops = list(self.ops)
        while ops and isinstance(ops[0], Flatten | Reshape):
            ops.pop(0)
        dense: list[Layer] = []
        expect_dense = True
        for op in ops:
            if expect_dense and isinstance(op, Layer):
                dense.append(op)
                expect_dense = False
            elif not expect_dense and isinstance(op, ReLU):
                expect_dense = True
            else:
                return None
        if expect_dense or not dense:
            return None
        return Network(dense, name=self.name)

    def describe(
        self, board_rows: int | None = None, board_cols: int | None = None
    ) -> dict[str, Any]:
        """JSON-ready layers, shapes and parameters; with a board size, the tiles each
        matrix layer needs there (`labrss.mapping.tiling.plan_tiles`, bias row included)
        and the MVMs one sample costs (tiles x positions)."""
        from labrss.mapping.tiling import plan_tiles

        layers: list[dict[str, Any]] = []
        total_tiles = 0
        total_mvms = 0
        mats = {m.op_index: m for m in self.matrix_layers()}
        for index, op in enumerate(self.ops):
            entry: dict[str, Any] = {
                "index": index,
                "op": op_kind(op),
                "input_shape": list(self.shapes[index]),
                "output_shape": list(self.shapes[index + 1]),
                "parameters": int(op.weights.size + op.bias.size)
                if isinstance(op, Conv | Layer)
                else 0,
            }
            if isinstance(op, Conv):
                entry |= {
                    "kernel": list(op.kernel),
                    "stride": list(op.stride),
                    "padding": [list(p) for p in op.padding],
                }
            m = mats.get(index)
            if m is not None:
                entry |= {"matrix": [m.d_in, m.d_out], "vectors_per_sample": m.positions}
                if board_rows is not None and board_cols is not None:
                    plan = plan_tiles(m.d_in, m.d_out, board_rows, board_cols, layer=f"op {index}")
                    entry |= {"tiles": plan.n_tiles, "mvms_per_sample": plan.n_tiles * m.positions}
                    total_tiles += plan.n_tiles
                    total_mvms += plan.n_tiles * m.positions
            layers.append(entry)
        out: dict[str, Any] = {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "parameters": self.n_parameters,
            "layers": layers,
        }
        if board_rows is not None and board_cols is not None:
            out |= {
                "board": [board_rows, board_cols],
                "tiles": total_tiles,
                "mvms_per_sample": total_mvms,
            }
        return out

    def __repr__(self) -> str:
        kinds = ", ".join(op_kind(op) for op in self.ops)
        return f"SequentialNetwork({self.name!r}, input={self.input_shape}, ops=[{kinds}])"
