"""`labrss prune`: a strong lottery ticket (SLTH) for a target network, on the batch engine.

labrss prune --network digits --hidden 256,128 --n 40 --out prune-run --json
labrss prune --network net.npz --scheduler tcp://head:8786 --out run --resume
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from labrss.cli.batch_args import add_engine_arguments, engine_from_args, progress_bar
from labrss.networks.model import Network
from labrss.station import StationError
from labrss.workflows.batch import BatchInterrupted
from labrss.workflows.prune import (
    CELLS_PER_CHUNK,
    PRUNE_METHODS,
    PruneSettings,
    prune_network,
    ticket_summary,
)

__all__ = ["register", "run"]


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        msg = f"--hidden {text!r}: expected positive widths such as 256,128"
        raise argparse.ArgumentTypeError(msg)
    return sizes


def register(subparsers: Any) -> None:
    """Add the `prune` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "prune",
        help="SLTH pruning: a pruned random network approximating a target (batch engine)",
        description=(
            "Draw a seeded random network and prune it (no training) so that it "
            "approximates the target network, every weight a subset sum of random "
            "weights. The subset-sum instances run in chunks on Dask (a LocalCluster by "
            "default, or --scheduler); finished chunks are saved in --out/chunks and "
            "--resume continues an interrupted run. Writes --out/pruned.npz (the pruned "
            "network, a weights file) and --out/prune.json. Methods: "
            + "; ".join(f"{m.name}: {m.description}" for m in PRUNE_METHODS.values())
        ),
    )
    p.add_argument(
        "--network",
        default="digits",
        metavar="digits|FILE.npz",
        help="the target: the digits example MLP (default) or a weights file",
    )
    p.add_argument(
        "--hidden",
        type=_hidden,
        default=(16,),
        metavar="H1,H2",
        help="hidden widths of the digits MLP (default 16: 64-16-10)",
    )
    p.add_argument("--method", choices=sorted(PRUNE_METHODS), default="pensia")
    p.add_argument("--n", type=int, default=40, help="random units per target input (default 40)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random network (default 0)")
    p.add_argument("--w-max", type=float, default=0.25, help="normalised target peak (0.25)")
    p.add_argument(
        "--eps-rel",
        type=float,
        default=None,
        help="tolerance relative to each layer's peak: fewest products within it",
    )
    p.add_argument(
        "--cells-per-chunk",
        type=int,
        default=CELLS_PER_CHUNK,
        help=f"subset-sum instances per chunk (default {CELLS_PER_CHUNK})",
    )
    p.add_argument("--out", type=Path, default=Path("prune"), help="output directory (./prune)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_engine_arguments(p)
    p.set_defaults(func=run)


def _target(
    args: argparse.Namespace,
) -> tuple[Network, np.ndarray | None, np.ndarray | None]:
    """The target network and, for a digits-shaped network, the digits test split."""
    from labrss.networks.digits import load_digits_split, train_digits_mlp

    if args.network == "digits":
        model = train_digits_mlp(args.hidden, 0)
        return model.network, model.data.x_test, model.data.y_test
    from labrss.networks.weights_file import load_weights

    network = load_weights(args.network)
    if network.layers[0].d_in == 64 and network.layers[-1].d_out == 10:
        data = load_digits_split(0)
        return network, data.x_test, data.y_test
    return network, None, None


def run(args: argparse.Namespace) -> int:
    """Prune from parsed arguments; the summary on stdout, progress on stderr."""
    from labrss.networks.weights_file import save_weights

    settings = PruneSettings(
        method=args.method,
        n=args.n,
        seed=args.seed,
        w_max=args.w_max,
        eps_rel=args.eps_rel,
        cells_per_chunk=args.cells_per_chunk,
    )
    try:
        settings.validate()
        engine = engine_from_args(args)
        target, x_test, y_test = _target(args)
    except (ValueError, StationError, OSError) as exc:
        print(f"labrss prune: {exc}", file=sys.stderr)
        return 2
    try:
        with progress_bar("prune", show=not args.no_progress) as progress:
            outcome = prune_network(
                target,
                settings,
                args.out / "chunks",
                engine=engine,
                resume=args.resume,
                progress=progress,
            )
    except BatchInterrupted as exc:
        print(f"labrss prune: {exc}", file=sys.stderr)
        return 130
    except (ValueError, ConnectionError) as exc:
        print(f"labrss prune: {exc}", file=sys.stderr)
        return 2
    ticket = outcome.ticket
    summary = ticket_summary(ticket, x_test=x_test, y_test=y_test, target=target)
    batch = outcome.batch
    summary.update(
        {
            "method": settings.method,
            "target": target.name,
            "output_scale": ticket.output_scale,
            "wall_time_s": outcome.wall_time_s,
            "engine": batch.where,
            "chunks": len(batch.results),
            "chunks_computed": batch.computed,
            "chunks_reused": batch.reused,
            "compute_time_s": batch.compute_seconds(),
            "peak_rss_bytes_per_worker": batch.peak_rss_per_worker(),
        }
    )
    args.out.mkdir(parents=True, exist_ok=True)
    weights_path = save_weights(args.out / "pruned.npz", ticket.network)
    json_path = args.out / "prune.json"
    json_path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(summary))
        return 0
    acc = summary.get("pruned_accuracy")
    tacc = summary.get("target_accuracy")
    print(
        f"prune ({settings.method}, n = {settings.n}, seed {settings.seed}): {target.name}, "
        f"{summary['target_parameters']} target parameters; kept {ticket.kept_weights} of "
        f"{ticket.total_weights} random weights ({summary['overparam_kept']:.1f}x kept, "
        f"{summary['overparam_total']:.1f}x drawn)"
    )
    if acc is not None and tacc is not None:
        print(f"accuracy: target {100 * tacc:.2f} %, pruned network {100 * acc:.2f} %")
    worst = max(r.max_error_rel for r in ticket.layers)
    print(
        f"largest weight error {worst:.3g} of the layer's peak; "
        f"{outcome.wall_time_s:.1f} s on {batch.where}"
        + (f" ({batch.reused} chunk(s) reused)" if batch.reused else "")
    )
    print(f"wrote {weights_path}, {json_path}")
    return 0 if math.isfinite(worst) else 1
