"""`labrss network eval | info`: outputs, JSON, tiles, clear errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labrss.cli.main import main
from labrss.networks.layers import Conv, Flatten, ReLU
from labrss.networks.model import Layer
from labrss.networks.onnx_file import save_onnx
from labrss.networks.sequential import SequentialNetwork


@pytest.fixture
def cnn_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    net = SequentialNetwork(
        [
            Conv(rng.normal(size=(4, 1, 5)), rng.normal(size=4), (2,), ((1, 1),)),
            ReLU(),
            Flatten(),
            Layer(rng.normal(size=(4 * 19, 10)), rng.normal(size=10)),
        ],
        (1, 40),
        name="tiny",
    )
    return save_onnx(net, tmp_path / "tiny.onnx", dtype=np.float64)


def test_eval_writes_outputs(
    cnn_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng(1).normal(size=(6, 40))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    assert (
        main(
            [
                "network",
                "eval",
                str(cnn_file),
                "--inputs",
                str(tmp_path / "x.npy"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "outputs (6, 10)" in capsys.readouterr().out
    from labrss.networks.onnx_file import load_onnx

    np.testing.assert_allclose(np.load(out), load_onnx(cnn_file).forward(x), rtol=1e-12)


def test_info_text_and_json(cnn_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["network", "info", str(cnn_file), "--board", "8x8"]) == 0
    text = capsys.readouterr().out
    assert "conv1d" in text and "on a 8x8 board" in text
    assert main(["network", "info", str(cnn_file), "--board", "8x8", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    conv = info["layers"][0]
    # kernel matrix 5 x 4 plus a bias row on 8 rows x 4 pairs: one tile, 19 patches
    assert conv["matrix"] == [5, 4] and conv["tiles"] == 1 and conv["vectors_per_sample"] == 19
    dense = info["layers"][3]
    # 76 + 1 rows on 8 rows: 10 row blocks x 3 column blocks (10 outputs on 4 pairs)
    assert dense["tiles"] == 30
    assert info["tiles"] == 31 and info["mvms_per_sample"] == 19 + 30
    assert info["parameters"] == 4 * 5 + 4 + 76 * 10 + 10


def test_errors_exit_2(cnn_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((3, 41)))
    code = main(
        [
            "network",
            "eval",
            str(cnn_file),
            "--inputs",
            str(tmp_path / "bad.npy"),
            "--out",
            str(tmp_path / "y.npy"),
        ]
    )
    assert code == 2
    assert "input shape (3, 41), expected (B, 1, 40) or (B, 40)" in capsys.readouterr().err
    assert main(["network", "info", str(tmp_path / "net.h5")]) == 2
    assert "unknown network file type '.h5'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["network", "info", str(cnn_file), "--board", "8by8"])
