"""`labrss prune`: the digits MLP pruned on the batch engine, outputs, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labrss.cli.main import main
from labrss.networks.digits import train_digits_mlp
from labrss.networks.weights_file import load_weights, save_weights
from labrss.slth.pensia import prune_to_target


def test_prunes_the_digits_mlp_as_one_call_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["prune", "--n", "16", "--seed", "4", "--out", str(tmp_path), "--workers", "0"]
    assert main([*argv, "--json", "--no-progress", "--cells-per-chunk", "300"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "pensia" and summary["n"] == 16
    assert summary["chunks"] == summary["chunks_computed"] > 3
    assert 0.0 < summary["pruned_accuracy"] <= 1.0
    assert summary["target_accuracy"] > 0.9
    pruned = load_weights(tmp_path / "pruned.npz")
    model = train_digits_mlp((16,), 0)
    ref = prune_to_target(model.network, 16, seed=4)
    for a, b in zip(pruned.layers, ref.network.layers, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights)
    assert summary["pruned_accuracy"] == ref.network.accuracy(model.data.x_test, model.data.y_test)
    # resumed: every chunk comes from the store, nothing is recomputed
    assert main([*argv, "--resume", "--cells-per-chunk", "300"]) == 0
    out = capsys.readouterr()
    assert "chunk(s) reused" in out.out and "accuracy: target" in out.out
    assert "prune" in out.err  # the progress bar
    assert json.loads((tmp_path / "prune.json").read_text())["chunks_computed"] == 0


def test_bad_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune", "--network", str(tmp_path / "none.npz"), "--workers", "0"]) == 2
    assert "none.npz" in capsys.readouterr().err
    assert main(["prune", "--n", "0", "--workers", "0"]) == 2
    assert "n = 0" in capsys.readouterr().err
    net = train_digits_mlp((16,), 0).network
    save_weights(tmp_path / "net.npz", net)
    code = main(
        ["prune", "--network", str(tmp_path / "net.npz"), "--scheduler", "nowhere",
         "--out", str(tmp_path / "o")]
    )  # fmt: skip
    assert code == 2
    assert "tcp://HOST:PORT" in capsys.readouterr().err


#: Runs ``python -m labrss ARGS`` with Python's default SIGINT handler, as for a command
#: typed in a terminal. A process that *starts* with SIGINT ignored keeps it ignored (Python
#: and every Unix program do so): a job started with ``&`` by a non-interactive shell, such
#: as a CI run launched in the background, and everything it starts. That, not the numba
#: cache, is why this test saw exit 0 and a finished run in 3 of 4 CI runs on 2026-12-03.
_AS_FROM_A_TERMINAL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('labrss', run_name='__main__', alter_sys=True)"
)


def test_ctrl_c_stops_with_saved_chunks_and_resume_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real SIGINT to a running `labrss prune`: exit 130, chunks kept, --resume ends it."""
    import signal
    import subprocess
    import sys
    import time

    # exact solves (--eps-rel 0) at n = 34 in 82 chunks: after the first two (the first
    # loads or compiles the numba kernels) about 80 x 20-60 ms of work is left when the
    # ^C lands (the test looks every 50 ms)
    argv = ["prune", "--n", "34", "--eps-rel", "0", "--seed", "1", "--out", str(tmp_path)]
    argv += ["--workers", "0"]
    argv += ["--cells-per-chunk", "20", "--no-progress"]
    proc = subprocess.Popen(
        [sys.executable, "-c", _AS_FROM_A_TERMINAL, *argv], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300  # generous: a busy shared machine
    # every *.npz is a finished chunk (a chunk being written is a hidden .partial file)
    while len(list((tmp_path / "chunks").glob("*.npz"))) < 2:
        assert proc.poll() is None, f"exited {proc.returncode}: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, "no chunk finished in 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err
    saved = len(list((tmp_path / "chunks").glob("*.npz")))
    assert main([*argv, "--resume", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["chunks_reused"] == saved >= 2
    assert summary["chunks_computed"] == summary["chunks"] - saved > 0
    assert f"{saved} of {summary['chunks']} chunks finished and saved" in err


def test_cnn_methods_through_the_engine_equal_one_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`labrss prune --network FILE.onnx --method M`: the chunked run (one chunk per layer)
    gives the same pruned network as `prune_sequential`; JSON and pruned.onnx written."""
    import json

    import numpy as np

    from labrss.networks.layers import Conv, Flatten, ReLU
    from labrss.networks.model import Layer
    from labrss.networks.onnx_file import load_onnx, save_onnx
    from labrss.networks.sequential import SequentialNetwork
    from labrss.slth.tickets import prune_sequential

    rng = np.random.default_rng(0)
    net = SequentialNetwork(
        [
            Conv(rng.normal(size=(3, 1, 3)), rng.normal(size=3) * 0.1, (2,), ((1, 1),)),
            ReLU(),
            Flatten(),
            Layer(rng.normal(size=(18, 4)), rng.normal(size=4) * 0.1),
        ],
        (1, 12),
    )
    path = save_onnx(net, tmp_path / "cnn.onnx", dtype=np.float64)
    x = rng.normal(size=(6, 12))
    for method, n in (("da-cunha", 24), ("malach", 24), ("structured", 4)):
        out = tmp_path / method
        argv = ["prune", "--network", str(path), "--method", method, "--n", str(n),
                "--out", str(out), "--workers", "0", "--json", "--no-progress"]  # fmt: skip
        assert main(argv) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["method"] == method and summary["n"] == n
        assert summary["chunks"] == 2  # one per target layer
        assert len(summary["layers"]) == 2
        assert 0 < summary["kept_parameters"] < summary["total_parameters"]
        one_call = prune_sequential(load_onnx(path), method, n, seed=0)
        want = one_call.network.forward(x)
        got = load_onnx(out / "pruned.onnx").forward(x)  # weights stored as float32
        np.testing.assert_allclose(got, want, atol=1e-5 * float(np.abs(want).max()))
