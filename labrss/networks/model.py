"""`Network`: a plain multilayer perceptron (dense layers, ReLU between them).

The common currency of labrss for target networks (the digits example, user weights
files), SLTH-pruned random networks and programmed (quantised) networks. Weights are
stored ``(d_in, d_out)`` so a batch of row vectors goes through ``x @ W + b``.
The output layer has no activation: `Network.forward` returns the scores (logits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Layer", "Network"]


@dataclass(frozen=True)
class Layer:
    """One dense layer ``y = x @ weights + bias``.

    Attributes
    ----------
    weights : float64, ``(d_in, d_out)``
    bias : float64, ``(d_out,)``
    """

    weights: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64)
        b = np.asarray(self.bias, dtype=np.float64)
        if w.ndim != 2:
            msg = f"Layer weights must be 2-D (d_in, d_out), got shape {w.shape}"
            raise ValueError(msg)
        if b.shape != (w.shape[1],):
            msg = f"Layer bias has shape {b.shape}, expected ({w.shape[1]},) for weights {w.shape}"
            raise ValueError(msg)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", b)

    @property
    def d_in(self) -> int:
        """Number of inputs."""
        return int(self.weights.shape[0])

    @property
    def d_out(self) -> int:
        """Number of outputs."""
        return int(self.weights.shape[1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Pre-activation ``x @ W + b`` for a batch ``(B, d_in)``."""
        return np.asarray(x @ self.weights + self.bias)


class Network:
    """A list of dense layers with ReLU between consecutive layers (not after the last).

    Parameters
    ----------
    layers : sequence of `Layer` (or ``(W, b)`` pairs)
        Consecutive shapes must chain: ``layers[l].d_out == layers[l + 1].d_in``.
    name : str
        Used in error messages and reports.
    """

    def __init__(
        self, layers: Sequence[Layer | tuple[np.ndarray, np.ndarray]], name: str = "network"
    ) -> None:
        built = [lay if isinstance(lay, Layer) else Layer(*lay) for lay in layers]
        if not built:
            msg = f"{name}: a network needs at least one layer"
            raise ValueError(msg)
        for index in range(1, len(built)):
            prev, cur = built[index - 1], built[index]
            if prev.d_out != cur.d_in:
                msg = (
                    f"{name}: layer {index} has {cur.d_in} inputs but layer {index - 1} has "
                    f"{prev.d_out} outputs (weights {prev.weights.shape} -> {cur.weights.shape})"
                )
                raise ValueError(msg)
        self.layers: tuple[Layer, ...] = tuple(built)
        self.name = name

    @property
    def d_in(self) -> int:
        """Number of network inputs."""
        return self.layers[0].d_in

    @property
    def d_out(self) -> int:
        """Number of network outputs (classes)."""
        return self.layers[-1].d_out

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer widths, e.g. ``(64, 16, 10)``."""
        return (self.d_in, *(lay.d_out for lay in self.layers))

    @property
    def n_parameters(self) -> int:
        """Weights plus biases."""
        return sum(lay.weights.size + lay.bias.size for lay in self.layers)

    def _check_input(self, x: object) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        given = arr.shape
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.d_in:
            msg = f"{self.name}: input shape {given}, expected (B, {self.d_in})"
            raise ValueError(msg)
        return arr

    def activations(self, x: object) -> list[np.ndarray]:
        """Inputs of every layer and the final scores: ``[x, h_1, ..., h_{L-1}, y]``.

        ``h_l = relu(h_{l-1} @ W_l + b_l)``; the last entry has no ReLU. Each entry is
        ``(B, width)``. Cost: ``O(B * sum d_in d_out)``.
        """
        h = self._check_input(x)
        out = [h]
        for index, lay in enumerate(self.layers):
            h = lay(h)
            if index < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
            out.append(h)
        return out

    def forward(self, x: object) -> np.ndarray:
        """Scores (logits) for a batch ``(B, d_in)`` (a single vector is a batch of one)."""
        return self.activations(x)[-1]

    def predict(self, x: object) -> np.ndarray:
        """Predicted class (argmax of the scores), ``(B,)`` int."""
        return np.asarray(np.argmax(self.forward(x), axis=1))

    def accuracy(self, x: object, labels: object) -> float:
        """Fraction of ``labels`` predicted correctly."""
        y = np.asarray(labels)
        pred = self.predict(x)
        if y.shape != pred.shape:
            msg = f"{self.name}: labels shape {y.shape} does not match {pred.shape[0]} inputs"
            raise ValueError(msg)
        return float(np.mean(pred == y))

    def __repr__(self) -> str:
        return f"Network({self.name!r}, sizes={self.sizes})"
