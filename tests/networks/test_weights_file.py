"""Weights files: round trip, optional biases, and errors naming file, layer and value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.networks.model import Network
from labrss.networks.weights_file import WeightsFileError, load_weights, save_weights


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def test_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    net = Network(
        [
            (rng.normal(size=(4, 3)), rng.normal(size=3)),
            (rng.normal(size=(3, 2)), rng.normal(size=2)),
        ]
    )
    path = save_weights(tmp_path / "net", net)
    assert path.name == "net.npz"
    back = load_weights(path)
    assert back.sizes == (4, 3, 2)
    assert back.name == "net.npz"
    x = rng.normal(size=(5, 4))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


@given(st.lists(st.integers(1, 6), min_size=2, max_size=5), st.integers(0, 2**31), st.data())
def test_round_trip_any_chain(sizes: list[int], seed: int, data: st.DataObject) -> None:
    import tempfile

    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for index in range(len(sizes) - 1):
        arrays[f"W{index}"] = rng.normal(size=(sizes[index], sizes[index + 1]))
        if data.draw(st.booleans()):
            arrays[f"b{index}"] = rng.normal(size=sizes[index + 1])
    with tempfile.TemporaryDirectory() as tmp:
        net = load_weights(_save(Path(tmp) / "w.npz", **arrays))
    assert net.sizes == tuple(sizes)
    for index, lay in enumerate(net.layers):
        np.testing.assert_array_equal(lay.weights, arrays[f"W{index}"])
        expected_b = arrays.get(f"b{index}", np.zeros(sizes[index + 1]))
        np.testing.assert_array_equal(lay.bias, expected_b)


def test_missing_biases_are_zero(tmp_path: Path) -> None:
    net = load_weights(
        _save(tmp_path / "w.npz", W0=np.ones((2, 3)), W1=np.ones((3, 1)), b1=np.array([2.0]))
    )
    np.testing.assert_array_equal(net.layers[0].bias, np.zeros(3))
    np.testing.assert_array_equal(net.forward(np.array([[1.0, 1.0]])), [[8.0]])


def test_nan_names_file_layer_and_value(tmp_path: Path) -> None:
    w1 = np.ones((3, 2))
    w1[2, 1] = np.nan
    path = _save(tmp_path / "bad.npz", W0=np.ones((2, 3)), W1=w1)
    with pytest.raises(WeightsFileError, match=r"bad\.npz: layer 1: W1\[2, 1\] = nan"):
        load_weights(path)


def test_inf_bias(tmp_path: Path) -> None:
    path = _save(tmp_path / "b.npz", W0=np.ones((2, 3)), b0=np.array([0.0, np.inf, 1.0]))
    with pytest.raises(WeightsFileError, match=r"layer 0: b0\[1\] = inf"):
        load_weights(path)


def test_shape_chain_mismatch(tmp_path: Path) -> None:
    path = _save(tmp_path / "c.npz", W0=np.ones((4, 3)), W1=np.ones((5, 2)))
    with pytest.raises(
        WeightsFileError, match=r"c\.npz: layer 1: W1 has shape \(5, 2\) but W0 has 3 outputs"
    ):
        load_weights(path)


@pytest.mark.parametrize(
    ("arrays", "pattern"),
    [
        ({"W0": np.ones((2, 3)), "W2": np.ones((3, 1))}, r"layer 1: W1 is missing"),
        ({"W0": np.ones((2, 3)), "b1": np.ones(3)}, r"layer 1: b1 is given but W1 is not"),
        ({"W0": np.ones(3)}, r"layer 0: W0 has shape \(3,\)"),
        (
            {"W0": np.ones((2, 3)), "b0": np.ones(2)},
            r"layer 0: b0 has shape \(2,\); expected \(3,\)",
        ),
        ({"W0": np.ones((2, 3)), "weights": np.ones(3)}, r"unknown key 'weights'"),
        ({"b0": np.ones(3)}, r"no weight matrices"),
        ({"W0": np.array([["a", "b"]])}, r"W0 has dtype <U1"),
    ],
)
def test_malformed_files(tmp_path: Path, arrays: dict[str, np.ndarray], pattern: str) -> None:
    with pytest.raises(WeightsFileError, match=pattern):
        load_weights(_save(tmp_path / "m.npz", **arrays))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(WeightsFileError, match="not found"):
        load_weights(tmp_path / "none.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip archive")
    with pytest.raises(WeightsFileError, match=r"junk\.npz: not a readable"):
        load_weights(junk)
    single = tmp_path / "single.npy"
    np.save(single, np.ones((2, 2)))
    with pytest.raises(WeightsFileError, match="single array"):
        load_weights(single)
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, W0=np.array([{"a": 1}], dtype=object))
    with pytest.raises(WeightsFileError, match="W0"):
        load_weights(pickled)
