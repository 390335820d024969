"""Network: forward with ReLU between layers (not after the last), predict, accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from labrss.networks.model import Layer, Network


def test_forward_by_hand() -> None:
    # x = (1, 2); layer 0: h = relu(x W0 + b0) with pre-activations (3, -1) -> (3, 0)
    w0 = np.array([[1.0, -1.0], [1.0, 0.0]])
    b0 = np.array([0.0, 0.0])
    # layer 1: y = h W1 + b1 = (3*2 + 0*5 - 1, 3*(-1) + 0 + 0.5) = (5, -2.5): no ReLU
    w1 = np.array([[2.0, -1.0], [5.0, 7.0]])
    b1 = np.array([-1.0, 0.5])
    net = Network([(w0, b0), (w1, b1)])
    y = net.forward(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(y, [[5.0, -2.5]])
    acts = net.activations(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(acts[1], [[3.0, 0.0]])
    assert net.predict(np.array([[1.0, 2.0]])).tolist() == [0]
    assert net.sizes == (2, 2, 2)
    assert net.n_parameters == 12


def test_accuracy_counts_correct_predictions() -> None:
    net = Network([(np.eye(3), np.zeros(3))])
    x = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    assert net.accuracy(x, np.array([0, 1, 2, 2])) == 0.75


def test_shape_chain_mismatch_names_layer() -> None:
    with pytest.raises(ValueError, match=r"layer 1 has 4 inputs but layer 0 has 3 outputs"):
        Network([(np.zeros((2, 3)), np.zeros(3)), (np.zeros((4, 1)), np.zeros(1))])


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="bias has shape"):
        Layer(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="2-D"):
        Layer(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="at least one layer"):
        Network([])
    net = Network([(np.zeros((2, 3)), np.zeros(3))])
    with pytest.raises(ValueError, match=r"input shape \(1, 5\), expected \(B, 2\)"):
        net.forward(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="labels shape"):
        net.accuracy(np.zeros((2, 2)), np.zeros(3, dtype=int))
