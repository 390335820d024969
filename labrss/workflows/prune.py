"""SLTH pruning on the batch engine: a registry of methods, each turned into chunks.

`prune_network` prunes a random network so that it approximates a target network with
the method named in `PruneSettings.method`, on the batch engine (`labrss.workflows.
batch`): the method's subset-sum instances are split into chunks by position, solved on
Dask (a LocalCluster, an existing cluster, or this process), each finished chunk saved
under the output (``resume=True`` recomputes nothing finished), and the pruned network
assembled from the chunks in key order. The result is bit-identical to the method's
one-call function (`labrss.slth.pensia.prune_to_target` for ``pensia``) for any number
of workers.

The seam for another method (convolutional, structured, Malach et al.): add one entry to
`PRUNE_METHODS`, a `PruneMethod` whose ``build(target, settings)`` returns a `PruneJob`:

* ``chunks``: `labrss.workflows.batch.Chunk` s whose ``func`` is a pure, module-level
  function of arrays returning a ``dict[str, ndarray]`` (the method's solver, e.g.
  `labrss.slth.pensia.solve_instances`); all randomness is drawn in ``build`` from
  ``settings.seed`` or derived from the chunk's position, never on a worker;
* ``assemble(results)``: the pruned ticket from ``{chunk key: arrays}``;
* ``fingerprint``: what else identifies the job for ``--resume`` (the target network's
  hash and the method's settings are added by `prune_network`).

`labrss prune --method NAME` and the GUI's Program tab pick methods from the registry;
nothing else needs to change.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labrss.networks.model import Network
from labrss.networks.sequential import SequentialNetwork
from labrss.slth.pensia import SLTHResult, assemble_pruning, plan_pruning, solve_instances
from labrss.slth.tickets import (
    DEFAULT_W_MAX,
    TicketResult,
    assemble_ticket,
    plan_ticket,
    ticket_layer,
)
from labrss.workflows.batch import (
    BatchReport,
    Chunk,
    ChunkStore,
    EngineSettings,
    Progress,
    resolve_scheduler,
    run_chunks,
)

__all__ = [
    "CELLS_PER_CHUNK",
    "LARGE_NETWORK_INSTANCES",
    "PRUNE_METHODS",
    "PruneJob",
    "PruneMethod",
    "PruneOutcome",
    "PruneSettings",
    "engine_for",
    "network_fingerprint",
    "prune_network",
    "ticket_summary",
]

#: Subset-sum instances per chunk (about a second of one core at n = 40).
CELLS_PER_CHUNK = 2048
#: From this many instances on, the GUI prunes on a LocalCluster instead of in-process.
LARGE_NETWORK_INSTANCES = 50_000


@dataclass(frozen=True)
class PruneSettings:
    """A pruning: method (a `PRUNE_METHODS` name) and its parameters.

    ``n`` random units per target input, ``seed`` of the random network, ``w_max`` (None:
    the method's default, `labrss.slth.tickets.DEFAULT_W_MAX`) and ``eps_rel`` as in
    `labrss.slth.pensia.prune_to_target` (``pensia`` on an MLP only), ``cells_per_chunk`` the
    chunk size in instances (part of the job's identity: it fixes the chunks' keys).
    """

    method: str = "pensia"
    n: int = 40
    seed: int = 0
    w_max: float | None = None
    eps_rel: float | None = None
    cells_per_chunk: int = CELLS_PER_CHUNK

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        if self.method not in PRUNE_METHODS:
            msg = f"prune: unknown method {self.method!r}; choose from {', '.join(PRUNE_METHODS)}"
            raise ValueError(msg)
        if self.n < 1:
            msg = f"prune: n = {self.n}: need at least one random unit per input"
            raise ValueError(msg)
        if self.cells_per_chunk < 1:
            msg = f"prune: cells per chunk = {self.cells_per_chunk}: need at least 1"
            raise ValueError(msg)


@dataclass(frozen=True)
class PruneJob:
    """What a method hands the engine: the chunks and how to put their results together."""

    chunks: list[Chunk]
    assemble: Callable[[Mapping[str, dict[str, np.ndarray]]], SLTHResult | TicketResult]
    fingerprint: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PruneMethod:
    """A registered pruning method: its name, a one-line description, its job builder."""

    name: str
    description: str
    build: Callable[[Network | SequentialNetwork, PruneSettings], PruneJob]


def _pensia_job(target: Network | SequentialNetwork, settings: PruneSettings) -> PruneJob:
    """Pensia et al.: the plan drawn here, each layer's instances chunked by input rows
    (a CNN or any `SequentialNetwork`: `_ticket_job`)."""
    if isinstance(target, SequentialNetwork):
        return _ticket_job(target, settings)
    plan = plan_pruning(
        target,
        settings.n,
        seed=settings.seed,
        w_max=DEFAULT_W_MAX["pensia"] if settings.w_max is None else settings.w_max,
        eps_rel=settings.eps_rel,
    )
    chunks: list[Chunk] = []
    layout: list[list[str]] = []
    for index, inst in enumerate(plan.layers):
        rows, d_out = inst.targets.shape[1], inst.targets.shape[2]
        per = max(1, settings.cells_per_chunk // (2 * d_out))
        keys = []
        for r0 in range(0, rows, per):
            r1 = min(r0 + per, rows)
            key = f"pensia_L{index:02d}_r{r0:06d}-{r1:06d}"
            keys.append(key)
            chunks.append(
                Chunk(
                    key,
                    solve_instances,
                    (
                        np.ascontiguousarray(inst.pos_el[:, r0:r1]),
                        np.ascontiguousarray(inst.neg_el[:, r0:r1]),
                        np.ascontiguousarray(inst.targets[:, r0:r1]),
                        inst.eps_abs,
                    ),
                    cost=float(2 * (r1 - r0) * d_out * settings.n),
                )
            )
        layout.append(keys)

    def assemble(results: Mapping[str, dict[str, np.ndarray]]) -> SLTHResult:
        solutions = [
            {
                name: np.concatenate([results[k][name] for k in keys], axis=1)
                for name in ("chosen", "value", "reachable")
            }
            for keys in layout
        ]
        return assemble_pruning(plan, solutions)

    return PruneJob(chunks, assemble)


def _as_sequential(target: Network | SequentialNetwork) -> SequentialNetwork:
    return (
        target if isinstance(target, SequentialNetwork) else SequentialNetwork.from_network(target)
    )


def _ticket_job(target: Network | SequentialNetwork, settings: PruneSettings) -> PruneJob:
    """The CNN constructions (`labrss.slth.tickets`): the layers' scales chained here, one
    chunk per target layer (its block drawn from ``[seed, op index]`` and solved there)."""
    net = _as_sequential(target)
    plan = plan_ticket(net, settings.method, settings.n, seed=settings.seed, w_max=settings.w_max)
    chunks = [
        Chunk(
            f"{settings.method}_op{job.op_index:03d}",
            ticket_layer,
            job.args(),
            cost=float(job.weights.size * job.n),
        )
        for job in plan.layers
    ]

    def assemble(results: Mapping[str, dict[str, np.ndarray]]) -> TicketResult:
        return assemble_ticket(
            plan,
            {
                job.op_index: results[f"{settings.method}_op{job.op_index:03d}"]
                for job in plan.layers
            },
        )

    return PruneJob(chunks, assemble, {"w_max": plan.w_max, "n": plan.n})


#: The pruning methods by name (`labrss prune --method`): add an entry to add a method.
PRUNE_METHODS: dict[str, PruneMethod] = {
    "pensia": PruneMethod(
        "pensia",
        "Pensia et al. 2020: each weight two subset sums of random products (a CNN: one-entry "
        "random filters)",
        _pensia_job,
    ),
    "da-cunha": PruneMethod(
        "da-cunha",
        "da Cunha, Natale, Viennot 2022: per output channel random full filters, each kernel "
        "entry a subset sum (first layer of signed inputs: the pensia split)",
        _ticket_job,
    ),
    "structured": PruneMethod(
        "structured",
        "da Cunha, d'Amore, Natale 2023: channel-blocked random filters kept or removed "
        "whole, each kernel slice a multidimensional subset sum; --n filters per input "
        "group of <= 3 kernel positions (default 24)",
        _ticket_job,
    ),
    "malach": PruneMethod(
        "malach",
        "Malach et al. 2020: one random product per weight, no subset sum (the baseline)",
        _ticket_job,
    ),
}


@dataclass(frozen=True)
class PruneOutcome:
    """The pruned ticket, the engine's report and the wall time (s)."""

    ticket: SLTHResult | TicketResult
    settings: PruneSettings
    batch: BatchReport
    wall_time_s: float


def network_fingerprint(network: Network | SequentialNetwork) -> str:
    """SHA-256 (16 hex digits) of a network's layer shapes and weights (exact bytes)."""
    h = hashlib.sha256()
    if isinstance(network, SequentialNetwork):
        h.update(repr(network).encode())
        params = [(m.weights, m.bias) for m in network.matrix_layers()]
    else:
        params = [(layer.weights, layer.bias) for layer in network.layers]
    for pair in params:
        for arr in pair:
            a = np.ascontiguousarray(arr, dtype=np.float64)
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()[:16]


def engine_for(target: Network | SequentialNetwork, scheduler: str | None = None) -> EngineSettings:
    """The engine for pruning ``target`` interactively (the GUI's Program tab).

    With a ``scheduler`` (or ``$LABRSS_SCHEDULER``): that cluster. Else a network of at
    least `LARGE_NETWORK_INSTANCES` subset-sum instances runs on a LocalCluster (one
    worker process per core) and a smaller one in this process (a cluster's start-up
    would cost more than it saves).
    """
    address = resolve_scheduler(scheduler)
    if address is not None:
        return EngineSettings(scheduler=address)
    mats = (
        [(m.d_in, m.d_out) for m in target.matrix_layers()]
        if isinstance(target, SequentialNetwork)
        else [(lay.d_in, lay.d_out) for lay in target.layers]
    )
    instances = sum(2 * (d_in + 1) * d_out for d_in, d_out in mats)
    if instances >= LARGE_NETWORK_INSTANCES:
        return EngineSettings()
    return EngineSettings.in_process()


def prune_network(
    target: Network | SequentialNetwork,
    settings: PruneSettings,
    chunk_dir: Path | None,
    *,
    engine: EngineSettings | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    client: object | None = None,
) -> PruneOutcome:
    """Prune a random network to approximate ``target`` on the batch engine.

    ``chunk_dir``: where finished chunks are saved (None: not saved, no resume);
    ``engine``: where they run (default: a LocalCluster, one worker per core);
    ``client``: an open `distributed.Client` to use instead. Raises ValueError for bad
    settings or a ``resume`` of a different job, and
    `labrss.workflows.batch.BatchInterrupted` on Ctrl-C.
    """
    settings.validate()
    start = time.perf_counter()
    job = PRUNE_METHODS[settings.method].build(target, settings)
    store = None
    if chunk_dir is not None:
        store = ChunkStore.open(
            chunk_dir,
            {
                "job": "prune",
                "network": network_fingerprint(target),
                "method": settings.method,
                "n": settings.n,
                "seed": settings.seed,
                "w_max": settings.w_max,
                "eps_rel": settings.eps_rel,
                "cells_per_chunk": settings.cells_per_chunk,
                **job.fingerprint,
            },
            resume=resume,
        )
    report = run_chunks(
        job.chunks,
        engine if engine is not None else EngineSettings(),
        store=store,
        progress=progress,
        client=client,
    )
    ticket = job.assemble(report.results)
    return PruneOutcome(ticket, settings, report, time.perf_counter() - start)


def ticket_summary(
    ticket: SLTHResult,
    *,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    target: Network | None = None,
) -> dict[str, Any]:
    """A JSON-ready summary: sizes, over-parameterisation, per-layer errors, accuracies.

    ``target_accuracy`` and ``pruned_accuracy`` (fractions; the pruned network evaluated
    as itself) are given when test inputs and labels are.
    """
    params = sum(r.target_parameters for r in ticket.layers)
    out: dict[str, Any] = {
        "n": ticket.n,
        "seed": ticket.seed,
        "w_max": ticket.w_max,
        "target_parameters": params,
        "kept_weights": ticket.kept_weights,
        "total_weights": ticket.total_weights,
        "overparam_total": ticket.total_weights / params,
        "overparam_kept": ticket.kept_weights / params,
        "layers": [
            {
                "index": r.index,
                "shape": [r.d_in, r.d_out],
                "max_error_rel": r.max_error_rel,
                "rms_error_rel": r.rms_error_rel,
                "bias_max_error_rel": r.bias_max_error_rel,
                "n_unreachable": r.n_unreachable,
                "kept_weights": r.kept_weights,
                "total_weights": r.total_weights,
            }
            for r in ticket.layers
        ],
    }
    if x_test is not None and y_test is not None:
        out["pruned_accuracy"] = ticket.network.accuracy(x_test, y_test)
        if target is not None:
            out["target_accuracy"] = target.accuracy(x_test, y_test)
    return out
