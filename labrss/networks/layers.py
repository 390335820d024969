"""The operations of a `labrss.networks.sequential.SequentialNetwork` besides dense layers.

* `Conv`: a 1-D or 2-D convolution (PyTorch/ONNX cross-correlation, ``NCL`` / ``NCHW``
  layout), any stride and zero padding, no dilation, one group. Its weights are stored
  ``(c_out, c_in, *kernel)`` as ONNX and PyTorch store them.
* `ReLU`, `Flatten` (everything after the batch axis, C order as ONNX ``Flatten`` with
  axis 1 and PyTorch ``x.view(B, -1)``) and `Reshape` (to a per-sample shape).
* Dense layers are `labrss.networks.model.Layer` (``y = x @ W + b``, ``W`` ``(d_in, d_out)``).

**im2col.** A convolution is a matrix product over patches: every output position reads
one patch of ``c_in * prod(kernel)`` inputs (the zero-padded window, channel-major then
kernel positions in C order) and multiplies it by the kernel matrix
``W.reshape(c_out, -1).T`` of shape ``(c_in * prod(kernel), c_out)``. `Conv.patches`
builds those rows (a strided view, copied once), `Conv.kernel_matrix` the matrix: a
crossbar runs a convolution as one MVM per patch with that matrix, like a dense layer.
Cost of the forward pass: ``O(B * positions * c_in * prod(kernel) * c_out)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Conv", "Flatten", "ReLU", "Reshape"]


def _pair_ints(value: object, dims: int, what: str) -> tuple[int, ...]:
    if isinstance(value, int | np.integer):
        out = (int(value),) * dims
    else:
        out = tuple(int(v) for v in value)  # type: ignore[attr-defined]
    if len(out) != dims:
        msg = f"Conv {what} = {value!r}: expected {dims} value(s)"
        raise ValueError(msg)
    return out


@dataclass(frozen=True)
class Conv:
    """A 1-D or 2-D convolution ``y = W * x + b`` (cross-correlation, zero padding).

    Attributes
    ----------
    weights : float64 ``(c_out, c_in, k)`` (1-D) or ``(c_out, c_in, kh, kw)`` (2-D).
    bias : float64 ``(c_out,)``.
    stride : one int per spatial axis.
    padding : ``(begin, end)`` zeros per spatial axis, ONNX ``pads`` order
        ``(x1_begin, x2_begin, ..., x1_end, x2_end, ...)`` converted to pairs.
    """

    weights: np.ndarray
    bias: np.ndarray
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64)
        if w.ndim not in (3, 4) or 0 in w.shape:
            msg = f"Conv weights must be (c_out, c_in, k) or (c_out, c_in, kh, kw), got {w.shape}"
            raise ValueError(msg)
        dims = w.ndim - 2
        b = np.asarray(self.bias, dtype=np.float64)
        if b.shape != (w.shape[0],):
            msg = f"Conv bias has shape {b.shape}, expected ({w.shape[0]},) for weights {w.shape}"
            raise ValueError(msg)
        stride = _pair_ints(self.stride, dims, "stride")
        if any(s < 1 for s in stride):
            msg = f"Conv stride {stride}: must be >= 1"
            raise ValueError(msg)
        pad = tuple((int(p[0]), int(p[1])) for p in self.padding)
        if len(pad) != dims or any(p < 0 for pp in pad for p in pp):
            msg = f"Conv padding {self.padding!r}: expected {dims} (begin, end) pairs >= 0"
            raise ValueError(msg)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", b)
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "padding", pad)

    @property
    def dims(self) -> int:
        """Spatial dimensions: 1 or 2."""
        return int(self.weights.ndim - 2)

    @property
    def c_out(self) -> int:
        """Output channels."""
        return int(self.weights.shape[0])

    @property
    def c_in(self) -> int:
        """Input channels."""
        return int(self.weights.shape[1])

    @property
    def kernel(self) -> tuple[int, ...]:
        """Kernel size per spatial axis."""
        return tuple(int(k) for k in self.weights.shape[2:])

    @property
    def patch_size(self) -> int:
        """Inputs per patch: ``c_in * prod(kernel)`` (rows of the kernel matrix)."""
        return self.c_in * math.prod(self.kernel)

    @property
    def n_parameters(self) -> int:
        """Weights plus biases."""
        return int(self.weights.size + self.bias.size)

    def kernel_matrix(self) -> np.ndarray:
        """The im2col matrix ``(patch_size, c_out)``: ``patches @ K + b`` is the output."""
        return np.ascontiguousarray(self.weights.reshape(self.c_out, -1).T)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape ``(c_out, *positions)`` for an input ``(c_in, *size)``.

        Raises ValueError naming the mismatch (channels, or a kernel larger than the
        padded input).
        """
        if len(shape) != self.dims + 1 or shape[0] != self.c_in:
            msg = (
                f"Conv{self.dims}d with {self.c_in} input channels cannot take inputs of "
                f"shape {shape} (expected ({self.c_in}, {', '.join(['size'] * self.dims)}))"
            )
            raise ValueError(msg)
        out = []
        for size, k, s, (p0, p1) in zip(
            shape[1:], self.kernel, self.stride, self.padding, strict=True
        ):
            n = (size + p0 + p1 - k) // s + 1
            if n < 1:
                msg = f"Conv kernel {self.kernel} is larger than the padded input {shape}"
                raise ValueError(msg)
            out.append(n)
        return (self.c_out, *out)

    def patches(self, x: np.ndarray) -> np.ndarray:
        """im2col rows ``(B, *positions, patch_size)`` of inputs ``(B, c_in, *size)``."""
        arr = np.asarray(x, dtype=np.float64)
        self.output_shape(tuple(arr.shape[1:]))
        pad = [(0, 0), (0, 0), *self.padding]
        xp = np.pad(arr, pad) if any(p for pp in self.padding for p in pp) else arr
        axes = tuple(range(2, 2 + self.dims))
        win = sliding_window_view(xp, self.kernel, axis=axes)
        # win: (B, c_in, *positions_full, *kernel); keep every stride-th position
        index = (slice(None), slice(None), *(slice(None, None, s) for s in self.stride))
        win = win[index]
        b = arr.shape[0]
        positions = win.shape[2 : 2 + self.dims]
        # -> (B, *positions, c_in, *kernel): channel-major patches as kernel_matrix rows
        order = (0, *range(2, 2 + self.dims), 1, *range(2 + self.dims, 2 + 2 * self.dims))
        return np.ascontiguousarray(win.transpose(order)).reshape(b, *positions, self.patch_size)

    def fold(self, rows: np.ndarray) -> np.ndarray:
        """Patch-wise outputs ``(B, *positions, c_out)`` back to ``(B, c_out, *positions)``."""
        arr = np.asarray(rows)
        return np.ascontiguousarray(np.moveaxis(arr, -1, 1))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The convolution of a batch ``(B, c_in, *size)``: ``(B, c_out, *positions)``."""
        p = self.patches(x)
        return self.fold(p @ self.kernel_matrix() + self.bias)


@dataclass(frozen=True)
class ReLU:
    """``max(x, 0)`` elementwise."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply to any batch."""
        return np.asarray(np.maximum(x, 0.0))


@dataclass(frozen=True)
class Flatten:
    """``(B, ...)`` to ``(B, prod(...))`` in C order (ONNX ``Flatten`` axis 1)."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply to a batch."""
        arr = np.asarray(x)
        return arr.reshape(arr.shape[0], -1)


@dataclass(frozen=True)
class Reshape:
    """``(B, ...)`` to ``(B, *shape)`` in C order (e.g. a signal of 40 to ``(1, 40)``)."""

    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if not shape or any(s < 1 for s in shape):
            msg = f"Reshape to {self.shape!r}: every per-sample size must be >= 1"
            raise ValueError(msg)
        object.__setattr__(self, "shape", shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply to a batch."""
        arr = np.asarray(x)
        return arr.reshape(arr.shape[0], *self.shape)
