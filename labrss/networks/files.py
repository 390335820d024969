"""Open a network by file or built-in name: ONNX, ``.npz`` weights, shipped CNNs.

``mnist1d-cnn`` and ``digits-cnn`` are the CNNs trained by ``scripts/train_targets.py``
and shipped as ONNX files in ``labrss/networks/data/`` (docs/networks.md), so that
running and testing labrss needs no training library. ``digits-mlp`` is the built-in
digits MLP (`labrss.networks.digits`, trained in a second).
"""

from __future__ import annotations

from pathlib import Path

from labrss.networks.onnx_file import OnnxImportError, load_onnx
from labrss.networks.sequential import SequentialNetwork
from labrss.networks.weights_file import load_weights

__all__ = ["BUILTIN_NETWORKS", "builtin_path", "load_network"]

#: Built-in networks: name -> ONNX file in labrss/networks/data (None: trained on demand).
BUILTIN_NETWORKS: dict[str, str | None] = {
    "mnist1d-cnn": "mnist1d_cnn.onnx",
    "digits-cnn": "digits_cnn.onnx",
    "digits-mlp": None,
}

_DATA = Path(__file__).with_name("data")


def builtin_path(name: str) -> Path:
    """The shipped ONNX file of a built-in CNN."""
    file = BUILTIN_NETWORKS.get(name)
    if file is None:
        msg = f"{name!r} is not a shipped ONNX network ({', '.join(BUILTIN_NETWORKS)})"
        raise ValueError(msg)
    return _DATA / file


def load_network(source: str | Path) -> SequentialNetwork:
    """A network from an ``.onnx`` file, an ``.npz`` weights file or a built-in name.

    Raises ValueError (`OnnxImportError`, `labrss.networks.weights_file.WeightsFileError`)
    naming the file and what is wrong; an unknown suffix or name lists the choices.
    """
    text = str(source)
    if text in BUILTIN_NETWORKS:
        if text == "digits-mlp":
            from labrss.networks.digits import train_digits_mlp

            return SequentialNetwork.from_network(train_digits_mlp().network)
        net = load_onnx(builtin_path(text))
        net.name = text
        return net
    p = Path(source)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        return load_onnx(p)
    if suffix == ".npz":
        return SequentialNetwork.from_network(load_weights(p))
    msg = (
        f"{p}: unknown network file type {suffix or '(none)'!r}; give an .onnx file, an .npz "
        f"weights file or one of {', '.join(BUILTIN_NETWORKS)}"
    )
    raise OnnxImportError(msg)
