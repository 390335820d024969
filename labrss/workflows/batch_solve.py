"""Batch solves over many cells on the batch engine: `labrss.rss.solve`, chunked by cells.

`solve_cells` takes the same arguments as `labrss.rss.solve` for a flat batch of cells
(``elements`` (C, n), targets (C,) or (C, m)), splits the cells into chunks of
consecutive rows (by position), solves each chunk with `labrss.rss.solve` on the engine
(`labrss.workflows.batch`), and returns one `labrss.rss.RSSResult` in cell order. Every
cell is solved on its own, so the masks and values do not depend on the chunking, the
number of workers or where they run. With ``chunk_dir`` every finished chunk is saved
and ``resume=True`` recomputes nothing that finished.

For a few thousand cells (a board) one `labrss.rss.solve` call is faster than any
engine; this pays for tens of thousands of cells with many elements (n = 32..44).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from labrss.rss import RSSResult, solve
from labrss.workflows.batch import (
    BatchReport,
    Chunk,
    ChunkStore,
    EngineSettings,
    Progress,
    run_chunks,
)

__all__ = ["CELLS_PER_SOLVE_CHUNK", "solve_cells"]

#: Cells per chunk (about a second of one core at n = 32).
CELLS_PER_SOLVE_CHUNK = 1024

_FIELDS = (
    "mask",
    "value",
    "error",
    "exact",
    "reachable",
    "reachable_lo",
    "reachable_hi",
    "n_closed",
    "target",
)


def _solve_chunk(
    elements: np.ndarray, targets: np.ndarray, options: dict[str, Any]
) -> dict[str, np.ndarray]:
    """One chunk on a worker: `labrss.rss.solve` of its cells, as arrays."""
    res = solve(elements, targets, **options)
    out = {name: np.asarray(getattr(res, name)) for name in _FIELDS}
    if res.sigma is not None:
        out["sigma"] = np.asarray(res.sigma)
    out["method"] = np.array(res.method)
    return out


def solve_cells(
    elements: ArrayLike,
    targets: ArrayLike,
    *,
    engine: EngineSettings | None = None,
    cells_per_chunk: int = CELLS_PER_SOLVE_CHUNK,
    chunk_dir: Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    client: object | None = None,
    **options: Any,
) -> tuple[RSSResult, BatchReport]:
    """`labrss.rss.solve` over a flat batch of cells, in chunks on the batch engine.

    ``elements`` (C, n); ``targets`` (C,) or (C, m); ``options``: the keyword arguments
    of `labrss.rss.solve` (per-element options broadcastable to (C, n), per-cell ones
    to (C,)). Returns the merged result (``method``: the methods that ran, joined by
    ``+`` when chunks differ) and the engine's report.
    """
    el = np.asarray(elements, dtype=np.float64)
    tg = np.asarray(targets, dtype=np.float64)
    if el.ndim != 2 or tg.ndim not in (1, 2) or tg.shape[0] != el.shape[0]:
        msg = (
            f"solve_cells: need elements (C, n) and targets (C,) or (C, m) for the same C; "
            f"got {el.shape} and {tg.shape}"
        )
        raise ValueError(msg)
    if cells_per_chunk < 1:
        msg = f"solve_cells: cells per chunk = {cells_per_chunk}: need at least 1"
        raise ValueError(msg)
    cells, n = el.shape
    per_element = {"leakage_S", "exclude", "sigma_S"}
    opts = {
        k: (np.broadcast_to(np.asarray(v), (cells, n)) if k in per_element else v)
        for k, v in options.items()
        if v is not None
    }
    if "series_resistance_ohm" in opts:
        opts["series_resistance_ohm"] = np.broadcast_to(
            np.asarray(opts["series_resistance_ohm"], dtype=np.float64), (cells,)
        )
    chunks = []
    for a in range(0, cells, cells_per_chunk):
        b = min(a + cells_per_chunk, cells)
        part = {
            k: (np.ascontiguousarray(v[a:b]) if isinstance(v, np.ndarray) else v)
            for k, v in opts.items()
        }
        chunks.append(
            Chunk(f"cells_{a:09d}-{b:09d}", _solve_chunk, (el[a:b], tg[a:b], part), b - a)
        )
    store = None
    if chunk_dir is not None:
        h = hashlib.sha256()
        for arr in (el, tg, *(np.asarray(opts[k]) for k in sorted(opts))):
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        digest = h.hexdigest()[:16]
        store = ChunkStore.open(
            chunk_dir,
            {"job": "solve-cells", "cells": cells, "n": n, "inputs": digest,
             "cells_per_chunk": cells_per_chunk,
             "options": {k: v for k, v in opts.items() if not isinstance(v, np.ndarray)}},
            resume=resume,
        )  # fmt: skip
    report = run_chunks(
        chunks,
        engine if engine is not None else EngineSettings(),
        store=store,
        progress=progress,
        client=client,
    )
    parts = [report.results[c.key] for c in chunks]
    merged = {name: np.concatenate([p[name] for p in parts]) for name in _FIELDS}
    sigma = np.concatenate([p["sigma"] for p in parts]) if "sigma" in parts[0] else None
    methods = sorted({str(p["method"]) for p in parts})
    result = RSSResult(
        mask=merged["mask"],
        value=merged["value"],
        error=merged["error"],
        exact=merged["exact"],
        reachable=merged["reachable"],
        reachable_lo=merged["reachable_lo"],
        reachable_hi=merged["reachable_hi"],
        sigma=sigma,
        n_closed=merged["n_closed"],
        target=merged["target"],
        method="+".join(methods),
    )
    return result, report
