"""`labrss network`: evaluate a network on inputs, or describe its layers and tiles.

    labrss network info mnist1d-cnn                   # layers, shapes, parameters, tiles
    labrss network info net.onnx --board 32x32 --json
    labrss network eval net.onnx --inputs x.npy --out y.npy

``FILE`` is an ``.onnx`` file, an ``.npz`` weights file or a built-in name
(``mnist1d-cnn``, ``digits-cnn``, ``digits-mlp``). ``eval`` runs labrss's own NumPy forward
pass (float64) on the ``.npy`` inputs (``(B, *input_shape)`` or flat ``(B, d_in)``) and
saves the outputs ``(B, *output_shape)``. ``info`` lists every operation with its input
and output shape and parameters; for conv and dense layers the matrix a crossbar runs
(``d_in x d_out``, one vector per output position) and the tiles it needs on a board of
``--board ROWSxCOLS`` (default 16x16, the simulator's default board). Exit code 2 for
bad input (unreadable or unsupported file, inputs of the wrong shape).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

EXIT_BAD_INPUT = 2


def parse_board(text: str) -> tuple[int, int]:
    """``ROWSxCOLS`` (e.g. ``16x16``) as two ints >= 1 (columns >= 2: one pair)."""
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--board {text!r}: expected ROWSxCOLS, e.g. 16x16"
        ) from None
    if rows < 1 or cols < 2:
        raise argparse.ArgumentTypeError(
            f"--board {text!r}: need >= 1 row and >= 2 columns (one differential pair)"
        )
    return rows, cols


def register(subparsers: Any) -> None:
    """Add the ``network`` sub-command with ``eval`` and ``info``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "network",
        help="evaluate a network (ONNX, .npz, built-in) or describe its layers and tiles",
        description=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    sub = p.add_subparsers(dest="network_command", metavar="ACTION", required=True)
    e = sub.add_parser("eval", help="run the network on .npy inputs, save the outputs")
    e.add_argument("file", metavar="FILE", help=".onnx, .npz or a built-in name")
    e.add_argument("--inputs", required=True, metavar="X.npy", help="inputs (B, ...)")
    e.add_argument("--out", required=True, metavar="Y.npy", help="where the outputs go")
    e.set_defaults(func=run_eval)
    i = sub.add_parser("info", help="layers, shapes, parameters and tiles on a board")
    i.add_argument("file", metavar="FILE", help=".onnx, .npz or a built-in name")
    i.add_argument(
        "--board", type=parse_board, default=(16, 16), metavar="ROWSxCOLS", help="default 16x16"
    )
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(func=run_info)


def run_eval(args: argparse.Namespace) -> int:
    """``labrss network eval``."""
    from labrss.networks.files import load_network

    try:
        net = load_network(args.file)
        try:
            x = np.load(Path(args.inputs), allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{args.inputs}: not a readable .npy array ({exc})") from None
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{args.inputs}: dtype {x.dtype}; expected numbers")
        y = net.forward(x)
        np.save(Path(args.out), y)
    except ValueError as exc:
        print(f"labrss network eval: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{args.out}: outputs {y.shape} of {net.name} for {x.shape[0]} input(s)")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """``labrss network info``."""
    from labrss.networks.files import load_network

    rows, cols = args.board
    try:
        net = load_network(args.file)
        info = net.describe(rows, cols)
    except ValueError as exc:
        print(f"labrss network info: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"{info['name']}: input {tuple(info['input_shape'])}, output "
        f"{tuple(info['output_shape'])}, {info['parameters']} parameters"
    )
    print(
        f"{'#':>3} {'op':<8} {'input':<14} {'output':<14} {'params':>7} {'matrix':>9} "
        f"{'vectors':>7} {'tiles':>5}"
    )
    for lay in info["layers"]:
        matrix = "x".join(map(str, lay["matrix"])) if "matrix" in lay else ""
        print(
            f"{lay['index']:>3} {lay['op']:<8} {tuple(lay['input_shape'])!s:<14} "
            f"{tuple(lay['output_shape'])!s:<14} {lay['parameters']:>7} {matrix:>9} "
            f"{lay.get('vectors_per_sample', ''):>7} {lay.get('tiles', ''):>5}"
        )
    print(
        f"on a {rows}x{cols} board: {info['tiles']} tiles, {info['mvms_per_sample']} MVMs per "
        "sample (tiles x vectors, bias rows included)"
    )
    return 0
