"""User weights files: a `Network` from an ``.npz`` archive of layer matrices.

Format (docs/networks.md): a NumPy ``.npz`` (``np.savez``) with keys ``W0, b0, W1, b1,
...``. ``W<l>`` is layer ``l``'s weight matrix, shape ``(d_in, d_out)`` (inputs along the
rows: ``y = x @ W + b``); ``b<l>`` its bias ``(d_out,)``, optional (missing: zero).
Layers are numbered from 0 without gaps; ReLU between layers, none after the last.
No other keys are allowed; object arrays (pickles) are refused.
Every problem raises `WeightsFileError` naming the file, the layer and the value.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from labrss.networks.model import Layer, Network

__all__ = ["WeightsFileError", "load_weights", "save_weights"]

_KEY = re.compile(r"^([Wb])(\d+)$")


class WeightsFileError(ValueError):
    """A weights file that cannot be used, with the file, layer and value named."""


def _numeric(path: Path, key: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        msg = f"{path}: {key} has dtype {arr.dtype}; expected real numbers"
        raise WeightsFileError(msg)
    out = np.asarray(arr, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        layer = key[1:]
        msg = (
            f"{path}: layer {layer}: {key}[{', '.join(map(str, index))}] = "
            f"{float(out[index])!r}; weights and biases must be finite "
            f"({int(bad.sum())} non-finite value(s) in {key})"
        )
        raise WeightsFileError(msg)
    return out


def load_weights(path: str | Path) -> Network:
    """Read a weights file (format above) into a `Network` named after the file.

    Raises
    ------
    WeightsFileError
        Unreadable file, unknown keys, missing or non-consecutive layers, a weight matrix
        that is not 2-D, a bias of the wrong shape, consecutive layers whose shapes do not
        chain (``W<l>`` has ``d_out`` columns, ``W<l+1>`` must have ``d_out`` rows), NaN
        or inf values.
    """
    p = Path(path)
    try:
        archive = np.load(p, allow_pickle=False)
    except FileNotFoundError:
        msg = f"{p}: weights file not found"
        raise WeightsFileError(msg) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        msg = f"{p}: not a readable .npz weights file ({exc})"
        raise WeightsFileError(msg) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        msg = f"{p}: a single array, not an .npz archive with keys W0, b0, W1, ..."
        raise WeightsFileError(msg)
    with archive:
        weights: dict[int, np.ndarray] = {}
        biases: dict[int, np.ndarray] = {}
        for key in archive.files:
            match = _KEY.match(key)
            if match is None:
                msg = (
                    f"{p}: unknown key {key!r}; expected only W0, b0, W1, b1, ... "
                    "(W<l>: (d_in, d_out), b<l>: (d_out,))"
                )
                raise WeightsFileError(msg)
            try:
                arr = archive[key]
            except ValueError as exc:
                msg = f"{p}: {key} cannot be read without pickle ({exc})"
                raise WeightsFileError(msg) from None
            kind, index = match.group(1), int(match.group(2))
            (weights if kind == "W" else biases)[index] = _numeric(p, key, arr)
    if not weights:
        msg = f"{p}: no weight matrices; expected keys W0, b0, W1, b1, ..."
        raise WeightsFileError(msg)
    n_layers = max(weights) + 1
    missing = [i for i in range(n_layers) if i not in weights]
    if missing:
        msg = (
            f"{p}: layer {missing[0]}: W{missing[0]} is missing "
            f"(layers must be W0..W{n_layers - 1})"
        )
        raise WeightsFileError(msg)
    extra = sorted(set(biases) - set(weights))
    if extra:
        msg = f"{p}: layer {extra[0]}: b{extra[0]} is given but W{extra[0]} is not"
        raise WeightsFileError(msg)
    layers: list[Layer] = []
    for index in range(n_layers):
        w = weights[index]
        if w.ndim != 2 or 0 in w.shape:
            msg = (
                f"{p}: layer {index}: W{index} has shape {w.shape}; "
                "expected (d_in, d_out), both > 0"
            )
            raise WeightsFileError(msg)
        b = biases.get(index, np.zeros(w.shape[1]))
        if b.shape != (w.shape[1],):
            msg = (
                f"{p}: layer {index}: b{index} has shape {b.shape}; expected ({w.shape[1]},) "
                f"to match W{index} {w.shape}"
            )
            raise WeightsFileError(msg)
        if layers and layers[-1].d_out != w.shape[0]:
            msg = (
                f"{p}: layer {index}: W{index} has shape {w.shape} but W{index - 1} has "
                f"{layers[-1].d_out} outputs; the shapes must chain: W{index} needs "
                f"{layers[-1].d_out} rows (weights are stored (d_in, d_out))"
            )
            raise WeightsFileError(msg)
        layers.append(Layer(w, b))
    return Network(layers, name=p.name)


def save_weights(path: str | Path, network: Network) -> Path:
    """Write ``network`` in the weights file format (``W<l>``, ``b<l>``); returns the path.

    numpy appends ``.npz`` when the name lacks it; the returned path is the real one.
    """
    p = Path(path)
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    arrays: dict[str, np.ndarray] = {}
    for index, lay in enumerate(network.layers):
        arrays[f"W{index}"] = lay.weights
        arrays[f"b{index}"] = lay.bias
    np.savez(p, **arrays)  # type: ignore[arg-type]
    return p
