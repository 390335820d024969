"""Networks from ONNX files (what PyTorch, Keras and JAX export), and back.

`load_onnx` reads a graph that is a chain: every node takes the previous node's output
plus constants (initializers or ``Constant`` nodes). Supported operators:

=============  ===================================================================
``Conv``       1-D or 2-D, ``strides``, ``pads``, ``kernel_shape``; ``dilations`` 1,
               ``group`` 1, ``auto_pad`` ``NOTSET``/``VALID``
``Gemm``       ``alpha``, ``beta``, ``transB``; ``transA`` 0; constant ``B`` and ``C``
``MatMul``     the running tensor times a constant 2-D matrix
``Add``        a constant bias after ``MatMul``/``Gemm`` (``(d_out,)``) or ``Conv``
               (one value per channel)
``Relu``, ``Flatten`` (axis 1), ``Reshape`` (constant shape; the batch axis 0 or -1),
``Unsqueeze``/``Squeeze`` (not the batch axis), ``Identity``, ``Dropout`` (inference)
=============  ===================================================================

Shape computations on constants and on the running tensor's shape (``Shape``,
``Gather``, ``Unsqueeze``, ``Squeeze``, ``Concat``, ``Slice``, ``Cast``: what PyTorch
exports for ``x.view(x.size(0), -1)``) are evaluated while reading.

Anything else raises `OnnxImportError` naming the file, the node and the operator (or
attribute, or value). The first graph input that is not an initializer is the network
input; its dimensions after the batch axis must be fixed numbers.

`save_onnx` writes a `SequentialNetwork` with ``Conv``, ``Gemm``, ``Relu``, ``Flatten``
and ``Reshape`` (opset 17, float32 by default), so that labrss's own networks (the shipped
CNNs, pruned tickets) open in onnxruntime, Netron or PyTorch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from labrss.networks.layers import Conv, Flatten, ReLU, Reshape
from labrss.networks.model import Layer
from labrss.networks.sequential import Op, SequentialNetwork

__all__ = ["OPSET", "OnnxImportError", "load_onnx", "save_onnx", "to_onnx_model"]

#: Opset of the files `save_onnx` writes.
OPSET = 17
#: IR version of those files (what PyTorch writes; every current onnxruntime reads it).
IR_VERSION = 8


class OnnxImportError(ValueError):
    """An ONNX file labrss cannot evaluate (the message names file, node and operator)."""


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _node_name(node: Any, index: int) -> str:
    return (
        f"node {index} {node.name!r} ({node.op_type})"
        if node.name
        else f"node {index} ({node.op_type})"
    )


class _Reader:
    """State while walking the graph: constants, the running tensor and its shape."""

    def __init__(self, path: Path, graph: Any) -> None:
        from onnx import numpy_helper

        self.path = path
        self.consts: dict[str, np.ndarray] = {
            init.name: np.asarray(numpy_helper.to_array(init)) for init in graph.initializer
        }
        inputs = [i for i in graph.input if i.name not in self.consts]
        if not inputs:
            self.fail("graph", "has no input that is not an initializer")
        first = inputs[0]
        dims = first.type.tensor_type.shape.dim
        if len(dims) < 2:
            self.fail(
                f"input {first.name!r}",
                f"has {len(dims)} dimension(s); expected (batch, ...) with a batch axis",
            )
        shape = []
        for i, d in enumerate(dims[1:], start=1):
            if not d.HasField("dim_value") or d.dim_value < 1:
                self.fail(
                    f"input {first.name!r}",
                    f"dimension {i} is {d.dim_param or '?'!r}; only the batch axis may be symbolic",
                )
            shape.append(int(d.dim_value))
        self.input_name: str = first.name
        self.input_shape: tuple[int, ...] = tuple(shape)
        self.current: str = first.name
        self.shape: tuple[int, ...] = self.input_shape
        self.ops: list[Op] = []

    def fail(self, where: str, what: str) -> None:
        raise OnnxImportError(f"{self.path}: {where}: {what}")

    def const(self, name: str, where: str, role: str) -> np.ndarray:
        if name not in self.consts:
            self.fail(where, f"{role} {name!r} must be a constant (initializer or Constant)")
        arr = self.consts[name]
        if arr.dtype.kind not in "biuf":
            self.fail(where, f"{role} {name!r} has dtype {arr.dtype}; expected numbers")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            self.fail(where, f"{role} {name!r} holds NaN or inf")
        return arr

    def push(self, op: Op, where: str) -> None:
        try:
            if isinstance(op, Conv):
                out = op.output_shape(self.shape)
            elif isinstance(op, Layer):
                if self.shape != (op.d_in,):
                    raise ValueError(
                        f"a matrix of {op.d_in} rows cannot take inputs of shape {self.shape}"
                    )
                out = (op.d_out,)
            elif isinstance(op, Flatten):
                out = (math.prod(self.shape),)
            elif isinstance(op, Reshape):
                out = op.shape
            else:
                out = self.shape
        except ValueError as exc:
            self.fail(where, str(exc))
        self.ops.append(op)
        self.shape = out


def _conv(r: _Reader, node: Any, where: str) -> None:
    a = _attrs(node)
    w = r.const(node.input[1], where, "weight").astype(np.float64)
    if w.ndim not in (3, 4):
        r.fail(where, f"weight of shape {w.shape}: only Conv1d and Conv2d are supported")
    dims = w.ndim - 2
    bias = (
        r.const(node.input[2], where, "bias").astype(np.float64)
        if len(node.input) > 2 and node.input[2]
        else np.zeros(w.shape[0])
    )
    if int(a.get("group", 1)) != 1:
        r.fail(where, f"attribute group = {a['group']}: only group = 1 is supported")
    dil = [int(v) for v in a.get("dilations", [1] * dims)]
    if any(v != 1 for v in dil):
        r.fail(where, f"attribute dilations = {dil}: only 1 is supported")
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto not in ("NOTSET", "VALID"):
        r.fail(where, f"attribute auto_pad = {auto}: only NOTSET or VALID (give pads) is supported")
    ks = [int(v) for v in a.get("kernel_shape", w.shape[2:])]
    if tuple(ks) != tuple(w.shape[2:]):
        r.fail(where, f"attribute kernel_shape = {ks} does not match the weight {w.shape}")
    pads = (
        [int(v) for v in a.get("pads", [0] * (2 * dims))] if auto == "NOTSET" else [0] * (2 * dims)
    )
    if len(pads) != 2 * dims:
        r.fail(where, f"attribute pads = {pads}: expected {2 * dims} values")
    strides = [int(v) for v in a.get("strides", [1] * dims)]
    if len(strides) != dims:
        r.fail(where, f"attribute strides = {strides}: expected {dims} values")
    if bias.shape != (w.shape[0],):
        r.fail(where, f"bias of shape {bias.shape}; expected ({w.shape[0]},)")
    try:
        op = Conv(w, bias, tuple(strides), tuple((pads[i], pads[i + dims]) for i in range(dims)))
    except ValueError as exc:
        r.fail(where, str(exc))
    r.push(op, where)


def _gemm(r: _Reader, node: Any, where: str) -> None:
    a = _attrs(node)
    if int(a.get("transA", 0)) != 0:
        r.fail(where, "attribute transA = 1 is not supported (the input must not be transposed)")
    w = r.const(node.input[1], where, "matrix B").astype(np.float64)
    if w.ndim != 2:
        r.fail(where, f"matrix B of shape {w.shape}: expected 2-D")
    if int(a.get("transB", 0)):
        w = w.T
    w = float(a.get("alpha", 1.0)) * w
    d_out = w.shape[1]
    bias = np.zeros(d_out)
    if len(node.input) > 2 and node.input[2]:
        c = r.const(node.input[2], where, "bias C").astype(np.float64)
        try:
            bias = float(a.get("beta", 1.0)) * np.broadcast_to(
                c.reshape(-1) if c.size == d_out else c, (d_out,)
            )
        except ValueError:
            r.fail(where, f"bias C of shape {c.shape} does not broadcast to ({d_out},)")
    r.push(Layer(w, np.array(bias)), where)


def _add(r: _Reader, node: Any, where: str) -> None:
    names = [n for n in node.input if n != r.current]
    if len(names) != 1 or r.current not in node.input:
        r.fail(where, "only the running tensor plus a constant bias is supported")
    c = r.const(names[0], where, "addend").astype(np.float64)
    prev = r.ops[-1] if r.ops else None
    if isinstance(prev, Layer):
        if c.size not in (1, prev.d_out) or (c.ndim > 1 and c.shape[-1] != c.size):
            r.fail(where, f"bias of shape {c.shape} after a {prev.d_out}-output matrix")
        r.ops[-1] = Layer(prev.weights, prev.bias + np.broadcast_to(c.reshape(-1), (prev.d_out,)))
    elif isinstance(prev, Conv):
        flat = c.reshape(-1)
        spatial_ones = c.ndim >= 1 and all(s == 1 for s in c.shape[c.ndim - prev.dims :])
        if not (c.size == 1 or (flat.size == prev.c_out and spatial_ones)):
            r.fail(where, f"bias of shape {c.shape}: expected one value per channel ({prev.c_out})")
        r.ops[-1] = Conv(
            prev.weights,
            prev.bias + np.broadcast_to(flat, (prev.c_out,)),
            prev.stride,
            prev.padding,
        )
    else:
        r.fail(where, "a constant Add is only supported right after MatMul, Gemm or Conv")


def _reshape_target(r: _Reader, node: Any, where: str) -> tuple[int, ...]:
    """Per-sample shape of Reshape / Unsqueeze / Squeeze."""
    size = math.prod(r.shape)
    full = (1, *r.shape)  # batch axis placeholder
    op = node.op_type
    if op == "Reshape":
        shape = [int(v) for v in r.const(node.input[1], where, "shape").reshape(-1)]
        if _BATCH in shape[1:]:
            r.fail(where, "target shape uses the batch size outside the batch axis")
        shape = [0 if v == _BATCH else v for v in shape]
        if not shape:
            r.fail(where, "empty target shape")
        batch, rest = shape[0], shape[1:]
        if batch not in (0, -1):
            r.fail(where, f"target shape {shape}: the batch axis must be 0 or -1")
        rest = [r.shape[i] if v == 0 and i < len(r.shape) else v for i, v in enumerate(rest)]
        if rest.count(-1) + (batch == -1) > 1:
            r.fail(where, f"target shape {shape}: at most one -1")
        if -1 in rest:
            known = math.prod(v for v in rest if v != -1)
            if known < 1 or size % known:
                r.fail(where, f"target shape {shape} does not divide {size} values")
            rest = [size // known if v == -1 else v for v in rest]
        if math.prod(rest) != size:
            r.fail(where, f"target shape {shape}: {math.prod(rest)} values per sample, have {size}")
        return tuple(rest) if rest else (1,)
    a = _attrs(node)
    if "axes" in a:
        axes = [int(v) for v in a["axes"]]
    elif len(node.input) > 1 and node.input[1]:
        axes = [int(v) for v in r.const(node.input[1], where, "axes").reshape(-1)]
    else:
        axes = []
    if op == "Unsqueeze":
        rank = len(full) + len(axes)
        norm = sorted(ax % rank for ax in axes)
        if 0 in norm:
            r.fail(where, "unsqueezing the batch axis is not supported")
        out = list(full)
        for ax in norm:
            out.insert(ax, 1)
        return tuple(out[1:])
    # Squeeze
    norm = (
        sorted({ax % len(full) for ax in axes})
        if axes
        else [i for i, s in enumerate(full) if s == 1 and i > 0]
    )
    if 0 in norm:
        r.fail(where, "squeezing the batch axis is not supported")
    if any(full[ax] != 1 for ax in norm):
        r.fail(where, f"axes {axes} of shape (batch, {r.shape}) are not of size 1")
    out_sq = [s for i, s in enumerate(full) if i not in norm][1:]
    return tuple(out_sq) if out_sq else (1,)


#: Stands for the (unknown) batch size in folded shape computations.
_BATCH = -(2**40)


def _fold(r: _Reader, node: Any, where: str) -> bool:
    """Evaluate a shape computation on constants (what ``x.view(x.size(0), -1)`` exports:
    Shape, Gather, Unsqueeze, Squeeze, Concat, Slice, Cast) and store its output as a
    constant. False when ``node`` is not such a computation."""
    op = node.op_type
    ins = [n for n in node.input if n]
    if op == "Shape" and ins == [r.current]:
        r.consts[node.output[0]] = np.array([_BATCH, *r.shape], dtype=np.int64)
        return True
    if op not in ("Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast"):
        return False
    if not all(n in r.consts for n in ins):
        return False
    a = _attrs(node)
    vals = [r.consts[n] for n in ins]
    if op == "Gather":
        out = np.take(vals[0], vals[1], axis=int(a.get("axis", 0)))
    elif op == "Unsqueeze":
        axes = a.get("axes", vals[1] if len(vals) > 1 else [])
        out = np.expand_dims(vals[0], tuple(int(x) for x in np.ravel(axes)))
    elif op == "Squeeze":
        axes = a.get("axes", vals[1] if len(vals) > 1 else None)
        out = np.squeeze(vals[0], None if axes is None else tuple(int(x) for x in np.ravel(axes)))
    elif op == "Concat":
        out = np.concatenate([np.atleast_1d(v) for v in vals], axis=int(a.get("axis", 0)))
    elif op == "Slice":
        starts, ends = np.ravel(vals[1]), np.ravel(vals[2])
        axes = np.ravel(vals[3]) if len(vals) > 3 else np.arange(starts.size)
        steps = np.ravel(vals[4]) if len(vals) > 4 else np.ones(starts.size, dtype=np.int64)
        index = [slice(None)] * vals[0].ndim
        for st, en, ax, sp in zip(starts, ends, axes, steps, strict=True):
            index[int(ax)] = slice(int(st), int(min(en, 2**62)), int(sp))
        out = vals[0][tuple(index)]
    else:  # Cast: shapes stay integers; anything else keeps its values
        out = vals[0]
    r.consts[node.output[0]] = np.asarray(out)
    return True


def load_onnx(path: str | Path) -> SequentialNetwork:
    """Read an ONNX file (module docstring) into a `SequentialNetwork` named after it.

    Raises
    ------
    OnnxImportError
        Unreadable file; a graph that is not a chain; an unsupported operator, attribute
        or value (the message names the node and the operator); NaN weights; shapes that
        do not chain.
    """
    import onnx

    p = Path(path)
    if not p.is_file():
        raise OnnxImportError(f"{p}: ONNX file not found")
    try:
        model = onnx.load(str(p))
    except Exception as exc:
        raise OnnxImportError(f"{p}: not a readable ONNX file ({exc})") from None
    graph = model.graph
    r = _Reader(p, graph)
    for index, node in enumerate(graph.node):
        where = _node_name(node, index)
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            r.fail(where, f"operator domain {node.domain!r} is not supported")
        if op == "Constant":
            a = _attrs(node)
            if "value" not in a:
                r.fail(where, f"Constant with attributes {sorted(a)}: only 'value' is supported")
            from onnx import numpy_helper

            r.consts[node.output[0]] = np.asarray(numpy_helper.to_array(a["value"]))
            continue
        if _fold(r, node, where):
            continue
        if r.current not in node.input:
            r.fail(
                where,
                f"does not take the running tensor {r.current!r} (inputs {list(node.input)}): "
                "only chains of operators are supported",
            )
        if op == "Conv":
            if node.input[0] != r.current:
                r.fail(where, "the running tensor must be the first input")
            _conv(r, node, where)
        elif op == "Gemm":
            if node.input[0] != r.current:
                r.fail(where, "the running tensor must be input A")
            _gemm(r, node, where)
        elif op == "MatMul":
            if node.input[0] != r.current:
                r.fail(where, "only (running tensor) @ (constant matrix) is supported")
            w = r.const(node.input[1], where, "matrix").astype(np.float64)
            if w.ndim != 2:
                r.fail(where, f"matrix of shape {w.shape}: expected 2-D")
            r.push(Layer(w, np.zeros(w.shape[1])), where)
        elif op == "Add":
            _add(r, node, where)
        elif op == "Relu":
            r.push(ReLU(), where)
        elif op == "Flatten":
            axis = int(_attrs(node).get("axis", 1))
            if axis != 1:
                r.fail(where, f"attribute axis = {axis}: only 1 (keep the batch axis) is supported")
            if len(r.shape) != 1:
                r.push(Flatten(), where)
        elif op in ("Reshape", "Unsqueeze", "Squeeze"):
            target = _reshape_target(r, node, where)
            if target != r.shape:
                r.push(Reshape(target), where)
        elif op in ("Identity", "Dropout"):
            pass
        else:
            r.fail(
                where,
                f"operator {op} is not supported (supported: Conv, Gemm, MatMul, Add, Relu, "
                "Flatten, Reshape, Unsqueeze, Squeeze, Identity, Dropout, Constant)",
            )
        r.current = node.output[0]
    outputs = [o.name for o in graph.output]
    if r.current not in outputs:
        r.fail("graph", f"the chain ends in {r.current!r}, which is not a graph output {outputs}")
    try:
        return SequentialNetwork(r.ops, r.input_shape, name=p.name)
    except ValueError as exc:
        raise OnnxImportError(f"{p}: {exc}") from None


def to_onnx_model(network: SequentialNetwork, dtype: type[np.floating] = np.float32) -> Any:
    """An ``onnx.ModelProto`` of ``network``: Conv, Gemm, Relu, Flatten, Reshape nodes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.FLOAT if np.dtype(dtype) == np.float32 else TensorProto.DOUBLE
    nodes = []
    inits = []
    current = "input"
    for index, op in enumerate(network.ops):
        out = f"t{index}" if index < len(network.ops) - 1 else "output"
        if isinstance(op, Conv):
            w, b = f"conv{index}.weight", f"conv{index}.bias"
            inits += [
                numpy_helper.from_array(op.weights.astype(dtype), w),
                numpy_helper.from_array(op.bias.astype(dtype), b),
            ]
            pads = [p[0] for p in op.padding] + [p[1] for p in op.padding]
            nodes.append(
                helper.make_node(
                    "Conv",
                    [current, w, b],
                    [out],
                    name=f"conv{index}",
                    kernel_shape=list(op.kernel),
                    strides=list(op.stride),
                    pads=pads,
                )
            )
        elif isinstance(op, Layer):
            w, b = f"dense{index}.weight", f"dense{index}.bias"
            inits += [
                numpy_helper.from_array(op.weights.astype(dtype), w),
                numpy_helper.from_array(op.bias.astype(dtype), b),
            ]
            nodes.append(helper.make_node("Gemm", [current, w, b], [out], name=f"dense{index}"))
        elif isinstance(op, ReLU):
            nodes.append(helper.make_node("Relu", [current], [out], name=f"relu{index}"))
        elif isinstance(op, Flatten):
            nodes.append(
                helper.make_node("Flatten", [current], [out], name=f"flatten{index}", axis=1)
            )
        elif isinstance(op, Reshape):
            s = f"reshape{index}.shape"
            inits.append(numpy_helper.from_array(np.array([-1, *op.shape], dtype=np.int64), s))
            nodes.append(helper.make_node("Reshape", [current, s], [out], name=f"reshape{index}"))
        current = out
    graph = helper.make_graph(
        nodes,
        network.name,
        [helper.make_tensor_value_info("input", elem, ["batch", *network.input_shape])],
        [helper.make_tensor_value_info("output", elem, ["batch", *network.output_shape])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="labrss"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def save_onnx(
    network: SequentialNetwork, path: str | Path, dtype: type[np.floating] = np.float32
) -> Path:
    """Write ``network`` as an ONNX file (module docstring); returns the path."""
    import onnx

    p = Path(path)
    onnx.save(to_onnx_model(network, dtype), str(p))
    return p
