"""ONNX networks: labrss's NumPy forward pass against onnxruntime, and clear import errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from labrss.networks.layers import Conv, Flatten, ReLU, Reshape
from labrss.networks.model import Layer, Network
from labrss.networks.onnx_file import OnnxImportError, load_onnx, save_onnx
from labrss.networks.sequential import SequentialNetwork

#: Relative agreement with onnxruntime (float32 there, float64 here; issue 19: 1e-5).
RTOL = 1e-5


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.asarray(sess.run(None, {name: x.astype(np.float32)})[0], dtype=np.float64)


def _agree(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    scale = float(np.abs(ref).max())
    assert scale > 0
    err = float(np.abs(ours - ref).max()) / scale
    assert err <= RTOL, f"max |labrss - onnxruntime| / max|onnxruntime| = {err:.2e}"


def _f32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32).astype(np.float64)


def _conv(
    rng: np.random.Generator, c_out: int, c_in: int, kernel: tuple[int, ...], **kw: object
) -> Conv:
    w = _f32(rng.normal(size=(c_out, c_in, *kernel)) / np.sqrt(c_in * np.prod(kernel)))
    return Conv(w, _f32(rng.normal(size=c_out) * 0.1), **kw)  # type: ignore[arg-type]


def _dense(rng: np.random.Generator, d_in: int, d_out: int) -> Layer:
    return Layer(
        _f32(rng.normal(size=(d_in, d_out)) / np.sqrt(d_in)), _f32(rng.normal(size=d_out) * 0.1)
    )


CASES = {
    # MNIST-1D-like: signal -> (1, L), three strided convs, flatten, dense
    "conv1d-chain": lambda rng: SequentialNetwork(
        [
            Reshape((1, 40)),
            _conv(rng, 6, 1, (5,), stride=(2,), padding=((1, 1),)),
            ReLU(),
            _conv(rng, 5, 6, (3,), stride=(2,), padding=((1, 1),)),
            ReLU(),
            _conv(rng, 4, 5, (3,), stride=(1,), padding=((0, 2),)),
            ReLU(),
            Flatten(),
            _dense(rng, 4 * 10, 10),
        ],
        (40,),
    ),
    "conv2d-chain": lambda rng: SequentialNetwork(
        [
            _conv(rng, 4, 1, (3, 3), stride=(1, 1), padding=((1, 1), (1, 1))),
            ReLU(),
            _conv(rng, 3, 4, (3, 2), stride=(2, 1), padding=((0, 1), (2, 0))),
            ReLU(),
            Flatten(),
            _dense(rng, 3 * 4 * 9, 7),
            ReLU(),
            _dense(rng, 7, 10),
        ],
        (1, 8, 8),
    ),
    "conv2d-rect-stride": lambda rng: SequentialNetwork(
        [_conv(rng, 2, 3, (2, 4), stride=(3, 2), padding=((1, 0), (0, 3))), Flatten()],
        (3, 7, 9),
    ),
    "mlp": lambda rng: SequentialNetwork([_dense(rng, 12, 9), ReLU(), _dense(rng, 9, 3)], (12,)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_matches_onnxruntime(case: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    net = CASES[case](rng)
    path = save_onnx(net, tmp_path / f"{case}.onnx")
    x = _f32(rng.normal(size=(7, *net.input_shape)))
    loaded = load_onnx(path)
    assert loaded.input_shape == net.input_shape
    assert [type(o) for o in loaded.ops] == [type(o) for o in net.ops]
    ours = loaded.forward(x)
    _agree(ours, _ort(path, x))
    # the file round-trip is exact up to the float32 storage of the weights
    np.testing.assert_allclose(ours, net.forward(x), rtol=1e-12, atol=1e-12)


def _graph_file(
    tmp_path: Path,
    *,
    nodes: list[onnx.NodeProto],
    inits: dict[str, np.ndarray],
    in_shape: list[object],
    out_shape: list[object],
    name: str = "g",
) -> Path:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def test_pytorch_style_graph(tmp_path: Path) -> None:
    """What torch.onnx writes for nn.Sequential: Unsqueeze of the signal, Conv, a separate
    Add bias, Gemm with transB (nn.Linear keeps (d_out, d_in)), MatMul + Add, a Constant
    shape for Reshape, Identity and Dropout; checked against onnxruntime."""
    rng = np.random.default_rng(7)
    f = np.float32
    w1 = rng.normal(size=(3, 1, 5)).astype(f)
    b1 = rng.normal(size=(1, 3, 1)).astype(f)
    wl = rng.normal(size=(8, 3 * 9)).astype(f)  # (d_out, d_in), transB = 1
    bl = rng.normal(size=8).astype(f)
    wm = rng.normal(size=(8, 4)).astype(f)
    bm = rng.normal(size=(1, 4)).astype(f)
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axes"], ["u"], name="/Unsqueeze"),
        helper.make_node(
            "Conv",
            ["u", "w1"],
            ["c"],
            name="/conv/Conv",
            kernel_shape=[5],
            strides=[2],
            pads=[2, 2],
            dilations=[1],
            group=1,
        ),
        helper.make_node("Add", ["c", "b1"], ["cb"], name="/conv/Add"),
        helper.make_node("Relu", ["cb"], ["r"], name="/Relu"),
        helper.make_node(
            "Constant",
            [],
            ["shape"],
            value=numpy_helper.from_array(np.array([0, -1], dtype=np.int64)),
        ),
        helper.make_node("Reshape", ["r", "shape"], ["flat"], name="/Reshape"),
        helper.make_node(
            "Gemm", ["flat", "wl", "bl"], ["g"], name="/fc/Gemm", transB=1, alpha=0.5, beta=2.0
        ),
        helper.make_node("Dropout", ["g"], ["d"], name="/Dropout"),
        helper.make_node("Relu", ["d"], ["r2"], name="/Relu_1"),
        helper.make_node("MatMul", ["r2", "wm"], ["m"], name="/out/MatMul"),
        helper.make_node("Add", ["bm", "m"], ["a"], name="/out/Add"),
        helper.make_node("Identity", ["a"], ["y"], name="/Identity"),
    ]
    inits = {
        "axes": np.array([1], dtype=np.int64),
        "w1": w1,
        "b1": b1,
        "wl": wl,
        "bl": bl,
        "wm": wm,
        "bm": bm,
    }
    path = _graph_file(
        tmp_path, nodes=nodes, inits=inits, in_shape=["N", 17], out_shape=["N", 4], name="torchlike"
    )
    net = load_onnx(path)
    assert net.input_shape == (17,)
    x = rng.normal(size=(5, 17)).astype(f)
    _agree(net.forward(x), _ort(path, x))
    kinds = [type(o).__name__ for o in net.ops]
    # the Constant-shape Reshape to (B, -1) reads as a reshape to the flat shape
    assert kinds == ["Reshape", "Conv", "ReLU", "Reshape", "Layer", "ReLU", "Layer"]


def _single(
    tmp_path: Path, node: onnx.NodeProto, inits: dict[str, np.ndarray], in_shape: list[object]
) -> Path:
    return _graph_file(
        tmp_path,
        nodes=[node],
        inits=inits,
        in_shape=in_shape,
        out_shape=["N", 2],
        name=node.op_type,
    )


def test_unsupported_operator_names_node_and_operator(tmp_path: Path) -> None:
    path = _single(
        tmp_path,
        helper.make_node("MaxPool", ["x"], ["y"], name="pool1", kernel_shape=[2]),
        {},
        ["N", 1, 4],
    )
    with pytest.raises(
        OnnxImportError,
        match=r"MaxPool\.onnx: node 0 'pool1' \(MaxPool\): operator MaxPool is not supported",
    ):
        load_onnx(path)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"group": 2}, r"'c' \(Conv\): attribute group = 2: only group = 1"),
        ({"dilations": [2]}, r"'c' \(Conv\): attribute dilations = \[2\]"),
        ({"auto_pad": "SAME_UPPER"}, r"'c' \(Conv\): attribute auto_pad = SAME_UPPER"),
    ],
)
def test_unsupported_conv_attribute(tmp_path: Path, attrs: dict[str, object], message: str) -> None:
    w = np.ones((2, 2, 3), dtype=np.float32)
    path = _single(
        tmp_path,
        helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs),
        {"w": w},
        ["N", 2, 8],
    )
    with pytest.raises(OnnxImportError, match=message):
        load_onnx(path)


def test_other_import_errors(tmp_path: Path) -> None:
    with pytest.raises(OnnxImportError, match="not found"):
        load_onnx(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(OnnxImportError, match=r"bad\.onnx: not a readable ONNX file"):
        load_onnx(bad)
    nan = np.full((3, 2), np.nan, dtype=np.float32)
    path = _single(
        tmp_path, helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"), {"w": nan}, ["N", 3]
    )
    with pytest.raises(OnnxImportError, match=r"'mm' \(MatMul\): matrix 'w' holds NaN"):
        load_onnx(path)
    w = np.ones((5, 2), dtype=np.float32)
    path = _single(
        tmp_path, helper.make_node("Gemm", ["x", "w"], ["y"], name="fc"), {"w": w}, ["N", 3]
    )
    with pytest.raises(
        OnnxImportError,
        match=r"'fc' \(Gemm\): a matrix of 5 rows cannot take inputs of shape \(3,\)",
    ):
        load_onnx(path)
    path = _single(
        tmp_path, helper.make_node("Gemm", ["x", "w"], ["y"], name="fc"), {"w": w}, ["N", "L"]
    )
    with pytest.raises(OnnxImportError, match="dimension 1 is 'L'"):
        load_onnx(path)
    # a branch: the second node reads the graph input, not the first node's output
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Add", ["x", "a"], ["y"], name="skip"),
    ]
    path = _graph_file(
        tmp_path, nodes=nodes, inits={}, in_shape=["N", 2], out_shape=["N", 2], name="branch"
    )
    with pytest.raises(OnnxImportError, match=r"'skip' \(Add\): addend 'x' must be a constant"):
        load_onnx(path)


def test_patches_and_kernel_matrix_by_hand() -> None:
    # 1 channel, kernel (1, 2, 3), stride 2, padding 1 on the left: x = [1, 2, 3, 4]
    conv = Conv(np.array([[[1.0, 2.0, 3.0]]]), np.array([0.5]), (2,), ((1, 0),))
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    p = conv.patches(x)
    np.testing.assert_array_equal(p, [[[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]]])
    np.testing.assert_array_equal(conv(x), [[[1 * 2 + 2 * 3 + 0.5, 2 + 6 + 12 + 0.5]]])
    assert conv.kernel_matrix().shape == (3, 1)


def test_mlp_round_trip_and_describe() -> None:
    rng = np.random.default_rng(1)
    mlp = Network(
        [
            (rng.normal(size=(64, 16)), rng.normal(size=16)),
            (rng.normal(size=(16, 10)), rng.normal(size=10)),
        ]
    )
    seq = SequentialNetwork.from_network(mlp)
    x = rng.random((4, 64))
    np.testing.assert_allclose(seq.forward(x), mlp.forward(x), rtol=1e-13)
    back = seq.to_network()
    assert back is not None and back.sizes == (64, 16, 10)
    info = seq.describe(16, 16)
    # digits 64-16-10 on 16 x 16: 5 x 2 + 2 x 2 = 14 tiles (docs/networks.md)
    assert info["tiles"] == 14
    assert info["parameters"] == 64 * 16 + 16 + 16 * 10 + 10
    conv = CASES["conv1d-chain"](rng)
    assert conv.to_network() is None
    layers = conv.describe(16, 16)["layers"]
    assert layers[1]["matrix"] == [5, 6] and layers[1]["vectors_per_sample"] == 19
    with pytest.raises(ValueError, match=r"input shape \(3, 41\)"):
        conv.forward(np.zeros((3, 41)))


def test_view_batch_minus_one_shape_computation(tmp_path: Path) -> None:
    """``x.view(x.size(0), -1)`` exports as Shape, Gather, Unsqueeze, Concat, Reshape."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(2 * 3 * 3, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Unsqueeze", ["b", "axes"], ["b1"]),
        helper.make_node("Concat", ["b1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"], name="view"),
        helper.make_node("MatMul", ["flat", "w"], ["y"], name="fc"),
    ]
    inits = {
        "zero": np.array(0, dtype=np.int64),
        "axes": np.array([0], dtype=np.int64),
        "minus1": np.array([-1], dtype=np.int64),
        "w": w,
    }
    path = _graph_file(
        tmp_path, nodes=nodes, inits=inits, in_shape=["N", 2, 3, 3], out_shape=["N", 4], name="view"
    )
    net = load_onnx(path)
    x = rng.normal(size=(3, 2, 3, 3)).astype(np.float32)
    _agree(net.forward(x), _ort(path, x))
