"""CNN lottery tickets: each method's pruned network, evaluated as itself, approximates a
small random CNN; errors fall with n; structured tickets keep whole units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labrss.networks.layers import Conv, Flatten, ReLU
from labrss.networks.model import Layer
from labrss.networks.onnx_file import load_onnx, save_onnx
from labrss.networks.sequential import SequentialNetwork
from labrss.slth.blocks import build_block
from labrss.slth.tickets import TICKET_METHODS, prune_sequential


def _tiny_cnn(seed: int = 0) -> SequentialNetwork:
    rng = np.random.default_rng(seed)
    return SequentialNetwork(
        [
            Conv(rng.normal(size=(3, 1, 3)) * 0.5, rng.normal(size=3) * 0.1, (2,), ((1, 1),)),
            ReLU(),
            Conv(rng.normal(size=(2, 3, 3)) * 0.5, rng.normal(size=2) * 0.1, (1,), ((1, 1),)),
            ReLU(),
            Flatten(),
            Layer(rng.normal(size=(2 * 6, 4)) * 0.5, rng.normal(size=4) * 0.1),
        ],
        (1, 12),
        name="tiny",
    )


@pytest.mark.parametrize(
    ("method", "n", "tol"),
    # measured max relative output errors (seed 0): pensia n = 40 2.6e-3, da-cunha n = 56
    # 1.0e-4 (n = 40: 4.1e-3), structured n = 28 filters per group 0.087 (n = 16: 0.69:
    # 3-dimensional subset sums need ~3x the elements; n = 24 0.27 and n = 32 0.17: one
    # hard slice of the dense layer, the optimum's heavy tail), malach n = 40 0.64 (one
    # product per weight: no better than a coarse guess)
    [("pensia", 40, 1e-2), ("da-cunha", 56, 1e-2), ("structured", 28, 0.2), ("malach", 40, 1.0)],
)
def test_ticket_approximates_target(method: str, n: int, tol: float) -> None:
    target = _tiny_cnn()
    ticket = prune_sequential(target, method, n, seed=0)
    assert ticket.network is not target
    # twice the depth: every conv/dense layer became conv-relu-conv (dense-relu-dense)
    assert len(ticket.network.ops) == len(target.ops) + 2 * 3
    x = np.random.default_rng(1).normal(size=(64, 12))
    y = target.scores(x)
    y_t = ticket.network.scores(x) * ticket.output_scale
    err = float(np.abs(y_t - y).max() / np.abs(y).max())
    assert err < tol, f"{method}: relative output error {err:.3g}"
    s = ticket.summary(x, target.predict(x))
    assert s["target_accuracy"] == 1.0
    assert 0 < s["kept_parameters"] < s["total_parameters"]
    assert s["overparam_total"] == pytest.approx(ticket.total / target.n_parameters)
    assert len(s["layers"]) == 3


def test_subset_sums_beat_single_products() -> None:
    """The seeds' central claim on one layer: at the same random network (n = 24 units
    per input), subset sums reach errors orders of magnitude below the best single
    product (Malach et al.), and the subset-sum error falls fast with n."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 6))
    b = rng.normal(size=6) * 0.1
    eye = np.eye(8)

    def err(method: str, n: int) -> float:
        blk = build_block(
            method, w, b, n, np.random.default_rng(2), w_max=0.25, inputs_nonnegative=True
        )
        got = blk(eye) - blk(np.zeros((1, 8)))
        return float(np.abs(got - blk.scale * w).max() / np.abs(blk.scale * w).max())

    assert err("pensia", 24) < err("malach", 24) / 20
    assert err("pensia", 32) < err("pensia", 16) / 10
    assert err("da-cunha", 32) < err("da-cunha", 16) / 10


def test_structured_keeps_whole_channel_blocked_filters_in_sign_pairs() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3))  # 2 input channels x kernel 3, 3 outputs
    blk = build_block(
        "structured", w, np.zeros(3), 24, np.random.default_rng(1), w_max=1.0,
        inputs_nonnegative=False, groups=np.arange(6).reshape(2, 3),
    )  # fmt: skip
    u, v = blk.u_weights, blk.v_weights
    h = u.shape[1] // 2
    # units come in pairs (U, V) and (-U, -V): the block is linear, relu(z) - relu(-z) = z
    np.testing.assert_array_equal(u[:, h:], -u[:, :h])
    np.testing.assert_array_equal(v[h:], -v[:h])
    x = rng.normal(size=(5, 6))
    np.testing.assert_allclose(blk(x), x @ (u[:, :h] @ v[:h]), atol=1e-12)
    # every kept filter covers its whole input group (channel-blocked, kept whole)...
    nz = u[:, :h] != 0
    for col in range(h):
        assert np.flatnonzero(nz[:, col]).tolist() in ([0, 1, 2], [3, 4, 5])
    # ...and is shared: some filters feed several outputs (each its own subset)
    assert ((v[:h] != 0).sum(axis=1) > 1).any()
    assert blk.units_kept < blk.units_total
    # the realised kernel is the MRSS optimum of each slice: errors << the weights
    realised = u[:, :h] @ v[:h]
    assert np.abs(realised - blk.scale * w).max() < 0.1 * blk.scale * np.abs(w).max()


