"""Train the shipped target CNNs and write them as ONNX files (needs ``pip install .[train]``).

    python scripts/train_targets.py [--out labrss/networks/data] [--steps 6000]

* ``mnist1d_cnn.onnx``: the CNN of the MNIST-1D paper (Greydanus 2020, ``ConvBase``):
  Conv1d(1, 25, 5, stride 2, padding 1), ReLU, Conv1d(25, 25, 3, 2, 1), ReLU,
  Conv1d(25, 25, 3, 2, 1), ReLU, flatten (125), Linear(125, 10); Adam, learning rate
  1e-2, batches of 100, 6000 steps, as the paper's training script; on the default
  MNIST-1D split (`labrss.networks.mnist1d.load_mnist1d`). Published: 94 % test accuracy.
* ``digits_cnn.onnx``: a 2-D CNN on scikit-learn's digits (8 x 8, pixels / 16), the split
  of the digits MLP (`labrss.networks.digits.load_digits_split`, seed 0):
  Conv2d(1, 8, 3, padding 1), ReLU, Conv2d(8, 16, 3, stride 2, padding 1), ReLU,
  flatten (256), Linear(256, 10); Adam 1e-2, batches of 100, 1500 steps.

PyTorch (CPU, seeded, deterministic algorithms) trains; ``torch.onnx.export`` writes
the file and labrss reads it back with `labrss.networks.onnx_file.load_onnx`: the script
checks that labrss's NumPy forward pass reproduces PyTorch's outputs on the test set to
1e-5 (relative) and prints both test accuracies. When the exporter is unavailable
(``torch.onnx`` needs its optional dependencies), the weights are written with
`labrss.networks.onnx_file.save_onnx` instead, after the same check.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - the script's whole point needs torch
    sys.exit("scripts/train_targets.py needs PyTorch: pip install '.[train]'")

from labrss.networks.digits import load_digits_split
from labrss.networks.layers import Conv, Flatten, ReLU, Reshape
from labrss.networks.mnist1d import load_mnist1d
from labrss.networks.model import Layer
from labrss.networks.onnx_file import load_onnx, save_onnx
from labrss.networks.sequential import Op, SequentialNetwork


def mnist1d_cnn() -> nn.Module:
    """Greydanus's ``ConvBase`` (25 channels) as an ``nn.Sequential`` on ``(B, 1, 40)``."""
    return nn.Sequential(
        nn.Conv1d(1, 25, 5, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(125, 10),
    )


def digits_cnn() -> nn.Module:
    """A small 2-D CNN for 8 x 8 digits on ``(B, 1, 8, 8)``."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(256, 10),
    )


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int,
    lr: float = 1e-2,
    batch: int = 100,
    seed: int = 0,
) -> None:
    """Adam on cross-entropy, random batches drawn with a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, xt.shape[0], (batch,), generator=gen)
        opt.zero_grad()
        loss = loss_fn(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
    model.eval()


def to_sequential(model: nn.Module, input_shape: tuple[int, ...], name: str) -> SequentialNetwork:
    """The trained ``nn.Sequential`` as a labrss network (the fallback writer's input)."""
    ops: list[Op] = []
    for m in model:
        if isinstance(m, nn.Unflatten):
            ops.append(Reshape(tuple(m.unflattened_size)))
        elif isinstance(m, nn.Conv1d | nn.Conv2d):
            w = m.weight.detach().numpy().astype(np.float64)
            b = m.bias.detach().numpy().astype(np.float64)
            pads = tuple((int(p), int(p)) for p in m.padding)
            ops.append(Conv(w, b, tuple(int(s) for s in m.stride), pads))
        elif isinstance(m, nn.ReLU):
            ops.append(ReLU())
        elif isinstance(m, nn.Flatten):
            ops.append(Flatten())
        elif isinstance(m, nn.Linear):
            ops.append(
                Layer(m.weight.detach().numpy().T.astype(np.float64), m.bias.detach().numpy())
            )
        else:
            raise TypeError(f"{name}: no labrss op for {m}")
    return SequentialNetwork(ops, input_shape, name=name)


def export(model: nn.Module, example: np.ndarray, input_shape: tuple[int, ...], path: Path) -> str:
    """Write ``path`` with torch.onnx.export, or with labrss's writer if that fails."""
    ex = torch.tensor(example[:2], dtype=torch.float32)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp) / path.name
            torch.onnx.export(
                model,
                (ex,),
                str(tmp_path),
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
            path.write_bytes(tmp_path.read_bytes())
        return "torch.onnx.export"
    except Exception as exc:  # the exporter's optional dependencies are missing
        print(f"  torch.onnx.export failed ({type(exc).__name__}: {exc}); using save_onnx")
        save_onnx(to_sequential(model, input_shape, path.stem), path)
        return "labrss save_onnx"


def check(model: nn.Module, path: Path, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Test accuracy in PyTorch and through labrss's reading of the file; they must agree."""
    with torch.no_grad():
        ref = model(torch.tensor(x, dtype=torch.float32)).numpy().astype(np.float64)
    net = load_onnx(path)
    ours = net.scores(x.astype(np.float32))
    err = float(np.abs(ours - ref).max() / np.abs(ref).max())
    if err > 1e-5:
        raise SystemExit(f"{path}: labrss and PyTorch differ by {err:.2e} (relative)")
    return float(np.mean(ref.argmax(1) == y)), float(np.mean(ours.argmax(1) == y))


def build(
    name: str,
    *,
    factory: Callable[[], nn.Module],
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    input_shape: tuple[int, ...],
    steps: int,
    out: Path,
) -> None:
    """Train one network, export it, check it and print its accuracies."""
    x_tr, y_tr, x_te, y_te = data
    torch.manual_seed(0)
    model = factory()
    t0 = time.perf_counter()
    train(model, x_tr, y_tr, steps=steps)
    path = out / f"{name}.onnx"
    how = export(model, x_te, input_shape, path)
    acc_torch, acc_ours = check(model, path, x_te, y_te)
    n_par = sum(p.numel() for p in model.parameters())
    print(
        f"{path}: {n_par} parameters, {steps} steps in {time.perf_counter() - t0:.1f} s, "
        f"written by {how}; test accuracy PyTorch {acc_torch:.4f}, labrss {acc_ours:.4f}"
    )


def main() -> int:
    """Train both networks."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("labrss/networks/data"))
    parser.add_argument("--steps", type=int, default=6000, help="MNIST-1D training steps")
    parser.add_argument("--digits-steps", type=int, default=1500)
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    m = load_mnist1d()
    build(
        "mnist1d_cnn",
        factory=mnist1d_cnn,
        data=(
            m.x_train.reshape(-1, 1, 40),
            m.y_train,
            m.x_test.reshape(-1, 1, 40),
            m.y_test,
        ),
        input_shape=(1, 40),
        steps=args.steps,
        out=args.out,
    )
    d = load_digits_split(0)
    shape = (1, 8, 8)
    build(
        "digits_cnn",
        factory=digits_cnn,
        data=(
            d.x_train.reshape(-1, *shape),
            d.y_train,
            d.x_test.reshape(-1, *shape),
            d.y_test,
        ),
        input_shape=shape,
        steps=args.digits_steps,
        out=args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
