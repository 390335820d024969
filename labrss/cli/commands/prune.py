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
from labrss.networks.sequential import SequentialNetwork
from labrss.slth.tickets import DEFAULT_N, TicketResult
from labrss.station import StationError
from labrss.workflows.batch import BatchInterrupted
from labrss.workflows.prune import (
    CELLS_PER_CHUNK,
    PRUNE_METHODS,
    PruneOutcome,
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
        metavar="digits|mnist1d-cnn|digits-cnn|FILE",
        help="the target: the digits example MLP (default), a shipped CNN (mnist1d-cnn, "
        "digits-cnn: test accuracies on their test sets) or a .npz / .onnx file",
    )
    p.add_argument(
        "--hidden",
        type=_hidden,
        default=(16,),
        metavar="H1,H2",
        help="hidden widths of the digits MLP (default 16: 64-16-10)",
    )
    p.add_argument("--method", choices=sorted(PRUNE_METHODS), default="pensia")
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="random units per target input (pensia, malach), per output channel (da-cunha), "
        "random filters per input group (structured); default 40 (structured 24)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random network (default 0)")
    p.add_argument(
        "--w-max",
        type=float,
        default=None,
        help="normalised target peak (default 0.25; structured 1.0)",
    )
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
) -> tuple[Network | SequentialNetwork, np.ndarray | None, np.ndarray | None]:
    """The target network and, when its data set is known, its test split."""
    from labrss.networks.digits import load_digits_split, train_digits_mlp

    if args.network == "digits":
        model = train_digits_mlp(args.hidden, 0)
        return model.network, model.data.x_test, model.data.y_test
    if args.network in ("mnist1d-cnn", "digits-cnn"):
        from labrss.workflows.cnn_demo import cnn_data

        net, _, x, y = cnn_data(args.network)
        return net, x, y
    if str(args.network).lower().endswith(".onnx"):
        from labrss.networks.onnx_file import load_onnx

        return load_onnx(args.network), None, None
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
        n=args.n if args.n is not None else DEFAULT_N[args.method],
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
    if isinstance(ticket, TicketResult):
        return _report_ticket(args, settings, ticket, outcome, x_test, y_test)
    assert isinstance(target, Network)
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


def _report_ticket(  # noqa: PLR0917 - one call site, everything it reports
    args: argparse.Namespace,
    settings: PruneSettings,
    ticket: TicketResult,
    outcome: PruneOutcome,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
) -> int:
    """Summary and files of a CNN construction (`labrss.slth.tickets`): pruned.onnx."""
    from labrss.networks.onnx_file import save_onnx

    summary = ticket.summary(x_test, y_test)
    batch = outcome.batch
    summary.update(
        {
            "target": ticket.target.name,
            "wall_time_s": outcome.wall_time_s,
            "engine": batch.where,
            "chunks": len(batch.results),
            "chunks_computed": batch.computed,
            "chunks_reused": batch.reused,
            "compute_time_s": batch.compute_seconds(),
        }
    )
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = save_onnx(ticket.network, args.out / "pruned.onnx")
    json_path = args.out / "prune.json"
    json_path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"prune ({settings.method}, n = {ticket.n}, seed {settings.seed}): {ticket.target.name}, "
        f"{ticket.target_parameters} target parameters; kept {ticket.kept} of {ticket.total} "
        f"random parameters ({summary['overparam_kept']:.1f}x kept, "
        f"{summary['overparam_total']:.1f}x drawn)"
    )
    if "pruned_accuracy" in summary:
        print(
            f"accuracy: target {100 * summary['target_accuracy']:.2f} %, pruned network "
            f"{100 * summary['pruned_accuracy']:.2f} % ({summary['test_vectors']} test inputs)"
        )
    print(
        "largest weight error per layer: "
        + ", ".join(f"{r.max_error_rel:.3g}" for r in ticket.layers)
        + f"; {outcome.wall_time_s:.1f} s on {batch.where}"
    )
    print(f"wrote {onnx_path}, {json_path}")
    return 0