def test_structured_on_nonnegative_inputs_needs_no_pairs() -> None:
    """After a ReLU the filters are half-normal: relu is the identity on x >= 0, so no
    sign pairs (half the hidden channels), and the block still realises c W."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3))
    kw = {"w_max": 1.0, "groups": np.arange(6).reshape(2, 3)}
    blk = build_block("structured", w, np.zeros(3), 24, np.random.default_rng(1),
                      inputs_nonnegative=True, **kw)  # fmt: skip
    paired = build_block("structured", w, np.zeros(3), 24, np.random.default_rng(1),
                         inputs_nonnegative=False, **kw)  # fmt: skip
    assert (blk.u_weights >= 0).all() and (blk.u_bias >= 0).all()
    assert blk.units_total == paired.units_total // 2
    x = rng.random((7, 6))  # non-negative
    lin = x @ (blk.u_weights @ blk.v_weights) + blk.u_bias @ blk.v_weights
    np.testing.assert_allclose(blk(x), lin, atol=1e-12)
    got = blk(np.eye(6)) - blk(np.zeros((1, 6)))
    assert np.abs(got - blk.scale * w).max() < 0.1 * blk.scale * np.abs(w).max()


def test_structured_groups_split_kernels_into_runs() -> None:
    from labrss.slth.tickets import _flattened_channels, _groups

    conv2 = Conv(np.zeros((4, 2, 3, 3)), np.zeros(4), (1, 1), ((0, 0), (0, 0)))
    g = _groups(conv2, 3)  # a 3x3 kernel in rows of 3, per input channel
    assert g.shape == (6, 3)
    assert g[:3].tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert g[3].tolist() == [9, 10, 11]
    assert _groups(conv2, None).shape == (2, 9)  # whole channels: the paper's blocks
    conv1 = Conv(np.zeros((4, 1, 5)), np.zeros(4), (1,), ((0, 0),))
    assert _groups(conv1, 3).tolist() == [[0, 1, 2], [3, 4, -1]]  # -1 pads
    dense = Layer(np.zeros((5, 2)), np.zeros(2))
    assert _groups(dense, 3).tolist() == [[0], [1], [2], [3], [4]]  # flat input: 1x1
    # after a flatten of (2 channels, 5 positions): a kernel covering the input, per channel
    dense10 = Layer(np.zeros((10, 2)), np.zeros(2))
    assert _groups(dense10, 3, (2, 5)).tolist() == [[0, 1, 2], [3, 4, -1], [5, 6, 7], [8, 9, -1]]
    assert _flattened_channels(_tiny_cnn(), 5) == (2, 6)
    assert _flattened_channels(_tiny_cnn(), 0) is None
    # a ticket on padded groups approximates as well
    w = np.random.default_rng(3).normal(size=(5, 4))
    blk = build_block(
        "structured", w, np.zeros(4), 24, np.random.default_rng(2), w_max=1.0,
        inputs_nonnegative=False, groups=_groups(conv1, 3),
    )  # fmt: skip
    got = blk(np.eye(5)) - blk(np.zeros((1, 5)))
    assert np.abs(got - blk.scale * w).max() < 0.1 * blk.scale * np.abs(w).max()


def test_ticket_saves_as_onnx(tmp_path: Path) -> None:
    ticket = prune_sequential(_tiny_cnn(), "da-cunha", 16)
    path = save_onnx(ticket.network, tmp_path / "ticket.onnx", dtype=np.float64)
    x = np.random.default_rng(2).normal(size=(5, 12))
    np.testing.assert_allclose(load_onnx(path).forward(x), ticket.network.forward(x), rtol=1e-12)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown method 'lottery'"):
        prune_sequential(_tiny_cnn(), "lottery")
    with pytest.raises(ValueError, match="n = 0"):
        prune_sequential(_tiny_cnn(), "pensia", 0)
    assert set(TICKET_METHODS) == {"pensia", "malach", "da-cunha", "structured"}
